"""The SDK end to end: a real child process running tests/sdk/fixtures/demo_ext."""

from __future__ import annotations

import time

from symphony.protocol import (
    Cancel,
    Credit,
    ErrorCode,
    ErrorResponse,
    Exit,
    Notification,
    Ping,
    Pong,
    Progress,
    Request,
    Response,
    Shutdown,
    StreamData,
)

from .host import ChildHost


def test_handshake_announces_methods_and_metadata(child: ChildHost) -> None:
    session = child.handshake()
    assert (session.extension_id, session.extension_version) == ("test.demo", "1.2.3")
    methods = session.extension_capabilities["methods"]
    assert methods["echo"] == {"idempotent": True, "stream": False}
    assert methods["count"] == {"idempotent": False, "stream": True}
    assert "poke" in session.extension_capabilities["notifications"]


def test_echo_with_binary_body(host: ChildHost) -> None:
    body = bytes(range(256)) * 1000
    reply = host.call("echo", {"a": [1, "two", None]}, body=body)
    assert reply == Response(reply.id, {"a": [1, "two", None]}, body)


def test_handler_errors_map_to_codes(host: ChildHost) -> None:
    missing = host.call("no_such_method")
    assert isinstance(missing, ErrorResponse)
    assert missing.code == ErrorCode.METHOD_NOT_FOUND
    crashed = host.call("fail")
    assert isinstance(crashed, ErrorResponse)
    assert crashed.code == ErrorCode.INTERNAL_ERROR
    assert crashed.data == {"type": "ValueError"}
    assert any("boom" in log.message and log.level == "error" for log in host.logs)
    rejected = host.call("reject")
    assert rejected == ErrorResponse(rejected.id, 1234, "nope", {"why": "because"})
    # the extension still serves after handler failures
    assert isinstance(host.call("echo", 1), Response)


def test_result_larger_than_the_frame_is_a_resource_limit(child: ChildHost) -> None:
    child.handshake(max_frame=64 * 1024)
    reply = child.call("big", {"size": 100 * 1024})
    assert isinstance(reply, ErrorResponse)
    assert reply.code == ErrorCode.RESOURCE_LIMIT


def test_progress_begin_report_end(host: ChildHost) -> None:
    rid = host.request("progress")
    msgs = list(host.messages_until_reply(rid))
    progress = [m for m in msgs if isinstance(m, Progress)]
    assert [p.kind for p in progress] == ["begin", "report", "report", "report", "end"]
    assert progress[0].title == "Working"
    assert [p.percentage for p in progress[1:4]] == [25.0, 50.0, 75.0]
    assert msgs[-1] == Response(rid, "done")


def test_stream_honours_credit(host: ChildHost) -> None:
    rid = host.request("count", {"n": 10}, credit=3)
    first = [host.recv() for _ in range(3)]
    assert [m.seq for m in first if isinstance(m, StreamData)] == [0, 1, 2]
    # no credit left: the child blocks; nothing arrives
    pending = []
    try:
        while True:
            pending.append(host.recv(0.2))
    except TimeoutError:
        pass
    assert not [m for m in pending if isinstance(m, StreamData | Response)]
    # a child waiting for credit is idle in the SDK, so it still answers pings
    assert host.ping(5.0)
    host.channel.send(Credit(rid, 4))
    more = [host.recv() for _ in range(4)]
    assert [m.seq for m in more if isinstance(m, StreamData)] == [3, 4, 5, 6]
    time.sleep(0.2)
    host.channel.send(Credit(rid, 100))
    rest = list(host.messages_until_reply(rid))
    items = [m for m in rest if isinstance(m, StreamData)]
    assert [m.seq for m in items] == [7, 8, 9]
    assert items[0].item == {"i": 7}
    assert items[0].body == b"\x07\x07\x07"
    assert rest[-1] == Response(rid, {"count": 10})


def test_stream_without_credit_is_refused(host: ChildHost) -> None:
    reply = host.call("count", {"n": 1})
    assert isinstance(reply, ErrorResponse)
    assert reply.code == ErrorCode.INVALID_REQUEST


def test_cancel_blocked_stream(host: ChildHost) -> None:
    rid = host.request("count", {"n": 10}, credit=1)
    assert isinstance(host.recv(), StreamData)
    host.channel.send(Cancel(rid))
    reply = list(host.messages_until_reply(rid))[-1]
    assert isinstance(reply, ErrorResponse)
    assert reply.code == ErrorCode.REQUEST_CANCELLED


