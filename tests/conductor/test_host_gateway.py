"""The gateway's error messages: a protocol error becomes a NodeError that reads well."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from symphony.conductor.executor import NodeError
from symphony.conductor.host_gateway import HostGateway
from symphony.conductor.policy import ErrorKind
from symphony.protocol.errors import DeadlineExceededError, ProtocolError


class FailingHost:
    """Fault injection: a host whose every call fails with ``error``."""

    def __init__(self, error: ProtocolError) -> None:
        self.error = error

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


def _fail(error: ProtocolError, timeout: float | None) -> NodeError:
    gateway = HostGateway(FailingHost(error))  # type: ignore[arg-type]
    with pytest.raises(NodeError) as info:
        asyncio.run(
            gateway.call(
                "symphony.ai_instrument",
                "ai.summarizer",
                {},
                timeout=timeout,
                on_token=lambda _t: None,
                on_progress=lambda _f, _m: None,
            )
        )
    return info.value


def test_a_deadline_names_the_timeout_and_the_method_once() -> None:
    # the extension host's own wording: the method, then what happened
    e = _fail(DeadlineExceededError("ai.summarizer: deadline exceeded"), 0.2)
    assert str(e) == (
        "symphony.ai_instrument: ai.summarizer: no answer within the node's timeout of 0.2 s "
        "(deadline exceeded)"
    )
    assert e.kind is ErrorKind.TRANSIENT


def test_other_errors_keep_their_message() -> None:
    e = _fail(ProtocolError("the handler refused: empty prompt", code=-32000), 5.0)
    assert str(e) == "symphony.ai_instrument: ai.summarizer: the handler refused: empty prompt"
    assert e.kind is ErrorKind.PERSISTENT
