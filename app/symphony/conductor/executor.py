"""How the conductor gets a node's work done: the executor interface and the local executor.

The conductor never calls an operator or an extension itself. It hands an :class:`NodeTask` —
plain, picklable data: the type id, the protocol method, the inputs and config, the model — to an
:class:`Executor` and gets a :class:`NodeResult` back or a :class:`NodeError` saying what kind of
failure it was. :class:`LocalExecutor` runs built-in operators in-process and sends extension node
types to their extension process through an :class:`ExtensionGateway`. A cluster executor (Ray,
Dask distributed) implements the same two methods and ships the task elsewhere; nothing in the
conductor changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from symphony.conductor.policy import ErrorKind
from symphony.registry import NodeTypeRegistry, OperatorError

_log = logging.getLogger("symphony.conductor")
_N = TypeVar("_N", int, float)

__all__ = [
    "Executor",
    "ExtensionGateway",
    "LocalExecutor",
    "NodeError",
    "NodeResult",
    "NodeTask",
    "TaskSink",
    "error_kind_for_code",
]


@dataclass(slots=True)
class NodeTask:
    """One attempt at one node, as an executor sees it.

    Read-only by convention; not frozen because a frozen dataclass costs ~3 µs to build and one
    is built per node.

    Attributes
    ----------
    run_id, node_id
        Which run and node (for logs and cancellation).
    type_id, type_version
        The node type.
    source
        ``"builtin"`` or the id of the extension that runs the type.
    method
        The protocol method an extension is asked (``NodeTypeDescription.method``).
    inputs
        Input port name → value (JSON); absent ports are missing.
    config
        The node's config merged over the type's defaults, with ``model`` set to :attr:`model`
        when the type has a model field.
    model
        The model this attempt uses (``""`` for types without one).
    provider
        The model's provider spec for the AI Instrument (``None``: the embedded default).
    attempt
        1 for the first attempt.
    timeout
        Seconds the attempt may take, or ``None``.
    """

    run_id: str
    node_id: str
    type_id: str
    type_version: str
    source: str
    method: str
    inputs: Mapping[str, Any]
    config: Mapping[str, Any]
    model: str = ""
    provider: Mapping[str, Any] | None = None
    attempt: int = 1
    timeout: float | None = None


@dataclass(slots=True)
class NodeResult:
    """What a successful attempt produced.

    Read-only by convention, like :class:`NodeTask`, and for the same reason: one is built per
    node, and frozen it cost 2.1 µs to build instead of 0.85.

    Attributes
    ----------
    outputs
        Output port name → value (JSON).
    model
        The model that served it (``""`` for operators).
    cost
        Money spent (the provider's price × tokens); 0 for local work.
    tokens
        Completion tokens, when a model generated.
    memory_bytes
        Peak resident memory of the process that did the work, when known.
    extra
        Whatever else the executor reports (usage, finish reason).
    """

    outputs: Mapping[str, Any]
    model: str = ""
    cost: float = 0.0
    tokens: int = 0
    memory_bytes: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


class NodeError(Exception):
    """An attempt failed; ``kind`` tells the recovery policy what sort of failure it was."""

    def __init__(self, message: str, kind: ErrorKind, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.code = code

    def __str__(self) -> str:
        return self.message


class TaskSink(Protocol):
    """Where an executor reports what happens during an attempt."""

    def progress(self, fraction: float | None, message: str = "") -> None:
        """Report progress (``fraction`` 0..1, ``None`` when unknown)."""

    def token(self, text: str) -> None:
        """Report a piece of streamed output."""


class Executor(Protocol):
    """Runs node tasks. The conductor awaits :meth:`run` for each attempt.

    :meth:`runs_inline` lets pure, fast work (built-in operators) skip the task machinery: the
    conductor then calls :meth:`run_inline` on its own thread.
    """

    def runs_inline(self, task: NodeTask) -> bool:
        """Return whether :meth:`run_inline` can do this task synchronously and quickly."""
        ...

    def run_inline(self, task: NodeTask) -> NodeResult:
        """Do the task now; raise :class:`NodeError` on failure."""
        ...

    async def run(self, task: NodeTask, sink: TaskSink) -> NodeResult:
        """Do the task; raise :class:`NodeError` on failure. Cancellation cancels the work.

        The executor enforces ``task.timeout``: past it, the work is stopped and a transient
        :class:`NodeError` raised.
        """
        ...


# Optional executor capability, looked up with getattr by the conductor (reverse
# reconstruction is offered to the policy only when the executor has it):
#     async def reconstruct(task, outputs, timeout) -> Mapping[str, Any]
# rebuilds ``task``'s inputs from outputs it produced earlier (see LocalExecutor.reconstruct).


class ExtensionGateway(Protocol):
    """The conductor's door to extension processes (the extension host in the app)."""

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
        """Send a request and return its JSON result; raise :class:`NodeError` on failure."""
        ...


#: Protocol error codes → failure kinds (docs/protocol.md, docs/ai-instrument.md).
_KIND_BY_CODE: dict[int, ErrorKind] = {
    -32602: ErrorKind.INVALID_INPUT,  # invalid params
    -32601: ErrorKind.PERSISTENT,  # method not found: the extension cannot do it
    -32603: ErrorKind.PERSISTENT,  # internal error in the handler
    -32000: ErrorKind.PERSISTENT,  # the handler refused
    -32001: ErrorKind.TRANSIENT,  # deadline exceeded
    -32002: ErrorKind.TRANSIENT,  # the extension crashed (the host restarts it)
    -32003: ErrorKind.TRANSIENT,  # protocol violation: the child is killed and restarted
    -32004: ErrorKind.RESOURCE,  # resource limit
    -32005: ErrorKind.PERSISTENT,  # unauthorized
    -32006: ErrorKind.PERSISTENT,  # incompatible protocol
    -32007: ErrorKind.TRANSIENT,  # shutting down
    4000: ErrorKind.PERSISTENT,  # provider error
    4001: ErrorKind.TRANSIENT,  # provider unreachable
    4002: ErrorKind.PERSISTENT,  # bad API key
    4003: ErrorKind.PERSISTENT,  # unknown model
    4004: ErrorKind.TRANSIENT,  # rate limited
    4005: ErrorKind.TRANSIENT,  # provider timeout
    4006: ErrorKind.TRANSIENT,  # model unavailable (5xx)
    4007: ErrorKind.INVALID_INPUT,  # bad request
}


def error_kind_for_code(code: int | None) -> ErrorKind:
    """Return the failure kind of a protocol error code (unknown codes are persistent)."""
    if code is None:
        return ErrorKind.PERSISTENT
    return _KIND_BY_CODE.get(code, ErrorKind.PERSISTENT)


def _number(
    kind: Callable[[Any], _N], where: Mapping[str, Any], key: str, task: NodeTask, within: str = ""
) -> _N:
    """Read the number at ``key`` of an answer's ``within`` object (absent, null or 0: 0)."""
    value = where.get(key)
    try:
        number = kind(value or 0)
        if number - number == 0:  # false for inf and nan (an int always passes)
            return number
    except (TypeError, ValueError, OverflowError):
        pass
    raise NodeError(
        f"extension {task.source!r} answered {task.method!r} with {within}{key} = "
        f"{value!r:.40}, not a finite number",
        ErrorKind.PERSISTENT,
    )


class LocalExecutor:
    """Runs built-in operators in-process and extension types through ``gateway``.

    Parameters
    ----------
    registry
        Node types; built-in operators are run with :meth:`NodeTypeRegistry.run_operator`.
    gateway
        Reaches extension processes; ``None`` when only built-in types will run (a task for an
        extension type then fails with a clear error).
    inline
        Extra in-process implementations by type id (``(inputs, config) -> outputs``), run
        like operators: for embedding Symphony and for benchmarks.
    """

    def __init__(
        self,
        registry: NodeTypeRegistry,
        gateway: ExtensionGateway | None = None,
        *,
        inline: Mapping[str, Callable[[Mapping[str, Any], Mapping[str, Any]], Any]] | None = None,
    ) -> None:
        self.registry = registry
        self.gateway = gateway
        self._inline = dict(inline or {})

    def runs_inline(self, task: NodeTask) -> bool:
        """Built-in operators and the registered inline types run inline."""
        return task.source == "builtin" or task.type_id in self._inline

    def run_inline(self, task: NodeTask) -> NodeResult:
        """Run an operator now."""
        fn = self._inline.get(task.type_id)
        try:
            if fn is not None:
                outputs = fn(task.inputs, task.config)
            else:
                outputs = self.registry.run_operator(task.type_id, task.inputs, task.config)
        except OperatorError as e:
            raise NodeError(str(e), ErrorKind.PERSISTENT) from None
        except KeyError as e:
            raise NodeError(str(e.args[0]), ErrorKind.INVALID_INPUT) from None
        except Exception as e:  # noqa: BLE001 - a fault in one operator fails its node, not the run
            _log.exception("operator %s failed on node %s", task.type_id, task.node_id)
            raise NodeError(
                f"{task.type_id} failed unexpectedly: {type(e).__name__}: {e}", ErrorKind.PERSISTENT
            ) from None
        return NodeResult(outputs)

    async def run(self, task: NodeTask, sink: TaskSink) -> NodeResult:
        """Run an operator inline or send the task to its extension."""
        if task.source == "builtin" or task.type_id in self._inline:
            return self.run_inline(task)
        gateway = self.gateway
        if gateway is None:
            raise NodeError(
                f"node type {task.type_id!r} runs in extension {task.source!r}, "
                "and no extension host is available here",
                ErrorKind.PERSISTENT,
            )
        params: dict[str, Any] = {"inputs": dict(task.inputs), "config": dict(task.config)}
        if task.provider is not None:
            params["provider"] = dict(task.provider)
        started = time.monotonic()
        result = await gateway.call(
            task.source,
            task.method,
            params,
            timeout=task.timeout,
            on_token=sink.token,
            on_progress=sink.progress,
        )
        seconds = time.monotonic() - started
        outputs = result.get("outputs")
        # `type(...) is dict` first: the ABC check costs ~0.5 µs, and answers are JSON objects
        if type(outputs) is not dict and not isinstance(outputs, Mapping):
            raise NodeError(
                f"extension {task.source!r} answered {task.method!r} without an 'outputs' object",
                ErrorKind.PERSISTENT,
            )
        usage = result.get("usage")
        if usage is None or (type(usage) is not dict and not isinstance(usage, Mapping)):
            usage = {}
        memory = _number(int, result, "memory_bytes", task)
        cost = _number(float, usage, "cost", task, "usage.")
        tokens = _number(int, usage, "completion_tokens", task, "usage.")
        if not memory and task.model:
            memory_of = getattr(gateway, "memory_of", None)
            if memory_of is not None:
                # a model node: the timeline shows what its process holds (the model included)
                memory = int(memory_of(task.source))
        return NodeResult(
            outputs,
            str(usage.get("model", task.model)),
            cost,
            tokens,
            memory,
            {"usage": dict(usage), "seconds": seconds},
        )

    async def reconstruct(
        self, task: NodeTask, outputs: Mapping[str, Any], timeout: float | None
    ) -> Mapping[str, Any]:
        """Ask a type to rebuild its inputs from its outputs (reverse reconstruction).

        Sends ``<method>.reverse`` with ``{"outputs", "config"}`` to the type's extension and
        returns the ``inputs`` object of the answer.
        """
        if self.gateway is None or task.source == "builtin":
            raise NodeError(
                f"node type {task.type_id!r} cannot rebuild its inputs here", ErrorKind.PERSISTENT
            )
        params: dict[str, Any] = {"outputs": dict(outputs), "config": dict(task.config)}
        if task.provider is not None:
            params["provider"] = dict(task.provider)
        result = await self.gateway.call(
            task.source,
            f"{task.method}.reverse",
            params,
            timeout=timeout,
            on_token=lambda _t: None,
            on_progress=lambda _f, _m: None,
        )
        inputs = result.get("inputs")
        if not isinstance(inputs, Mapping):
            raise NodeError(
                f"extension {task.source!r} answered '{task.method}.reverse' without 'inputs'",
                ErrorKind.PERSISTENT,
            )
        return inputs
