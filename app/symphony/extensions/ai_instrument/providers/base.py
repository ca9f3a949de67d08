"""The provider interface every model backend implements, and the errors it raises.

A provider turns a list of chat messages (or a raw prompt) into streamed text. It is synchronous:
the extension runs handlers on one thread, and ``on_token`` is where a handler emits stream items
(and so where back-pressure and cancellation reach the provider: ``on_token`` may raise, and the
provider must stop generating at once and let the exception through).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, TypedDict

from symphony.extensions.ai_instrument.providers.pump import NO_WATCH, Watch

#: Called with each piece of generated text; may raise to stop generation (cancel, deadline).
TokenSink = Callable[[str], None]

Role = Literal["system", "user", "assistant"]


class ChatMessage(TypedDict):
    """One chat message in the OpenAI shape."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Sampling settings shared by every provider.

    Parameters
    ----------
    max_tokens
        Most tokens to generate.
    temperature
        Sampling temperature; 0 is greedy.
    top_p
        Nucleus sampling mass.
    stop
        Strings that end generation (not included in the text).
    seed
        Sampling seed, for reproducible runs (``None``: provider default).
    """

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_tokens <= 32768:
            raise ValueError(f"max_tokens {self.max_tokens} is outside 1..32768")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature {self.temperature} is outside 0..2")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p {self.top_p} is outside (0, 1]")


@dataclass(frozen=True, slots=True)
class Usage:
    """What one generation cost.

    Attributes
    ----------
    prompt_tokens, completion_tokens
        Token counts (as the provider reports them, or counted locally).
    latency_ms
        Wall time from the call to the last token.
    first_token_ms
        Wall time to the first token (``None`` when nothing was generated).
    model
        The model id that answered.
    cost_usd
        0 for local models; the HTTP provider does not know prices and reports 0 too.
    """

    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    first_token_ms: float | None
    model: str
    cost_usd: float = 0.0

    def as_json(self) -> dict[str, object]:
        """Return the usage as the JSON object sent to the host."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "latency_ms": round(self.latency_ms, 3),
            "first_token_ms": None
            if self.first_token_ms is None
            else round(self.first_token_ms, 3),
            "model": self.model,
            "cost_usd": self.cost_usd,
        }


@dataclass(frozen=True, slots=True)
class Completion:
    """A finished generation: the whole text, why it stopped, and its usage."""

    text: str
    finish_reason: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class Embeddings:
    """Embedding vectors (L2-normalised) with the model that made them."""

    vectors: list[list[float]]
    model: str
    dimension: int
    prompt_tokens: int = 0
    latency_ms: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


class Provider(Protocol):
    """A text-generation backend."""

    @property
    def name(self) -> str:
        """A short name for logs and usage (``embedded``, ``openai``)."""
        ...

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
    ) -> Completion:
        """Generate the assistant's reply to ``messages``, streaming pieces to ``on_token``.

        The blocking work runs off the calling thread (:func:`~.pump.pumped`); ``watch`` is
        checked while waiting, so a cancel is noticed within ``watch.interval``.
        """
        ...

    def complete(
        self,
        prompt: str,
        params: GenerationParams,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
    ) -> Completion:
        """Continue ``prompt`` (no chat template), streaming pieces to ``on_token``."""
        ...


# Error codes outside the reserved JSON-RPC/Symphony ranges (docs/ai-instrument.md lists them).
PROVIDER_ERROR: Final = 4000
UNREACHABLE: Final = 4001
AUTH_FAILED: Final = 4002
UNKNOWN_MODEL: Final = 4003
RATE_LIMITED: Final = 4004
PROVIDER_TIMEOUT: Final = 4005
MODEL_UNAVAILABLE: Final = 4006
BAD_REQUEST: Final = 4007


class ProviderError(Exception):
    """A provider failed; ``code`` is the protocol error code sent to the host.

    Messages never contain secrets: they are built from the base URL, the model and the
    server's status, never from request headers.
    """

    code: int = PROVIDER_ERROR

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable

    def data(self) -> dict[str, object]:
        """Return the JSON ``data`` of the error reply."""
        return {"type": type(self).__name__, "status": self.status}


class UnreachableError(ProviderError):
    """The server could not be reached (refused, DNS, TLS, connection reset)."""

    code = UNREACHABLE


class AuthError(ProviderError):
    """The server rejected the API key (HTTP 401/403), or none was available."""

    code = AUTH_FAILED


class UnknownModelError(ProviderError):
    """The server does not serve the requested model."""

    code = UNKNOWN_MODEL


class RateLimitedError(ProviderError):
    """HTTP 429 after every retry."""

    code = RATE_LIMITED


class ProviderTimeoutError(ProviderError):
    """The server did not answer (or stopped streaming) within the timeout."""

    code = PROVIDER_TIMEOUT


class ModelUnavailableError(ProviderError):
    """The embedded model (or its runtime) is not installed."""

    code = MODEL_UNAVAILABLE


class BadRequestError(ProviderError):
    """The server refused the request as malformed (HTTP 400/422)."""

    code = BAD_REQUEST
