"""The shipped templates end to end: real extension processes, the embedded model, a real Pit.

Also the recoveries that need the real AI Instrument: reverse reconstruction through its
``<type>.reverse`` methods, and a killed instrument process in the middle of a node.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from symphony.conductor.conductor import Conductor, RunOptions, apply_inputs
from symphony.conductor.events import NodeCost, NodeToken, RecoveryChosen, RunEvent
from symphony.conductor.executor import LocalExecutor
from symphony.conductor.host_gateway import HostGateway, ModelTracker
from symphony.conductor.models import ModelCatalog, ModelSpec
from symphony.conductor.policy import Strategy
from symphony.extension_host.host import ExtensionHost
from symphony.pit import Pit
from symphony.registry import NodeTypeRegistry, default_registry
from symphony.workflow import Melody, NodePolicy, load_template
from tests.conductor.conftest import FixedPolicy

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

T = TypeVar("T")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "notes").mkdir(parents=True)
    (ws / "notes" / "cats.md").write_text(
        "# Cats\n\nCats sleep about 15 hours a day. They hunt at dawn and dusk.\n"
    )
    (ws / "notes" / "tea.md").write_text(
        "# Tea\n\nGreen tea is brewed at 80 °C for two minutes; black tea at 95 °C.\n"
    )
    (ws / "calc.py").write_text(
        "def mean(xs):\n    return sum(xs) / len(xs)\n\n\nprint(mean([]))\n"
    )
    return ws


@pytest.fixture
def host(workspace: Path) -> Iterator[ExtensionHost]:
    from PySide6.QtCore import QCoreApplication

    assert QCoreApplication.instance() is not None  # the session's QApplication
    h = ExtensionHost(workspace=workspace)
    yield h
    h.shutdown()


def _registry(host: ExtensionHost) -> NodeTypeRegistry:
    r = default_registry()
    for ext_id, manifest in host.manifests.items():
        r.register_from_manifest(ext_id, manifest.node_types)
    return r


def in_qt(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a qasync loop over the session's Qt application."""
    from PySide6.QtCore import QCoreApplication

    from symphony.qtloop import QtEventLoop

    loop = QtEventLoop(QCoreApplication.instance())
    try:
        return loop.run_until_complete(make())
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def _conductor(
    host: ExtensionHost, pit: Pit, catalog: ModelCatalog | None = None, policy: Any = None
) -> Conductor:
    registry = _registry(host)
    return Conductor(
        pit, registry, LocalExecutor(registry, HostGateway(host)), catalog=catalog, policy=policy
    )


def test_summarize_a_folder(host: ExtensionHost, workspace: Path) -> None:
    pit = Pit.in_memory()
    melody = load_template("summarize_folder")
    apply_inputs(melody, {"folder": "notes", "report": "out/SUMMARY.md"})
    c = _conductor(host, pit)
    events: list[RunEvent] = []
    c.subscribe(events.append)
    result = in_qt(lambda: c.run(melody, RunOptions(retry_backoff=0.1)))
    assert result.status == "succeeded", result.detail
    assert result.node("list").state == "succeeded"
    assert sorted(result.outputs) == ["write.path"]
    report = (workspace / "out" / "SUMMARY.md").read_text()
    assert report.startswith("# Folder summary")
    assert len(report) > 40
    summary_id = result.node("summarize").artifacts["summary"]
    read_id = result.node("read").artifacts["text"]
    assert read_id in pit.artifacts.ancestors(summary_id)  # lineage through the run
    costs = [e for e in events if isinstance(e, NodeCost) and e.node_id == "summarize"]
    assert costs[-1].tokens > 0
    assert costs[-1].memory_bytes > 50 << 20  # the instrument process holds the model


def test_review_a_file(host: ExtensionHost, workspace: Path) -> None:
    pit = Pit.in_memory()
    melody = load_template("review_file")
    apply_inputs(melody, {"file": "calc.py", "report": "REVIEW.md"})
    result = in_qt(lambda: _conductor(host, pit).run(melody, RunOptions(retry_backoff=0.1)))
    assert result.status == "succeeded", result.detail
    assert (workspace / "REVIEW.md").read_text().strip()


