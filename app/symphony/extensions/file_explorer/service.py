"""The File Explorer's file service: every operation confined to one workspace folder.

Paths are given relative to the workspace root with ``/`` separators. Refused, with a
:class:`WorkspaceError` naming the path and the reason: absolute paths, ``..`` components, NUL
bytes, backslashes, over-long paths, and any path that resolves — through symlinks, at any
depth — outside the root. Symlinks that stay inside the workspace work as usual. Operations on a
name (rename, delete, create) act on the name itself: a symlink is renamed or deleted as a link,
wherever it points, and a dangling link's name counts as taken.

Resolution uses ``realpath`` and then opens the final component with ``O_NOFOLLOW``, so a symlink
swapped in between the check and the open fails with an error instead of escaping. Writes are
atomic (temporary file in the same folder, ``fsync``, ``rename``, ``fsync`` of the folder).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from symphony.extensions.file_explorer.matching import (
    ForkedMatcher,
    MatchTimeoutError,
    match_file,
)
from symphony.protocol.codec import DEFAULT_MAX_FRAME

MAX_PATH_CHARS = 4096
#: Bytes of a reply frame kept for its JSON header (the path is at most 4096 characters, which
#: JSON escaping can make six times longer), so that a read of ``max_read_bytes`` fits a frame.
FRAME_HEADROOM = 64 << 10
DEFAULT_MAX_READ = DEFAULT_MAX_FRAME - FRAME_HEADROOM
DEFAULT_MAX_WRITE = 64 << 20
DEFAULT_PAGE = 1000
MAX_PAGE = 10_000
#: Share of a search's time limit one file's regular-expression match must have taken, when
#: the limit runs out, for the pattern to be blamed (runaway backtracking) rather than the
#: size of the search.
PATTERN_BLAME_SHARE = 0.5


class WorkspaceError(Exception):
    """A refused or failed file operation.

    Parameters
    ----------
    code
        A stable machine-readable reason: ``invalid_path``, ``outside_workspace``, ``not_found``,
        ``exists``, ``not_a_directory``, ``is_a_directory``, ``not_a_file``, ``too_large``,
        ``not_empty``, ``permission_denied``, ``io_error``, ``invalid_argument``.
    message
        A sentence naming the path and the problem.
    path
        The workspace-relative path concerned.
    """

    def __init__(self, code: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.path = path


@dataclass(frozen=True, slots=True)
class Entry:
    """What ``stat`` and ``list_dir`` report about one item."""

    path: str
    name: str
    kind: str  # "file", "dir", "symlink" (one pointing nowhere or outside) or "other"
    size: int
    mtime: float
    # The name is a symbolic link; ``kind`` is then its target's when that is inside the
    # workspace. Deleting or renaming it acts on the link, so a UI must not call it a folder.
    link: bool = False


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a folder listing; pass ``next_cursor`` to get the next one."""

    entries: tuple[Entry, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Match:
    """One content-search hit (1-based line and column)."""

    path: str
    line: int
    column: int
    text: str


def _os_error(e: OSError, path: str) -> WorkspaceError:
    codes = {
        errno.ENOENT: ("not_found", "does not exist"),
        errno.EEXIST: ("exists", "already exists"),
        errno.ENOTDIR: ("not_a_directory", "is not a folder (or a folder on its path is not)"),
        errno.EISDIR: ("is_a_directory", "is a folder"),
        errno.ENOTEMPTY: ("not_empty", "is a folder that is not empty"),
        errno.EACCES: ("permission_denied", "is not accessible (permission denied)"),
        errno.EPERM: ("permission_denied", "is not accessible (operation not permitted)"),
        errno.ELOOP: ("outside_workspace", "is a symbolic link (changed while being opened)"),
        errno.ENAMETOOLONG: ("invalid_path", "has a name that is too long for the file system"),
    }
    code, text = codes.get(e.errno or 0, ("io_error", f"failed: {e.strerror}"))
    return WorkspaceError(code, f"{path or '.'} {text}", path)


#: A callback that answers pings and raises when the caller gave up (cancel, deadline).
Check = Callable[[], None]


def _no_check() -> None:
    return None


class FileService:
    """File operations confined to ``root``.

    Parameters
    ----------
    root
        The workspace folder; it must exist.
    max_read_bytes
        The largest read a single call returns.
    max_write_bytes
        The largest file a single write may produce.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_read_bytes: int = DEFAULT_MAX_READ,
        max_write_bytes: int = DEFAULT_MAX_WRITE,
    ) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            why = "it is not a folder" if os.path.exists(real) else "it does not exist"
            raise WorkspaceError(
                "not_a_directory", f"the workspace {root} cannot be opened: {why}", str(root)
            )
        self.root = Path(real)
        self._root_s = real
        self.max_read_bytes = max_read_bytes
        self.max_write_bytes = max_write_bytes

    # -- paths -----------------------------------------------------------------------------
    def normalize(self, rel: str) -> str:
        """Check a workspace-relative path and return its normal form (``""`` is the root).

        Parameters
        ----------
        rel
            The path as given.

        Returns
        -------
        str
            The path with ``.`` and empty components removed.
        """
        if not isinstance(rel, str):
            raise WorkspaceError(
                "invalid_argument", f"a path must be a string, got {type(rel).__name__}"
            )
        shown = rel.replace("\x00", "\\0")
        if "\x00" in rel:
            raise WorkspaceError("invalid_path", f"path {shown!r} contains a NUL byte", shown)
        if len(rel) > MAX_PATH_CHARS:
            raise WorkspaceError(
                "invalid_path", f"path is longer than {MAX_PATH_CHARS} characters", rel[:80]
            )
        if "\\" in rel:
            raise WorkspaceError(
                "invalid_path", f"path {rel!r} contains a backslash; use / between folders", rel
            )
        if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
            raise WorkspaceError(
                "outside_workspace",
                f"path {rel!r} is absolute; give it relative to the workspace root",
                rel,
            )
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise WorkspaceError(
                "outside_workspace", f"path {rel!r} uses '..', which is not allowed", rel
            )
        return "/".join(parts)

    def _resolve(self, rel: str) -> tuple[str, str]:
        """Return ``(normal relative path, real absolute path)`` after the confinement check."""
        norm = self.normalize(rel)
        real = os.path.realpath(os.path.join(self._root_s, norm))
        if real != self._root_s and not real.startswith(self._root_s + os.sep):
            raise WorkspaceError(
                "outside_workspace",
                f"path {norm!r} leads outside the workspace (through a symbolic link)",
                norm,
            )
        return norm, real

    def _resolve_item(self, rel: str) -> tuple[str, str]:
        """Return ``(normal relative path, absolute path)`` of the item itself.

        Only the parent folder is resolved (and confined): a final component that is a symlink
        stays the link, so operations on the name act on the link, wherever it points.
        """
        norm = self.normalize(rel)
        if not norm:
            return norm, self._root_s
        _, parent_real = self._resolve(os.path.dirname(norm))
        return norm, os.path.join(parent_real, os.path.basename(norm))

    def _item_entry(self, norm: str, path: str) -> Entry:
        """Describe the item at ``path`` itself, as ``list_dir`` does (a link by its target)."""
        try:
            entry = self._entry(norm, path, os.lstat(path))
            return self._describe_link(norm, path, entry) if entry.kind == "symlink" else entry
        except OSError as e:
            raise _os_error(e, norm) from None

    def _rel(self, real: str) -> str:
        return os.path.relpath(real, self._root_s).replace(os.sep, "/").removeprefix(".")

    def _entry(self, norm: str, real: str, st: os.stat_result | None = None) -> Entry:
        if st is None:
            st = os.lstat(real)
        if stat.S_ISLNK(st.st_mode):
            kind = "symlink"
        elif stat.S_ISDIR(st.st_mode):
            kind = "dir"
        elif stat.S_ISREG(st.st_mode):
            kind = "file"
        else:
            kind = "other"
        name = norm.rsplit("/", 1)[-1] if norm else ""
        return Entry(norm, name, kind, st.st_size if kind == "file" else 0, st.st_mtime)

    # -- queries ---------------------------------------------------------------------------
    def stat(self, rel: str) -> Entry:
        """Describe one item (symlinks inside the workspace are described by their target)."""
        norm, real = self._resolve(rel)
        try:
            return self._entry(norm, real, os.stat(real))
        except FileNotFoundError:
            # "x does not exist" would be wrong for a link that is there but points nowhere.
            _, item = self._resolve_item(norm)
            try:
                target = os.readlink(item)
            except OSError:
                raise WorkspaceError("not_found", f"{norm or '.'} does not exist", norm) from None
            raise WorkspaceError(
                "not_found",
                f"{norm} is a symbolic link whose target ({target}) does not exist",
                norm,
            ) from None
        except OSError as e:
            raise _os_error(e, norm) from None

    def list_dir(
        self, rel: str = "", *, cursor: str | None = None, limit: int = DEFAULT_PAGE
    ) -> Page:
        """List a folder by name, one page at a time.

        Parameters
        ----------
        rel
            The folder.
        cursor
            ``next_cursor`` of the previous page, or ``None`` for the first.
        limit
            Entries per page (1 to 10,000).

        Returns
        -------
        Page
            Up to ``limit`` entries sorted by name, and the cursor of the next page.
        """
        if not 1 <= _whole("limit", limit) <= MAX_PAGE:
            raise WorkspaceError("invalid_argument", f"limit must be 1..{MAX_PAGE}, got {limit}")
        if cursor is not None and not isinstance(cursor, str):
            raise WorkspaceError("invalid_argument", f"cursor must be a string, got {cursor!r}")
        norm, real = self._resolve(rel)
        after = cursor or ""
        try:
            with os.scandir(real) as it:
                # Only the page is sorted: O(n log limit) per page, fine for 100k-item folders.
                chosen = heapq.nsmallest(
                    limit + 1, (e for e in it if e.name > after), key=lambda e: e.name
                )
                entries = []
                for e in chosen[:limit]:
                    child = f"{norm}/{e.name}" if norm else e.name
                    st = e.stat(follow_symlinks=False)
                    entry = self._entry(child, e.path, st)
                    if entry.kind == "symlink":
                        entry = self._describe_link(child, e.path, entry)
                    entries.append(entry)
        except NotADirectoryError:
            raise WorkspaceError(
                "not_a_directory", f"{norm or '.'} is not a folder", norm
            ) from None
        except OSError as e:
            raise _os_error(e, norm) from None
        nxt = entries[-1].name if len(chosen) > limit else None
        return Page(tuple(entries), nxt)

    def _describe_link(self, child: str, path: str, link: Entry) -> Entry:
        target = os.path.realpath(path)
        inside = target == self._root_s or target.startswith(self._root_s + os.sep)
        if not inside or not os.path.exists(target):
            return replace(link, link=True)  # shown as a link; using it is refused
        return replace(self._entry(child, target, os.stat(target)), link=True)

    def read(self, rel: str, *, offset: int = 0, length: int | None = None) -> bytes:
        """Read a file's bytes (at most ``max_read_bytes`` per call).

        Parameters
        ----------
        rel
            The file.
        offset
            Where to start.
        length
            How many bytes; ``None`` reads to the end, which must fit the limit.

        Returns
        -------
        bytes
            The bytes read.
        """
        norm, real = self._resolve(rel)
        offset = _whole("offset", offset)
        if length is not None:
            length = _whole("length", length)
        if offset < 0 or (length is not None and length < 0):
            raise WorkspaceError("invalid_argument", "offset and length must not be negative", norm)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            raise _os_error(e, norm) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise WorkspaceError("is_a_directory", f"{norm} is a folder, not a file", norm)
            if not stat.S_ISREG(st.st_mode):
                raise WorkspaceError("not_a_file", f"{norm} is not a regular file", norm)
            # what the file can give from offset: a long `length` on a short file is no error
            want = max(0, st.st_size - offset)
            if length is not None:
                want = min(want, length)
            if want > self.max_read_bytes:
                raise WorkspaceError(
                    "too_large",
                    f"{norm} is {st.st_size} bytes; a read returns at most "
                    f"{self.max_read_bytes} bytes: read it in parts with offset and a length "
                    f"of at most {self.max_read_bytes}",
                    norm,
                )
            return os.pread(fd, max(0, want), offset)
        finally:
            os.close(fd)

    def read_text(self, rel: str, *, encoding: str = "utf-8") -> str:
        """Read a whole file as text; undecodable bytes are an error naming the position."""
        data = self.read(rel)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as e:
            raise WorkspaceError(
                "invalid_argument",
                f"{self.normalize(rel)} is not {encoding} text (byte {e.start})",
                self.normalize(rel),
            ) from None

    # -- changes ---------------------------------------------------------------------------
    def write(
        self,
        rel: str,
        data: bytes | str,
        *,
        overwrite: bool = True,
        create_parents: bool = False,
    ) -> Entry:
        """Replace (or create) a file atomically: readers see the old or the new content.

        Parameters
        ----------
        rel
            The file.
        data
            Its new content (``str`` is written as UTF-8).
        overwrite
            Whether an existing file may be replaced.
        create_parents
            Whether missing folders on the way are created.

        Returns
        -------
        Entry
            The written file.
        """
        norm, real = self._resolve(rel)
        if not norm:
            raise WorkspaceError("is_a_directory", "the workspace root is a folder", norm)
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        if len(payload) > self.max_write_bytes:
            raise WorkspaceError(
                "too_large",
                f"writing {len(payload)} bytes to {norm} exceeds the "
                f"{self.max_write_bytes}-byte limit",
                norm,
            )
        parent = os.path.dirname(real)
        if create_parents:
            self.mkdir(os.path.dirname(norm), parents=True, exist_ok=True)
        if os.path.isdir(real):
            raise WorkspaceError("is_a_directory", f"{norm} is a folder", norm)
        # A dangling link named ``norm`` exists too: creating "it" must not create its target.
        if not overwrite and (
            os.path.lexists(real) or os.path.lexists(self._resolve_item(norm)[1])
        ):
            raise WorkspaceError("exists", f"{norm} already exists", norm)
        # The name is cut so that the temporary name is never the one too long for the file
        # system: a file name that is too long then fails at the rename, naming the file.
        tmp = os.path.join(
            parent, f".{os.path.basename(real)[:64]}.{os.getpid()}.{time.monotonic_ns()}.tmp"
        )
        try:
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
            )
        except OSError as e:
            # the folder cannot take a new file (permissions, missing, full): name the folder
            raise _os_error(e, os.path.dirname(norm)) from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            if not overwrite:
                # link() fails if the name appeared meanwhile: no silent replace.
                os.link(tmp, real)
                os.unlink(tmp)
            else:
                os.replace(tmp, real)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise _os_error(e, norm) from None
        _fsync_dir(parent)
        return self.stat(norm)

    def mkdir(self, rel: str, *, parents: bool = False, exist_ok: bool = False) -> Entry:
        """Create a folder."""
        norm, _ = self._resolve(rel)
        # Create the name itself: a dangling link of that name is "already exists", not a
        # request to create the folder it points to.
        _, item = self._resolve_item(norm)
        try:
            if parents:
                os.makedirs(item, exist_ok=exist_ok)
            else:
                os.mkdir(item)
        except FileExistsError:
            if not (exist_ok and os.path.isdir(item)):
                raise WorkspaceError("exists", f"{norm} already exists", norm) from None
        except OSError as e:
            raise _os_error(e, norm) from None
        # makedirs resolved each level itself; make sure nothing raced it outside.
        return self.stat(norm)

    def rename(self, src: str, dst: str, *, overwrite: bool = False) -> Entry:
        """Rename or move an item within the workspace.

        A symlink is renamed as a link, wherever it points (like :meth:`delete`): its target is
        neither moved nor followed. Only the parent folders of ``src`` and ``dst`` are resolved and
        must stay inside the workspace; an existing ``dst`` (a link too) is ``exists`` unless
        ``overwrite``, which replaces that name itself.
        """
        s_norm, s_real = self._resolve_item(src)
        d_norm, d_real = self._resolve_item(dst)
        if not s_norm or not d_norm:
            raise WorkspaceError("invalid_argument", "the workspace root cannot be moved", s_norm)
        if d_real == s_real or d_real.startswith(s_real + os.sep):
            raise WorkspaceError(
                "invalid_argument", f"cannot move {s_norm} into itself ({d_norm})", s_norm
            )
        if not os.path.lexists(s_real):
            raise WorkspaceError("not_found", f"{s_norm} does not exist", s_norm)
        try:
            if overwrite:
                os.replace(s_real, d_real)
            elif os.path.isdir(s_real) and not os.path.islink(s_real):
                # rename(2) replaces only an empty folder; refuse an existing one up front.
                if os.path.lexists(d_real):
                    raise WorkspaceError("exists", f"{d_norm} already exists", d_norm)
                os.rename(s_real, d_real)
            else:
                # link() refuses an existing name atomically (os has no RENAME_NOREPLACE);
                # follow_symlinks=False hard-links the symlink itself, not its target.
                os.link(s_real, d_real, follow_symlinks=False)
                os.unlink(s_real)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENAMETOOLONG, errno.EISDIR):
                raise _os_error(e, d_norm) from None  # the destination's name is the problem
            # Either side may be the cause (an immutable source, a read-only destination
            # folder, a missing folder on the way): name both rather than guess.
            reason = (e.strerror or type(e).__name__).lower()
            raise WorkspaceError(
                _os_error(e, s_norm).code,
                f"cannot rename {s_norm} to {d_norm}: {reason}",
                s_norm,
            ) from None
        _fsync_dir(os.path.dirname(d_real))
        return self._item_entry(d_norm, d_real)

    def delete(self, rel: str, *, recursive: bool = False) -> None:
        """Delete a file, a symlink (not its target) or, with ``recursive``, a folder tree."""
        norm = self.normalize(rel)
        if not norm:
            raise WorkspaceError("invalid_argument", "the workspace root cannot be deleted", norm)
        # Resolve the parent only: deleting a link removes the link, wherever it points.
        parent_norm = os.path.dirname(norm)
        _, parent_real = self._resolve(parent_norm)
        real = os.path.join(parent_real, os.path.basename(norm))
        try:
            st = os.lstat(real)
            if stat.S_ISDIR(st.st_mode):
                if recursive:
                    _rmtree(real)
                else:
                    os.rmdir(real)
            else:
                os.unlink(real)
        except OSError as e:
            raise _os_error(e, norm) from None
        _fsync_dir(parent_real)

    # -- search ----------------------------------------------------------------------------
    def walk(
        self,
        folder: str = "",
        deadline: float | None = None,
        *,
        recursive: bool = True,
        check: Check = _no_check,
    ) -> Iterator[tuple[str, str]]:
        """Yield ``(relative path, real path)`` of the files under a folder, names sorted.

        A folder's files come before its subfolders' files.

        Symlinked folders are not followed and symlinks are not yielded (a link may lead out).

        Parameters
        ----------
        folder
            Where to start (``""``: the workspace root).
        deadline
            ``time.monotonic()`` value after which the walk raises ``too_large``.
        recursive
            Whether to descend into subfolders.
        check
            Called before each folder is read: the extension answers pings there, and it may
            raise to stop the walk (cancel).
        """
        norm, real = self._resolve(folder)
        limit = None if deadline is None else deadline - time.monotonic()
        if deadline is None:
            deadline = time.monotonic() + 3600.0
        stack = [(norm, real)]
        while stack:
            check()
            if time.monotonic() > deadline:
                within = "" if limit is None else f" of {max(0.0, limit):.1f} s"
                raise WorkspaceError(
                    "too_large",
                    f"walking the workspace took longer than its time limit{within}; "
                    "narrow the folder or the pattern",
                )
            rel_dir, real_dir = stack.pop()
            try:
                with os.scandir(real_dir) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            subfolders = []
            for e in entries:
                child = f"{rel_dir}/{e.name}" if rel_dir else e.name
                if e.is_dir(follow_symlinks=False):
                    subfolders.append((child, e.path))
                elif e.is_file(follow_symlinks=False):
                    yield child, e.path
            if recursive:
                # A folder's files first, then its subfolders depth-first in name order.
                stack.extend(reversed(subfolders))

    def glob(
        self,
        pattern: str,
        *,
        limit: int = DEFAULT_PAGE,
        timeout: float = 10.0,
        check: Check = _no_check,
    ) -> list[str]:
        """Files whose workspace-relative path matches ``pattern`` (``**`` spans folders).

        Parameters
        ----------
        pattern
            A glob such as ``src/**/*.py`` or ``*.md``.
        limit
            At most this many paths (1 to 10,000).
        timeout
            Seconds before the walk gives up.
        check
            Called while walking (see :meth:`walk`).

        Returns
        -------
        list[str]
            Matching paths in walk order (folders in name order).
        """
        if not 1 <= _whole("limit", limit) <= MAX_PAGE:
            raise WorkspaceError("invalid_argument", f"limit must be 1..{MAX_PAGE}, got {limit}")
        if not isinstance(pattern, str):
            raise WorkspaceError("invalid_argument", f"pattern must be a string, got {pattern!r}")
        self.normalize(pattern.replace("*", "x").replace("?", "x"))
        rx = glob_regex(pattern)
        out: list[str] = []
        for rel, _ in self.walk("", time.monotonic() + timeout, check=check):
            if rx.match(rel):
                out.append(rel)
                if len(out) >= limit:
                    break
        return out

    def search(
        self,
        query: str,
        *,
        glob: str = "**",
        regex: bool = False,
        case_sensitive: bool = False,
        max_results: int = 1000,
        max_file_bytes: int | None = None,
        timeout: float = 10.0,
        check: Check = _no_check,
        skipped: list[str] | None = None,
    ) -> list[Match]:
        """Search file contents line by line.

        A regular expression is matched in a helper process (see :mod:`.matching`), so one that
        backtracks without end is stopped by ``timeout`` instead of freezing the extension.

        Parameters
        ----------
        query
            Text (or a regular expression with ``regex=True``).
        glob
            Which files to search.
        regex
            Whether ``query`` is a regular expression.
        case_sensitive
            Whether case matters.
        max_results
            Stop after this many matches (1 to 10,000).
        max_file_bytes
            Skip larger files (``None``: search files of any size).
        timeout
            Seconds before the search gives up.
        check
            Called while walking and matching: the extension answers pings there, and it may
            raise to stop the search (cancel).
        skipped
            If given, the path of every file not searched (larger than ``max_file_bytes``, not
            UTF-8 text, unreadable) is appended to it.

        Returns
        -------
        list[Match]
            Matches in walk order.

        Raises
        ------
        WorkspaceError
            ``invalid_argument`` for an empty query, a bad argument, an invalid regular
            expression or one that ran out of ``timeout`` matching a single file that alone
            took at least :data:`PATTERN_BLAME_SHARE` of it (the message names the pattern);
            ``too_large`` when the search (walk and matching) otherwise outlasted ``timeout``.
        """
        if not isinstance(query, str) or not query:
            raise WorkspaceError("invalid_argument", "the search text is empty")
        if not isinstance(glob, str):
            raise WorkspaceError("invalid_argument", f"glob must be a string, got {glob!r}")
        if not 1 <= _whole("max_results", max_results) <= MAX_PAGE:
            raise WorkspaceError("invalid_argument", f"max_results must be 1..{MAX_PAGE}")
        if max_file_bytes is not None:
            max_file_bytes = _whole("max_file_bytes", max_file_bytes)
        flags = 0 if _flag("case_sensitive", case_sensitive) else re.IGNORECASE
        try:
            rx = re.compile(query if _flag("regex", regex) else re.escape(query), flags)
        except re.error as e:
            raise WorkspaceError(
                "invalid_argument", f"invalid regular expression {query!r}: {e}"
            ) from None
        files = glob_regex(glob)
        deadline = time.monotonic() + timeout
        out: list[Match] = []
        try:
            helper = ForkedMatcher(rx) if regex else None
        except OSError as e:
            raise WorkspaceError(
                "io_error", f"cannot start the regular-expression search: {e.strerror or e}"
            ) from None

        def out_of_time(rel: str) -> WorkspaceError:
            return WorkspaceError(
                "too_large",
                f"the search took longer than its time limit of {timeout:.1f} s (stopped in {rel})",
                rel,
            )

        try:
            for rel, real in self.walk("", deadline, check=check):
                # the walk looks at the clock once a folder: a folder of many small files
                # would run past the limit (and a plain search gave no error)
                if time.monotonic() > deadline:
                    raise out_of_time(rel)
                if not files.match(rel):
                    continue
                check()
                if max_file_bytes is not None:
                    try:
                        too_big = os.path.getsize(real) > max_file_bytes
                    except OSError:
                        too_big = False  # gone meanwhile: the read below says so
                    if too_big:
                        if skipped is not None:
                            skipped.append(rel)
                        continue
                left = max_results - len(out)
                if helper is None:

                    def tick(rel: str = rel) -> None:
                        check()
                        if time.monotonic() > deadline:
                            raise out_of_time(rel)

                    hits = match_file(rx, real, left, tick)
                else:
                    started = time.monotonic()
                    try:
                        hits = helper.match(real, left, deadline, check)
                    except MatchTimeoutError:
                        # Out of time is the pattern's fault only if this one file took most
                        # of the limit; a search that ran out over many files (a big
                        # workspace) is too large, as a plain search says.
                        if time.monotonic() - started < timeout * PATTERN_BLAME_SHARE:
                            raise out_of_time(rel) from None
                        raise WorkspaceError(
                            "invalid_argument",
                            f"the regular expression {query!r} did not finish matching {rel} "
                            f"within the search's time limit of {timeout:.1f} s; patterns with "
                            "nested repeats such as (a+)+ can take forever: simplify it",
                            rel,
                        ) from None
                if hits is None:
                    if skipped is not None:
                        skipped.append(rel)
                    continue
                out.extend(Match(rel, line, col, text) for line, col, text in hits)
                if len(out) >= max_results:
                    break
        finally:
            if helper is not None:
                helper.close()
        return out


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a path glob: ``**/`` spans folders, ``*`` and ``?`` stay within one.

    Returns
    -------
    re.Pattern
        A pattern matching whole workspace-relative paths.
    """
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _whole(name: str, value: object) -> int:
    """Return ``value`` if it is a whole number; refuse it naming ``name`` otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON from a form may say 200.0
    if isinstance(value, bool) or not isinstance(value, int):
        raise WorkspaceError("invalid_argument", f"{name} must be a whole number, got {value!r}")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise WorkspaceError("invalid_argument", f"{name} must be true or false, got {value!r}")
    return value


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rmtree(path: str) -> None:
    """Remove a tree without following symlinks out of it."""
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            _rmtree(entry.path)
        else:
            os.unlink(entry.path)
    os.rmdir(path)