def test_cancellation_observed_by_handler(host: ChildHost) -> None:
    rid = host.request("wait_cancel")
    assert host.ping(5.0)  # waiting for cancellation inside the SDK still answers pings
    host.channel.send(Cancel(rid))
    reply = list(host.messages_until_reply(rid))[-1]
    assert isinstance(reply, ErrorResponse)
    assert reply.code == ErrorCode.REQUEST_CANCELLED


def test_deadline_exceeded(host: ChildHost) -> None:
    reply = host.call("busy_until_deadline", deadline_ms=100)
    assert isinstance(reply, ErrorResponse)
    assert reply.code == ErrorCode.DEADLINE_EXCEEDED


def test_hanging_handler_leaves_pings_unanswered(host: ChildHost) -> None:
    assert host.ping(5.0)
    host.request("hang")
    assert host.recv() == Notification("hanging")
    assert not host.ping(1.0)
    assert host.proc.poll() is None  # alive but unresponsive: the host's supervisor kills it


def test_notifications_both_ways(host: ChildHost) -> None:
    host.channel.send(Notification("poke", {"n": 1}, b"\x01\x02"))
    reply = host.call("notify")
    assert reply == Response(reply.id)
    assert Notification("event", {"from": "demo"}, b"\xff\x00") in host.other
    assert host.call("pokes") == Response(reply.id + 1, [[{"n": 1}, "0102"]])


def test_logs_are_rate_limited_and_drops_reported(child: ChildHost) -> None:
    child.handshake(limits={"log_rate": 0, "log_burst": 5})
    assert child.call("logs", {"n": 50}) == Response(1, 50)
    assert [log.message for log in child.logs] == [f"record {i}" for i in range(5)]
    assert child.logs[0].fields == {"i": 0}
    assert child.logs[0].request == 1
    child.channel.send(Shutdown(child.next_id()))
    while not isinstance(child.recv(), Response):
        pass
    summary = child.logs[-1]
    assert summary.dropped == 45
    assert summary.level == "warning"


def test_graceful_shutdown_exit_code_zero_and_stdout_untouched(host: ChildHost) -> None:
    assert host.call("print") == Response(1)
    assert host.call("echo", "x") == Response(2, "x")
    sid = host.next_id()
    host.channel.send(Shutdown(sid))
    assert host.recv() == Response(sid)
    # requests after shutdown are refused
    late = host.call("echo", "late")
    assert isinstance(late, ErrorResponse)
    assert late.code == ErrorCode.SHUTTING_DOWN
    host.channel.send(Exit())
    assert host.wait() == 0
    assert host.stdout == b"hello from the extension\n"
    assert b"to stderr" in host.stderr
    assert b"shutdown hook ran" in host.stderr


def test_exit_without_shutdown_is_code_one(host: ChildHost) -> None:
    host.channel.send(Exit())
    assert host.wait() == 1


def test_host_vanishing_ends_the_child(host: ChildHost) -> None:
    host.channel.close()
    assert host.wait() == 75


def test_child_imports_no_qt(host: ChildHost) -> None:
    assert host.call("qt_loaded") == Response(1, [])


def test_pending_requests_are_capped(child: ChildHost) -> None:
    child.handshake(limits={"max_pending": 2})
    # the handler waits in its context from now on, so the other thread reads meanwhile
    child.request("wait_cancel")
    child.request("echo", 1)
    child.request("echo", 2)
    extra = child.call("echo", 3)
    assert isinstance(extra, ErrorResponse)
    assert extra.code == ErrorCode.RESOURCE_LIMIT


def test_requests_that_come_while_a_handler_runs_wait_their_turn(host: ChildHost) -> None:
    # "nap" never looks at its context, so nobody reads while it runs (the reading thread runs
    # it); "wait_cancel" does, so the other thread reads while it waits. Either way the
    # requests behind run afterwards, in order, and pings are answered again once idle.
    for first in ("nap", "wait_cancel"):
        rid = host.request(first, 0.2) if first == "nap" else host.request(first)
        later = [host.request("echo", i) for i in range(3)]
        if first == "wait_cancel":
            host.channel.send(Cancel(rid))
        replies = [host.recv() for _ in range(4)]
        assert [r.id for r in replies] == [rid, *later]  # type: ignore[union-attr]
        assert [r.result for r in replies[1:]] == [0, 1, 2]  # type: ignore[union-attr]
        assert host.ping(5.0)


