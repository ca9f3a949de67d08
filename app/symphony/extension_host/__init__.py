"""The Qt side of extensions: manifests, discovery, launcher, supervisor and channel."""
