"""The conductor's door to extension processes through the Qt extension host.

This is the one conductor module that touches Qt (QtCore, through
:class:`~symphony.extension_host.host.ExtensionHost`): the host lives on the thread that runs the
Qt event loop, which is the asyncio loop's thread under qasync, so awaiting its futures is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from symphony.conductor.executor import NodeError, error_kind_for_code
from symphony.conductor.policy import ErrorKind
from symphony.protocol.errors import ProtocolError

if TYPE_CHECKING:
    from symphony.extension_host.host import ExtensionHost
    from symphony.protocol.messages import Progress

__all__ = ["HostGateway"]


class HostGateway:
    """:class:`~symphony.conductor.executor.ExtensionGateway` over an :class:`ExtensionHost`.

    Token streams (``{"text": …}`` items) are forwarded to ``on_token``; protocol errors become
    :class:`NodeError` with the failure kind of their code (a crashed child is transient: the host
    restarts it, so a retry has a fresh process).
    """

    def __init__(self, host: ExtensionHost) -> None:
        self.host = host

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
            fut = self.host.request(
                extension_id,
                method,
                dict(params),
                timeout=timeout,
                on_item=item,
                on_progress=progress,
            )
        except KeyError as e:
            raise NodeError(
                f"no extension {extension_id!r} is installed", ErrorKind.PERSISTENT
            ) from e
        try:
            reply = await asyncio.wrap_future(fut)
        except ProtocolError as e:
            raise NodeError(
                f"{extension_id}: {method}: {e.message}", error_kind_for_code(e.code), code=e.code
            ) from None
        except asyncio.CancelledError:
            fut.cancel()
            raise
        result = reply.result
        if not isinstance(result, Mapping):
            raise NodeError(
                f"{extension_id}: {method} answered {type(result).__name__}, not an object",
                ErrorKind.PERSISTENT,
            )
        return result
