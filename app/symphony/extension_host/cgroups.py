"""Per-extension cgroup v2 limits (``memory.max``, ``cpu.max``), where the host may use them.

Used on top of the rlimits and the RSS watchdog, never instead of them: cgroup v2 must be mounted
(``/sys/fs/cgroup/cgroup.controllers`` exists; a v1 hierarchy has no such file) and the host's
own cgroup must be writable by it — a delegated subtree, as ``systemd-run --user --scope -p
Delegate=yes`` or a desktop session's ``app-*.scope`` gives. cgroup v2 forbids processes in a
cgroup whose children have controllers, so the host first moves itself into a ``host`` leaf of its
cgroup, then enables ``+memory +cpu`` for the children and makes one ``ext-<pid>`` cgroup per
child. Any refusal along the way (``EACCES``, ``EBUSY``, ``EROFS``, a controller not delegated)
leaves the child with rlimits only; :attr:`CgroupSupport.reason` says why.

What cgroups add: the kernel enforces the memory cap (the OOM killer, counted in
``memory.events``) and the CPU share (``cpu_percent`` of one core as ``cpu.max``), and
``cgroup.kill`` kills every process of the child's cgroup, including grandchildren that left its
process group.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

#: Where cgroup v2 is normally mounted.
CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
#: ``cpu.max`` period in microseconds.
CPU_PERIOD_US: Final = 100_000


def _write(path: Path, text: str) -> None:
    # One write(2) per value: cgroup files take a whole value per write.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


class CgroupSupport:
    """Whether (and where) this host can give its children their own cgroups.

    Parameters
    ----------
    root
        The cgroup v2 mount point (tests pass another folder).
    self_cgroup
        This process's cgroup path relative to ``root`` (default: read from
        ``/proc/self/cgroup``).
    """

    def __init__(self, root: Path = CGROUP_ROOT, self_cgroup: str | None = None) -> None:
        self.root = root
        self.base: Path | None = None
        self.reason = ""
        if not (root / "cgroup.controllers").is_file():
            self.reason = f"cgroup v2 is not mounted at {root} (no cgroup.controllers)"
            return
        rel = self_cgroup if self_cgroup is not None else _own_cgroup()
        if rel is None:
            self.reason = "this process has no cgroup v2 path in /proc/self/cgroup"
            return
        base = root / rel.lstrip("/")
        try:
            self._prepare(base)
        except OSError as e:
            self.reason = f"cannot use cgroup {base}: {e.strerror or e}"
            return
        self.base = base

    @property
    def available(self) -> bool:
        """Whether children get cgroups."""
        return self.base is not None

    def _prepare(self, base: Path) -> None:
        wanted = {"memory", "cpu"}
        have = set((base / "cgroup.controllers").read_text().split())
        missing = wanted - have
        if missing:
            raise OSError(0, f"controllers {', '.join(sorted(missing))} not delegated")
        enabled = set((base / "cgroup.subtree_control").read_text().split())
        if wanted <= enabled:
            return
        # No internal processes: move this process (and whoever shares the cgroup) into a leaf.
        leaf = base / "host"
        leaf.mkdir(exist_ok=True)
        for pid in (base / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError):
                _write(leaf / "cgroup.procs", pid)
        _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(wanted)))

    def create(self, pid: int, memory_mb: int, cpu_percent: int) -> ChildCgroup | None:
        """Put process ``pid`` in a new cgroup with these limits (``None`` if unavailable).

        Parameters
        ----------
        pid
            The child, before it runs any extension code.
        memory_mb
            ``memory.max`` in MiB (``0``: no cap).
        cpu_percent
            Percent of one core (``cpu.max``; ``0``: no cap).

        Returns
        -------
        ChildCgroup or None
            The child's cgroup, or ``None`` when cgroups are unavailable or refused.
        """
        if self.base is None:
            return None
        path = self.base / f"ext-{pid}"
        try:
            path.mkdir()
        except OSError as e:
            self.reason = f"cannot create {path}: {e.strerror or e}"
            return None
        group = ChildCgroup(path)
        try:
            if memory_mb:
                _write(path / "memory.max", str(memory_mb << 20))
                if (path / "memory.swap.max").exists():
                    _write(path / "memory.swap.max", "0")
            if cpu_percent:
                quota = max(1000, cpu_percent * CPU_PERIOD_US // 100)
                _write(path / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            _write(path / "cgroup.procs", str(pid))
        except OSError as e:
            self.reason = f"cannot configure {path}: {e.strerror or e}"
            group.remove()
            return None
        return group


class ChildCgroup:
    """One child's cgroup: its limits, its OOM count, and a kill for everything inside."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this cgroup."""
        try:
            for line in (self.path / "memory.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def kill(self) -> None:
        """SIGKILL every process in the cgroup (``cgroup.kill``, Linux ≥ 5.14)."""
        with contextlib.suppress(OSError):
            _write(self.path / "cgroup.kill", "1")

    def remove(self) -> bool:
        """Remove the (empty) cgroup; return whether it is gone (``False``: still busy)."""
        try:
            self.path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True


def _own_cgroup() -> str | None:
    try:
        with open("/proc/self/cgroup", encoding="ascii") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


__all__ = ["CGROUP_ROOT", "CPU_PERIOD_US", "CgroupSupport", "ChildCgroup"]
