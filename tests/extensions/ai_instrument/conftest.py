from __future__ import annotations

from collections.abc import Iterator

import pytest

from .host import InstrumentHost


@pytest.fixture(scope="module")
def ai() -> Iterator[InstrumentHost]:
    """One AI Instrument child per test module (the model loads once)."""
    host = InstrumentHost()
    yield host
    host.close()
