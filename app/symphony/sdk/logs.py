"""Forward the standard :mod:`logging` of an extension to the host as structured records.

The runner installs :class:`HostLogHandler` on the root logger, so ``logging.getLogger(__name__)
.warning("...")`` in extension code reaches the host's log pane through the rate-limited ``log``
frames; the root level stays as configured (``WARNING`` by default).
"""

from __future__ import annotations

import logging
from typing import Any

from symphony.protocol.messages import LogLevel
from symphony.sdk.runtime import RateLimitedLogger

_SKIP = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


def _level(levelno: int) -> LogLevel:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


class HostLogHandler(logging.Handler):
    """A :class:`logging.Handler` that sends records through a :class:`RateLimitedLogger`.

    Parameters
    ----------
    logger
        The runtime's rate-limited logger.
    level
        The handler's threshold.
    """

    def __init__(self, logger: RateLimitedLogger, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._logger = logger

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102
        try:
            fields: dict[str, Any] = {
                k: v for k, v in vars(record).items() if k not in _SKIP and not k.startswith("_")
            }
            if record.exc_info:
                fields["traceback"] = logging.Formatter().formatException(record.exc_info)[-4000:]
            self._logger.log(
                _level(record.levelno), record.getMessage(), logger=record.name, fields=fields
            )
        except Exception:
            self.handleError(record)


__all__ = ["HostLogHandler"]
