"""Fault injection: every way a child can misbehave, and what the host does about it."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import sys
import time
from dataclasses import replace
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import QCoreApplication

from symphony.extension_host.host import (
    CRASHED,
    DISABLED,
    READY,
    UNRESPONSIVE,
    ExtensionDisabledError,
    HostConfig,
)
from symphony.extension_host.launcher import ProcessLimits
from symphony.protocol import (
    DeadlineExceededError,
    ExtensionCrashedError,
    IncompatibleProtocolError,
    ProtocolError,
)

from .conftest import FIXTURES, MISBEHAVE, HostFactory, spin

FAST = HostConfig(
    ping_interval=0.2,
    unresponsive_after=1.0,
    kill_unresponsive_after=1.0,
    backoff_base=0.05,
    cancel_grace=1.0,
)


def _ready(host: object, ext: str = MISBEHAVE) -> None:
    spin(lambda: host.state(ext) == READY)  # type: ignore[attr-defined]


def test_kill9_mid_request_fails_typed_and_restarts(make_host: HostFactory) -> None:
    host, rec = make_host(config=FAST)
    host.request(MISBEHAVE, "echo", 0).wait()
    pid = host.pid(MISBEHAVE)
    assert pid is not None
    fut = host.request(MISBEHAVE, "sleep", 30)  # not idempotent
    spin(lambda: True, 0.1)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ExtensionCrashedError, match="SIGKILL"):
        fut.wait(30)
    spin(lambda: host.state(MISBEHAVE) == READY and host.pid(MISBEHAVE) != pid)
    assert CRASHED in rec.states_of(MISBEHAVE)
    assert host.starts(MISBEHAVE) == 2
    assert host.request(MISBEHAVE, "echo", 1).wait().result == 1


def test_idempotent_request_is_retried_once_after_a_crash(
    make_host: HostFactory, tmp_path: Path
) -> None:
    host, _ = make_host(config=FAST)
    marker = tmp_path / "crashed"
    assert host.request(MISBEHAVE, "flaky", str(marker)).wait(60).result == "second time lucky"
    assert marker.exists()
    assert host.starts(MISBEHAVE) == 2


def test_an_item_callback_on_a_method_that_never_streams_is_a_plain_request(
    make_host: HostFactory, tmp_path: Path
) -> None:
    # the conductor passes a token callback with every node request; a method the child
    # announced without ``stream`` then gets no credit window and keeps its retry after a crash
    host, _ = make_host(config=FAST)
    items: list[object] = []

    def on_item(item: object, _body: bytes) -> None:
        items.append(item)

    assert host.request(MISBEHAVE, "streaming", on_item=on_item).wait(60).result is False
    marker = tmp_path / "crashed"
    reply = host.request(MISBEHAVE, "flaky", str(marker), on_item=on_item).wait(60)
    assert reply.result == "second time lucky"
    assert host.starts(MISBEHAVE) == 2
    assert items == []


def test_any_unrequested_exit_is_a_crash_and_a_crash_loop_opens_the_breaker(
    make_host: HostFactory,
) -> None:
    host, rec = make_host(config=FAST)
    for method in ("exit0", "crash", "crash"):
        with pytest.raises(ExtensionCrashedError):
            host.request(MISBEHAVE, method).wait(60)
        spin(lambda: host.state(MISBEHAVE) in (READY, DISABLED, CRASHED))
    spin(lambda: host.state(MISBEHAVE) == DISABLED)
    assert rec.breakers
    assert rec.breakers[0][0] == MISBEHAVE
    assert "crashed 3 times" in rec.breakers[0][1]
    assert "exit code 0" in "".join(m for _, _, m in rec.logs)
    with pytest.raises(ExtensionDisabledError):
        host.request(MISBEHAVE, "echo", 1).wait()
    assert host.starts(MISBEHAVE) == 3
    host.enable(MISBEHAVE)
    assert host.request(MISBEHAVE, "echo", 2).wait(60).result == 2


def test_a_long_chain_of_quick_requests_keeps_a_healthy_child_alive(
    make_host: HostFactory,
) -> None:
    # Pings land between the chain's requests, often right before one that the child's reading
    # thread runs itself; such a ping's pong used to be lost, and since the host sends no new
    # ping while one is outstanding, the child was killed as unresponsive a second later (a
    # third of 3-second chains here). The child must stay up through the chain and after it.
    from symphony.qtloop import QtEventLoop

    # a ping every 20 ms tick: about 150 of them during the chain
    config = replace(FAST, ping_interval=0.01, tick=0.02)
    host, rec = make_host(config=config)
    host.start(MISBEHAVE)
    _ready(host)

    async def chain(seconds: float) -> int:
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            assert (await host.call(MISBEHAVE, "echo", n)).result == n
            n += 1
        await asyncio.sleep(config.unresponsive_after + config.kill_unresponsive_after + 0.5)
        return n

    loop = QtEventLoop(QCoreApplication.instance())
    with loop:
        calls = loop.run_until_complete(chain(3.0))
    assert calls > 100
    assert host.starts(MISBEHAVE) == 1, host.last_error(MISBEHAVE)
    assert rec.states_of(MISBEHAVE)[-1] == READY
    assert UNRESPONSIVE not in rec.states_of(MISBEHAVE)


@pytest.mark.parametrize("method", ["hang", "sigstop"])
def test_hang_and_sigstop_become_unresponsive_then_killed(
    make_host: HostFactory, method: str
) -> None:
    host, rec = make_host(config=FAST)
    _ = host.request(MISBEHAVE, "echo", 0).wait()
    fut = host.request(MISBEHAVE, method, timeout=120)
    with pytest.raises(ExtensionCrashedError, match="unresponsive"):
        fut.wait(60)
    states = rec.states_of(MISBEHAVE)
    assert states.index(UNRESPONSIVE) < states.index(CRASHED)
    spin(lambda: host.state(MISBEHAVE) == READY)


def test_deadline_cancels_then_kills_a_request_that_ignores_it(make_host: HostFactory) -> None:
    host, _ = make_host(config=HostConfig(cancel_grace=1.0, unresponsive_after=60))
    host.request(MISBEHAVE, "echo", 0).wait()
    fut = host.request(MISBEHAVE, "sleep", 60, timeout=0.5)
    with pytest.raises(DeadlineExceededError):
        fut.wait(30)
    spin(lambda: host.state(MISBEHAVE) == CRASHED or host.starts(MISBEHAVE) == 2)
    assert "ignored its cancel" in host.last_error(MISBEHAVE)


def _frame(length: int, rest: bytes) -> bytes:
    return struct.pack("<I", length) + rest


@pytest.mark.parametrize(
    ("raw", "then", "error"),
    [
        # a request frame cut in half, then the child dies: the partial frame is dropped
        (_frame(100, b'\x05\x10\x00\x00\x00{"id":1'), "exit", "exit code 1"),
        # an unknown frame type: malformed
        (_frame(6, b"\x63\x00\x00\x00\x00!"), "sleep", "protocol violation"),
        # a header that is not JSON
        (_frame(9, b"\x07\x04\x00\x00\x00{{{{"), "sleep", "protocol violation"),
        # a length prefix far above the negotiated cap: refused before any allocation
        (struct.pack("<I", 0xFFFFFFF0), "sleep", "exceeds the maximum"),
    ],
    ids=["half-frame", "unknown-type", "bad-json", "oversized"],
)
def test_bad_frames_kill_the_child(
    make_host: HostFactory, raw: bytes, then: str, error: str
) -> None:
    host, _ = make_host(config=FAST)
    host.request(MISBEHAVE, "echo", 0).wait()
    fut = host.request(MISBEHAVE, "raw", then, body=raw, timeout=120)
    with pytest.raises(ExtensionCrashedError, match=error):
        fut.wait(60)
    assert error in host.last_error(MISBEHAVE)


def _rss() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_socket_flood_keeps_host_memory_bounded(make_host: HostFactory) -> None:
    host, _ = make_host()
    seen = [0, 0]

    def count(_i: str, _m: str, _p: object, body: bytes) -> None:
        seen[0] += 1
        seen[1] += len(body)

    host.sig_notification.connect(count)
    host.request(MISBEHAVE, "echo", 0).wait()
    before = _rss()
    peak = before
    fut = host.request(MISBEHAVE, "flood_socket", {"size": 1 << 20, "seconds": 2.0}, timeout=60)
    end = time.monotonic() + 60
    while not fut.done() and time.monotonic() < end:
        spin(lambda: True, 1)
        from PySide6.QtCore import QCoreApplication

        QCoreApplication.processEvents()
        peak = max(peak, _rss())
    fut.wait(60)
    growth = (peak - before) >> 20
    print(f"flood: {seen[1] >> 20} MiB in {seen[0]} frames, host RSS growth {growth} MiB")
    assert seen[0] > 0
    assert growth < 128  # bounded: a few frames of 1 MiB, not the whole flood


def test_stdout_flood_is_drained_and_rate_limited(make_host: HostFactory) -> None:
    host, rec = make_host(config=HostConfig(output_rate=50, output_burst=100))
    host.request(MISBEHAVE, "echo", 0).wait()
    t0 = time.monotonic()
    lines = host.request(MISBEHAVE, "flood_stdout", 1.5, timeout=60).wait(60).result
    spin(lambda: True, 0.5)
    elapsed = time.monotonic() - t0 + 1
    stdout = [m for _, _, m in rec.logs if m.startswith("[stdout]")]
    assert lines > 1000
    assert 0 < len(stdout) <= 100 + 50 * elapsed + 10
    assert host.state(MISBEHAVE) == READY


def test_memory_limit_kills_and_reports(make_host: HostFactory) -> None:
    host, rec = make_host(limits={MISBEHAVE: ProcessLimits(memory_mb=96)})
    host.request(MISBEHAVE, "echo", 0).wait()
    with pytest.raises(ExtensionCrashedError, match="memory limit exceeded"):
        host.request(MISBEHAVE, "hog_memory", timeout=120).wait(120)
    assert "memory limit exceeded" in host.last_error(MISBEHAVE)
    assert any("memory limit exceeded" in m for _, _, m in rec.logs)


def test_cpu_limit_kills_a_cpu_hog(make_host: HostFactory) -> None:
    host, _ = make_host(
        config=HostConfig(unresponsive_after=600, kill_unresponsive_after=600),
        limits={MISBEHAVE: ProcessLimits(memory_mb=256, cpu_seconds=1)},
    )
    host.request(MISBEHAVE, "echo", 0).wait()
    with pytest.raises(ExtensionCrashedError, match="SIGXCPU|SIGKILL"):
        host.request(MISBEHAVE, "hog_cpu", timeout=300).wait(300)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b") ")[1][:1] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def test_grandchildren_die_with_their_parent(make_host: HostFactory) -> None:
    host, _ = make_host(config=FAST)
    grandchild = host.request(MISBEHAVE, "grandchild").wait().result
    assert _alive(grandchild)
    with pytest.raises(ExtensionCrashedError):
        host.request(MISBEHAVE, "crash").wait(60)
    spin(lambda: not _alive(grandchild), 30)


def test_rogue_client_without_the_token_is_refused(make_host: HostFactory) -> None:
    rogue = FIXTURES / "rogue" / "rogue.py"
    host, rec = make_host(
        config=FAST, commands={"test.rogue": [sys.executable, str(rogue), "--fd", "{fd}"]}
    )
    with pytest.raises(ProtocolError, match="unauthorized"):
        host.request("test.rogue", "echo", 1).wait(60)
    spin(lambda: host.state("test.rogue") == DISABLED)
    spin(lambda: True, 0.5)
    assert host.starts("test.rogue") == 1
    assert "unauthorized" in host.last_error("test.rogue")
    assert any("rogue got ErrorResponse" in m for _, _, m in rec.logs)
    assert rec.breakers == []


def test_child_cannot_read_host_memory(make_host: HostFactory) -> None:
    host, _ = make_host()
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux only")
    assert host.undumpable
    import ctypes

    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE
    result = host.request(MISBEHAVE, "read_host_memory").wait().result
    if os.geteuid() == 0:  # CAP_SYS_PTRACE overrides dumpability; nothing to observe as root
        assert result in ("opened", "PermissionError")
    else:
        assert result == "PermissionError"


def test_protocol_version_mismatch_is_fatal_without_restart_loop(make_host: HostFactory) -> None:
    host, rec = make_host(config=FAST, protocols=(2, 3))
    with pytest.raises(IncompatibleProtocolError):
        host.request(MISBEHAVE, "echo", 1).wait(60)
    spin(lambda: host.state(MISBEHAVE) == DISABLED)
    spin(lambda: True, 1.0)
    assert host.starts(MISBEHAVE) == 1
    assert "incompatible protocol" in host.last_error(MISBEHAVE)
    assert "not restarted" in host.last_error(MISBEHAVE)
    with pytest.raises(ExtensionDisabledError):
        host.request(MISBEHAVE, "echo", 1).wait()


def test_slow_start_queues_requests_with_running_deadlines(make_host: HostFactory) -> None:
    host, _ = make_host()
    early = host.request("test.slow_start", "echo", "late", timeout=0.3)
    ok = host.request("test.slow_start", "echo", "ok", timeout=60)
    with pytest.raises(DeadlineExceededError):
        early.wait(30)
    assert ok.wait(60).result == "ok"
    assert host.spawn_to_ready("test.slow_start") > 1.0


def test_activation_and_subscriptions_are_replayed_after_a_restart(
    make_host: HostFactory, tmp_path: Path
) -> None:
    host, _ = make_host(config=FAST, workspace=tmp_path)
    host.activate("onStartup")
    host.request(MISBEHAVE, "subscribe", {"path": "src"}, replay=True).wait()
    host.request(MISBEHAVE, "subscribe", {"path": "tmp"}, replay=True).wait()
    host.forget(MISBEHAVE, "subscribe", {"path": "tmp"})
    with pytest.raises(ExtensionCrashedError):
        host.request(MISBEHAVE, "crash").wait(60)
    _ready(host)
    state = host.request(MISBEHAVE, "state").wait(60).result
    assert state["initialize"] == {"workspace": str(tmp_path), "events": ["onStartup"]}
    assert state["subscriptions"] == [{"path": "src"}]


def test_secrets_are_brokered_per_request_and_never_leak(make_host: HostFactory) -> None:
    value = "s3cr3t-VALUE-do-not-leak"
    keyring.set_password("symphony-aide", "test_api_key", value)
    keyring.set_password("symphony-aide", "other_key", "other-secret")
    os.environ["SYMPHONY_TEST_LEAK"] = value
    try:
        host, rec = make_host()
        assert host.request(MISBEHAVE, "secret", "test_api_key").wait(60).result == {
            "length": len(value)
        }
        with pytest.raises(ProtocolError, match="not listed"):
            host.request(MISBEHAVE, "secret", "other_key").wait(60)
        env = host.request(MISBEHAVE, "environ").wait().result
    finally:
        del os.environ["SYMPHONY_TEST_LEAK"]
    assert "SYMPHONY_TEST_LEAK" not in env
    assert value not in "".join(env.values())
    spin(lambda: any("reached the child" in m for _, _, m in rec.logs))
    assert all(value not in m for _, _, m in rec.logs)
