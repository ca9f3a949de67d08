"""Symphony AIDE: compose melodies of AI instruments, data operators and file actions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("symphony-aide")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
