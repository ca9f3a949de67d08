"""Workflow fixtures: registries holding the built-ins and the expected extension node types."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from symphony.registry import NodeTypeRegistry, default_registry

FIXTURES = Path(__file__).parent.parent / "registry" / "fixtures"


@pytest.fixture
def registry() -> NodeTypeRegistry:
    """Built-ins plus the AI Instrument and File Explorer contributions (registry/fixtures)."""
    r = default_registry()
    for ext in ("ai_instrument", "file_explorer"):
        with (FIXTURES / f"{ext}.node_types.toml").open("rb") as f:
            r.register_from_manifest(ext, tomllib.load(f)["node_types"])
    return r
