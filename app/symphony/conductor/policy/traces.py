"""Recorded decisions of real runs: what the situation was, what was chosen, how it ended.

The conductor stores each run's traces in the Pit's Artifact Store as one artifact named
``fqg.trace/<run_id>`` of kind ``jsonl``, one :meth:`Trace.to_json` object per line;
``symphony fqg train --from-traces`` reads them back with :func:`read_traces`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any, Protocol

from symphony.conductor import TRACE_PREFIX
from symphony.conductor.policy.context import ErrorKind, FailureContext, Strategy

_CONTEXT_FIELDS = tuple(f.name for f in fields(FailureContext))
_INT_FIELDS = frozenset(
    {"attempt", "max_retries", "fallbacks_left", "downstream", "model_failures"}
)
_BOOL_FIELDS = frozenset({"can_reconstruct", "skippable", "inputs_skipped"})
#: Fields added after the first traces were written: a trace without them gets the defaults.
_OPTIONAL_FIELDS = frozenset(
    {"model_failures", "previous_kind", "last_strategy", "cost_rest", "inputs_skipped"}
)


class TraceError(ValueError):
    """A trace that cannot be read; the message names the field (and artifact and line)."""


def _number(d: dict[str, Any], key: str, where: str) -> float:
    if key not in d:
        raise TraceError(f"{where}: missing field {key!r}")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise TraceError(f"{where}: field {key!r} must be a finite number, got {v!r}")
    return float(v)


@dataclass(frozen=True)
class Trace:
    """One decision of a real run and its outcome.

    Parameters
    ----------
    context
        The failure as the policy saw it.
    strategy
        What was done.
    success
        Whether the node then produced its output (or was skipped acceptably).
    cost
        What the recovery cost, as a fraction of the run's budget.
    time
        How long the recovery took, in seconds.
    """

    context: FailureContext
    strategy: Strategy
    success: bool
    cost: float
    time: float

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready object (inverse of :meth:`from_json`)."""
        ctx = {name: getattr(self.context, name) for name in _CONTEXT_FIELDS}
        ctx["error_kind"] = self.context.error_kind.value
        prev, last = self.context.previous_kind, self.context.last_strategy
        ctx["previous_kind"] = None if prev is None else prev.value
        ctx["last_strategy"] = None if last is None else last.value
        return {
            "context": ctx,
            "strategy": self.strategy.value,
            "success": self.success,
            "cost": self.cost,
            "time": self.time,
        }

    @classmethod
    def from_json(cls, d: object, *, where: str = "trace") -> Trace:
        """Read a trace written by :meth:`to_json`.

        Raises
        ------
        TraceError
            A field is missing or has the wrong type or value; the message names it.
        """
        if not isinstance(d, dict):
            raise TraceError(f"{where}: expected an object, got {type(d).__name__}")
        raw = d.get("context")
        if not isinstance(raw, dict):
            raise TraceError(f"{where}: field 'context' must be an object, got {raw!r}")
        kw: dict[str, Any] = {}
        for name in _CONTEXT_FIELDS:
            cw = f"{where}: context"
            if name in _OPTIONAL_FIELDS and name not in raw:
                continue
            if name in ("previous_kind", "last_strategy"):
                value = raw[name]
                enum_type: type[ErrorKind] | type[Strategy] = (
                    ErrorKind if name == "previous_kind" else Strategy
                )
                try:
                    kw[name] = None if value is None else enum_type(value)
                except ValueError:
                    names = ", ".join(k.value for k in enum_type)
                    raise TraceError(
                        f"{cw}: field {name!r} must be null or one of {names}, got {value!r}"
                    ) from None
            elif name == "error_kind":
                value = raw.get(name)
                try:
                    kw[name] = ErrorKind(value)
                except ValueError:
                    kinds = ", ".join(k.value for k in ErrorKind)
                    raise TraceError(
                        f"{cw}: field 'error_kind' must be one of {kinds}, got {value!r}"
                    ) from None
            elif name in _BOOL_FIELDS:
                if not isinstance(raw.get(name), bool):
                    raise TraceError(f"{cw}: field {name!r} must be true or false")
                kw[name] = raw[name]
            elif name in _INT_FIELDS:
                value = raw.get(name)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise TraceError(f"{cw}: field {name!r} must be an integer, got {value!r}")
                kw[name] = value
            else:
                kw[name] = _number(raw, name, cw)
        try:
            context = FailureContext(**kw)
        except (TypeError, ValueError) as e:
            raise TraceError(f"{where}: {e}") from None
        try:
            strategy = Strategy(d.get("strategy"))
        except ValueError:
            names = ", ".join(s.value for s in Strategy)
            raise TraceError(
                f"{where}: field 'strategy' must be one of {names}, got {d.get('strategy')!r}"
            ) from None
        if not isinstance(d.get("success"), bool):
            raise TraceError(f"{where}: field 'success' must be true or false")
        cost = _number(d, "cost", where)
        time = _number(d, "time", where)
        if cost < 0 or time < 0:
            bad = "cost" if cost < 0 else "time"
            raise TraceError(f"{where}: field {bad!r} must be >= 0")
        return cls(context, strategy, d["success"], cost, time)


def encode_traces(traces: list[Trace]) -> bytes:
    """Return the ``jsonl`` bytes of a run's traces (what the conductor stores)."""
    return "".join(json.dumps(t.to_json(), sort_keys=True) + "\n" for t in traces).encode()


def decode_traces(data: bytes, *, where: str = "traces") -> list[Trace]:
    """Parse ``jsonl`` bytes written by :func:`encode_traces`.

    Raises
    ------
    TraceError
        Not UTF-8, a line is not JSON, or a trace is malformed (the message names the line).
    """
    try:
        text = data.decode()
    except UnicodeDecodeError as e:
        raise TraceError(f"{where}: not UTF-8 ({e})") from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TraceError(f"{where} line {n}: not JSON ({e.msg})") from None
        out.append(Trace.from_json(obj, where=f"{where} line {n}"))
    return out


class _Artifacts(Protocol):
    def names(self, prefix: str = ...) -> list[str]: ...
    def get(self, artifact: int | str) -> bytes: ...


class _HasArtifacts(Protocol):
    @property
    def artifacts(self) -> _Artifacts: ...


def read_traces(pit: _HasArtifacts) -> list[Trace]:
    """Every trace stored in ``pit`` (artifacts named ``fqg.trace/*``), in name order.

    Raises
    ------
    TraceError
        A trace artifact is malformed (the message names the artifact and line).
    """
    store = pit.artifacts
    out: list[Trace] = []
    for name in store.names(TRACE_PREFIX):  # sorted
        out.extend(decode_traces(store.get(name), where=name))
    return out