def test_idea_to_plan_then_cached(host: ExtensionHost) -> None:
    pit = Pit.in_memory()
    melody = load_template("idea_to_plan")
    apply_inputs(melody, {"idea": "a command-line tool that counts words in a text file"})
    c = _conductor(host, pit)
    first = in_qt(lambda: c.run(melody, RunOptions(retry_backoff=0.1)))
    assert first.status == "succeeded", first.detail
    assert first.node("code").model == "smollm2-135m-instruct-q4_1"
    assert first.outputs["docs.docs"].strip()
    second = in_qt(lambda: c.run(melody, RunOptions(retry_backoff=0.1)))
    assert [n.cached for n in second.nodes] == [True, True, True, True]


def test_reverse_reconstruction_with_the_real_instrument(host: ExtensionHost) -> None:
    """The feature extractor fails for good; features are rebuilt from the code of a run
    before (seed 004: "if feature extraction fails but code exists, reverse-engineer
    features")."""
    pit = Pit.in_memory()
    catalog = ModelCatalog()
    # a model on a server that does not answer: every attempt on it fails
    catalog.add(ModelSpec("offline", {"kind": "openai", "base_url": "http://127.0.0.1:9/v1",
                                      "model": "gone", "api_key_secret": ""}))  # fmt: skip
    melody = Melody("reverse")
    features = melody.create_node(
        "ai.feature_extractor",
        config={"max_features": 3},
        policy=NodePolicy(max_retries=0),
    )
    code = melody.create_node("ai.code_generator")
    melody.connect(features.id, "features", code.id, "features")
    prompt = melody.create_node("op.template", config={"template": "reverse a string"})
    melody.connect(prompt.id, "text", features.id, "prompt")
    c = _conductor(host, pit, catalog, FixedPolicy(Strategy.RECONSTRUCT))
    first = in_qt(lambda: c.run(melody, RunOptions(retry_backoff=0.1)))
    assert first.status == "succeeded", first.detail
    old_code = first.node(code.id).artifacts["code"]
    melody.set_node_config(features.id, {"max_features": 3, "model": "offline"})
    events: list[RunEvent] = []
    c.subscribe(events.append)
    second = in_qt(lambda: c.run(melody, RunOptions(retry_backoff=0.1)))
    assert second.status == "succeeded", second.detail
    rebuilt = pit.artifacts.info(second.node(features.id).artifacts["features"])
    assert rebuilt.produced_by[2] == "reverse:ai.code_generator"
    assert old_code in rebuilt.inputs
    assert any(isinstance(e, RecoveryChosen) and e.strategy == "reconstruct" for e in events)
    assert isinstance(second.outputs[f"{code.id}.code"], str)


def test_killed_instrument_is_retried_and_the_melody_completes(host: ExtensionHost) -> None:
    pit = Pit.in_memory()
    melody = Melody("one")
    melody.create_node("ai.prompt_enhancer", config={"prompt": "a tiny to-do list app"})
    c = _conductor(host, pit, policy=FixedPolicy(Strategy.RETRY))
    killed: list[int] = []

    def kill_once(e: RunEvent) -> None:
        if isinstance(e, NodeToken) and e.node_id == "n1":  # mid-generation
            pid = host.pid("symphony.ai_instrument")
            if pid and not killed:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    c.subscribe(kill_once)
    result = in_qt(lambda: c.run(melody, RunOptions(retry_backoff=0.1)))
    assert killed
    assert result.status == "succeeded", result.detail
    assert result.node("n1").attempts == 2
    assert result.node("n1").recoveries[0].startswith("retry")
    assert host.pid("symphony.ai_instrument") not in (None, killed[0])


def test_model_loads_and_unloads_reach_the_pool_manager(host: ExtensionHost) -> None:
    pit = Pit.in_memory()
    tracker = ModelTracker(host, pit, ModelCatalog())  # noqa: F841 - kept alive: Qt holds a weak ref
    model = "smollm2-135m-instruct-q4_1"

    async def load_then_unload() -> list[str]:
        states = []
        await host.call("symphony.ai_instrument", "models.load", {}, timeout=120)
        for _ in range(200):  # the notification follows the answer
            if model in pit.pool and pit.pool.state(model) == "warm":
                break
            await asyncio.sleep(0.01)
        states.append(pit.pool.state(model))
        await host.call("symphony.ai_instrument", "models.unload", {}, timeout=60)
        for _ in range(200):
            if pit.pool.state(model) == "idle":
                break
            await asyncio.sleep(0.01)
        states.append(pit.pool.state(model))
        return states

    assert in_qt(load_then_unload) == ["warm", "idle"]
    assert [h[1] for h in pit.pool.history(model)] == ["loading", "warm", "idle"]
