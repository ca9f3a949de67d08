"""The AI Instrument extension's entry module: protocol methods over :class:`.service.Instrument`.

Run by ``python -m symphony.sdk.runner <this folder> --fd N``. Every generating method streams
``{"text": piece}`` items when the host sent credit (and just returns the result when it did not),
observes cancel and deadline between tokens, and answers with the final text and its usage.
Provider failures are sent as the error codes of :mod:`.providers.base`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from symphony.extensions.ai_instrument.prompts import (
    BUILDERS,
    REVERSE_BUILDERS,
    PromptInputError,
)
from symphony.extensions.ai_instrument.providers.base import AuthError, ProviderError, TokenSink
from symphony.extensions.ai_instrument.providers.pump import Watch
from symphony.extensions.ai_instrument.service import Instrument, RunOptions
from symphony.sdk import (
    DeadlineExceededError,
    Extension,
    InvalidParamsError,
    ProtocolError,
    RequestCancelledError,
    RequestContext,
    RequestError,
)

extension = Extension()
#: Seconds to wait for the host to hand over a secret.
SECRET_TIMEOUT = 10.0


def _notify(method: str, params: dict[str, Any]) -> None:
    extension.notify(method, params)


instrument = Instrument(_notify)

Handler = Callable[[RequestContext], Any]


def _mapped(fn: Handler) -> Handler:
    """Turn provider and parameter errors into protocol errors with clear messages."""

    @functools.wraps(fn)
    def wrapper(ctx: RequestContext) -> Any:
        try:
            return fn(ctx)
        except ProviderError as e:
            ctx.log("warning", e.message, code=e.code, status=e.status)
            raise RequestError(e.message, e.code, e.data()) from None
        except (PromptInputError, ValueError, TypeError) as e:
            if isinstance(e, ProtocolError):
                raise
            # No method prefix: the caller knows what it called, and the conductor prefixes
            # "<extension>: <method>:" itself (a prefix here showed the method twice).
            raise InvalidParamsError(str(e)) from None

    return wrapper


def _params(ctx: RequestContext) -> Mapping[str, Any]:
    if ctx.params is None:
        return {}
    if not isinstance(ctx.params, dict):
        raise ValueError("params must be an object")
    return ctx.params


def _sink(ctx: RequestContext) -> TokenSink:
    streaming = ctx.streaming

    def on_token(text: str) -> None:
        ctx.check_cancelled()
        if streaming:
            ctx.emit({"text": text})

    return on_token


def _secret_getter(ctx: RequestContext) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        remaining = ctx.remaining()
        timeout = SECRET_TIMEOUT if remaining is None else max(0.1, min(SECRET_TIMEOUT, remaining))
        try:
            reply = ctx.call("secrets.get", {"name": name}, timeout=timeout)
        except (RequestCancelledError, DeadlineExceededError):
            raise
        except TimeoutError:
            raise AuthError(f"the host did not hand over secret {name!r} in time") from None
        except ProtocolError as e:  # no such secret, not permitted, or no broker yet
            ctx.log("warning", "the host has no secret for this request", secret=name, code=e.code)
            return None
        value = reply.result.get("value") if isinstance(reply.result, dict) else reply.result
        return value if isinstance(value, str) and value else None

    return get


def _watch(ctx: RequestContext) -> Watch:
    """Check cancel/deadline (and answer pings) while a provider's worker is busy."""
    return Watch(check=ctx.check_cancelled, idle=lambda: ctx.cancelled)


def _node_handler(node_type: str, *, reverse: bool = False) -> Handler:
    def handle(ctx: RequestContext) -> dict[str, Any]:
        p = _params(ctx)
        provider = instrument.provider(p.get("provider"), _secret_getter(ctx))
        result = instrument.run_node(
            node_type,
            p.get("outputs" if reverse else "inputs") or {},
            p.get("config") or {},
            RunOptions.from_params(p),
            provider,
            # a reverse request is not a stream: tokens only give the chance to answer pings
            (lambda _text: ctx.check_cancelled()) if reverse else _sink(ctx),
            _watch(ctx),
            reverse=reverse,
        )
        del provider  # with an HTTP provider, this drops the request's API key
        if result.truncated_chars is not None:
            ctx.log(
                "warning",
                f"{node_type}: the input was too long for the model; "
                f"{result.truncated_chars} of its characters were left out",
                node_type=node_type,
            )
        usage = result.completion.usage
        ctx.log(
            "info",
            "node reversed" if reverse else "node finished",
            node_type=node_type,
            model=usage.model,
            completion_tokens=usage.completion_tokens,
            latency_ms=round(usage.latency_ms, 1),
        )
        reply = result.as_json()
        if reverse:
            reply["inputs"] = reply.pop("outputs")
        return reply

    handle.__name__ = node_type.replace(".", "_") + ("_reverse" if reverse else "")
    return _mapped(handle)


