"""The OpenAI-compatible provider against real loopback servers.

Through the child: the llama.cpp server (``python -m llama_cpp.server``) serving the same GGUF
with ``--api_key``; the key comes from the test host's ``secrets.get``. In process: a scripted
stdlib HTTP peer for retries, backoff and timeouts.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from symphony.extensions.ai_instrument.providers.base import (
    AuthError,
    GenerationParams,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UnreachableError,
)
from symphony.extensions.ai_instrument.providers.openai_compat import (
    OpenAICompatProvider,
    OpenAIConfig,
)
from symphony.protocol import Cancel, ErrorCode, ErrorResponse, Response
from tests.extensions.ai_instrument.host import InstrumentHost
from tests.extensions.ai_instrument.peers import (
    LlamaServer,
    Scripted,
    ScriptedServer,
    free_port,
    llama_server,
    sse,
)

KEY = "sk-test-" + secrets.token_hex(16)
WRONG_KEY = "sk-wrong-" + secrets.token_hex(16)
PARAMS = GenerationParams(max_tokens=8, temperature=0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with llama_server(KEY, log) as s:
        yield s


@pytest.fixture(scope="module")
def ai_key() -> Iterator[InstrumentHost]:
    host = InstrumentHost({"openai_api_key": KEY, "wrong_key": WRONG_KEY})
    yield host
    host.close()
    leaked = [log.message for log in host.logs if KEY in log.message or KEY in str(log.fields)]
    assert not leaked
    assert KEY.encode() not in host.stdout + host.stderr


def _provider(server: LlamaServer, **kw: object) -> dict[str, object]:
    return {"kind": "openai", "base_url": server.base_url, "model": server.model, **kw}


def test_chat_streams_through_the_child(server: LlamaServer, ai_key: InstrumentHost) -> None:
    run = ai_key.run(
        "ai.chat",
        {
            "messages": [{"role": "user", "content": "Say hello."}],
            "provider": _provider(server),
            "max_tokens": 12,
            "temperature": 0,
        },
        credit=4,
    )
    assert isinstance(run.reply, Response), run.reply
    assert run.result["text"].strip()
    assert len(run.items) > 1  # streamed piece by piece, not in one block
    assert run.streamed_text == run.result["text"]
    assert run.result["usage"]["model"] == "smollm2"
    assert [r.params for r in run.host_requests] == [{"name": "openai_api_key"}]


def test_node_type_over_http(server: LlamaServer, ai_key: InstrumentHost) -> None:
    run = ai_key.run(
        "ai.summarizer",
        {
            "inputs": {"text": "Rain today, sun tomorrow."},
            "provider": _provider(server),
            "max_tokens": 16,
        },
        credit=32,
    )
    assert run.result["outputs"]["summary"]


def test_unknown_model_is_a_clear_error(server: LlamaServer, ai_key: InstrumentHost) -> None:
    run = ai_key.run(
        "ai.chat",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "provider": {**_provider(server), "model": "no-such-model"},
            "max_tokens": 4,
        },
    )
    assert isinstance(run.reply, ErrorResponse)
    assert run.reply.code == 4003
    assert "no-such-model" in run.reply.message
    assert "smollm2" in run.reply.message  # says what is served


def test_wrong_key_is_an_auth_error_without_the_key(
    server: LlamaServer, ai_key: InstrumentHost
) -> None:
    run = ai_key.run(
        "ai.chat",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "provider": {**_provider(server), "api_key_secret": "wrong_key"},
            "max_tokens": 4,
        },
    )
    assert isinstance(run.reply, ErrorResponse)
    assert run.reply.code == 4002
    assert "rejected" in run.reply.message
    assert WRONG_KEY not in run.reply.message
    assert WRONG_KEY not in str(run.reply.data)


def test_missing_key_is_an_auth_error(server: LlamaServer, ai_key: InstrumentHost) -> None:
    run = ai_key.run(
        "ai.chat",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "provider": {**_provider(server), "api_key_secret": "not_stored"},
            "max_tokens": 4,
        },
    )
    assert isinstance(run.reply, ErrorResponse)
    assert run.reply.code == 4002
    assert "no API key" in run.reply.message


def test_unreachable_server(ai_key: InstrumentHost) -> None:
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    run = ai_key.run(
        "ai.chat",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "provider": {"kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": "m"},
        },
    )
    assert isinstance(run.reply, ErrorResponse)
    assert run.reply.code == 4001
    assert f"127.0.0.1:{port}" in run.reply.message
    assert time.monotonic() - t0 < 10


def test_key_never_in_child_env_argv_or_logs(server: LlamaServer, ai_key: InstrumentHost) -> None:
    ai_key.run(
        "ai.chat",
        {
            "messages": [{"role": "user", "content": "hi"}],
            "provider": _provider(server),
            "max_tokens": 2,
        },
    )
    pid = ai_key.proc.pid
    for name in ("environ", "cmdline"):
        assert KEY.encode() not in Path(f"/proc/{pid}/{name}").read_bytes()
    for log in ai_key.logs:
        assert KEY not in log.message
        assert KEY not in str(log.fields)


# -- in process, against a scripted loopback peer ----------------------------------------------


def _peer_provider(
    peer: ScriptedServer, key: str | None = KEY, **kw: object
) -> OpenAICompatProvider:
    cfg = OpenAIConfig(peer.base_url, "peer-model", check_model=False, **kw)  # type: ignore[arg-type]
    return OpenAICompatProvider(cfg, key)


def test_retries_503_then_succeeds_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    script = [Scripted(503, b'{"error": {"message": "loading"}}'), Scripted(200, sse("he", "llo"))]
    with ScriptedServer(script) as peer:
        provider = _peer_provider(peer, backoff_base=0.2, backoff_max=1.0)
        pieces: list[str] = []
        result = provider.chat([{"role": "user", "content": "x"}], PARAMS, pieces.append)
    assert result.text == "hello"
    assert pieces == ["he", "llo"]
    assert len(peer.times) == 2
    assert peer.times[1] - peer.times[0] >= 0.15  # backed off (0.2 s ± 20 % jitter)
    assert peer.received[0]["Authorization"] == f"Bearer {KEY}"
    assert "retrying" in caplog.text
    assert KEY not in caplog.text


def test_429_honours_retry_after_and_gives_up_after_max_retries() -> None:
    script = [Scripted(429, b"slow down", (("Retry-After", "0.3"),)), Scripted(200, sse("ok"))]
    with ScriptedServer(script) as peer:
        assert _peer_provider(peer).chat([], PARAMS, lambda _: None).text == "ok"
    assert peer.times[1] - peer.times[0] >= 0.25
    with ScriptedServer([Scripted(429, b"{}")] * 3) as peer:
        provider = _peer_provider(peer, max_retries=2, backoff_base=0.01)
        with pytest.raises(RateLimitedError, match="HTTP 429"):
            provider.chat([], PARAMS, lambda _: None)
    assert len(peer.times) == 3


def test_4xx_is_not_retried_and_server_messages_are_scrubbed() -> None:
    body = ('{"error": {"message": "bad key ' + KEY + '"}}').encode()
    with ScriptedServer([Scripted(401, body)]) as peer:
        with pytest.raises(AuthError) as info:
            _peer_provider(peer).chat([], PARAMS, lambda _: None)
    assert KEY not in str(info.value)
    assert "***" in str(info.value)
    assert len(peer.times) == 1


def test_read_timeout() -> None:
    with ScriptedServer([Scripted(200, sse("late"), delay=3.0)]) as peer:
        provider = _peer_provider(peer, timeout=0.3, max_retries=0)
        t0 = time.monotonic()
        with pytest.raises(ProviderTimeoutError, match="did not answer within 0.3 s"):
            provider.chat([], PARAMS, lambda _: None)
        assert time.monotonic() - t0 < 2.5


def test_unreachable_in_process_and_repr_hides_the_key() -> None:
    cfg = OpenAIConfig(f"http://127.0.0.1:{free_port()}/v1", "m", connect_timeout=2)
    provider = OpenAICompatProvider(cfg, KEY)
    assert KEY not in repr(provider)
    with pytest.raises(UnreachableError, match="cannot reach"):
        provider.chat([], PARAMS, lambda _: None)


def test_cancel_from_the_token_sink_drops_the_stream() -> None:
    class Stop(Exception):
        pass

    def sink(_: str) -> None:
        raise Stop

    with ScriptedServer([Scripted(200, sse("a", "b", "c"))]) as peer:
        with pytest.raises(Stop):
            _peer_provider(peer).chat([], PARAMS, sink)


def test_bad_base_url_is_rejected() -> None:
    with pytest.raises(ValueError, match="not an http"):
        OpenAIConfig("ftp://x", "m")
    assert issubclass(ProviderTimeoutError, ProviderError)


def test_silent_server_keeps_the_child_responsive_and_cancellable(ai_key: InstrumentHost) -> None:
    with ScriptedServer([Scripted(200, sse("late"), delay=5.0)]) as peer:
        rid = ai_key.request(
            "ai.chat",
            {
                "messages": [{"role": "user", "content": "hi"}],
                "provider": {
                    "kind": "openai",
                    "base_url": peer.base_url,
                    "model": "peer-model",
                    "check_model": False,
                },
            },
            credit=8,
        )
        time.sleep(0.3)
        assert ai_key.ping(2.0)  # the handler thread is not stuck in the socket read
        t0 = time.monotonic()
        ai_key.channel.send(Cancel(rid))
        run = ai_key.collect(rid, timeout=10)
        assert isinstance(run.reply, ErrorResponse)
        assert run.reply.code == ErrorCode.REQUEST_CANCELLED
        assert time.monotonic() - t0 < 3.0  # the server would answer after 5 s
