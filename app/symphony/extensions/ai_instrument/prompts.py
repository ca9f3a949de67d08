"""The prompts of the contributed node types, versioned in one place.

Each node type has a builder that turns the node's ``inputs`` and ``config`` into chat messages
plus the sampling defaults that suit the task, and a parser that turns the model's text into the
node's output ports. Changing a prompt's wording changes what melodies produce, so every change
bumps :data:`PROMPTS_VERSION` (reported with each result, so runs can be compared).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from symphony.extensions.ai_instrument.providers.base import ChatMessage

PROMPTS_VERSION: Final = "1.0.0"

#: Longest input text put into a prompt (characters); the rest is cut with a marker.
MAX_INPUT_CHARS: Final = 24_000


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """The messages for one node run, with the task's sampling defaults and output parser."""

    messages: list[ChatMessage]
    temperature: float
    max_tokens: int
    stop: tuple[str, ...]
    parse: Callable[[str], dict[str, Any]]


class PromptInputError(ValueError):
    """A required input is missing or of the wrong kind."""


#: Characters :func:`_clip` left out while this thread built its current prompt (the caller
#: resets it, then adds it to what fitting the context drops, so the user hears the whole cut).
_clipped = threading.local()


def clipped_reset() -> None:
    """Start counting what :func:`_clip` leaves out of the prompt this thread builds next."""
    _clipped.chars = 0


def clipped_chars() -> int:
    """Return the characters :func:`_clip` left out since :func:`clipped_reset` (this thread)."""
    return int(getattr(_clipped, "chars", 0))


def _clip(text: str) -> str:
    if len(text) <= MAX_INPUT_CHARS:
        return text
    dropped = len(text) - MAX_INPUT_CHARS
    _clipped.chars = clipped_chars() + dropped
    return text[:MAX_INPUT_CHARS] + f"\n[… the last {dropped} of {len(text)} characters left out]"


def _text(inputs: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = inputs.get(name)
    if value is None or value == "":
        if required:
            # a link that delivered "" is not a missing link: say which, the fixes differ
            why = "is empty" if value == "" else "is required (nothing reached it)"
            raise PromptInputError(f"input {name!r} {why}")
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, indent=2)
    return _clip(value)


def _number(config: Mapping[str, Any], name: str, default: float) -> float:
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PromptInputError(f"config {name!r} must be a number")
    return float(value)


