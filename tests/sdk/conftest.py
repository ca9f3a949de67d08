from __future__ import annotations

from collections.abc import Iterator

import pytest

from .host import ChildHost


@pytest.fixture
def child() -> Iterator[ChildHost]:
    """A demo extension child, not yet handshaken; killed at teardown if still alive."""
    c = ChildHost()
    yield c
    c.close()


@pytest.fixture
def host(child: ChildHost) -> ChildHost:
    """A demo extension child after a successful handshake."""
    child.handshake()
    return child