def test_a_ping_read_right_before_a_request_run_by_the_reader_is_answered(host: ChildHost) -> None:
    # The reading thread files the ping (waking the other thread to answer it) and at once runs
    # the request itself, so the woken thread is not the handler and may not answer. The pong
    # must still come once the handler returns: the host sends no new ping while one is
    # outstanding, so a lost pong got a healthy child killed as unresponsive seconds later,
    # even when idle (it happened to chains of fast requests).
    assert host.ping(5.0)
    for _ in range(3):
        pid, rid = host.next_id(), host.next_id()
        host.channel.send_many([Ping(pid), Request(rid, "nap", 0.1)])
        got = [host.recv(5.0), host.recv(5.0)]
        assert Pong(pid) in got
        assert any(isinstance(m, Response) and m.id == rid for m in got)


def test_stdlib_logging_reaches_the_host(host: ChildHost) -> None:
    assert host.call("stdlib_log") == Response(1)
    [record] = host.logs
    assert (record.level, record.logger, record.message) == (
        "warning",
        "demo.module",
        "disk /tmp is full",
    )
    assert record.fields == {"free": 0}


def test_protocol_violation_closes_with_an_error_frame(host: ChildHost) -> None:
    assert host.ping(5.0)  # past the handshake
    host.channel.sock.sendall(b"\xff\xff\xff\xff garbage")
    err = host.recv()
    assert isinstance(err, ErrorResponse)
    assert (err.id, err.code) == (None, ErrorCode.PROTOCOL_VIOLATION)
    assert host.wait() == 76


def test_credit_overflow_is_a_protocol_violation(host: ChildHost) -> None:
    rid = host.request("count", {"n": 10**9}, credit=0)  # never finishes by itself
    host.channel.send(Credit(rid, 1 << 20))
    host.channel.send(Credit(rid, 1 << 20))
    msgs = []
    while not isinstance(msgs[-1] if msgs else None, ErrorResponse) or msgs[-1].id is not None:
        msgs.append(host.recv())
    assert msgs[-1].code == ErrorCode.PROTOCOL_VIOLATION
    assert host.wait() == 76


def test_child_calls_the_host(host: ChildHost) -> None:
    rid = host.request("ask_host", "api-key", deadline_ms=10_000)
    req = host.recv()
    assert isinstance(req, Request)
    assert (req.method, req.params, req.body) == ("secret", {"name": "api-key"}, b"q")
    assert req.deadline_ms is not None
    assert host.ping(5.0)  # the handler waits inside the SDK: pings are answered
    host.channel.send(Response(req.id, "s3cr3t", b"\x00"))
    assert host.recv() == Response(rid, {"got": "s3cr3t"}, b"\x00")
    # an error reply surfaces as the matching exception, which the handler lets through
    rid = host.request("ask_host", "missing")
    req = host.recv()
    assert isinstance(req, Request)
    host.channel.send(ErrorResponse(req.id, ErrorCode.INVALID_PARAMS, "no such secret"))
    assert host.recv() == ErrorResponse(rid, ErrorCode.INVALID_PARAMS, "no such secret")


def test_child_call_times_out_and_cancels(host: ChildHost) -> None:
    rid = host.request("ask_host", "slow", deadline_ms=300)
    req = host.recv()
    assert isinstance(req, Request)
    assert host.recv() == Cancel(req.id)
    reply = host.recv()
    assert isinstance(reply, ErrorResponse)
    assert reply.id == rid
    assert reply.code == ErrorCode.DEADLINE_EXCEEDED
    # a late reply to the abandoned request is ignored, not a violation
    host.channel.send(Response(req.id, "too late"))
    assert host.call("echo", "still here") == Response(rid + 1, "still here")


def test_reply_to_a_request_never_sent_is_a_violation(host: ChildHost) -> None:
    host.channel.send(Response(99, "what?"))
    err = host.recv()
    assert isinstance(err, ErrorResponse)
    assert (err.id, err.code) == (None, ErrorCode.PROTOCOL_VIOLATION)
    assert host.wait() == 76
