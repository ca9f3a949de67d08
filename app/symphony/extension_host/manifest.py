"""Extension manifests (``extension.toml``): parsing and validation.

No Qt here: the host, the runner and tests all read manifests. Every problem is reported as a
:class:`ManifestError` naming the file and the field (``limits.memory_mb``, ``node_types[2].id``),
so one broken extension can be reported while the others load.

Example::

    id = "symphony.file_explorer"
    name = "File Explorer"
    version = "0.1.0"
    entry = "file_explorer.main"
    description = "Workspace-rooted file service."
    activation_events = ["onStartup", "onNodeType:files.read"]

    [permissions]
    filesystem = "workspace"     # none | read-workspace | workspace
    network = false
    secrets = []                 # names of keyring secrets it may ask the host for

    [limits]
    memory_mb = 256
    cpu_percent = 100            # of one core; 0 = unlimited
    frame_max_mb = 16
    cpu_seconds = 0              # RLIMIT_CPU, total CPU seconds; 0 = unlimited

    [dependencies]
    "symphony.other" = ">=0.1"

    [[node_types]]               # handed to the registry as plain tables
    id = "files.read"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_NAME = "extension.toml"

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:[-+][0-9A-Za-z.-]+)?$")
_CONSTRAINT = re.compile(r"^\s*(>=|<=|==|>|<|~=)?\s*(\d+(?:\.\d+){0,2})\s*$")
_EVENT = re.compile(r"^(onStartup|onWorkspace|onNodeType:[a-z0-9_.]+|onCommand:[a-z0-9_.]+)$")
_SECRET = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_-]+)*(\.\*)?$")

FILESYSTEM_SCOPES = ("none", "read-workspace", "workspace")
_TOP_LEVEL = {
    "id",
    "name",
    "version",
    "entry",
    "description",
    "activation_events",
    "permissions",
    "limits",
    "dependencies",
    "node_types",
    "idempotent_methods",
}


class ManifestError(ValueError):
    """A manifest is missing, unreadable or invalid.

    Parameters
    ----------
    path
        The manifest file.
    field
        The dotted path of the offending field (empty for the whole file).
    problem
        What is wrong.
    """

    def __init__(self, path: Path, field: str, problem: str) -> None:
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(where + problem)
        self.path = path
        self.field = field
        self.problem = problem


def parse_version(text: str) -> tuple[int, int, int]:
    """Parse ``MAJOR.MINOR.PATCH`` (with an optional pre-release or build suffix, ignored).

    Parameters
    ----------
    text
        The version.

    Returns
    -------
    tuple[int, int, int]
        Its numeric parts.

    Raises
    ------
    ValueError
        When ``text`` is not a semantic version.
    """
    m = _VERSION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a version like 1.2.3")
    return int(m[1]), int(m[2]), int(m[3])


def satisfies(version: str, constraint: str) -> bool:
    """Whether ``version`` meets every comma-separated clause of ``constraint`` (``>=1.0,<2``).

    Parameters
    ----------
    version
        A semantic version.
    constraint
        Clauses like ``>=0.1``, ``<2``, ``==1.2.3``, ``~=1.4`` (compatible release).

    Returns
    -------
    bool
        Whether all clauses hold.
    """
    v = parse_version(version)
    for clause in constraint.split(","):
        m = _CONSTRAINT.match(clause)
        if not m:
            raise ValueError(f"{clause.strip()!r} is not a version constraint like >=1.0")
        op = m[1] or "=="
        parts = [int(p) for p in m[2].split(".")]
        want = (parts + [0, 0])[:3]
        w = (want[0], want[1], want[2])
        ok = {
            ">=": v >= w,
            "<=": v <= w,
            ">": v > w,
            "<": v < w,
            "==": v[: len(parts)] == w[: len(parts)],
            "~=": v >= w and v[: max(1, len(parts) - 1)] == w[: max(1, len(parts) - 1)],
        }[op]
        if not ok:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Permissions:
    """What an extension may touch."""

    filesystem: str = "none"
    network: bool = False
    secrets: tuple[str, ...] = ()

    def allows_secret(self, name: str) -> bool:
        """Whether the extension may ask for secret ``name``.

        An entry ``openai_api_key.*`` allows ``openai_api_key.<anything>`` (one key per
        configured endpoint); other entries must match exactly.
        """
        for entry in self.secrets:
            if entry == name:
                return True
            if entry.endswith(".*") and name.startswith(entry[:-1]) and len(name) > len(entry) - 1:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits the host enforces on the child process."""

    memory_mb: int = 512
    cpu_percent: int = 0
    frame_max_mb: int = 16
    cpu_seconds: int = 0


