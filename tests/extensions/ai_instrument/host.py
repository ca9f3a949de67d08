"""A plain-socket test host for the AI Instrument child: answers ``secrets.get``, grants credit."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import symphony.extensions.ai_instrument as ai_pkg
from symphony.protocol import (
    Credit,
    ErrorResponse,
    Notification,
    Request,
    Response,
    StreamData,
)
from symphony.protocol.messages import Message
from tests.sdk.host import ChildHost

FOLDER = Path(ai_pkg.__file__).parent


@dataclass
class Run:
    """Everything one request produced."""

    reply: Response | ErrorResponse
    items: list[StreamData] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    host_requests: list[Request] = field(default_factory=list)

    @property
    def result(self) -> Any:
        assert isinstance(self.reply, Response), self.reply
        return self.reply.result

    @property
    def streamed_text(self) -> str:
        return "".join(i.item["text"] for i in self.items)


class InstrumentHost(ChildHost):
    """The AI Instrument child after the handshake, with a secret store of its own."""

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        super().__init__(FOLDER)
        self.secrets = dict(secrets or {})
        self.notifications: list[Notification] = []
        self.handshake()

    def answer(self, msg: Message) -> bool:
        """Answer a child's request; return whether ``msg`` was one."""
        if isinstance(msg, Request):
            name = (msg.params or {}).get("name")
            if msg.method == "secrets.get" and name in self.secrets:
                self.channel.send(Response(msg.id, {"value": self.secrets[name]}))
            else:
                self.channel.send(ErrorResponse(msg.id, -32000, f"no secret {name!r}"))
            return True
        return False

    def run(
        self,
        method: str,
        params: Any = None,
        *,
        credit: int | None = None,
        auto_credit: bool = True,
        timeout: float = 120.0,
        **kw: Any,
    ) -> Run:
        rid = self.request(method, params, credit=credit, **kw)
        return self.collect(rid, auto_credit=auto_credit, timeout=timeout)

    def collect(self, rid: int, *, auto_credit: bool = True, timeout: float = 120.0) -> Run:
        items: list[StreamData] = []
        notes: list[Notification] = []
        asked: list[Request] = []
        end = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.0, end - time.monotonic()))
            if isinstance(msg, Request):
                asked.append(msg)
                self.answer(msg)
            elif isinstance(msg, StreamData) and msg.id == rid:
                items.append(msg)
                if auto_credit:
                    self.channel.send(Credit(rid, 1))
            elif isinstance(msg, Notification):
                notes.append(msg)
                self.notifications.append(msg)
            elif isinstance(msg, Response | ErrorResponse) and msg.id == rid:
                return Run(msg, items, notes, asked)
            else:
                self.other.append(msg)
