"""A node's long input is fitted to the embedded model's context instead of failing the node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from symphony.extensions.ai_instrument.providers.embedded import EmbeddedProvider
from symphony.extensions.ai_instrument.service import Instrument, RunOptions
from symphony.protocol import ErrorResponse
from tests.extensions.ai_instrument.host import InstrumentHost

#: About 10 KB of markdown per paragraph group: the "Summarize a folder" case.
DOC = "\n\n".join(
    f"## Section {i}\n\nThe quarterly review found {i} open issues in module {i % 7}; the team "
    f"agreed to fix the parser, update the docs and ship release 1.{i} by Friday."
    for i in range(120)
)


@pytest.fixture(scope="module")
def provider() -> Iterator[EmbeddedProvider]:
    p = EmbeddedProvider()
    yield p
    p.unload()


def test_fit_cuts_the_user_message_with_a_marker(provider: EmbeddedProvider) -> None:
    messages = [
        {"role": "system", "content": "Summarize."},
        {"role": "user", "content": "Text:\n" + DOC * 2},
    ]
    fitted, cut = provider.fit(messages, 480)  # type: ignore[arg-type]
    assert cut is not None
    assert cut > 0
    assert fitted[0] == messages[0]
    content = fitted[1]["content"]
    assert content.startswith("Text:\n## Section 0")
    assert "the rest of the input was cut to fit the model's 4096-token context" in content
    assert provider._require().count_tokens(content) <= 4096 - 480
    short = [{"role": "user", "content": "Cats are nice."}]
    assert provider.fit(short, 480) == (short, None)  # type: ignore[arg-type]


@pytest.mark.slow  # evaluates a 4,000-token prompt on the CPU (about a minute)
def test_a_summarizer_node_on_a_long_document_succeeds(provider: EmbeddedProvider) -> None:
    instrument = Instrument(lambda _m, _p: None, embedded=provider)
    result = instrument.run_node(
        "ai.summarizer",
        {"text": DOC * 2},
        {"max_words": 300},
        RunOptions(max_tokens=8, temperature=0.0),
        provider,
        lambda _t: None,
    )
    assert result.truncated_chars is not None
    assert result.truncated_chars > 0
    assert result.as_json()["truncated_chars"] == result.truncated_chars
    assert result.completion.usage.prompt_tokens <= 4096


def test_a_bad_param_is_reported_without_a_repeated_method_prefix() -> None:
    host = InstrumentHost()
    try:
        run = host.run("ai.complete", {"prompt": "x", "temperature": 5})
    finally:
        host.close()
    assert isinstance(run.reply, ErrorResponse)
    # the conductor prefixes "<extension>: <method>:" itself
    assert run.reply.message == "temperature 5.0 is outside 0..2"
