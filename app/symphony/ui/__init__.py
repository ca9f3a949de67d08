"""The main window and its docks: palette, properties, files, artifacts, timeline, log."""
