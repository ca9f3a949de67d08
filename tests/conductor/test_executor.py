"""LocalExecutor: what an extension's answer becomes (a NodeResult or a NodeError)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from symphony.conductor.executor import LocalExecutor, NodeError, NodeTask
from symphony.conductor.policy import ErrorKind
from symphony.registry import default_registry


class AnsweringGateway:
    """An extension gateway that answers every call with ``answer`` (a fault injector)."""

    def __init__(self, answer: Mapping[str, Any], memory: int = 0) -> None:
        self.answer = answer
        self.memory = memory
        self.calls: list[tuple[str, str, Mapping[str, Any], float | None]] = []
        self.memory_asked: list[str] = []

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
        self.calls.append((extension_id, method, params, timeout))
        return self.answer

    def memory_of(self, extension_id: str) -> int:
        self.memory_asked.append(extension_id)
        return self.memory


class Sink:
    def progress(self, fraction: float | None, message: str = "") -> None:
        pass

    def token(self, text: str) -> None:
        pass


def _task(model: str = "") -> NodeTask:
    return NodeTask(
        "run-1", "n1", "ext.echo", "1.0.0", "ext", "node.echo", {"x": 1}, {"k": "v"}, model,
        None, 1, 30.0,
    )  # fmt: skip


def _run(executor: LocalExecutor, task: NodeTask) -> Any:
    return asyncio.run(executor.run(task, Sink()))


def test_an_answer_becomes_a_result_with_its_usage() -> None:
    gw = AnsweringGateway(
        {
            "outputs": {"x": 2},
            "usage": {"model": "m-big", "cost": 0.25, "completion_tokens": 7},
            "memory_bytes": 1234,
        }
    )
    result = _run(LocalExecutor(default_registry(), gw), _task(model="m"))
    assert gw.calls == [("ext", "node.echo", {"inputs": {"x": 1}, "config": {"k": "v"}}, 30.0)]
    assert dict(result.outputs) == {"x": 2}
    assert (result.model, result.cost, result.tokens, result.memory_bytes) == (
        "m-big",
        0.25,
        7,
        1234,
    )
    assert result.extra["usage"]["completion_tokens"] == 7
    assert result.extra["seconds"] >= 0
    assert gw.memory_asked == []  # the answer said how much memory it took


def test_a_model_node_without_memory_in_its_answer_asks_the_gateway() -> None:
    gw = AnsweringGateway({"outputs": {}}, memory=5_000_000)
    result = _run(LocalExecutor(default_registry(), gw), _task(model="m"))
    assert gw.memory_asked == ["ext"]
    assert result.memory_bytes == 5_000_000
    assert result.model == "m"  # no usage: the task's model
    assert (result.cost, result.tokens) == (0.0, 0)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"result": 1}, "without an 'outputs' object"),
        ({"outputs": [1, 2]}, "without an 'outputs' object"),
        ({"outputs": {}, "usage": {"cost": "a lot"}}, "usage.cost = 'a lot', not a finite number"),
        (
            {"outputs": {}, "usage": {"completion_tokens": [3]}},
            "usage.completion_tokens = [3], not a finite number",
        ),
        ({"outputs": {}, "memory_bytes": "12 MB"}, "memory_bytes = '12 MB', not a finite number"),
        (
            {"outputs": {}, "usage": {"completion_tokens": float("inf")}},
            "usage.completion_tokens = inf, not a finite number",
        ),
        ({"outputs": {}, "usage": {"cost": float("nan")}}, "usage.cost = nan, not a finite number"),
        (
            {"outputs": {}, "usage": {"cost": float("-inf")}},
            "usage.cost = -inf, not a finite number",
        ),
    ],
)
def test_a_malformed_answer_is_a_persistent_failure_that_says_what(
    answer: dict[str, Any], words: str
) -> None:
    with pytest.raises(NodeError) as e:
        _run(LocalExecutor(default_registry(), AnsweringGateway(answer)), _task())
    assert e.value.kind is ErrorKind.PERSISTENT
    assert words in e.value.message
    assert "'ext'" in e.value.message
    assert "'node.echo'" in e.value.message


def test_usage_that_is_not_an_object_is_ignored() -> None:
    gw = AnsweringGateway({"outputs": {"x": 1}, "usage": "n/a"})
    result = _run(LocalExecutor(default_registry(), gw), _task())
    assert (result.model, result.cost, result.tokens) == ("", 0.0, 0)


def test_an_extension_type_without_a_host_fails_clearly() -> None:
    with pytest.raises(NodeError, match="no extension host is available"):
        _run(LocalExecutor(default_registry()), _task())


def test_a_fault_inside_an_operator_fails_its_node_not_the_run() -> None:
    def broken(_inputs: Mapping[str, Any], _config: Mapping[str, Any]) -> Any:
        raise OverflowError("cannot fit 'int' into an index-sized integer")

    executor = LocalExecutor(default_registry(), inline={"ext.echo": broken})
    with pytest.raises(NodeError) as caught:
        executor.run_inline(_task())
    assert caught.value.kind is ErrorKind.PERSISTENT  # the same inputs fail the same way
    assert str(caught.value) == (
        "ext.echo failed unexpectedly: OverflowError: cannot fit 'int' into an index-sized integer"
    )
