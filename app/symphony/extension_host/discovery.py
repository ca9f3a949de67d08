"""Finding extensions: the bundled ones and the user's.

Bundled extensions ship inside the package (``symphony/extensions/<name>/``), so a source checkout,
an installed wheel and a frozen bundle find them the same way. User extensions live in
``<GenericDataLocation>/symphony/extensions/<name>/`` (``~/.local/share/symphony/extensions`` on
Linux), located with ``QStandardPaths``. A broken manifest is reported and skipped; the others load.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from symphony.extension_host.manifest import (
    MANIFEST_NAME,
    Manifest,
    ManifestError,
    parse_manifest,
    parse_version,
    satisfies,
)


def bundled_dir() -> Path:
    """Return the folder of the extensions that ship with Symphony."""
    import symphony

    return Path(symphony.__file__).resolve().parent / "extensions"


def user_dir() -> Path:
    """Return the per-user extensions folder (it may not exist)."""
    from PySide6.QtCore import QStandardPaths

    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(base) / "symphony" / "extensions"


@dataclass(frozen=True, slots=True)
class Discovery:
    """What a scan found: loadable manifests by id, and the problems of the others."""

    manifests: dict[str, Manifest] = field(default_factory=dict)
    errors: list[ManifestError] = field(default_factory=list)


def _candidates(root: Path) -> Iterable[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST_NAME).is_file())


def discover(roots: Sequence[Path] | None = None) -> Discovery:
    """Scan ``roots`` (default: bundled, then user) for extension folders.

    A later root may replace an extension of an earlier one only with a higher version (a user
    updating a bundled extension); the same id twice otherwise is an error for the later folder.
    Extensions whose dependencies are missing, of the wrong version or circular are reported and
    left out, with everything that depends on them.

    Parameters
    ----------
    roots
        Folders holding extension folders.

    Returns
    -------
    Discovery
        The manifests that can load and the errors of those that cannot.
    """
    if roots is None:
        roots = [bundled_dir(), user_dir()]
    found: dict[str, Manifest] = {}
    errors: list[ManifestError] = []
    for root in roots:
        for folder in _candidates(root):
            try:
                m = parse_manifest(folder)
            except ManifestError as e:
                errors.append(e)
                continue
            old = found.get(m.id)
            if old is not None:
                if parse_version(m.version) > parse_version(old.version):
                    found[m.id] = m
                    continue
                errors.append(
                    ManifestError(
                        m.path,
                        "id",
                        f"{m.id!r} is already provided by {old.folder} (version {old.version}); "
                        "a second copy must have a higher version to replace it",
                    )
                )
                continue
            found[m.id] = m
    _drop_unsatisfied(found, errors)
    return Discovery(manifests=found, errors=errors)


def _drop_unsatisfied(found: dict[str, Manifest], errors: list[ManifestError]) -> None:
    changed = True
    while changed:
        changed = False
        for ext_id, m in list(found.items()):
            for dep, constraint in m.dependencies.items():
                target = found.get(dep)
                problem = None
                if target is None:
                    problem = f"needs extension {dep!r}, which is not available"
                elif not satisfies(target.version, constraint):
                    problem = f"needs {dep!r} {constraint}, but {target.version} is installed"
                if problem:
                    errors.append(ManifestError(m.path, f"dependencies.{dep}", problem))
                    del found[ext_id]
                    changed = True
                    break
    # What remains has every dependency present; refuse cycles among them.
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in found[node].dependencies:
            if dep not in found:
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if state.get(dep) is None and (cycle := visit(dep, stack)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for ext_id in sorted(found):
        if state.get(ext_id) is None and (cycle := visit(ext_id, [])):
            for member in sorted(set(cycle)):
                if member in found:
                    m = found.pop(member)
                    errors.append(
                        ManifestError(
                            m.path, "dependencies", "circular dependency: " + " → ".join(cycle)
                        )
                    )
            _drop_unsatisfied(found, errors)
            return
