"""Property test: whatever well-framed messages a host sends, the child runtime never crashes.

The runtime runs in this process (a thread) on a socketpair; unhandled exceptions in its threads
would surface through pytest's thread-exception hook (turned into errors by filterwarnings).
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.protocol import (
    Cancel,
    ChildHandshake,
    Credit,
    Exit,
    HostHandshake,
    Message,
    Notification,
    Ping,
    Request,
    Response,
    Shutdown,
    SocketChannel,
    new_token,
)
from symphony.sdk import Extension, RequestContext
from symphony.sdk.runtime import (
    EXIT_FAILURE,
    EXIT_HOST_GONE,
    EXIT_OK,
    EXIT_PROTOCOL,
    ExtensionRuntime,
)


def make_extension() -> Extension:
    ext = Extension("fuzz", "1")

    @ext.request("echo")
    def echo(ctx: RequestContext) -> Any:
        return ctx.params

    @ext.request("stream", stream=True)
    def stream(ctx: RequestContext) -> int:
        for i in range(3):
            ctx.emit(i, timeout=0.2)
        return 3

    @ext.request("boom")
    def boom(ctx: RequestContext) -> None:
        raise RuntimeError("boom")

    @ext.notification("note")
    def note(params: Any, body: bytes) -> None:
        if params == "raise":
            raise ValueError(params)

    return ext


small_ids = st.integers(0, 5)
host_messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        Request,
        small_ids,
        st.sampled_from(["echo", "stream", "boom", "missing"]),
        st.none() | st.integers() | st.text(max_size=5),
        st.binary(max_size=8),
        st.none() | st.integers(0, 50),
        st.none() | st.integers(0, 3),
    ),
    st.builds(Cancel, small_ids),
    st.builds(Credit, small_ids, st.integers(1, 4)),
    st.builds(Ping, small_ids),
    st.builds(Notification, st.sampled_from(["note", "other"]), st.just("raise") | st.none()),
    st.builds(Shutdown, small_ids),
    st.builds(Response, small_ids),  # replies to requests the child never sent
)


def _session(token: bytes) -> Any:
    host = HostHandshake(token, limits={"max_pending": 4})
    child = ChildHandshake(token, "fuzz", "1")
    return child.finish(host.accept(child.hello(host.challenge())))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(host_messages, max_size=12), st.sampled_from(["exit", "close"]))
def test_runtime_survives_any_message_sequence(msgs: list[Message], end: str) -> None:
    a, b = socket.socketpair()
    host, child = SocketChannel(a, 1 << 20), SocketChannel(b, 1 << 20)
    runtime = ExtensionRuntime(make_extension(), child, _session(new_token()))
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(runtime.serve()))
    t.start()
    drained = threading.Event()

    def drain() -> None:
        try:
            while host.recv(10) is not None:
                pass
        except Exception:  # the harness only drains
            pass
        drained.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        for m in msgs:
            host.send(m)
        if end == "exit":
            host.send(Exit())
        else:
            a.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the child already closed after a violation
    t.join(15)
    assert not t.is_alive()
    assert result[0] in {EXIT_OK, EXIT_FAILURE, EXIT_HOST_GONE, EXIT_PROTOCOL}
    child.close()
    host.close()
    reader.join(5)
