"""An OpenAI-compatible HTTP provider (OpenAI, Ollama, vLLM, LM Studio, llama.cpp server).

Built on the standard library's :mod:`http.client`: importing it costs nothing measurable in a
child that is already running Python, where ``httpx`` (with ``httpcore``, ``anyio``, ``h11``,
``certifi``, ``idna``…) adds ~100 ms and several MiB to every extension start for features this
provider does not need (one request at a time, HTTP/1.1, line-oriented server-sent events).

The API key is handed in per request and only kept for that request: it goes into one
``Authorization`` header and nowhere else — not into a file, argv, the environment, a log record,
``repr`` or an exception message (server messages are scrubbed of it too, should one echo it).
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from symphony.extensions.ai_instrument.providers.base import (
    AuthError,
    BadRequestError,
    ChatMessage,
    Completion,
    GenerationParams,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    TokenSink,
    UnknownModelError,
    UnreachableError,
    Usage,
)
from symphony.extensions.ai_instrument.providers.pump import NO_WATCH, Watch, pumped

log = logging.getLogger(__name__)

#: Largest error body read from a server (for its message).
MAX_ERROR_BODY: Final = 16 * 1024
#: Longest SSE line accepted.
MAX_LINE: Final = 1 << 20

_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
#: Models known to be served, per base URL (filled by successful checks only; no secrets).
_known_models: set[tuple[str, str]] = set()


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    """Where and how to reach an OpenAI-compatible server.

    Parameters
    ----------
    base_url
        The API root, usually ending in ``/v1`` (``http://127.0.0.1:11434/v1`` for Ollama).
    model
        The model id the server knows.
    timeout
        Seconds to wait for each read (the first token, and each one after).
    connect_timeout
        Seconds to wait for the TCP/TLS connection.
    max_retries
        Retries after HTTP 429/5xx or a dropped connection, before any token arrived.
    backoff_base, backoff_max
        Exponential backoff: ``base * 2**attempt`` (with jitter), at most ``max`` seconds; a
        server's ``Retry-After`` is honoured up to ``max``.
    check_model
        Whether to ask ``GET /models`` before the first use of a model, so that servers which
        silently fall back to another model (llama.cpp's) still report an unknown one.
    """

    base_url: str
    model: str
    timeout: float = 120.0
    connect_timeout: float = 10.0
    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    check_model: bool = True

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url {self.base_url!r} is not an http(s) URL")
        if not isinstance(self.model, str) or not self.model:
            raise ValueError("model must be a non-empty string")
        for name in ("timeout", "connect_timeout", "backoff_base", "backoff_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0")
        if self.timeout == 0 or self.connect_timeout == 0:
            raise ValueError("timeouts must be > 0")
        if not isinstance(self.max_retries, int) or not 0 <= self.max_retries <= 10:
            raise ValueError("max_retries must be an integer in 0..10")
        if not isinstance(self.check_model, bool):
            raise ValueError("check_model must be true or false")

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> OpenAIConfig:
        """Build a config from the ``provider`` object of a request (unknown keys rejected)."""
        allowed = {f for f in cls.__dataclass_fields__}
        extra = set(raw) - allowed - {"kind", "api_key_secret"}
        if extra:
            raise ValueError(f"unknown provider fields: {', '.join(sorted(extra))}")
        return cls(**{k: v for k, v in raw.items() if k in allowed})


class OpenAICompatProvider:
    """Chat and completions over HTTP, streamed with server-sent events.

    Parameters
    ----------
    config
        The server and model.
    api_key
        The key for this request, or ``None`` for servers without one.

    The connection, the retries and the reads run on a worker thread (:func:`~.pump.pumped`),
    so the handler thread keeps answering pings and notices a cancel within ``watch.interval``;
    a cancel shuts the socket down, which stops the server's generation too.
    """

    name: Final = "openai"

    def __init__(
        self,
        config: OpenAIConfig,
        api_key: str | None = None,
    ) -> None:
        self.config = config
        self._api_key = api_key
        self._stop = threading.Event()  # replaced per generation by the pump's
        self._live: http.client.HTTPConnection | None = None
        parts = urlsplit(config.base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"OpenAICompatProvider({self.config.base_url!r}, {self.config.model!r}, key={key})"

    # -- public -------------------------------------------------------------------------------

    def chat(
        self,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
    ) -> Completion:
        """Stream a chat completion; see :class:`~.base.Provider`."""
        body = {"model": self.config.model, "messages": list(messages), **_sampling(params)}
        return self._generate("/chat/completions", body, on_token, watch, chat=True)

    def complete(
        self,
        prompt: str,
        params: GenerationParams,
        on_token: TokenSink,
        watch: Watch = NO_WATCH,
    ) -> Completion:
        """Stream a raw completion; see :class:`~.base.Provider`."""
        body = {"model": self.config.model, "prompt": prompt, **_sampling(params)}
        return self._generate("/completions", body, on_token, watch, chat=False)

    def list_models(self) -> list[str]:
        """Return the model ids the server lists under ``GET /models``."""
        conn, resp = self._request("GET", "/models", None)
        try:
            data = json.loads(resp.read(MAX_LINE))
        except ValueError as e:
            raise ProviderError(f"{self._where('/models')} answered with invalid JSON") from e
        finally:
            conn.close()
        listed = data.get("data", []) if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise ProviderError(
                f"{self._where('/models')} answered with {_kind(data)}, not a model list "
                '({"data": [{"id": …}]})'
            )
        return [str(m.get("id")) for m in listed if isinstance(m, dict)]

    # -- internals ----------------------------------------------------------------------------

    def _where(self, path: str) -> str:
        return f"{self.config.base_url.rstrip('/')}{path}"

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return text

    def _check_model(self) -> None:
        key = (self.config.base_url, self.config.model)
        if not self.config.check_model or key in _known_models:
            return
        try:
            models = self.list_models()
        except UnknownModelError:  # no /models endpoint (404): nothing to check against
            return
        if models and self.config.model not in models:
            shown = ", ".join(models[:10])
            raise UnknownModelError(
                f"model {self.config.model!r} is not served by {self.config.base_url} "
                f"(it serves: {shown})",
                status=404,
            )
        _known_models.add(key)

    def _stream(self, stop: threading.Event, path: str, body: dict[str, Any]) -> Iterator[Any]:
        """Check the model, connect (with retries), read the events: the worker's part."""
        self._stop = stop
        self._check_model()
        conn, resp = self._request("POST", path, body)
        try:
            yield from self._events(resp, path)
        finally:
            resp.close()  # a reply refused before its end still holds the socket's file
            conn.close()

    def _abort(self) -> None:
        """Unblock the worker: shut the live connection's socket down (from another thread)."""
        self._stop.set()
        conn = self._live
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _generate(
        self,
        path: str,
        body: dict[str, Any],
        on_token: TokenSink,
        watch: Watch,
        *,
        chat: bool,
    ) -> Completion:
        body = {**body, "stream": True}
        where = self._where(path)
        t0 = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] = {}
        model = self.config.model
        done = False
        events = pumped(lambda stop: self._stream(stop, path, body), watch, self._abort)
        try:
            for event in events:
                if event is None:  # the [DONE] line
                    done = True
                    continue
                if event.get("model"):
                    model = str(event["model"])
                if event.get("usage") is not None:
                    usage = _object(event["usage"], where, "usage")
                choices = event.get("choices") or []
                if not isinstance(choices, list):
                    raise _invalid(where, f"'choices' is {_kind(choices)}, not a list")
                for raw in choices:
                    choice = _object(raw, where, "each choice")
                    if chat:
                        delta = choice.get("delta") or {}
                        text = _object(delta, where, "'delta'").get("content")
                    else:
                        text = choice.get("text")
                    if text is not None and not isinstance(text, str):
                        raise _invalid(where, f"the generated text is {_kind(text)}")
                    if text:
                        if first is None:
                            first = (time.perf_counter() - t0) * 1000
                        parts.append(text)
                        on_token(text)  # may raise: the pump aborts the connection
                    if choice.get("finish_reason"):
                        finish = str(choice["finish_reason"])
        finally:
            events.close()
        if not done and finish is None:
            # The server closed the stream mid-answer: what arrived is a fragment, not a reply.
            raise UnreachableError(
                f"{where} closed the stream before the end of the answer (no [DONE] and no "
                f"finish_reason, after {len(parts)} pieces)"
            )
        text = "".join(parts)
        prompt_chars = sum(len(m["content"]) for m in body.get("messages", [])) + len(
            body.get("prompt", "")
        )
        return Completion(
            text,
            finish or "stop",
            Usage(
                prompt_tokens=_count(usage, "prompt_tokens", where) or (prompt_chars + 3) // 4,
                completion_tokens=_count(usage, "completion_tokens", where) or len(parts),
                latency_ms=(time.perf_counter() - t0) * 1000,
                first_token_ms=first,
                model=model,
            ),
        )

    def _events(self, resp: http.client.HTTPResponse, path: str) -> Iterator[dict[str, Any] | None]:
        """Yield each event object of the stream, then ``None`` for its ``[DONE]`` line.

        Ends without ``None`` when the server closes the stream early. A body that is not an
        event stream (a JSON completion from a server that ignores ``stream``, a web page)
        and an event that is not a JSON object raise :class:`ProviderError`.
        """
        where = self._where(path)
        ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "text/event-stream":
            shown = f"'{ctype}'" if ctype else "no content type"
            hint = (
                "the server ignored stream: true"
                if ctype == "application/json"
                else "is base_url the server's OpenAI-compatible API root (usually …/v1)?"
            )
            raise ProviderError(
                f"{where} answered with {shown}, not an event stream (text/event-stream): {hint}",
                status=resp.status,
            )
        seen = False
        while True:
            try:
                line = resp.readline(MAX_LINE)
            except TimeoutError as e:
                raise ProviderTimeoutError(
                    f"{where} stopped streaming for {self.config.timeout:g} s"
                ) from e
            except OSError as e:
                raise UnreachableError(f"{where} dropped the connection: {e}") from e
            if not line:
                if not seen:
                    raise ProviderError(f"{where} sent an event stream without any event")
                return
            line = line.strip()
            if not line.startswith(b"data:"):
                continue  # comments, event names, keep-alives, blank separators
            data = line[5:].strip()
            if data == b"[DONE]":
                if not seen:
                    raise ProviderError(f"{where} ended its event stream before any event")
                yield None
                return
            seen = True
            try:
                event = json.loads(data)
            except ValueError as e:
                raise _invalid(where, "it is not JSON") from e
            if not isinstance(event, dict):
                raise _invalid(where, f"it is {_kind(event)}, not an object")
            if "error" in event:
                raise self._error_from_body(200, path, data)
            yield event

    def _connect(self) -> http.client.HTTPConnection:
        cfg = self.config
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host,
                self._port,
                timeout=cfg.connect_timeout,
                context=ssl.create_default_context(),
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=cfg.connect_timeout)
        try:
            conn.connect()
        except TimeoutError as e:
            conn.close()
            raise UnreachableError(
                f"cannot reach {cfg.base_url}: no connection within {cfg.connect_timeout:g} s"
            ) from e
        except (OSError, ssl.SSLError) as e:
            conn.close()
            reason = e.strerror or type(e).__name__ if isinstance(e, OSError) else str(e)
            raise UnreachableError(f"cannot reach {cfg.base_url}: {reason}") from e
        assert conn.sock is not None
        conn.sock.settimeout(cfg.timeout)
        return conn

    def _request(
        self, method: str, path: str, body: dict[str, Any] | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request with retries; return the open connection and a 200 response."""
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "text/event-stream" if body else "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempt = 0
        while True:
            conn = self._connect()
            retry_after: float | None = None
            try:
                conn.request(method, self._prefix + path, body=payload, headers=headers)
                resp = conn.getresponse()
            except TimeoutError as e:
                conn.close()
                raise ProviderTimeoutError(
                    f"{self._where(path)} did not answer within {self.config.timeout:g} s"
                ) from e
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                error: ProviderError = UnreachableError(
                    f"{self._where(path)} dropped the connection ({type(e).__name__})",
                    retryable=True,
                )
            except OSError as e:
                conn.close()
                raise UnreachableError(f"{self._where(path)} failed: {e.strerror or e}") from e
            else:
                if resp.status == 200:
                    return conn, resp
                try:
                    raw = resp.read(MAX_ERROR_BODY)
                except OSError:
                    raw = b""
                conn.close()
                retry_after = _retry_after(resp.getheader("Retry-After"))
                error = self._error_from_body(resp.status, path, raw)
            if not error.retryable or attempt >= self.config.max_retries:
                raise error
            delay = min(
                self.config.backoff_max,
                retry_after
                if retry_after is not None
                else self.config.backoff_base * 2**attempt * random.uniform(0.8, 1.2),
            )
            attempt += 1
            log.warning(
                "retrying %s in %.2f s (attempt %d of %d): %s",
                self._where(path),
                delay,
                attempt,
                self.config.max_retries,
                error.message,
            )
            if self._stop.wait(delay):
                raise ProviderError(f"{self._where(path)}: stopped while waiting to retry")

    def _error_from_body(self, status: int, path: str, raw: bytes) -> ProviderError:
        where = self._where(path)
        detail = _server_message(raw)
        detail = self._scrub(detail)[:500]
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            what = "no API key was given" if not self._api_key else "the API key was rejected"
            return AuthError(f"{where}: {what} (HTTP {status}){suffix}", status=status)
        if status == 404:
            if "model" in detail.lower():
                return UnknownModelError(
                    f"model {self.config.model!r} is not served by {self.config.base_url}{suffix}",
                    status=status,
                )
            return UnknownModelError(
                f"{where} does not exist (HTTP 404); base_url usually ends in /v1", status=status
            )
        if status == 429:
            return RateLimitedError(
                f"{where} is rate limiting (HTTP 429){suffix}", status=status, retryable=True
            )
        if status in (400, 422):
            return BadRequestError(
                f"{where} refused the request (HTTP {status}){suffix}", status=status
            )
        retry = status in _RETRY_STATUSES
        return ProviderError(
            f"{where} failed (HTTP {status}){suffix}", status=status, retryable=retry
        )


def _sampling(params: GenerationParams) -> dict[str, Any]:
    body: dict[str, Any] = {
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    return body


def _kind(value: object) -> str:
    """Name a JSON value's kind for an error message (``a JSON array``, ``null`` …)."""
    if value is None:
        return "null"
    names = {dict: "a JSON object", list: "a JSON array", str: "a string", bool: "a boolean"}
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _invalid(where: str, why: str) -> ProviderError:
    return ProviderError(f"{where} sent an invalid event: {why}")


def _object(value: object, where: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(where, f"{what} is {_kind(value)}, not an object")
    return value


def _count(usage: dict[str, Any], name: str, where: str) -> int:
    """Return ``usage[name]`` as a token count (0 when absent); the server's fault otherwise."""
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _invalid(where, f"usage.{name} is {value!r}, not a token count")
    return int(value)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _server_message(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        err = data.get("error", data.get("detail"))
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if err is not None:
            return str(err)
    return text
