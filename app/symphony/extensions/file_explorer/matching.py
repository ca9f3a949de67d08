"""Line matching for content search, and a helper process that runs user regular expressions.

Python's :mod:`re` holds the GIL for the whole of one match and cannot be interrupted from
another thread, so a pattern that backtracks catastrophically (``(a+)+$`` on a long run of
``a``) would freeze every thread of the extension, including the one answering the host's pings, and
the host would kill it as unresponsive. Regular expressions are therefore matched in a forked
helper process (:class:`ForkedMatcher`) that the search waits for while answering pings, and
kills when the search's time limit passes. Literal searches cannot backtrack and run in process.

The helper is forked rather than spawned: a frozen bundle has no interpreter to start a script
with, and the fork already holds the compiled pattern. It only reads files, matches and writes
to a pipe, using modules imported before the fork, so the locks other threads may hold at fork
time are never taken in it.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import re
import select
import signal
import time
import warnings
from collections.abc import Callable
from typing import Final

#: Longest piece of a line matched at once (characters); longer lines are matched in pieces,
#: so a match that spans two pieces of a line longer than this is not found.
MAX_PIECE_CHARS: Final = 1 << 20
#: Characters of a matching line kept in a hit.
MAX_HIT_TEXT: Final = 500
#: Seconds between calls of ``tick`` while waiting for the helper process.
POLL_INTERVAL: Final = 0.05

#: ``(line, column, text)`` of one hit, 1-based.
Hit = tuple[int, int, str]


class MatchTimeoutError(Exception):
    """The helper process did not finish a file before the deadline (it was killed)."""


def match_file(
    rx: re.Pattern[str], path: str, limit: int, tick: Callable[[], None] | None = None
) -> list[Hit] | None:
    """Return up to ``limit`` hits of ``rx`` in the file at ``path``, line by line.

    Parameters
    ----------
    rx
        The compiled pattern.
    path
        The file (a real path; the caller confined it).
    limit
        Most hits returned.
    tick
        Called every few hundred lines (to answer pings, notice a cancel); may raise.

    Returns
    -------
    list of (line, column, text), or None
        The hits; ``None`` when the file is not UTF-8 text or cannot be read.
    """
    hits: list[Hit] = []
    try:
        with open(path, encoding="utf-8") as f:
            line, col0, pieces = 1, 0, 0
            while True:
                piece = f.readline(MAX_PIECE_CHARS)
                if not piece:
                    return hits
                text = piece.rstrip("\n")
                for m in rx.finditer(piece):
                    hits.append((line, col0 + m.start() + 1, text[:MAX_HIT_TEXT]))
                    if len(hits) >= limit:
                        return hits
                if piece.endswith("\n"):
                    line, col0 = line + 1, 0
                else:
                    col0 += len(piece)
                pieces += 1
                if tick is not None and pieces % 256 == 0:
                    tick()
    except (OSError, UnicodeDecodeError):
        return None


class ForkedMatcher:
    """Match one pattern in a forked helper process, one file per round trip.

    Parameters
    ----------
    rx
        The compiled pattern (the helper inherits it).
    """

    def __init__(self, rx: re.Pattern[str]) -> None:
        req_r, self._req_w = os.pipe()
        self._res_r, res_w = os.pipe()
        codecs.lookup("utf-8")  # cached before the fork: the helper imports nothing
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork in a threaded process; see the module docs.
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                pid = os.fork()
            except OSError:  # out of processes or memory: leave no pipe behind
                for fd in (req_r, self._req_w, self._res_r, res_w):
                    os.close(fd)
                raise
        if pid == 0:  # the helper: never returns
            code = 1
            try:
                os.close(self._req_w)
                os.close(self._res_r)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _serve(rx, req_r, res_w)
                code = 0
            finally:
                os._exit(code)
        os.close(req_r)
        os.close(res_w)
        self._pid = pid
        self._buf = bytearray()

    def match(
        self, path: str, limit: int, deadline: float, tick: Callable[[], None] | None = None
    ) -> list[Hit] | None:
        """Match in one file, as :func:`match_file` does, waiting at most until ``deadline``.

        ``tick`` is called every :data:`POLL_INTERVAL` seconds while waiting (it may raise; the
        helper is then killed).

        Raises
        ------
        MatchTimeoutError
            The file was not done by ``deadline``; the helper was killed.
        """
        try:
            os.write(self._req_w, json.dumps([path, limit]).encode() + b"\n")
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MatchTimeoutError(path)
                ready, _, _ = select.select([self._res_r], [], [], min(POLL_INTERVAL, left))
                if not ready:
                    if tick is not None:
                        tick()
                    continue
                chunk = os.read(self._res_r, 1 << 16)
                if not chunk:
                    raise OSError("the search helper process ended unexpectedly")
                self._buf += chunk
        except BaseException:
            self.close(kill=True)
            raise
        line, _, rest = self._buf.partition(b"\n")
        self._buf = bytearray(rest)
        raw = json.loads(line)
        return None if raw is None else [(int(a), int(b), str(c)) for a, b, c in raw]

    def close(self, *, kill: bool = False) -> None:
        """End the helper (``kill``: at once, even in the middle of a match) and reap it."""
        if self._pid == 0:
            return
        pid, self._pid = self._pid, 0
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for fd in (self._req_w, self._res_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        # EOF on its request pipe ends an idle helper at once; a busy one was killed above
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def __enter__(self) -> ForkedMatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(rx: re.Pattern[str], req_r: int, res_w: int) -> None:
    """Serve as the helper: ``[path, limit]`` lines in, one JSON line of hits (or null) out."""
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = os.read(req_r, 1 << 16)
            if not chunk:
                return
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        path, limit = json.loads(line)
        out = json.dumps(match_file(rx, path, limit)).encode() + b"\n"
        view = memoryview(out)
        while view:
            view = view[os.write(res_w, view) :]


__all__ = ["MAX_PIECE_CHARS", "ForkedMatcher", "Hit", "MatchTimeoutError", "match_file"]
