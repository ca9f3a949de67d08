"""Change notifications for a workspace: inotify on Linux, polling elsewhere.

A :class:`Watcher` reports :class:`Change` records (``created``, ``modified``, ``deleted``,
``moved``) with workspace-relative paths. Folders are watched recursively: a folder created inside
a watched tree is watched too. Bursts are coalesced (one ``modified`` per path per read) and the
number of pending changes is capped; past the cap the watcher reports a single ``overflow`` change,
after which a client should re-list what it shows.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import select
import struct
import sys
import time
from dataclasses import dataclass

MAX_PENDING = 10_000

# inotify(7) constants.
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_MASK = (
    IN_CLOSE_WRITE
    | IN_MODIFY
    | IN_ATTRIB
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
_EVENT = struct.Struct("iIII")


@dataclass(frozen=True, slots=True)
class Change:
    """One change: ``kind`` is created, modified, deleted, moved or overflow."""

    kind: str
    path: str
    is_dir: bool = False
    new_path: str | None = None


class Watcher:
    """Watch a workspace folder tree.

    Parameters
    ----------
    root
        The workspace root (already confined and resolved by the file service).
    force_polling
        Use the portable polling implementation even where inotify exists.
    """

    def __init__(self, root: str | os.PathLike[str], *, force_polling: bool = False) -> None:
        self.root = os.path.realpath(root)
        self._backend: _Inotify | _Polling
        if sys.platform.startswith("linux") and not force_polling:
            self._backend = _Inotify(self.root)
        else:
            self._backend = _Polling(self.root)

    @property
    def backend(self) -> str:
        """``inotify`` or ``polling``."""
        return "inotify" if isinstance(self._backend, _Inotify) else "polling"

    def watch(self, rel: str = "") -> None:
        """Start watching the folder ``rel`` (relative to the root) and everything below it."""
        self._backend.watch(rel)

    def unwatch(self, rel: str = "") -> None:
        """Stop watching ``rel`` and everything below it."""
        self._backend.unwatch(rel)

    def read(self, timeout: float = 0.0) -> list[Change]:
        """Wait up to ``timeout`` seconds for changes and return them (possibly none)."""
        return self._backend.read(timeout)

    def close(self) -> None:
        """Release the OS resources."""
        self._backend.close()

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _coalesce(changes: list[Change]) -> list[Change]:
    out: list[Change] = []
    seen_modified: set[str] = set()
    for c in changes:
        if c.kind == "modified":
            if c.path in seen_modified:
                continue
            seen_modified.add(c.path)
        out.append(c)
    if len(out) > MAX_PENDING:
        return [Change("overflow", "")]
    return out


class _Inotify:
    def __init__(self, root: str) -> None:
        name = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        self._libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"inotify_init1 failed: {os.strerror(e)}")
        self.fd: int = fd
        self.root = root
        self._wd_to_rel: dict[int, str] = {}
        self._rel_to_wd: dict[str, int] = {}
        self._pending_moves: dict[int, Change] = {}

    def _add_one(self, rel: str) -> None:
        path = os.path.join(self.root, rel) if rel else self.root
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), _MASK)
        if wd < 0:
            e = ctypes.get_errno()
            if e in (errno.ENOENT, errno.ENOTDIR):
                return  # vanished meanwhile; its deletion is reported by the parent
            raise OSError(e, f"cannot watch {rel or '.'}: {os.strerror(e)}")
        self._wd_to_rel[wd] = rel
        self._rel_to_wd[rel] = wd

    def watch(self, rel: str) -> None:
        base = os.path.join(self.root, rel) if rel else self.root
        self._add_one(rel)
        for dirpath, dirnames, _ in os.walk(base):
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for d in dirnames:
                child = os.path.relpath(os.path.join(dirpath, d), self.root).replace(os.sep, "/")
                self._add_one(child)

    def unwatch(self, rel: str) -> None:
        for r, wd in list(self._rel_to_wd.items()):
            if r == rel or r.startswith(rel + "/") or not rel:
                self._libc.inotify_rm_watch(self.fd, wd)
                self._rel_to_wd.pop(r, None)
                self._wd_to_rel.pop(wd, None)

    def read(self, timeout: float) -> list[Change]:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        changes: list[Change] = []
        while True:
            try:
                buf = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                break
            changes.extend(self._parse(buf))
            if len(changes) > MAX_PENDING:
                self._drain()
                return [Change("overflow", "")]
        # A move whose destination is outside the watched tree is a deletion.
        for c in self._pending_moves.values():
            changes.append(Change("deleted", c.path, c.is_dir))
        self._pending_moves.clear()
        return _coalesce(changes)

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 64 * 1024):
                pass

    def _parse(self, buf: bytes) -> list[Change]:
        out: list[Change] = []
        pos = 0
        while pos + _EVENT.size <= len(buf):
            wd, mask, cookie, length = _EVENT.unpack_from(buf, pos)
            raw = buf[pos + _EVENT.size : pos + _EVENT.size + length].rstrip(b"\0")
            pos += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                out.append(Change("overflow", ""))
                continue
            base = self._wd_to_rel.get(wd)
            if base is None:
                continue
            if mask & IN_IGNORED:
                self._wd_to_rel.pop(wd, None)
                self._rel_to_wd.pop(base, None)
                continue
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                continue  # reported by the parent folder's event
            name = os.fsdecode(raw)
            rel = f"{base}/{name}" if base else name
            is_dir = bool(mask & IN_ISDIR)
            if mask & IN_CREATE:
                out.append(Change("created", rel, is_dir))
                if is_dir:
                    self.watch(rel)
            elif mask & IN_DELETE:
                out.append(Change("deleted", rel, is_dir))
            elif mask & IN_MOVED_FROM:
                self._pending_moves[cookie] = Change("moved", rel, is_dir)
            elif mask & IN_MOVED_TO:
                src = self._pending_moves.pop(cookie, None)
                if src is None:
                    out.append(Change("created", rel, is_dir))
                else:
                    out.append(Change("moved", src.path, is_dir, rel))
                    if is_dir:
                        self.unwatch(src.path)
                if is_dir:
                    self.watch(rel)
            elif mask & (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB):
                out.append(Change("modified", rel, is_dir))
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _Polling:
    """Portable fallback: compare (mtime, size) snapshots of the watched trees."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._roots: set[str] = set()
        self._snap: dict[str, tuple[float, int, bool]] = {}

    def _scan(self) -> dict[str, tuple[float, int, bool]]:
        out: dict[str, tuple[float, int, bool]] = {}
        for rel in self._roots:
            base = os.path.join(self.root, rel) if rel else self.root
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
                for n in dirnames + filenames:
                    p = os.path.join(dirpath, n)
                    try:
                        st = os.lstat(p)
                    except OSError:
                        continue
                    r = os.path.relpath(p, self.root).replace(os.sep, "/")
                    out[r] = (st.st_mtime, st.st_size, n in dirnames)
        return out

    def watch(self, rel: str) -> None:
        self._roots.add(rel)
        self._snap = self._scan()

    def unwatch(self, rel: str) -> None:
        self._roots.discard(rel)
        self._snap = self._scan()

    def read(self, timeout: float) -> list[Change]:
        deadline = time.monotonic() + timeout
        while True:
            now = self._scan()
            changes = [Change("created", p, now[p][2]) for p in sorted(now.keys() - self._snap)]
            changes += [
                Change("deleted", p, self._snap[p][2]) for p in sorted(self._snap.keys() - now)
            ]
            changes += [
                Change("modified", p, now[p][2])
                for p in sorted(now.keys() & self._snap.keys())
                if now[p][:2] != self._snap[p][:2] and not now[p][2]
            ]
            self._snap = now
            if changes or time.monotonic() >= deadline:
                return _coalesce(changes)
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def close(self) -> None:
        self._roots.clear()
