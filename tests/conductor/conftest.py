"""Conductor fixtures: a registry with test node types and an executor that runs them for real.

The ``t.*`` types are in-process work (like built-in operators) or asynchronous work (like an
extension call) whose behaviour each test scripts: fail N times with a given error kind, take a
while, fail only on one model. That is fault injection; everything else is the real conductor
over a real Pit.
"""

from __future__ import annotations

import asyncio
import struct
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from symphony.conductor.conductor import Conductor
from symphony.conductor.executor import (
    LocalExecutor,
    NodeError,
    NodeResult,
    NodeTask,
    TaskSink,
)
from symphony.conductor.models import ModelCatalog, ModelSpec
from symphony.conductor.policy import Decision, ErrorKind, FailureContext, Strategy
from symphony.pit import Pit
from symphony.registry import NodeTypeRegistry, default_registry, description_from_dict


def _type(type_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": type_id,
        "version": "1.0.0",
        "title": type_id,
        "category": "Operators",
        "inputs": [{"name": "x", "type": "any"}, {"name": "y", "type": "any"}],
        "outputs": [{"name": "out", "type": "any"}],
        "config": [{"name": "seed", "kind": "number", "default": 0}],
        **extra,
    }


def make_registry() -> NodeTypeRegistry:
    """Built-ins plus ``t.inline`` (in-process) and ``t.work``/``t.model`` (asynchronous)."""
    r = default_registry()
    r.register(description_from_dict(_type("t.inline"), source="tests"))
    r.register(description_from_dict(_type("t.work"), source="tests"))
    r.register(description_from_dict(_type("t.world", cacheable=False), source="tests"))
    model = _type(
        "t.model",
        config=[
            {"name": "model", "kind": "model-choice", "default": ""},
            {"name": "seed", "kind": "number", "default": 0},
        ],
        reverse_reconstruction=True,
        category="Instruments",
    )
    r.register(description_from_dict(model, source="tests"))
    return r


@dataclass
class Script:
    """What the scripted executor does for one node."""

    fail: int = 0  # fail this many attempts first
    kind: ErrorKind = ErrorKind.TRANSIENT
    code: int | None = None  # the protocol error code the failure carries
    fail_models: frozenset[str] = frozenset()  # always fail on these models
    delay: float = 0.0
    output: Any = None


class ScriptedExecutor(LocalExecutor):
    """Runs ``t.*`` nodes as scripted; counts every attempt; built-ins run for real."""

    def __init__(self, registry: NodeTypeRegistry) -> None:
        super().__init__(registry, None)
        self.scripts: dict[str, Script] = {}
        self.calls: Counter[str] = Counter()
        self.models: list[tuple[str, str]] = []
        self.running = 0
        self.max_running = 0
        self.reverse = False

    def _result(self, task: NodeTask) -> NodeResult:
        s = self.scripts.get(task.node_id, Script())
        self.calls[task.node_id] += 1
        self.models.append((task.node_id, task.model))
        if task.model in s.fail_models:
            raise NodeError(f"model {task.model} cannot do it", ErrorKind.PERSISTENT)
        if self.calls[task.node_id] <= s.fail:
            raise NodeError(f"scripted failure {self.calls[task.node_id]}", s.kind, code=s.code)
        out = s.output
        if out is None:
            out = [task.node_id, {k: task.inputs[k] for k in sorted(task.inputs)}]
        return NodeResult({"out": out}, model=task.model, cost=0.5 if task.model else 0.0)

    def runs_inline(self, task: NodeTask) -> bool:
        return task.type_id == "t.inline" or task.source == "builtin"

    def run_inline(self, task: NodeTask) -> NodeResult:
        if task.type_id == "t.inline":
            return self._result(task)
        return LocalExecutor.run_inline(self, task)

    async def run(self, task: NodeTask, sink: TaskSink) -> NodeResult:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            sink.progress(0.0, "start")
            delay = self.scripts.get(task.node_id, Script()).delay
            if task.timeout is not None and delay > task.timeout:
                await asyncio.sleep(task.timeout)
                self.calls[task.node_id] += 1
                raise NodeError(f"timed out after {task.timeout:g} s", ErrorKind.TRANSIENT)
            if delay:
                await asyncio.sleep(delay)
            sink.token("tok")
            return self._result(task)
        finally:
            self.running -= 1

    async def reconstruct(
        self, task: NodeTask, outputs: Mapping[str, Any], timeout: float | None
    ) -> Mapping[str, Any]:
        if not self.reverse:
            raise NodeError("cannot reconstruct", ErrorKind.PERSISTENT)
        self.calls[f"reverse:{task.node_id}"] += 1
        return {"x": {"rebuilt_from": outputs["out"]}}


class FixedPolicy:
    """Always the same strategy when legal, else abort (to test each strategy alone)."""

    def __init__(self, strategy: Strategy) -> None:
        self.name = f"always-{strategy.value}"
        self.strategy = strategy
        self.seen: list[FailureContext] = []

    def decide(self, ctx: FailureContext) -> Decision:
        from symphony.conductor.policy import legal_strategies

        self.seen.append(ctx)
        s = self.strategy if self.strategy in legal_strategies(ctx) else Strategy.ABORT
        return Decision(s, f"fixed {s.value}", {s: 1.0})


@pytest.fixture
def registry() -> NodeTypeRegistry:
    """The test registry."""
    return make_registry()


@pytest.fixture
def catalog() -> ModelCatalog:
    """Models ``big`` (fails in scripts), ``small`` and ``tiny`` with prices."""
    c = ModelCatalog()
    c.add(ModelSpec("big", {"kind": "openai"}, slots=2, price_per_call=1.0))
    c.add(ModelSpec("small", {"kind": "openai"}, slots=2, price_per_call=0.1))
    c.add(ModelSpec("tiny", {"kind": "openai"}, slots=1, price_per_call=0.01))
    return c


@pytest.fixture
def executor(registry: NodeTypeRegistry) -> ScriptedExecutor:
    """A scripted executor over the test registry."""
    return ScriptedExecutor(registry)


@pytest.fixture
def mem_pit() -> Pit:
    """An in-memory Pit."""
    return Pit.in_memory()


def conductor_for(
    pit: Pit,
    registry: NodeTypeRegistry,
    executor: ScriptedExecutor,
    catalog: ModelCatalog | None = None,
    strategy: Strategy = Strategy.RETRY,
) -> Conductor:
    """A conductor with a fixed-strategy policy."""
    return Conductor(pit, registry, executor, catalog=catalog, policy=FixedPolicy(strategy))


def damage_artifact(
    data_dir: Path, artifact_id: int, *, key: bytes | None = None, key_file: Path | None = None
) -> None:
    """Flip one sealed byte of ``artifact_id`` in a closed Pit's segment files (fault injection).

    The store then refuses it (``ArtifactIntegrityError``); every other version stays readable.
    """
    with Pit.open(data_dir, key=key, key_file=key_file) as pit:
        digest = bytes.fromhex(pit.artifacts.info(artifact_id).content_hash)
    hits = 0
    for seg in sorted((data_dir / "artifacts").glob("seg-*.dat")):
        raw = bytearray(seg.read_bytes())
        pos = 0
        while pos + 68 <= len(raw) and raw[pos : pos + 8] == b"PITOBJ01":
            (n,) = struct.unpack_from("<I", raw, pos + 12)
            if digest in raw[pos : pos + 68]:  # its header names the content it seals
                raw[pos + 68] ^= 0xFF  # the first sealed byte
                hits += 1
            pos += 68 + n
        seg.write_bytes(bytes(raw))
    assert hits, f"artifact {artifact_id} not found in {data_dir}"
