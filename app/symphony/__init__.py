"""Symphony AIDE: compose melodies of AI instruments, data operators and file actions."""

from __future__ import annotations

import functools

__all__ = ["__version__"]


@functools.cache
def _version() -> str:
    # importlib.metadata costs tens of milliseconds to import; extension children import this
    # package on every start and never ask for the version, so it is looked up on first use.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("symphony-aide")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'symphony' has no attribute {name!r}")
