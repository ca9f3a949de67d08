"""Prompt builders and output parsers (no model)."""

from __future__ import annotations

import pytest

from symphony.extensions.ai_instrument import prompts
from symphony.extensions.ai_instrument.prompts import BUILDERS, PromptInputError
from symphony.extensions.ai_instrument.service import RunOptions


def test_every_builder_makes_a_system_and_a_user_message() -> None:
    inputs = {"prompt": "idea", "features": ["a"], "code": "x = 1", "text": "some text"}
    for node_type, build in BUILDERS.items():
        spec = build(inputs, {})
        assert [m["role"] for m in spec.messages] == ["system", "user"], node_type
        assert all(m["content"].strip() for m in spec.messages)
        assert spec.max_tokens > 0


def test_config_reaches_the_prompt() -> None:
    code = prompts.code_generator({"features": "x"}, {"language": "rust", "temperature": 0.9})
    assert "Rust" in code.messages[0]["content"]
    assert code.temperature == 0.9
    summary = prompts.summarizer({"text": "t"}, {"max_words": 42})
    assert "42 words" in summary.messages[0]["content"]
    enh = prompts.prompt_enhancer({}, {"prompt": "from config"})
    assert "from config" in enh.messages[1]["content"]
    assert (
        "from input"
        in prompts.prompt_enhancer({"prompt": "from input"}, {"prompt": "c"}).messages[1]["content"]
    )
    sec = prompts.reviewer({"text": "t"}, {"focus": "security"})
    assert "injection" in sec.messages[0]["content"]


def test_bad_inputs_are_reported() -> None:
    with pytest.raises(PromptInputError, match=r"input 'text' is required \(nothing reached"):
        prompts.summarizer({}, {})
    with pytest.raises(PromptInputError, match="input 'text' is empty"):  # not "missing"
        prompts.summarizer({"text": ""}, {})
    with pytest.raises(PromptInputError, match="language"):
        prompts.code_generator({"features": "x"}, {"language": "cobol"})
    with pytest.raises(PromptInputError, match="prompt"):
        prompts.prompt_enhancer({"prompt": ""}, {"prompt": "  "})


def test_long_inputs_are_clipped_and_the_cut_is_counted() -> None:
    n = prompts.MAX_INPUT_CHARS + 10
    prompts.clipped_reset()
    spec = prompts.summarizer({"text": "x" * n}, {})
    assert spec.messages[1]["content"].endswith(f"[… the last 10 of {n} characters left out]")
    assert prompts.clipped_chars() == 10


def test_a_node_result_counts_what_the_prompt_builder_left_out() -> None:
    from symphony.extensions.ai_instrument.providers.base import Completion, Usage
    from symphony.extensions.ai_instrument.service import Instrument

    class Answer:  # a server's model: nothing is fitted to a context, the builder still clips
        name = "fake"

        def chat(self, *_a: object, **_k: object) -> Completion:
            return Completion("A summary.", "stop", Usage(1, 1, 1.0, 1.0, "fake"))

    instrument = Instrument(lambda _m, _p: None)
    run = instrument.run_node
    extra = 5_000
    text = "y" * (prompts.MAX_INPUT_CHARS + extra)
    result = run("ai.summarizer", {"text": text}, {}, RunOptions(), Answer(), lambda _t: None)  # type: ignore[arg-type]
    assert result.truncated_chars == extra
    short = run("ai.summarizer", {"text": "short"}, {}, RunOptions(), Answer(), lambda _t: None)  # type: ignore[arg-type]
    assert short.truncated_chars is None  # the count starts again at every node


def test_feature_parser_reads_json_or_bullets() -> None:
    parse = prompts.feature_extractor({"prompt": "p"}, {"max_features": 2}).parse
    out = parse('Sure: [{"name": "Login", "description": "Sign in", "priority": "high"}, "Logout"]')
    assert out["features"] == [
        {"name": "Login", "description": "Sign in", "priority": "high"},
        {"name": "Logout", "description": "", "priority": "medium"},
    ]
    assert "**Login** (high): Sign in" in out["summary"]
    bullets = parse("- Tags: label todos\n- Due dates: remind\n- Sync")
    assert [f["name"] for f in bullets["features"]] == ["Tags", "Due dates"]


def test_review_score_and_code_fence() -> None:
    review = prompts.reviewer({"text": "t"}, {}).parse("- high: divide by zero\nScore: 0.4")
    assert review == {"findings": "- high: divide by zero", "score": 0.4}
    assert prompts.reviewer({"text": "t"}, {}).parse("no score")["score"] is None
    code = prompts.code_generator({"features": "f"}, {}).parse("Here:\n```python\nx = 1\n```\n")
    assert code == {"code": "x = 1"}


def test_run_options_override_defaults() -> None:
    opts = RunOptions.from_params({"max_tokens": 5, "stop": "\n", "temperature": 0})
    params = opts.apply(0.3, 512, ())
    assert (params.max_tokens, params.temperature, params.stop) == (5, 0.0, ("\n",))
    assert RunOptions().apply(0.3, 512, ("x",)).stop == ("x",)
    with pytest.raises(ValueError, match="max_tokens"):
        RunOptions.from_params({"max_tokens": "many"})


def test_reverse_builders_match_the_manifest_and_rebuild_inputs() -> None:
    import tomllib
    from pathlib import Path

    from symphony.extensions import ai_instrument
    from symphony.extensions.ai_instrument.prompts import REVERSE_BUILDERS

    manifest = tomllib.loads((Path(ai_instrument.__file__).parent / "extension.toml").read_text())
    declared = {t["id"] for t in manifest["node_types"] if t.get("reverse_reconstruction")}
    assert set(REVERSE_BUILDERS) == declared
    code = REVERSE_BUILDERS["ai.code_generator"]({"code": "def f(): pass"}, {})
    assert "def f(): pass" in code.messages[1]["content"]
    parsed = code.parse('[{"name": "f", "description": "does nothing", "priority": "low"}]')
    assert parsed == {"features": [{"name": "f", "description": "does nothing", "priority": "low"}]}
    request = REVERSE_BUILDERS["ai.feature_extractor"]({"features": [{"name": "x"}]}, {})
    assert request.parse("  Make x.  ") == {"prompt": "Make x."}
    docs = REVERSE_BUILDERS["ai.doc_writer"]({"docs": "# f\nReturns 1."}, {})
    assert docs.parse("```python\ndef f():\n    return 1\n```") == {
        "code": "def f():\n    return 1"
    }
    with pytest.raises(PromptInputError, match="output 'code' is required"):
        REVERSE_BUILDERS["ai.code_generator"]({}, {})