for _node_type in BUILDERS:
    extension.request(_node_type, stream=True)(_node_handler(_node_type))

# ``<type>.reverse``: ``{"outputs", "config", "provider"?}`` → ``{"inputs", "usage", …}``.
for _node_type in REVERSE_BUILDERS:
    extension.request(f"{_node_type}.reverse")(_node_handler(_node_type, reverse=True))


@extension.request("ai.embed", idempotent=True)
@_mapped
def embed_node(ctx: RequestContext) -> dict[str, Any]:
    """Node ``ai.embed``: ``{"inputs": {"text"}}`` → ``{"outputs": {"embedding"}, "usage"}``."""
    text = (_params(ctx).get("inputs") or {}).get("text")
    if not isinstance(text, str) or not text:
        raise ValueError("input 'text' is required")
    e = instrument.embed([text], watch=_watch(ctx))
    return {
        "outputs": {"embedding": e.vectors[0]},
        "usage": {
            "prompt_tokens": e.prompt_tokens,
            "completion_tokens": 0,
            "latency_ms": round(e.latency_ms, 3),
            "model": e.model,
            "cost_usd": 0.0,
        },
        "dimension": e.dimension,
        # the text was longer than the model reads: only its start is in the vector
        "truncated": bool(e.extra.get("truncated")),
    }


@extension.request("ai.embeddings", idempotent=True)
@_mapped
def embeddings(ctx: RequestContext) -> dict[str, Any]:
    """Batch: ``{"texts": [...], "query": false}`` → ``{"vectors", "dimension", "model"}``."""
    p = _params(ctx)
    texts = p.get("texts")
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a list of strings")
    e = instrument.embed(texts, query=bool(p.get("query", False)), watch=_watch(ctx))
    return {
        "vectors": e.vectors,
        "dimension": e.dimension,
        "model": e.model,
        "truncated": e.extra.get("truncated", []),
    }


@extension.request("ai.chat", stream=True)
@_mapped
def chat(ctx: RequestContext) -> dict[str, Any]:
    """Free chat: ``{"messages": [{role, content}], "provider"?, sampling…}``."""
    p = _params(ctx)
    messages = p.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list")
    for m in messages:
        if not (
            isinstance(m, dict)
            and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str)
        ):
            raise ValueError("each message needs a role (system/user/assistant) and content")
    provider = instrument.provider(p.get("provider"), _secret_getter(ctx))
    c = instrument.chat(messages, RunOptions.from_params(p), provider, _sink(ctx), _watch(ctx))
    return {"text": c.text, "finish_reason": c.finish_reason, "usage": c.usage.as_json()}


@extension.request("ai.complete", stream=True)
@_mapped
def complete(ctx: RequestContext) -> dict[str, Any]:
    """Raw completion: ``{"prompt": str, "provider"?, sampling…}``."""
    p = _params(ctx)
    prompt = p.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt must be a non-empty string")
    provider = instrument.provider(p.get("provider"), _secret_getter(ctx))
    c = instrument.complete(prompt, RunOptions.from_params(p), provider, _sink(ctx), _watch(ctx))
    return {"text": c.text, "finish_reason": c.finish_reason, "usage": c.usage.as_json()}


@extension.request("models.status", idempotent=True)
def models_status(ctx: RequestContext) -> dict[str, Any]:
    """Every local model with whether it is loaded, and the idle-unload setting."""
    return {"models": instrument.status(), "idle_unload_s": instrument.idle_unload_s}


@extension.request("models.load", idempotent=True)
@_mapped
def models_load(ctx: RequestContext) -> dict[str, Any]:
    """Load a local model now (``{"model": id}``), e.g. to warm it before a run."""
    model_id = _params(ctx).get("model") or instrument.embedded.model_id
    if model_id not in instrument.models:
        raise ValueError(f"unknown model {model_id!r} (known: {', '.join(instrument.models)})")
    instrument.ensure_loaded(instrument.models[model_id])
    return {"models": instrument.status()}


@extension.request("models.unload", idempotent=True)
@_mapped
def models_unload(ctx: RequestContext) -> dict[str, Any]:
    """Unload one local model (``{"model": id}``) or all of them (no params)."""
    model_id = _params(ctx).get("model")
    if model_id is not None and model_id not in instrument.models:
        raise ValueError(f"unknown model {model_id!r}")
    return {"unloaded": instrument.unload(model_id)}


@extension.request("config.set", idempotent=True)
@_mapped
def config_set(ctx: RequestContext) -> dict[str, Any]:
    """Change settings: ``{"idle_unload_s": seconds}`` (0 keeps models loaded)."""
    p = _params(ctx)
    if "idle_unload_s" in p:
        value = p["idle_unload_s"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("idle_unload_s must be a number")
        instrument.idle_unload_s = float(value)
    return {"idle_unload_s": instrument.idle_unload_s}


@extension.on_shutdown
def _close() -> None:
    instrument.close()
