"""Fixtures of the Harmony Board tests: a registry with the bundled extensions' node types."""

from __future__ import annotations

import pytest

from symphony.extension_host.discovery import bundled_dir, discover
from symphony.registry import NodeTypeRegistry, default_registry


def full_registry() -> NodeTypeRegistry:
    """Return the built-ins plus the node types of the bundled extensions' manifests."""
    registry = default_registry()
    found = discover([bundled_dir()])
    assert not found.errors, found.errors
    for manifest in found.manifests.values():
        registry.register_from_manifest(manifest.id, manifest.node_types)
    return registry


@pytest.fixture
def registry() -> NodeTypeRegistry:
    """The built-in, AI Instrument and File Explorer node types."""
    return full_registry()
