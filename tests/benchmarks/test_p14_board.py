"""P14: the Harmony Board at scale — a 1,000-node, 1,500-link board.

Targets (recorded in ``extra_info``, judged in docs/benchmarks.md, never asserted):

* ``P14-build``: building the board (scene, items, view) for the melody <= 300 ms.
  ``symphony`` is ``BoardView(MelodyEditor(melody, registry))``; ``baseline:naive`` builds the
  same picture from plain QGraphicsItems the usual way (a rect item per node with text, port and
  label child items, a path item per link; no index tuning).
* ``P14-frame``: one frame after a pan or zoom step <= 16 ms. Each round takes the next step of
  pan right, pan left, zoom in, zoom out (x1.1) and renders the viewport offscreen
  (``viewport().grab()``, 1280x800). ``symphony`` and ``baseline:naive`` show the whole board
  (fit all: every node visible, the worst case); the ``:100pct`` cases show it at 100 %.
  The baseline repaints the full viewport with every item painting itself at full detail.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QApplication,
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
)
from pytest_benchmark.fixture import BenchmarkFixture

from symphony.canvas.geometry import NODE_WIDTH, node_height, port_y
from symphony.canvas.view import BoardView
from symphony.document.editor import MelodyEditor
from symphony.registry import NodeTypeRegistry
from symphony.workflow import Melody
from tests.document.conftest import full_registry

TARGET_BUILD = "P14: a 1,000-node / 1,500-link board builds in <= 300 ms"
TARGET_FRAME = "P14: pan/zoom <= 16 ms per frame (1,000 nodes, 1,500 links)"
TYPES = ("op.template", "ai.summarizer", "ai.reviewer", "ai.code_generator", "op.merge")
ROWS = 25
SPREAD = 4
SIZE = (1280, 800)


def big_melody(n_nodes: int = 1000, n_links: int = 1500, seed: int = 14) -> Melody:
    """Return a grid of ``n_nodes`` nodes, ``ROWS`` per column, linked column to column.

    Each link goes to the next column, at most ``SPREAD`` rows up or down (a laid-out melody).
    """
    registry = full_registry()
    rng = random.Random(seed)
    melody = Melody("big board")
    ids = []
    for i in range(n_nodes):
        col, row = divmod(i, ROWS)
        node = melody.create_node(
            TYPES[i % len(TYPES)], f"Node {i}", position=(col * 330.0, row * 210.0)
        )
        ids.append(node.id)
    made = 0
    while made < n_links:
        i = rng.randrange(n_nodes - ROWS)
        # the next column, within SPREAD rows: the shape auto-layout gives a real melody
        row = i % ROWS + rng.randint(-SPREAD, SPREAD)
        j = (i // ROWS + 1) * ROWS + row
        if not 0 <= row < ROWS or j >= n_nodes:
            continue
        src = registry[melody.nodes[ids[i]].type_id]
        dst = registry[melody.nodes[ids[j]].type_id]
        out = src.outputs[0].name
        port = dst.inputs[rng.randrange(len(dst.inputs))].name
        if melody.find_link(ids[i], out, ids[j], port) is None:
            melody.connect(ids[i], out, ids[j], port)
            made += 1
    return melody


def naive_board(melody: Melody, registry: NodeTypeRegistry) -> QGraphicsView:
    """The same board from plain items: no LOD, no caching, full repaints."""
    view = QGraphicsView()
    scene = QGraphicsScene(view)  # owned by the view, so it lives as long as the view
    scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
    items: dict[str, QGraphicsRectItem] = {}
    ports: dict[tuple[str, str, bool], QPointF] = {}
    for node in melody.nodes.values():
        desc = registry[node.type_id]
        rect = QGraphicsRectItem(0, 0, NODE_WIDTH, node_height(len(desc.inputs), len(desc.outputs)))
        rect.setBrush(QBrush(QColor("#2a2e35")))
        rect.setPen(QPen(QColor("#555555"), 1.0))
        rect.setFlags(
            QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
            | QGraphicsItem.GraphicsItemFlag.ItemIsMovable
        )
        rect.setPos(*node.position)
        title = QGraphicsSimpleTextItem(node.name, rect)
        title.setFont(QFont("sans", 10, QFont.Weight.Bold))
        title.setPos(14, 4)
        QGraphicsSimpleTextItem(node.type_id, rect).setPos(14, 21)
        for side, specs in ((False, desc.inputs), (True, desc.outputs)):
            for k, spec in enumerate(specs):
                x = NODE_WIDTH if side else 0.0
                dot = QGraphicsEllipseItem(x - 5, port_y(k) - 5, 10, 10, rect)
                dot.setBrush(QBrush(QColor("#42a5f5")))
                label = QGraphicsSimpleTextItem(f"{spec.name} · {spec.type}", rect)
                label.setPos(x - 90 if side else 10, port_y(k) - 8)
                ports[(node.id, spec.name, side)] = QPointF(x, port_y(k)) + rect.pos()
        scene.addItem(rect)
        items[node.id] = rect
    for link in melody.links.values():
        a = ports[(link.source_node, link.source_port, True)]
        b = ports[(link.target_node, link.target_port, False)]
        path = QPainterPath(a)
        dx = max(abs(b.x() - a.x()) / 2, 40)
        path.cubicTo(a.x() + dx, a.y(), b.x() - dx, b.y(), b.x(), b.y())
        item = QGraphicsPathItem(path)
        item.setPen(QPen(QColor("#42a5f5"), 2.0))
        scene.addItem(item)
    view.setScene(scene)
    view.setRenderHints(QPainter.RenderHint.Antialiasing | QPainter.RenderHint.TextAntialiasing)
    view.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
    return view


@pytest.fixture(scope="module")
def melody() -> Melody:
    return big_melody()


def _fit(view: QGraphicsView, rect: QRectF) -> None:
    view.resize(*SIZE)
    view.show()
    view.fitInView(rect.adjusted(-40, -40, 40, 40), Qt.AspectRatioMode.KeepAspectRatio)
    if isinstance(view, BoardView):
        view.set_zoom(view.zoom())  # applies the level of detail for the new scale
        view.fit_all()


@pytest.mark.benchmark(group="P14-build")
@pytest.mark.parametrize("case", ["symphony", "baseline:naive"])
def test_p14_build(
    benchmark: BenchmarkFixture, qapp: QApplication, melody: Melody, case: str
) -> None:
    registry = full_registry()
    built: list[QGraphicsView] = []

    def build() -> None:
        if case == "symphony":
            view: QGraphicsView = BoardView(MelodyEditor(melody, registry))
        else:
            view = naive_board(melody, registry)
        built.append(view)

    def teardown() -> None:
        for view in built:
            if isinstance(view, BoardView):
                view.board_scene.detach()
            view.deleteLater()
        built.clear()
        qapp.processEvents()

    def setup() -> tuple[tuple[()], dict[str, Any]]:
        teardown()
        return (), {}

    benchmark.pedantic(build, setup=setup, rounds=7, iterations=1)
    teardown()
    benchmark.extra_info["target"] = TARGET_BUILD
    benchmark.extra_info["nodes"] = len(melody.nodes)
    benchmark.extra_info["links"] = len(melody.links)


def _steps(view: QGraphicsView) -> list[Callable[[], None]]:
    def pan(dx: int) -> Callable[[], None]:
        def step() -> None:
            bar = view.horizontalScrollBar()
            bar.setValue(bar.value() + dx)

        return step

    def zoom(factor: float) -> Callable[[], None]:
        def step() -> None:
            if isinstance(view, BoardView):
                view.set_zoom(view.zoom() * factor)
            else:
                view.scale(factor, factor)

        return step

    return [pan(40), pan(-40), zoom(1.1), zoom(1 / 1.1)]


@pytest.mark.benchmark(group="P14-frame")
@pytest.mark.parametrize(
    "case", ["symphony", "symphony:100pct", "baseline:naive", "baseline:naive-100pct"]
)
def test_p14_frame(
    benchmark: BenchmarkFixture, qapp: QApplication, melody: Melody, case: str
) -> None:
    registry = full_registry()
    if case.startswith("symphony"):
        board = BoardView(MelodyEditor(melody, registry))
        rect = board.board_scene.content_rect()
        view: QGraphicsView = board
    else:
        view = naive_board(melody, registry)
        rect = view.scene().itemsBoundingRect()
    _fit(view, rect)
    if case.endswith("100pct"):
        view.resetTransform()
        view.centerOn(rect.center())
        if isinstance(view, BoardView):
            view.set_zoom(1.0)
    view.viewport().grab()  # warm caches and the index once, as a shown window would be
    steps = _steps(view)
    counter = iter(range(10**9))

    def frame() -> None:
        steps[next(counter) % len(steps)]()
        view.viewport().grab()

    benchmark.pedantic(frame, rounds=60, iterations=1, warmup_rounds=4)
    benchmark.extra_info["target"] = TARGET_FRAME
    benchmark.extra_info["scale"] = round(view.transform().m11(), 3)
    if isinstance(view, BoardView):
        benchmark.extra_info["overview"] = view.board_scene.overview
        view.board_scene.detach()
    view.deleteLater()
    qapp.processEvents()
