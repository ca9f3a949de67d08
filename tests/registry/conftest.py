"""Registry fixtures: the node types the AI Instrument and File Explorer manifests contribute."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from symphony.registry import NodeTypeRegistry, default_registry

FIXTURES = Path(__file__).parent / "fixtures"


def contributed(extension_id: str) -> list[dict[str, Any]]:
    """Return the ``[[node_types]]`` tables of ``fixtures/<extension_id>.node_types.toml``."""
    with (FIXTURES / f"{extension_id}.node_types.toml").open("rb") as f:
        tables: list[dict[str, Any]] = tomllib.load(f)["node_types"]
    return tables


@pytest.fixture
def contributions() -> dict[str, list[dict[str, Any]]]:
    """The expected ``[[node_types]]`` tables by extension id."""
    return {ext: contributed(ext) for ext in ("ai_instrument", "file_explorer")}


@pytest.fixture
def registry() -> NodeTypeRegistry:
    """The built-in operators only."""
    return default_registry()


@pytest.fixture
def full_registry() -> NodeTypeRegistry:
    """Built-ins plus the expected AI Instrument and File Explorer contributions."""
    r = default_registry()
    r.register_from_manifest("ai_instrument", contributed("ai_instrument"))
    r.register_from_manifest("file_explorer", contributed("file_explorer"))
    return r