def _choice(config: Mapping[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = config.get(name, default) or default
    if value not in choices:
        raise PromptInputError(f"config {name!r} must be one of {', '.join(choices)}")
    return str(value)


def _msgs(system: str, user: str) -> list[ChatMessage]:
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# -- Prompt Enhancer ---------------------------------------------------------------------------

_ENHANCER_SYSTEM = """You are a prompt engineer. Rewrite the user's rough idea into one clear,\
 complete prompt for an AI assistant. State the goal, the context, the constraints, the expected\
 output format and how to judge success. Keep every requirement the user gave; invent no new ones.\
 Answer with the improved prompt only, no preamble."""


def prompt_enhancer(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Build the Prompt Enhancer prompt (input ``prompt`` overrides config ``prompt``)."""
    idea = _text(inputs, "prompt", required=False) or _text(config, "prompt", required=False)
    if not idea.strip():
        raise PromptInputError("input 'prompt' (or config 'prompt') is required")
    return PromptSpec(
        _msgs(_ENHANCER_SYSTEM, f"Rough idea:\n{idea}"),
        temperature=_number(config, "temperature", 0.3),
        max_tokens=512,
        stop=(),
        parse=lambda text: {"enhanced": text.strip()},
    )


# -- Feature Extractor -------------------------------------------------------------------------

_FEATURES_SYSTEM = """You are a software analyst. List the features the request asks for.\
 Answer with a JSON array only, each item an object with "name" (a few words), "description"\
 (one sentence) and "priority" ("high", "medium" or "low"), most important first."""

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.*\S)\s*$")


def _parse_features(limit: int) -> Callable[[str], dict[str, Any]]:
    def parse(text: str) -> dict[str, Any]:
        features: list[dict[str, Any]] = []
        start, end = text.find("["), text.rfind("]")
        if 0 <= start < end:
            try:
                raw = json.loads(text[start : end + 1])
            except ValueError:
                raw = None
            if isinstance(raw, list):
                for item in raw:
                    if isinstance(item, dict) and item.get("name"):
                        features.append(
                            {
                                "name": str(item["name"]),
                                "description": str(item.get("description", "")),
                                "priority": str(item.get("priority", "medium")),
                            }
                        )
                    elif isinstance(item, str):
                        features.append({"name": item, "description": "", "priority": "medium"})
        if not features:  # a small model may answer with a list instead of JSON
            for line in text.splitlines():
                m = _BULLET.match(line)
                if m:
                    name, _, desc = m[1].partition(":")
                    features.append(
                        {
                            "name": name.strip(" *"),
                            "description": desc.strip(),
                            "priority": "medium",
                        }
                    )
        features = features[:limit]
        summary = "\n".join(
            f"- **{f['name']}** ({f['priority']}): {f['description']}".rstrip(": ")
            for f in features
        )
        return {"features": features, "summary": summary or text.strip()}

    return parse


def feature_extractor(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Build the Feature Extractor prompt."""
    limit = int(_number(config, "max_features", 12))
    request = _text(inputs, "prompt")
    return PromptSpec(
        _msgs(_FEATURES_SYSTEM, f"List at most {limit} features.\n\nRequest:\n{request}"),
        temperature=0.2,
        max_tokens=768,
        stop=(),
        parse=_parse_features(limit),
    )


# -- Code Generator ----------------------------------------------------------------------------

_CODE_SYSTEM = """You are a senior {language} engineer. Write complete, idiomatic, working\
 {language} code that implements the listed features. Include type annotations or types where the\
 language has them, handle errors, and add brief comments only where the intent is not obvious.\
 Answer with a single code block and nothing else."""

_FENCE = re.compile(r"```[\w+-]*\n(.*?)(?:```|$)", re.S)


def _strip_fence(text: str) -> str:
    m = _FENCE.search(text)
    return (m[1] if m else text).strip("\n")


def code_generator(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Build the Code Generator prompt."""
    language = _choice(
        config, "language", ("python", "rust", "typescript", "go", "other"), "python"
    )
    lang = "the most suitable language" if language == "other" else language.capitalize()
    features = _text(inputs, "features")
    context = _text(inputs, "context", required=False)
    user = f"Features to implement:\n{features}"
    if context:
        user += f"\n\nExisting code and constraints:\n{context}"
    return PromptSpec(
        _msgs(_CODE_SYSTEM.format(language=lang), user),
        temperature=_number(config, "temperature", 0.2),
        max_tokens=1024,
        stop=(),
        parse=lambda text: {"code": _strip_fence(text)},
    )


# -- Doc Writer --------------------------------------------------------------------------------

_DOCS_SYSTEM = {
    "developers": """You are a technical writer for developers. Document the code in Markdown:\
 a one-paragraph overview, installation or setup if needed, the public API (each function or class\
 with its parameters, return value and errors) and a short usage example. Be exact; describe only\
 what the code does.""",
    "users": """You are a technical writer for end users. Document what the program does in plain\
 Markdown: an overview, how to use it step by step, and common problems. Avoid implementation\
 details and jargon; describe only what the code really does.""",
}


def doc_writer(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Build the Doc Writer prompt."""
    audience = _choice(config, "audience", ("users", "developers"), "developers")
    user = f"Code:\n```\n{_text(inputs, 'code')}\n```"
    features = _text(inputs, "features", required=False)
    if features:
        user += f"\n\nFeatures it implements:\n{features}"
    return PromptSpec(
        _msgs(_DOCS_SYSTEM[audience], user),
        temperature=0.3,
        max_tokens=1024,
        stop=(),
        parse=lambda text: {"docs": text.strip()},
    )


# -- Summarizer --------------------------------------------------------------------------------

_SUMMARY_SYSTEM = """You summarize texts faithfully. Keep the main points, decisions, numbers and\
 names; drop repetition and filler; add nothing that is not in the text. Write Markdown: a\
 one-sentence gist, then the key points as a short bullet list. Use at most {max_words} words."""


def summarizer(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Build the Summarizer prompt."""
    max_words = int(_number(config, "max_words", 300))
    return PromptSpec(
        _msgs(_SUMMARY_SYSTEM.format(max_words=max_words), f"Text:\n{_text(inputs, 'text')}"),
        temperature=0.2,
        max_tokens=min(4096, max(32, int(max_words * 1.6))),
        stop=(),
        parse=lambda text: {"summary": text.strip()},
    )


# -- Reviewer ----------------------------------------------------------------------------------

_FOCUS = {
    "correctness": "correctness: bugs, wrong logic, unhandled cases and errors",
    "security": "security: injection, unsafe input handling, secrets, permissions",
    "style": "style: naming, structure, readability and idiomatic use",
    "all": "correctness, security and style",
}

_REVIEW_SYSTEM = """You are a careful reviewer. Review the text for {focus}. List each finding as\
 a Markdown bullet with its severity (high, medium, low) and a concrete fix. Then, on the last\
 line, write `Score: X` where X is a number from 0 (unusable) to 1 (no issues)."""

_SCORE = re.compile(r"score\s*[:=]\s*([01](?:\.\d+)?|\.\d+)", re.I)


def _parse_review(text: str) -> dict[str, Any]:
    matches = _SCORE.findall(text)
    score: float | None = min(1.0, max(0.0, float(matches[-1]))) if matches else None
    findings = _SCORE.sub("", text).strip() if matches else text.strip()
    return {"findings": findings, "score": score}


def reviewer(inputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Build the Reviewer prompt; ``score`` is ``None`` when the model gave none."""
    focus = _choice(config, "focus", tuple(_FOCUS), "all")
    return PromptSpec(
        _msgs(_REVIEW_SYSTEM.format(focus=_FOCUS[focus]), f"Text:\n{_text(inputs, 'text')}"),
        temperature=0.2,
        max_tokens=768,
        stop=(),
        parse=_parse_review,
    )


#: Node type id → prompt builder (``ai.embed`` needs no prompt).
BUILDERS: Final[dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], PromptSpec]]] = {
    "ai.prompt_enhancer": prompt_enhancer,
    "ai.feature_extractor": feature_extractor,
    "ai.code_generator": code_generator,
    "ai.doc_writer": doc_writer,
    "ai.summarizer": summarizer,
    "ai.reviewer": reviewer,
}


# -- Reverse reconstruction ----------------------------------------------------------------------
# A type that declares ``reverse_reconstruction`` can rebuild plausible inputs from an output it
# produced earlier; the conductor uses this when the node upstream of it fails for good (seed 004,
# "If feature extraction fails but code exists, reverse-engineer features").

_REVERSE_REQUEST_SYSTEM = (
    "You are a product manager. Given the list of features a request led to, write the original"
    " request: one short paragraph in plain words, as the user would have asked. Answer with the"
    " request only."
)

_REVERSE_FEATURES_SYSTEM = (
    "You are a software analyst. Read the code and list the features it implements. Answer with a"
    ' JSON array only, each item an object with "name" (a few words), "description" (one'
    ' sentence) and "priority" ("high", "medium" or "low"), most important first.'
)

_REVERSE_CODE_SYSTEM = (
    "You are a senior engineer. The documentation below describes some code. Write the code it"
    " documents: complete and working, with the public API exactly as documented. Answer with a"
    " single code block and nothing else."
)


def _output(outputs: Mapping[str, Any], name: str) -> str:
    try:
        return _text(outputs, name)
    except PromptInputError:
        raise PromptInputError(f"output {name!r} is required to rebuild the inputs") from None


def reverse_feature_extractor(outputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Rebuild the Feature Extractor's ``prompt`` from its ``features``."""
    features = _output(outputs, "features")
    return PromptSpec(
        _msgs(_REVERSE_REQUEST_SYSTEM, f"Features:\n{features}"),
        temperature=0.2,
        max_tokens=256,
        stop=(),
        parse=lambda text: {"prompt": text.strip()},
    )


def reverse_code_generator(outputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Rebuild the Code Generator's ``features`` from its ``code``."""
    limit = 12
    parse_features = _parse_features(limit)
    return PromptSpec(
        _msgs(_REVERSE_FEATURES_SYSTEM, f"Code:\n```\n{_output(outputs, 'code')}\n```"),
        temperature=0.2,
        max_tokens=768,
        stop=(),
        parse=lambda text: {"features": parse_features(text)["features"]},
    )


def reverse_doc_writer(outputs: Mapping[str, Any], config: Mapping[str, Any]) -> PromptSpec:
    """Rebuild the Doc Writer's ``code`` from its ``docs``."""
    return PromptSpec(
        _msgs(_REVERSE_CODE_SYSTEM, f"Documentation:\n{_output(outputs, 'docs')}"),
        temperature=0.2,
        max_tokens=1024,
        stop=(),
        parse=lambda text: {"code": _strip_fence(text)},
    )


#: Types that rebuild their inputs from their outputs (``reverse_reconstruction = true``).
REVERSE_BUILDERS: Final[dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], PromptSpec]]] = {
    "ai.feature_extractor": reverse_feature_extractor,
    "ai.code_generator": reverse_code_generator,
    "ai.doc_writer": reverse_doc_writer,
}