@dataclass(frozen=True, slots=True)
class Manifest:
    """A validated ``extension.toml``."""

    folder: Path
    id: str
    name: str
    version: str
    entry: str
    description: str = ""
    activation_events: tuple[str, ...] = ()
    permissions: Permissions = field(default_factory=Permissions)
    limits: Limits = field(default_factory=Limits)
    dependencies: Mapping[str, str] = field(default_factory=dict)
    node_types: tuple[Mapping[str, Any], ...] = ()
    idempotent_methods: tuple[str, ...] = ()

    @property
    def path(self) -> Path:
        """The manifest file."""
        return self.folder / MANIFEST_NAME


def _expect(path: Path, name: str, value: object, kind: type | tuple[type, ...]) -> Any:
    # bool is an int in Python; a manifest saying `memory_mb = true` is still wrong.
    if isinstance(value, bool) and kind is int:
        raise ManifestError(path, name, f"expected an integer, got {value!r}")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        readable = {"str": "a string", "int": "an integer", "bool": "true or false"}
        want = readable.get(names, names)
        raise ManifestError(path, name, f"expected {want}, got {type(value).__name__} {value!r}")
    return value


def _string_list(path: Path, name: str, value: object) -> tuple[str, ...]:
    items = _expect(path, name, value, list)
    return tuple(_expect(path, f"{name}[{i}]", v, str) for i, v in enumerate(items))


def _table(path: Path, name: str, value: object, allowed: set[str]) -> dict[str, Any]:
    t: dict[str, Any] = _expect(path, name, value, dict)
    for k in t:
        if k not in allowed:
            raise ManifestError(
                path, f"{name}.{k}", f"unknown field (allowed: {', '.join(sorted(allowed))})"
            )
    return t


def _permissions(path: Path, raw: object) -> Permissions:
    t = _table(path, "permissions", raw, {"filesystem", "network", "secrets"})
    fs = _expect(path, "permissions.filesystem", t.get("filesystem", "none"), str)
    if fs not in FILESYSTEM_SCOPES:
        raise ManifestError(
            path, "permissions.filesystem", f"{fs!r} is not one of {', '.join(FILESYSTEM_SCOPES)}"
        )
    network = _expect(path, "permissions.network", t.get("network", False), bool)
    secrets = _string_list(path, "permissions.secrets", t.get("secrets", []))
    for i, s in enumerate(secrets):
        if not _SECRET.match(s):
            raise ManifestError(
                path,
                f"permissions.secrets[{i}]",
                f"{s!r} is not a secret name like openai_api_key (or openai_api_key.*)",
            )
    return Permissions(filesystem=fs, network=network, secrets=secrets)


def _limits(path: Path, raw: object) -> Limits:
    t = _table(path, "limits", raw, {"memory_mb", "cpu_percent", "frame_max_mb", "cpu_seconds"})
    d = Limits()
    memory = _expect(path, "limits.memory_mb", t.get("memory_mb", d.memory_mb), int)
    cpu = _expect(path, "limits.cpu_percent", t.get("cpu_percent", d.cpu_percent), int)
    frame = _expect(path, "limits.frame_max_mb", t.get("frame_max_mb", d.frame_max_mb), int)
    cpu_s = _expect(path, "limits.cpu_seconds", t.get("cpu_seconds", d.cpu_seconds), int)
    if not 0 <= cpu_s <= 1 << 30:
        raise ManifestError(path, "limits.cpu_seconds", f"{cpu_s} is outside 0..{1 << 30}")
    if not 16 <= memory <= 1 << 20:
        raise ManifestError(path, "limits.memory_mb", f"{memory} is outside 16..1048576")
    if not 0 <= cpu <= 100 * 1024:
        raise ManifestError(path, "limits.cpu_percent", f"{cpu} is outside 0..102400")
    if not 1 <= frame <= 1024:
        raise ManifestError(path, "limits.frame_max_mb", f"{frame} is outside 1..1024")
    return Limits(memory_mb=memory, cpu_percent=cpu, frame_max_mb=frame, cpu_seconds=cpu_s)


