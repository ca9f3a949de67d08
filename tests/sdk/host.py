"""A minimal test host written with plain sockets: spawns the runner, does the host handshake."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from symphony.protocol import (
    SUPPORTED_PROTOCOLS,
    Ping,
    Pong,
    Request,
    Session,
    SocketChannel,
)
from symphony.protocol.handshake import HostHandshake, new_token, write_token
from symphony.protocol.messages import ErrorResponse, Log, Message, Response

FIXTURES = Path(__file__).parent / "fixtures"
DEMO = FIXTURES / "demo_ext"


class ChildHost:
    """One extension child on a socketpair, driven from the test."""

    def __init__(
        self,
        folder: Path = DEMO,
        *,
        token: bytes | None = None,
        child_token: bytes | None = None,
        send_token: bool = True,
    ) -> None:
        self.token = token or new_token()
        parent, child = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "symphony.sdk.runner", str(folder), "--fd", str(child.fileno())],
            pass_fds=(child.fileno(),),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        child.close()
        assert self.proc.stdin is not None
        if send_token:
            write_token(self.proc.stdin, child_token or self.token)
        self.proc.stdin.close()
        self.proc.stdin = None  # communicate() must not flush the closed pipe
        self.channel = SocketChannel(parent)
        self.logs: list[Log] = []
        self.other: list[Message] = []
        self._next_id = 1
        self.stdout = b""
        self.stderr = b""

    def handshake(
        self,
        protocols: tuple[int, int] = SUPPORTED_PROTOCOLS,
        **kw: Any,
    ) -> Session:
        hs = HostHandshake(self.token, protocols=protocols, **kw)
        self.channel.send(hs.challenge())
        hello = self.channel.recv(10)
        assert hello is not None
        try:
            welcome = hs.accept(hello)
        except Exception as e:
            self.channel.send(hs.reject(e))  # type: ignore[arg-type]
            raise
        self.channel.send(welcome)
        assert hs.session is not None
        self.channel.set_max_frame(hs.session.max_frame)
        return hs.session

    def next_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def request(self, method: str, params: Any = None, **kw: Any) -> int:
        rid = self.next_id()
        self.channel.send(Request(rid, method, params, **kw))
        return rid

    def recv(self, timeout: float = 10.0) -> Message:
        """Next message that is not a log record (logs are collected in ``self.logs``)."""
        end = time.monotonic() + timeout
        while True:
            msg = self.channel.recv(max(0.0, end - time.monotonic()))
            assert msg is not None, "the child closed the connection"
            if isinstance(msg, Log):
                self.logs.append(msg)
                continue
            return msg

    def messages_until_reply(self, rid: int, timeout: float = 10.0) -> Iterator[Message]:
        end = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.0, end - time.monotonic()))
            yield msg
            if isinstance(msg, Response | ErrorResponse) and msg.id == rid:
                return

    def call(self, method: str, params: Any = None, **kw: Any) -> Response | ErrorResponse:
        rid = self.request(method, params, **kw)
        *others, reply = self.messages_until_reply(rid)
        self.other.extend(others)
        assert isinstance(reply, Response | ErrorResponse)
        return reply

    def ping(self, timeout: float) -> bool:
        pid = self.next_id()
        self.channel.send(Ping(pid))
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            try:
                msg = self.recv(left)
            except TimeoutError:
                return False
            if isinstance(msg, Pong) and msg.id == pid:
                return True
            self.other.append(msg)

    def wait(self, timeout: float = 10.0) -> int:
        out, err = self.proc.communicate(timeout=timeout)
        self.stdout += out
        self.stderr += err
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        out, err = self.proc.communicate(timeout=10)
        self.stdout += out
        self.stderr += err
        self.channel.close()
