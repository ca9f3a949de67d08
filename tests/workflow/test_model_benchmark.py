"""Model cost of a Harmony-Board-sized melody (1,000 nodes, 1,500 links); no timed assertions."""

from __future__ import annotations

import random

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from symphony.registry import NodeTypeRegistry
from symphony.workflow import Melody, dumps, loads, validate


def build_board(nodes: int = 1000, links: int = 1500, *, listeners: int = 2) -> Melody:
    rng = random.Random(7)
    m = Melody("Board")
    for _ in range(listeners):
        m.events.subscribe(lambda event: None)
    ids = [
        m.create_node("op.merge", f"Merge {i}", position=(i % 40 * 220, i // 40 * 140)).id
        for i in range(nodes)
    ]
    made = 0
    while made < links:
        a, b = sorted(rng.sample(range(nodes), 2))  # forward links only: acyclic
        if m.find_link(ids[a], "merged", ids[b], "more") is None:
            m.connect(ids[a], "merged", ids[b], "more")
            made += 1
    return m


def test_board_is_valid_and_round_trips(registry: NodeTypeRegistry) -> None:
    m = build_board()
    assert len(m) == 1000
    assert len(m.links) == 1500
    assert all(i.code == "missing-input" for i in validate(m, registry))
    assert loads(dumps(m)).snapshot() == m.snapshot()


@pytest.mark.benchmark(group="melody-model")
def test_bench_build_board(benchmark: BenchmarkFixture) -> None:
    benchmark(build_board)


@pytest.mark.benchmark(group="melody-model")
def test_bench_validate_board(benchmark: BenchmarkFixture, registry: NodeTypeRegistry) -> None:
    m = build_board()
    benchmark(validate, m, registry)


@pytest.mark.benchmark(group="melody-model")
def test_bench_save_load_board(benchmark: BenchmarkFixture) -> None:
    m = build_board()
    benchmark(lambda: loads(dumps(m)))
