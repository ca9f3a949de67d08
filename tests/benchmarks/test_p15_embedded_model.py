"""P15: the embedded model's decode speed and first-token latency.

``symphony``: SmolLM2-135M-Instruct in the AI Instrument child, driven over the protocol by a
plain-socket host (``ai.chat`` with stream credit; tokens timed as ``stream_data`` frames
arrive). ``baseline:llama-cpp-direct``: the same GGUF called in-process through llama-cpp-python.

Targets (recorded in ``extra_info``, judged in docs/ai-instrument.md, never asserted):
decode >= 50 tokens/s, first token <= 300 ms. The load average is recorded with the numbers:
the machine is shared, and numbers measured under load are pessimistic.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Generator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from symphony.extensions.ai_instrument.providers.base import ChatMessage, GenerationParams
from symphony.extensions.ai_instrument.providers.embedded import LlamaRuntime, model_path
from symphony.protocol import Response, StreamData
from tests.extensions.ai_instrument.host import InstrumentHost

#: A different request each round: llama.cpp reuses the KV cache of a repeated prompt prefix,
#: which would hide the prompt evaluation from the first-token latency.
TOPICS = iter(f"a {w} who learns to paint" for w in ["robot", "cat", "river", "tailor"] * 4)


def messages() -> list[ChatMessage]:
    """The next request (a short story about the next topic)."""
    return [{"role": "user", "content": f"Write a short story about {next(TOPICS)}."}]


MAX_TOKENS = 32
ROUNDS = 3
TARGET = "decode >= 50 tokens/s, first token <= 300 ms"

#: One generation: returns (first-token seconds, [arrival time of each token]).
Generate = Callable[[], tuple[float, list[float]]]


def _symphony() -> Generator[Generate, None, None]:
    host = InstrumentHost()

    def generate() -> tuple[float, list[float]]:
        t0 = time.perf_counter()
        rid = host.request(
            "ai.chat",
            {"messages": messages(), "max_tokens": MAX_TOKENS, "temperature": 0},
            credit=MAX_TOKENS + 8,
        )
        stamps: list[float] = []
        while True:
            msg = host.recv(120)
            if isinstance(msg, StreamData) and msg.id == rid:
                stamps.append(time.perf_counter())
            elif isinstance(msg, Response) and msg.id == rid:
                assert stamps, "no tokens"
                return stamps[0] - t0, stamps
            else:
                assert not hasattr(msg, "code"), msg

    try:
        generate()  # loads the model (lazily, on first use)
        yield generate
    finally:
        host.close()


def _direct() -> Generator[Generate, None, None]:
    rt = LlamaRuntime(model_path())
    params = GenerationParams(max_tokens=MAX_TOKENS, temperature=0)

    def generate() -> tuple[float, list[float]]:
        t0 = time.perf_counter()
        stamps = [time.perf_counter() for piece in rt.chat_stream(messages(), params) if piece.text]
        return stamps[0] - t0, stamps

    try:
        generate()
        yield generate
    finally:
        rt.close()


CASES = {"symphony": _symphony, "baseline:llama-cpp-direct": _direct}


@pytest.mark.benchmark(group="P15")
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_p15_embedded_model(benchmark: BenchmarkFixture, case: str) -> None:
    gen = CASES[case]()
    generate = next(gen)
    firsts: list[float] = []
    rates: list[float] = []

    def once() -> None:
        first, stamps = generate()
        firsts.append(first * 1000)
        if len(stamps) > 1:
            rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))

    try:
        benchmark.pedantic(once, rounds=ROUNDS, iterations=1)
    finally:
        gen.close()
    stats = {
        "first_token_ms": round(statistics.median(firsts), 1),
        "decode_tokens_per_s": round(statistics.median(rates), 1) if rates else 0.0,
        "max_tokens": MAX_TOKENS,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    benchmark.extra_info["target"] = TARGET
    benchmark.extra_info.update(stats)
    print(f"\nP15 {case}: {stats}")
