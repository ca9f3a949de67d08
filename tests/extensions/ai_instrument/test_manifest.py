"""The manifest: valid, contributes exactly the registry's AI node types, runner-compatible."""

from __future__ import annotations

import tomllib
from pathlib import Path

from symphony.extension_host.manifest import parse_manifest
from symphony.sdk.runner import load_extension

from .host import FOLDER

FIXTURE = Path(__file__).parents[2] / "registry" / "fixtures" / "ai_instrument.node_types.toml"


def test_manifest_is_valid_with_permissions_and_limits() -> None:
    m = parse_manifest(FOLDER)
    assert m.id == "symphony.ai_instrument"
    assert m.entry == "symphony.extensions.ai_instrument.main"
    assert m.permissions.network is True
    assert m.permissions.secrets == ("openai_api_key", "openai_api_key.*")
    assert m.permissions.allows_secret("openai_api_key.work")
    assert not m.permissions.allows_secret("github_token")
    assert m.limits.memory_mb >= 1024
    assert {f"onNodeType:{t['id']}" for t in m.node_types} <= set(m.activation_events)


def test_node_types_match_the_registry_fixture_exactly() -> None:
    expected = tomllib.loads(FIXTURE.read_text(encoding="utf-8"))["node_types"]
    assert list(parse_manifest(FOLDER).node_types) == expected


def test_every_node_type_is_a_method() -> None:
    m = parse_manifest(FOLDER)
    ext = load_extension(FOLDER)
    for t in m.node_types:
        assert t["id"] in ext.methods
        assert ext.methods[t["id"]].idempotent == t["idempotent"]
    for name in m.idempotent_methods:
        assert ext.methods[name].idempotent