def parse_manifest(folder: Path) -> Manifest:
    """Read and validate ``folder/extension.toml``.

    Parameters
    ----------
    folder
        The extension folder.

    Returns
    -------
    Manifest
        The validated manifest.

    Raises
    ------
    ManifestError
        Naming the file and the field of the first problem found.
    """
    path = folder / MANIFEST_NAME
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(path, "", "no extension.toml in the extension folder") from None
    except UnicodeDecodeError as e:
        raise ManifestError(path, "", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ManifestError(path, "", f"not valid TOML: {e}") from None
    except OSError as e:
        raise ManifestError(path, "", f"cannot be read: {e.strerror}") from None
    for key in raw:
        if key not in _TOP_LEVEL:
            raise ManifestError(
                path, key, f"unknown field (allowed: {', '.join(sorted(_TOP_LEVEL))})"
            )
    missing = [f for f in ("id", "name", "version", "entry") if f not in raw]
    if missing:
        raise ManifestError(path, missing[0], "required field is missing")
    ext_id = _expect(path, "id", raw["id"], str)
    if not _ID.match(ext_id):
        raise ManifestError(path, "id", f"{ext_id!r} is not a dotted lowercase id like acme.tool")
    name = _expect(path, "name", raw["name"], str).strip()
    if not name:
        raise ManifestError(path, "name", "must not be empty")
    version = _expect(path, "version", raw["version"], str)
    try:
        parse_version(version)
    except ValueError as e:
        raise ManifestError(path, "version", str(e)) from None
    entry = _expect(path, "entry", raw["entry"], str)
    if not _MODULE.match(entry):
        raise ManifestError(path, "entry", f"{entry!r} is not a Python module path like pkg.main")
    events = _string_list(path, "activation_events", raw.get("activation_events", []))
    for i, ev in enumerate(events):
        if not _EVENT.match(ev):
            raise ManifestError(
                path,
                f"activation_events[{i}]",
                f"{ev!r} is not onStartup, onWorkspace, onNodeType:<type> or onCommand:<command>",
            )
    deps_raw = _expect(path, "dependencies", raw.get("dependencies", {}), dict)
    deps: dict[str, str] = {}
    for dep, constraint in deps_raw.items():
        where = f"dependencies.{dep}"
        if not _ID.match(dep):
            raise ManifestError(path, where, f"{dep!r} is not an extension id")
        if dep == ext_id:
            raise ManifestError(path, where, "an extension cannot depend on itself")
        c = _expect(path, where, constraint, str)
        try:
            satisfies("0.0.0", c)
        except ValueError as e:
            raise ManifestError(path, where, str(e)) from None
        deps[dep] = c
    node_types_raw = _expect(path, "node_types", raw.get("node_types", []), list)
    node_types = tuple(
        _expect(path, f"node_types[{i}]", t, dict) for i, t in enumerate(node_types_raw)
    )
    return Manifest(
        folder=folder,
        id=ext_id,
        name=name,
        version=version,
        entry=entry,
        description=_expect(path, "description", raw.get("description", ""), str),
        activation_events=events,
        permissions=_permissions(path, raw.get("permissions", {})),
        limits=_limits(path, raw.get("limits", {})),
        dependencies=deps,
        node_types=node_types,
        idempotent_methods=_string_list(
            path, "idempotent_methods", raw.get("idempotent_methods", [])
        ),
    )
