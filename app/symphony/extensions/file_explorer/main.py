"""The File Explorer extension: :class:`FileService` and :class:`Watcher` over the SDK.

Runs in its own process (``extension.toml``: ``entry = "main"``). The host sends ``initialize``
with ``{"workspace": <folder>}`` on every start; every path after that is relative to it and
confined to it (the service refuses ``..``, absolute paths and symlinks leading out).

Methods: ``files.list`` (paged), ``files.stat``, ``files.read`` (body = bytes), ``files.write``
(body = bytes, atomic), ``files.mkdir``, ``files.rename``, ``files.delete``, ``files.glob``,
``files.search``, ``files.watch`` / ``files.unwatch``. Changes under watched folders are pushed as
``files.changed`` notifications ``{"changes": [{"kind", "path", "is_dir", "new_path"}]}``.

Node types (``[[node_types]]`` of the manifest) run through ``node.files.list``,
``node.files.read``, ``node.files.write`` and ``node.files.search``: ``{"inputs", "config",
"options"}`` → ``{"outputs": {port: value}}`` (see :mod:`.nodes`); a bad input or config value is
an invalid-params error naming the node type and the field.
A :class:`WorkspaceError` becomes a protocol error whose ``data`` carries its ``code`` and
``path``: ``-32602`` (invalid params) for a refused path or argument, ``-32000`` otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from symphony.extensions.file_explorer.nodes import NODES, NodeInputError, NodeRunner, method_name
from symphony.extensions.file_explorer.service import (
    DEFAULT_MAX_READ,
    FRAME_HEADROOM,
    Entry,
    FileService,
    WorkspaceError,
)
from symphony.extensions.file_explorer.watcher import Watcher
from symphony.protocol.errors import ErrorCode
from symphony.sdk import Extension, Reply, RequestContext, RequestError

extension = Extension()

_INVALID = {"invalid_path", "outside_workspace", "invalid_argument"}


class _State:
    service: FileService | None = None
    # why the last ``initialize`` could not open its workspace (sent with every later request)
    init_error: WorkspaceError | None = None
    watcher: Watcher | None = None
    pump: threading.Thread | None = None
    stop = threading.Event()


_state = _State()


def workspace_error(e: WorkspaceError) -> RequestError:
    """Map a :class:`WorkspaceError` to the protocol error sent to the host."""
    code = ErrorCode.INVALID_PARAMS if e.code in _INVALID else ErrorCode.REQUEST_FAILED
    return RequestError(str(e), code, {"code": e.code, "path": e.path})


def _handler(fn: Callable[[RequestContext], Any]) -> Callable[[RequestContext], Any]:
    @functools.wraps(fn)
    def wrapped(ctx: RequestContext) -> Any:
        try:
            return fn(ctx)
        except WorkspaceError as e:
            raise workspace_error(e) from None
        # (no method prefix: callers that show one, like the conductor, add their own)
        except KeyError as e:
            raise RequestError(f"param {e} is required", ErrorCode.INVALID_PARAMS) from None
        except TypeError as e:  # a value the service's own checks did not name
            raise RequestError(f"bad params: {e}", ErrorCode.INVALID_PARAMS) from None

    return wrapped


def _service() -> FileService:
    if _state.service is None:
        if _state.init_error is not None:  # say why, not just that there is none
            raise workspace_error(_state.init_error)
        raise RequestError(
            "no workspace is open: the host started the File Explorer without one",
            ErrorCode.REQUEST_FAILED,
        )
    return _state.service


def _params(ctx: RequestContext) -> dict[str, Any]:
    p = ctx.params if ctx.params is not None else {}
    if not isinstance(p, dict):
        raise RequestError("params must be an object", ErrorCode.INVALID_PARAMS)
    return p


def _entry(e: Entry) -> dict[str, Any]:
    return dataclasses.asdict(e)


@extension.request("initialize")
@_handler
def initialize(ctx: RequestContext) -> dict[str, Any]:
    """Open the workspace named in ``params.workspace``."""
    root = _params(ctx).get("workspace")
    _close_watcher()
    _state.service = None
    _state.init_error = None
    if root is None:
        return {"workspace": None}
    if not isinstance(root, str) or not os.path.isabs(root):
        # a relative path would resolve against this process's folder, not the user's
        _state.init_error = WorkspaceError(
            "invalid_path", f"the workspace {root!r} cannot be opened: it is not an absolute path"
        )
        raise _state.init_error
    try:
        _state.service = FileService(root, max_read_bytes=read_limit(extension.max_frame))
    except WorkspaceError as e:
        _state.init_error = e
        raise
    return {"workspace": str(_state.service.root)}


def read_limit(max_frame: int) -> int:
    """Return the largest read whose reply fits a frame of ``max_frame`` bytes."""
    return min(DEFAULT_MAX_READ, max_frame - min(FRAME_HEADROOM, max_frame // 2))


@extension.request("files.list", idempotent=True)
@_handler
def files_list(ctx: RequestContext) -> dict[str, Any]:
    """List a folder, one page: ``{path, cursor?, limit?}`` → ``{entries, next_cursor}``."""
    p = _params(ctx)
    kw: dict[str, Any] = {"cursor": p.get("cursor")}
    if "limit" in p:
        kw["limit"] = p["limit"]
    page = _service().list_dir(p.get("path", ""), **kw)
    return {"entries": [_entry(e) for e in page.entries], "next_cursor": page.next_cursor}


@extension.request("files.stat", idempotent=True)
@_handler
def files_stat(ctx: RequestContext) -> dict[str, Any]:
    """Describe one path."""
    return _entry(_service().stat(_params(ctx)["path"]))


@extension.request("files.read", idempotent=True)
@_handler
def files_read(ctx: RequestContext) -> Reply:
    """Read bytes (``{path, offset?, length?}``); the data is the body."""
    p = _params(ctx)
    data = _service().read(p["path"], offset=p.get("offset", 0), length=p.get("length"))
    return Reply({"path": p["path"], "size": len(data)}, body=data)


@extension.request("files.write")
@_handler
def files_write(ctx: RequestContext) -> dict[str, Any]:
    """Replace a file atomically with the body (``{path, overwrite?, create_parents?}``)."""
    p = _params(ctx)
    entry = _service().write(
        p["path"],
        ctx.body,
        overwrite=p.get("overwrite", True),
        create_parents=p.get("create_parents", False),
    )
    return _entry(entry)


@extension.request("files.mkdir")
@_handler
def files_mkdir(ctx: RequestContext) -> dict[str, Any]:
    """Create a folder (``{path, parents?, exist_ok?}``)."""
    p = _params(ctx)
    entry = _service().mkdir(
        p["path"], parents=p.get("parents", False), exist_ok=p.get("exist_ok", False)
    )
    return _entry(entry)


@extension.request("files.rename")
@_handler
def files_rename(ctx: RequestContext) -> dict[str, Any]:
    """Rename or move (``{src, dst, overwrite?}``)."""
    p = _params(ctx)
    return _entry(_service().rename(p["src"], p["dst"], overwrite=p.get("overwrite", False)))


@extension.request("files.delete")
@_handler
def files_delete(ctx: RequestContext) -> None:
    """Delete a file or folder (``{path, recursive?}``)."""
    p = _params(ctx)
    _service().delete(p["path"], recursive=p.get("recursive", False))


@extension.request("files.glob", idempotent=True)
@_handler
def files_glob(ctx: RequestContext) -> list[str]:
    """Paths matching ``{pattern, limit?}``."""
    p = _params(ctx)
    kw: dict[str, Any] = {}
    if "limit" in p:
        kw["limit"] = p["limit"]
    timeout = ctx.remaining()
    if timeout is not None:
        kw["timeout"] = max(0.1, timeout - 0.1)
    # the walk calls check_cancelled, which is where the SDK answers the host's pings
    return _service().glob(p["pattern"], check=ctx.check_cancelled, **kw)


@extension.request("files.search", idempotent=True)
@_handler
def files_search(ctx: RequestContext) -> list[dict[str, Any]]:
    """Content search: ``{query, glob?, regex?, case_sensitive?, max_results?, max_file_bytes?}``.

    Files not searched (not UTF-8 text, unreadable, over ``max_file_bytes``) are named in a
    warning log record.
    """
    p = _params(ctx)
    kw: dict[str, Any] = {
        k: p[k]
        for k in ("glob", "regex", "case_sensitive", "max_results", "max_file_bytes")
        if k in p
    }
    timeout = ctx.remaining()
    if timeout is not None:
        kw["timeout"] = max(0.1, timeout - 0.1)
    skipped: list[str] = []
    hits = _service().search(p["query"], check=ctx.check_cancelled, skipped=skipped, **kw)
    _log_skipped(ctx, skipped)
    return [dataclasses.asdict(m) for m in hits]


def _log_skipped(ctx: RequestContext, skipped: list[str]) -> None:
    if skipped:
        more = len(skipped) - 20
        shown = ", ".join(skipped[:20]) + (f" and {more} more" if more > 0 else "")
        ctx.log(
            "warning",
            f"{ctx.method}: {len(skipped)} files not searched (not UTF-8 text, unreadable or "
            f"over the size limit): {shown}",
            skipped=skipped[:1000],
        )


def _node_handler(node_type: str, run: NodeRunner) -> Callable[[RequestContext], Any]:
    def handle(ctx: RequestContext) -> dict[str, Any]:
        try:
            result = run(_service(), _params(ctx), ctx.deadline, ctx.check_cancelled)
        except NodeInputError as e:
            raise RequestError(str(e), ErrorCode.INVALID_PARAMS) from None
        _log_skipped(ctx, result.get("skipped") or [])
        return result

    handle.__name__ = "node_" + node_type.replace(".", "_")
    handle.__doc__ = f"Run one ``{node_type}`` node (see :mod:`.nodes`)."
    return _handler(handle)


for _type, _run in NODES.items():
    # Writes are not idempotent for mode "append"; the host must not retry them after a crash.
    extension.request(method_name(_type), idempotent=_type != "files.write")(
        _node_handler(_type, _run)
    )


@extension.request("files.watch")
@_handler
def files_watch(ctx: RequestContext) -> dict[str, Any]:
    """Watch a folder tree (``{path}``); changes arrive as ``files.changed`` notifications."""
    service = _service()
    rel = service.normalize(_params(ctx).get("path", ""))
    if _state.watcher is None:
        _state.watcher = Watcher(service.root)
        _state.stop = threading.Event()
        _state.pump = threading.Thread(
            target=_pump, args=(_state.watcher, _state.stop), name="files-watch", daemon=True
        )
        _state.pump.start()
    _state.watcher.watch(rel)
    return {"path": rel, "backend": _state.watcher.backend}


@extension.request("files.unwatch")
@_handler
def files_unwatch(ctx: RequestContext) -> None:
    """Stop watching a folder tree (``{path}``)."""
    rel = _service().normalize(_params(ctx).get("path", ""))
    if _state.watcher is not None:
        _state.watcher.unwatch(rel)


def _pump(watcher: Watcher, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            changes = watcher.read(0.25)
        except OSError:
            return
        if changes and not stop.is_set():
            extension.notify("files.changed", {"changes": [dataclasses.asdict(c) for c in changes]})


def _close_watcher() -> None:
    _state.stop.set()
    if _state.pump is not None:
        _state.pump.join(2)
        _state.pump = None
    if _state.watcher is not None:
        _state.watcher.close()
        _state.watcher = None


@extension.on_shutdown
def _shutdown() -> None:
    _close_watcher()
