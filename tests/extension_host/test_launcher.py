"""The launcher without Qt: environment allowlist, missing token, limits."""

from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

from symphony.extension_host.launcher import (
    ADDRESS_SPACE_SLACK_MB,
    ProcessLimits,
    child_env,
    launch,
    rss_bytes,
)
from symphony.protocol import new_token

from .conftest import FIXTURES


def test_child_env_is_an_allowlist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-nope")
    monkeypatch.setenv("PYTHONPATH", "/evil")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = child_env()
    assert "OPENAI_API_KEY" not in env
    assert "PYTHONPATH" not in env
    assert env["LANG"] == "C.UTF-8"


def test_child_without_a_token_exits_77() -> None:
    launched = launch(FIXTURES / "misbehave", None)
    try:
        assert launched.proc.wait(60) == 77
        assert launched.proc.stderr is not None
        assert b"no launch token" in launched.proc.stderr.read()
    finally:
        launched.sock.close()
        for pipe in (launched.proc.stdout, launched.proc.stderr):
            if pipe is not None:
                pipe.close()


def test_limits_are_applied_before_the_token(tmp_path: Path) -> None:
    # with a token the runner then waits (up to 10 s) for the challenge: a stable window
    launched = launch(
        FIXTURES / "misbehave", new_token(), limits=ProcessLimits(memory_mb=100, cpu_seconds=7)
    )
    try:
        pid = launched.proc.pid
        assert resource.prlimit(pid, resource.RLIMIT_CPU) == (7, 8)
        cap = (100 + ADDRESS_SPACE_SLACK_MB) << 20
        assert resource.prlimit(pid, resource.RLIMIT_AS) == (cap, cap)
        assert resource.prlimit(pid, resource.RLIMIT_CORE) == (0, 0)
        assert os.getpgid(pid) == pid  # its own process group
        assert rss_bytes(os.getpid()) > 0
    finally:
        launched.proc.kill()
        launched.proc.wait(30)
        launched.sock.close()
        for pipe in (launched.proc.stdout, launched.proc.stderr):
            if pipe is not None:
                pipe.close()
