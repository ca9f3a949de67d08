"""The conductor: runs melodies over the Pit and the extensions, and recovers from failures."""
