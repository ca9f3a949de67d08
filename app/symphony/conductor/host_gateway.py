"""The conductor's door to extension processes through the Qt extension host.

This is the one conductor module that touches Qt (QtCore, through
:class:`~symphony.extension_host.host.ExtensionHost`): the host lives on the thread that runs the
Qt event loop, which is the asyncio loop's thread under qasync, so awaiting its futures is safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from symphony.conductor.executor import NodeError, error_kind_for_code
from symphony.conductor.models import ModelCatalog
from symphony.conductor.policy import ErrorKind
from symphony.pit import Pit, PitError
from symphony.protocol.errors import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from symphony.extension_host.host import ExtensionHost
    from symphony.protocol.messages import Progress

__all__ = ["HostGateway", "ModelTracker"]

_log = logging.getLogger("symphony.conductor")


class HostGateway:
    """:class:`~symphony.conductor.executor.ExtensionGateway` over an :class:`ExtensionHost`.

    Token streams (``{"text": …}`` items) are forwarded to ``on_token``; protocol errors become
    :class:`NodeError` with the failure kind of their code (a crashed child is transient: the host
    restarts it, so a retry has a fresh process).
    """

    def __init__(self, host: ExtensionHost) -> None:
        self.host = host

    def memory_of(self, extension_id: str) -> int:
        """Return the resident memory of the extension's process in bytes (0 if not running)."""
        from symphony.extension_host.launcher import rss_bytes

        pid = self.host.pid(extension_id)
        return rss_bytes(pid) if pid else 0

    async def call(
        self,
        extension_id: str,
        method: str,
        params: Mapping[str, Any],
        *,
        timeout: float | None,
        on_token: Callable[[str], None],
        on_progress: Callable[[float | None, str], None],
    ) -> Mapping[str, Any]:
        """Send ``method`` to ``extension_id`` and return its result object."""

        def item(value: Any, _body: bytes) -> None:
            if isinstance(value, dict):
                text = value.get("text")
                if isinstance(text, str):
                    on_token(text)

        def progress(p: Progress) -> None:
            fraction = None if p.percentage is None else p.percentage / 100.0
            on_progress(fraction, p.message or p.title or "")

        try:
            # a stopped run cancels this task: the call then cancels the child's work too
            reply = await self.host.call(
                extension_id,
                method,
                # the executor builds a fresh dict per call: a copy only for other mappings
                params if type(params) is dict else dict(params),
                timeout=timeout,
                on_item=item,
                on_progress=progress,
                cancel_reason="the run was stopped",
            )
        except KeyError as e:
            raise NodeError(
                f"no extension {extension_id!r} is installed", ErrorKind.PERSISTENT
            ) from e
        except ProtocolError as e:
            # the host names the method itself ("ai.summarizer: deadline exceeded"): once is enough
            message = e.message.removeprefix(f"{method}: ")
            if e.code == ErrorCode.DEADLINE_EXCEEDED and timeout is not None:
                message = f"no answer within the node's timeout of {timeout:g} s ({message})"
            raise NodeError(
                f"{extension_id}: {method}: {message}", error_kind_for_code(e.code), code=e.code
            ) from None
        result = reply.result
        if type(result) is not dict and not isinstance(result, Mapping):
            raise NodeError(
                f"{extension_id}: {method} answered {type(result).__name__}, not an object",
                ErrorKind.PERSISTENT,
            )
        return result


class ModelTracker:
    """Keeps the Pool Manager's model states in step with what the AI Instrument reports.

    The pool records a cold start itself when the conductor leases an idle model; the instrument
    also loads and unloads models on its own (``models.load``, the idle reaper, shutdown), and
    announces it with ``model.loaded`` / ``model.unloaded`` notifications. Loads move an idle
    model to warm; unloads move a warm or cooling model back to idle. A model that is leased
    (active) is left alone: its lease will settle it. Keep a reference to the tracker: Qt
    holds its slot weakly.
    """

    def __init__(self, host: ExtensionHost, pit: Pit, catalog: ModelCatalog) -> None:
        self.pit = pit
        self.catalog = catalog
        host.sig_notification.connect(self._on_notification)

    def _on_notification(self, _ext: str, method: str, params: Any, _body: bytes) -> None:
        if method not in ("model.loaded", "model.unloaded") or not isinstance(params, dict):
            return
        model = params.get("model")
        if not isinstance(model, str) or not model:
            return
        pool = self.pit.pool
        try:
            if model not in pool:
                spec = self.catalog.resolve(model) if model in self.catalog else None
                pool.register(
                    model,
                    slots=spec.slots if spec else 1,
                    memory=int(params.get("memory_bytes") or (spec.memory if spec else 0)),
                )
            state = pool.state(model)
            if method == "model.loaded" and state == "idle":
                pool.transition(model, "loading")
                pool.transition(model, "warm")
            elif method == "model.unloaded" and state in ("warm", "cooldown"):
                pool.transition(model, "idle")
        except PitError as e:
            _log.warning("pool state of %s not updated after %s: %s", model, method, e)
