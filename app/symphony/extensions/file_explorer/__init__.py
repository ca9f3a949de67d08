"""The File Explorer extension: a workspace-rooted file service run as a child process."""
