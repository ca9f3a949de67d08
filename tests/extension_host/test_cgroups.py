"""Per-extension cgroup v2: detection, the files written, and (where delegated) a real child."""

from __future__ import annotations

from pathlib import Path

import pytest

from symphony.extension_host.cgroups import CGROUP_ROOT, CgroupSupport
from symphony.extension_host.launcher import ProcessLimits
from symphony.protocol import ExtensionCrashedError

from .conftest import MISBEHAVE, HostFactory


def _fake_v2(tmp_path: Path, controllers: str = "cpu io memory") -> Path:
    """A folder laid out like a cgroup v2 mount with the host in ``app.scope``."""
    root = tmp_path / "cgroup"
    base = root / "app.scope"
    base.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu io memory pids\n")
    (base / "cgroup.controllers").write_text(controllers + "\n")
    (base / "cgroup.subtree_control").write_text("\n")
    (base / "cgroup.procs").write_text("4242\n")
    return root


def test_without_cgroup_v2_there_are_no_cgroups_and_the_reason_says_so(tmp_path: Path) -> None:
    support = CgroupSupport(tmp_path)  # a v1 hierarchy has no cgroup.controllers
    assert not support.available
    assert "cgroup v2 is not mounted" in support.reason
    assert support.create(1, 256, 100) is None


def test_undelegated_controllers_are_named(tmp_path: Path) -> None:
    support = CgroupSupport(_fake_v2(tmp_path, controllers="io"), "/app.scope")
    assert not support.available
    assert "controllers cpu, memory not delegated" in support.reason


def test_the_host_moves_to_a_leaf_and_children_get_their_limits(tmp_path: Path) -> None:
    root = _fake_v2(tmp_path)
    support = CgroupSupport(root, "/app.scope")
    assert support.available
    base = root / "app.scope"
    assert (base / "host" / "cgroup.procs").read_text() == "4242"
    assert (base / "cgroup.subtree_control").read_text() == "+cpu +memory"
    group = support.create(999, memory_mb=256, cpu_percent=50)
    assert group is not None
    assert group.path == base / "ext-999"
    assert (group.path / "memory.max").read_text() == str(256 << 20)
    assert (group.path / "cpu.max").read_text() == "50000 100000"
    assert (group.path / "cgroup.procs").read_text() == "999"
    assert group.oom_kills() == 0
    (group.path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.oom_kills() == 1
    group.kill()
    assert (group.path / "cgroup.kill").read_text() == "1"
    # A name already taken (a pid reused before its cgroup was removed) is refused, not shared.
    assert support.create(999, 256, 50) is None
    assert "cannot create" in support.reason


def _delegated() -> CgroupSupport | None:
    if not (CGROUP_ROOT / "cgroup.controllers").is_file():
        return None
    return CgroupSupport()


@pytest.mark.skipif(
    not (CGROUP_ROOT / "cgroup.controllers").is_file(),
    reason="cgroup v2 is not mounted here (a v1 hierarchy): children get rlimits only",
)
def test_a_real_child_runs_in_its_own_cgroup_and_is_killed_over_memory(
    make_host: HostFactory,
) -> None:
    support = _delegated()
    if support is None or not support.available:
        pytest.skip(f"cgroup v2 not delegated to this process: {support and support.reason}")
    host, _ = make_host(limits={MISBEHAVE: ProcessLimits(memory_mb=96, cpu_percent=50)})
    host.request(MISBEHAVE, "echo", 0).wait()
    pid = host.pid(MISBEHAVE)
    assert pid is not None
    cgroup = Path(f"/proc/{pid}/cgroup").read_text()
    assert f"/ext-{pid}" in cgroup
    with pytest.raises(ExtensionCrashedError, match="memory limit exceeded"):
        host.request(MISBEHAVE, "hog_memory", timeout=120).wait(120)
