"""The document tests' registry fixture, for the board tests."""

from tests.document.conftest import registry

__all__ = ["registry"]
