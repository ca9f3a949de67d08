"""Replies an OpenAI-compatible server should not send: each is a provider error, never a result.

A scripted loopback server sends a JSON completion to a streaming request, a web page, a stream
cut before its end, and events of the wrong shape. None may come back as an empty or partial
answer with ``finish_reason: "stop"``; each is a :class:`ProviderError` with the code that says
whose fault it is (4000 invalid reply, 4001 dropped connection), also through the child.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from symphony.extensions.ai_instrument.providers.base import (
    PROVIDER_ERROR,
    UNREACHABLE,
    GenerationParams,
    ProviderError,
    UnreachableError,
)
from symphony.extensions.ai_instrument.providers.openai_compat import (
    OpenAICompatProvider,
    OpenAIConfig,
)
from symphony.protocol import ErrorResponse
from tests.extensions.ai_instrument.host import InstrumentHost
from tests.extensions.ai_instrument.peers import Scripted, ScriptedServer, sse

PARAMS = GenerationParams(max_tokens=8, temperature=0)
JSON = (("Content-Type", "application/json"),)


def _provider(peer: ScriptedServer, *, check_model: bool = False) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        OpenAIConfig(peer.base_url, "peer-model", check_model=check_model, max_retries=0)
    )


def _events(*events: object, done: bool = True) -> bytes:
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + (b"data: [DONE]\n\n" if done else b"")


def _chat(peer: ScriptedServer, **kw: bool) -> str:
    provider = _provider(peer, **kw)
    return provider.chat([{"role": "user", "content": "x"}], PARAMS, lambda _: None).text


def _delta(text: str) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


@pytest.mark.parametrize(
    ("reply", "expect"),
    [
        (
            Scripted(200, b'{"choices": [{"message": {"content": "hi"}}]}', JSON),
            "answered with 'application/json', not an event stream",
        ),
        (
            Scripted(200, b"<html>sign in</html>", (("Content-Type", "text/html"),)),
            "answered with 'text/html', not an event stream",
        ),
        (Scripted(200, b": keep-alive\n\n"), "event stream without any event"),
        (Scripted(200, b"data: [DONE]\n\n"), "ended its event stream before any event"),
        (Scripted(200, _events(["a list"])), "invalid event: it is a JSON array, not an object"),
        (Scripted(200, _events({"choices": ["x"]})), "each choice is a string, not an object"),
        (Scripted(200, _events({"choices": [{"delta": "x"}]})), "'delta' is a string"),
        (Scripted(200, _events({"choices": "x"})), "'choices' is a string, not a list"),
        (
            Scripted(200, _events(_delta("a"), {"choices": [], "usage": {"prompt_tokens": "abc"}})),
            "usage.prompt_tokens is 'abc', not a token count",
        ),
        (Scripted(200, _events({"choices": [{"delta": {"content": 5}}]})), "text is a number"),
    ],
)
def test_a_malformed_reply_is_a_provider_error_naming_the_endpoint(
    reply: Scripted, expect: str
) -> None:
    with ScriptedServer([reply]) as peer:
        with pytest.raises(ProviderError) as info:
            _chat(peer)
    assert type(info.value) is ProviderError
    assert info.value.code == PROVIDER_ERROR
    assert expect in info.value.message
    assert info.value.message.startswith(f"{peer.base_url}/chat/completions ")


def test_a_stream_cut_before_its_end_is_a_dropped_connection_not_a_short_answer() -> None:
    with ScriptedServer([Scripted(200, _events(_delta("Once"), _delta(" upon"), done=False))]) as p:
        with pytest.raises(UnreachableError, match=r"closed the stream before the end.*2 pieces"):
            _chat(p)


def test_a_stream_with_a_finish_reason_but_no_done_line_is_complete() -> None:
    # Some servers omit [DONE]; a finish_reason already says the answer is whole.
    body = sse("he", "llo").replace(b"data: [DONE]\n\n", b"")
    with ScriptedServer([Scripted(200, body)]) as peer:
        assert _chat(peer) == "hello"


@pytest.mark.parametrize(("models", "kind"), [(b"[]", "a JSON array"), (b"null", "null")])
def test_a_model_list_of_the_wrong_shape_is_a_provider_error(models: bytes, kind: str) -> None:
    with ScriptedServer([Scripted(200, models, JSON)]) as peer:
        with pytest.raises(ProviderError, match=f"/models answered with {kind}, not a model list"):
            _chat(peer, check_model=True)


@pytest.fixture(scope="module")
def child() -> Iterator[InstrumentHost]:
    host = InstrumentHost()
    yield host
    host.close()


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Scripted(200, _events(_delta("a"), {"usage": {"prompt_tokens": "abc"}})), PROVIDER_ERROR),
        (Scripted(200, _events({"choices": ["x"]})), PROVIDER_ERROR),
        (Scripted(200, b'{"choices": []}', JSON), PROVIDER_ERROR),
        (Scripted(200, _events(_delta("Once"), done=False)), UNREACHABLE),
    ],
)
def test_through_the_child_a_bad_reply_is_a_provider_error_code(
    child: InstrumentHost, reply: Scripted, code: int
) -> None:
    with ScriptedServer([reply]) as peer:
        provider = {
            "kind": "openai",
            "base_url": peer.base_url,
            "model": "peer-model",
            "check_model": False,
            "max_retries": 0,
            "api_key_secret": "",
        }
        run = child.run(
            "ai.summarizer", {"inputs": {"text": "Cats are pets."}, "provider": provider}
        )
    assert isinstance(run.reply, ErrorResponse)
    # not -32602 (the user's input) nor -32603 (our bug): the server's reply is at fault
    assert run.reply.code == code
    assert peer.base_url in run.reply.message
