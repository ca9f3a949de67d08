"""Extension manifests: valid ones parse, broken ones name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony.extension_host.discovery import discover
from symphony.extension_host.manifest import (
    Limits,
    ManifestError,
    Permissions,
    parse_manifest,
    satisfies,
)

GOOD = """
id = "acme.tool"
name = "Acme Tool"
version = "1.2.3"
entry = "tool.main"
description = "does things"
activation_events = ["onStartup", "onNodeType:acme.run"]
idempotent_methods = ["acme.stat"]

[permissions]
filesystem = "workspace"
network = true
secrets = ["acme_key"]

[limits]
memory_mb = 128
cpu_percent = 50

[dependencies]
"acme.base" = ">=0.1,<2"

[[node_types]]
id = "acme.run"
"""


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "extension.toml").write_text(text, encoding="utf-8")
    return folder


def test_a_complete_manifest_parses(tmp_path: Path) -> None:
    m = parse_manifest(write(tmp_path / "tool", GOOD))
    assert (m.id, m.name, m.version, m.entry) == ("acme.tool", "Acme Tool", "1.2.3", "tool.main")
    assert m.activation_events == ("onStartup", "onNodeType:acme.run")
    assert m.permissions == Permissions("workspace", True, ("acme_key",))
    assert m.limits == Limits(memory_mb=128, cpu_percent=50, frame_max_mb=16)
    assert dict(m.dependencies) == {"acme.base": ">=0.1,<2"}
    assert m.node_types == ({"id": "acme.run"},)
    assert m.idempotent_methods == ("acme.stat",)


def test_defaults_are_least_privilege(tmp_path: Path) -> None:
    m = parse_manifest(
        write(tmp_path / "t", 'id = "a.b"\nname = "x"\nversion = "0.1.0"\nentry = "m"\n')
    )
    assert m.permissions == Permissions("none", False, ())
    assert m.limits == Limits()


@pytest.mark.parametrize(
    ("edit", "field", "problem"),
    [
        (lambda t: t.replace('id = "acme.tool"', 'id = "Acme"'), "id", "dotted lowercase id"),
        (lambda t: t.replace('name = "Acme Tool"\n', ""), "name", "required field is missing"),
        (lambda t: t.replace('"1.2.3"', '"1.2"'), "version", "not a version like 1.2.3"),
        (lambda t: t.replace('"tool.main"', '"tool/main.py"'), "entry", "not a Python module"),
        (lambda t: t.replace('"onStartup"', '"whenever"'), "activation_events[0]", "onStartup"),
        (lambda t: t.replace('"workspace"', '"everything"'), "permissions.filesystem", "not one"),
        (
            lambda t: t.replace("network = true", 'network = "yes"'),
            "permissions.network",
            "true or false",
        ),
        (lambda t: t.replace('"acme_key"', '"Acme Key"'), "permissions.secrets[0]", "secret name"),
        (lambda t: t.replace("memory_mb = 128", "memory_mb = 1"), "limits.memory_mb", "outside"),
        (lambda t: t.replace("memory_mb = 128", "memory_mb = true"), "limits.memory_mb", "integer"),
        (
            lambda t: t.replace("cpu_percent = 50", "cpu_pct = 50"),
            "limits.cpu_pct",
            "unknown field",
        ),
        (
            lambda t: t.replace('">=0.1,<2"', '"soon"'),
            "dependencies.acme.base",
            "version constraint",
        ),
        (lambda t: "colour = 1\n" + t, "colour", "unknown field"),
        (
            lambda t: "node_types = 3\n" + t.replace('[[node_types]]\nid = "acme.run"\n', ""),
            "node_types",
            "list",
        ),
    ],
)
def test_broken_manifests_name_the_field(
    tmp_path: Path, edit: object, field: str, problem: str
) -> None:
    folder = write(tmp_path / "tool", edit(GOOD))  # type: ignore[operator]
    with pytest.raises(ManifestError) as info:
        parse_manifest(folder)
    assert info.value.field == field
    assert problem in info.value.problem
    assert str(folder / "extension.toml") in str(info.value)


def test_unreadable_manifests(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no extension.toml"):
        parse_manifest(tmp_path)
    (tmp_path / "extension.toml").write_text("id = ")
    with pytest.raises(ManifestError, match="not valid TOML"):
        parse_manifest(tmp_path)
    (tmp_path / "extension.toml").write_bytes(b"id = '\xff'")
    with pytest.raises(ManifestError, match="not UTF-8"):
        parse_manifest(tmp_path)


@pytest.mark.parametrize(
    ("version", "constraint", "ok"),
    [
        ("1.2.3", ">=1.0", True),
        ("1.2.3", ">=1.0,<1.2", False),
        ("1.2.3", "==1.2", True),
        ("1.3.0", "~=1.2", True),
        ("2.0.0", "~=1.2", False),
        ("0.1.0", "<0.1.1", True),
    ],
)
def test_version_constraints(version: str, constraint: str, ok: bool) -> None:
    assert satisfies(version, constraint) is ok


def minimal(ext_id: str, version: str = "0.1.0", deps: str = "") -> str:
    return f'id = "{ext_id}"\nname = "n"\nversion = "{version}"\nentry = "m"\n{deps}'


def test_discovery_skips_broken_and_unsatisfied_but_loads_the_rest(tmp_path: Path) -> None:
    bundled, user = tmp_path / "bundled", tmp_path / "user"
    write(bundled / "base", minimal("acme.base", "1.0.0"))
    write(bundled / "broken", 'id = 3\nname = "n"\nversion = "0.1.0"\nentry = "m"\n')
    write(bundled / "needs_missing", minimal("acme.a", deps='[dependencies]\n"acme.zzz" = ">=1"\n'))
    write(bundled / "needs_a", minimal("acme.b", deps='[dependencies]\n"acme.a" = ">=0"\n'))
    write(bundled / "old_base", minimal("acme.c", deps='[dependencies]\n"acme.base" = ">=2"\n'))
    write(bundled / "cyc1", minimal("acme.x", deps='[dependencies]\n"acme.y" = ">=0"\n'))
    write(bundled / "cyc2", minimal("acme.y", deps='[dependencies]\n"acme.x" = ">=0"\n'))
    write(user / "base_new", minimal("acme.base", "1.1.0"))
    write(user / "base_dup", minimal("acme.base", "0.9.0"))
    found = discover([bundled, user])
    assert set(found.manifests) == {"acme.base"}
    assert found.manifests["acme.base"].version == "1.1.0"
    problems = sorted((e.path.parent.name, e.field) for e in found.errors)
    assert problems == [
        ("base_dup", "id"),
        ("broken", "id"),
        ("cyc1", "dependencies"),
        ("cyc2", "dependencies"),
        ("needs_a", "dependencies.acme.a"),
        ("needs_missing", "dependencies.acme.zzz"),
        ("old_base", "dependencies.acme.base"),
    ]


def test_missing_roots_are_empty(tmp_path: Path) -> None:
    found = discover([tmp_path / "nope"])
    assert found.manifests == {}
    assert found.errors == []


def test_cpu_seconds_limit(tmp_path: Path) -> None:
    base = 'id = "a.b"\nname = "x"\nversion = "0.1.0"\nentry = "m"\n'
    assert parse_manifest(write(tmp_path / "d", base)).limits.cpu_seconds == 0
    m = parse_manifest(write(tmp_path / "t", base + "[limits]\ncpu_seconds = 30\n"))
    assert m.limits.cpu_seconds == 30
    with pytest.raises(ManifestError, match=r"limits\.cpu_seconds"):
        parse_manifest(write(tmp_path / "u", base + "[limits]\ncpu_seconds = -1\n"))


def test_bundled_file_explorer_manifest_is_valid() -> None:
    from symphony.extension_host.discovery import bundled_dir

    found = discover([bundled_dir()])
    assert "symphony.file_explorer" in found.manifests
    assert found.errors == []
