"""Model backends behind one interface (:class:`~.base.Provider`)."""

from symphony.extensions.ai_instrument.providers.base import (
    AuthError,
    BadRequestError,
    ChatMessage,
    Completion,
    Embeddings,
    GenerationParams,
    ModelUnavailableError,
    Provider,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    UnknownModelError,
    UnreachableError,
    Usage,
)

__all__ = [
    "AuthError",
    "BadRequestError",
    "ChatMessage",
    "Completion",
    "Embeddings",
    "GenerationParams",
    "ModelUnavailableError",
    "Provider",
    "ProviderError",
    "ProviderTimeoutError",
    "RateLimitedError",
    "UnknownModelError",
    "UnreachableError",
    "Usage",
]
