"""The Timeline: spans, retries, fallbacks, cost and memory from real conductor events."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QFontMetrics, QImage
from pytestqt.qtbot import QtBot

from symphony.conductor import events as ev
from symphony.ui.timeline import _HEADER_H, _ROW_H, TimelineWidget

R = "run-1"


def _events() -> list[ev.RunEvent]:
    return [
        ev.RunStateChanged(R, 100.0, ev.RUN_RUNNING),
        ev.NodeStateChanged(R, 100.0, "read", ev.QUEUED),
        ev.NodeStateChanged(R, 100.0, "gen", ev.QUEUED),
        ev.NodeStateChanged(R, 100.5, "read", ev.RUNNING),
        ev.NodeStateChanged(R, 101.0, "read", ev.SUCCEEDED),
        ev.NodeCost(R, 101.0, "read", 1, 0.5, memory_bytes=30 << 20),
        ev.NodeStateChanged(R, 101.0, "gen", ev.RUNNING, 1, "gpt"),
        ev.NodeStateChanged(R, 103.0, "gen", ev.FAILED, 1, "gpt", "HTTP 503"),
        ev.NodeCost(R, 103.0, "gen", 1, 2.0, cost=0.01, tokens=40, memory_bytes=100 << 20),
        ev.RecoveryChosen(R, 103.0, "gen", "HTTP 503", "unavailable", "retry", "transient", 1),
        ev.NodeStateChanged(R, 103.5, "gen", ev.RUNNING, 2, "gpt"),
        ev.NodeStateChanged(R, 104.0, "gen", ev.FAILED, 2, "gpt", "HTTP 503"),
        ev.RecoveryChosen(R, 104.0, "gen", "HTTP 503", "unavailable", "fallback", "gpt is down", 2),
        ev.NodeStateChanged(R, 104.0, "gen", ev.RUNNING, 3, "smollm2"),
        ev.NodeToken(R, 104.5, "gen", "hello"),
        ev.NodeStateChanged(R, 106.0, "gen", ev.SUCCEEDED, 3, "smollm2"),
        ev.NodeCost(R, 106.0, "gen", 3, 2.0, cost=0.0, tokens=60, memory_bytes=200 << 20),
        ev.NodeStateChanged(R, 106.0, "docs", ev.SKIPPED, 1, "", "condition false"),
        ev.RunStateChanged(R, 106.0, ev.RUN_SUCCEEDED),
    ]


def test_model_builds_spans_retries_fallbacks_and_totals(qtbot: QtBot) -> None:
    chart = TimelineWidget()
    qtbot.addWidget(chart)
    for e in _events():
        chart.add_event(e)
    m = chart.model
    assert list(m.rows) == ["read", "gen", "docs"]
    gen = m.rows["gen"]
    kinds = [(s.kind, s.attempt, s.outcome) for s in gen.spans]
    assert kinds == [
        (ev.QUEUED, 1, ""),
        (ev.RUNNING, 1, ev.FAILED),
        (ev.RUNNING, 2, ev.FAILED),
        (ev.RUNNING, 3, ev.SUCCEEDED),
    ]
    assert (gen.retries, gen.fallbacks, gen.attempts) == (1, 1, 3)
    assert gen.models == ["gpt", "smollm2"]
    assert (gen.seconds, gen.cost, gen.tokens) == (4.0, 0.01, 100)
    assert gen.memory_bytes == 200 << 20
    assert m.rows["docs"].spans[0].outcome == ev.SKIPPED
    assert (m.start, m.end()) == (100.0, 106.0)
    assert not m.is_live()


def test_an_attempt_that_failed_ends_red_where_the_recovery_was_chosen(qtbot: QtBot) -> None:
    # What the conductor sends: no "failed" state between attempts, only the decision.
    chart = TimelineWidget()
    qtbot.addWidget(chart)
    for e in [
        ev.RunStateChanged(R, 10.0, ev.RUN_RUNNING),
        ev.NodeStateChanged(R, 10.0, "gen", ev.RUNNING, 1, "gpt"),
        ev.NodeCost(R, 11.0, "gen", 1, 1.0),
        ev.RecoveryChosen(R, 11.0, "gen", "HTTP 503", "transient", "retry", "retry: cheap", 1),
        ev.NodeStateChanged(R, 12.0, "gen", ev.RUNNING, 2, "gpt"),  # after a 1 s backoff
        ev.NodeCost(R, 12.5, "gen", 2, 0.5),
        ev.RecoveryChosen(R, 12.5, "gen", "HTTP 400", "persistent", "abort", "abort: no", 2),
        ev.NodeStateChanged(R, 12.5, "gen", ev.FAILED, 2, "gpt", "HTTP 400"),
        ev.NodeStateChanged(R, 12.5, "docs", ev.SKIPPED, 1, "", "its input failed"),
        ev.RunStateChanged(R, 12.5, ev.RUN_FAILED),
    ]:
        chart.add_event(e)
    gen = chart.model.rows["gen"]
    assert [(s.start, s.end, s.attempt, s.outcome, s.detail) for s in gen.spans] == [
        (10.0, 11.0, 1, ev.FAILED, "HTTP 503"),
        (12.0, 12.5, 2, ev.FAILED, "HTTP 400"),  # no extra mark for the node's failure
    ]
    assert gen.state == ev.FAILED
    rect = chart._chart_rect()
    text = chart.describe(QPointF(chart._x(10.5, rect), 22 + 12))
    assert "→ failed" in text
    assert "HTTP 503" in text


def test_stats_say_unknown_rather_than_zero_until_a_cost_arrives(qtbot: QtBot) -> None:
    chart = TimelineWidget()
    qtbot.addWidget(chart)
    for e in _events():
        chart.add_event(e)
    rows = chart.model.rows
    assert chart.stats(rows["gen"]) == "4.00 s · 0.01 · 200 MiB"
    assert chart.stats(rows["docs"]) == "0.00 s · – · –"  # skipped: nothing measured
    replay = [  # a past run drawn from what the Pit kept: spans, no costs
        ev.RunStateChanged("old", 10.0, ev.RUN_RUNNING),
        ev.NodeStateChanged("old", 10.0, "a", ev.RUNNING),
        ev.NodeStateChanged("old", 11.5, "a", ev.SUCCEEDED),
        ev.RunStateChanged("old", 11.5, ev.RUN_SUCCEEDED),
    ]
    chart.clear()
    for e in replay:
        chart.add_event(e)
    assert chart.stats(chart.model.rows["a"]) == "1.50 s · – · –"


def test_hover_describes_bars_and_markers(qtbot: QtBot) -> None:
    chart = TimelineWidget()
    qtbot.addWidget(chart)
    chart.resize(900, 200)
    for e in _events():
        chart.add_event(e)
    rect = chart._chart_rect()
    y_gen = 22 + 24 * 1 + 12
    x_attempt3 = chart._x(105.0, rect)
    text = chart.describe(QPointF(x_attempt3, y_gen))
    assert "<b>gen</b> — succeeded" in text
    assert "retries 1 · fallbacks 1" in text
    assert "running attempt 3" in text
    assert "on smollm2" in text
    assert "→ succeeded" in text
    assert "peak memory 200 MiB" in text
    marker = chart.describe(QPointF(chart._x(104.0, rect), y_gen))
    assert "<b>fallback</b> after attempt 2: gpt is down" in marker
    assert chart.describe(QPointF(5, 5)) == ""
    with qtbot.waitSignal(chart.sig_node_activated) as sig:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        QTest.mouseDClick(
            chart, Qt.MouseButton.LeftButton, pos=QPointF(x_attempt3, y_gen).toPoint()
        )
    assert sig.args == ["gen"]


def test_a_new_run_replaces_the_old_one(qtbot: QtBot) -> None:
    chart = TimelineWidget()
    qtbot.addWidget(chart)
    for e in _events():
        chart.add_event(e)
    chart.add_event(ev.NodeStateChanged("late", 200.0, "x", ev.RUNNING))  # stray: ignored
    assert "x" not in chart.model.rows
    chart.add_event(ev.RunStateChanged("run-2", 300.0, ev.RUN_RUNNING))
    assert chart.model.rows == {}
    assert chart.model.run_id == "run-2"
    assert chart.model.is_live()


def test_export_png(qtbot: QtBot, tmp_path: Path) -> None:
    chart = TimelineWidget()
    qtbot.addWidget(chart)
    for e in _events():
        chart.add_event(e)
    out = chart.export_png(tmp_path / "run.png")
    img = QImage(str(out))
    assert not img.isNull()
    assert img.width() >= 800
    assert img.height() >= 22 + 3 * 24
    # The running bar of "read" is painted in the succeeded colour somewhere on its row.
    row_y = int((22 + 12) * img.devicePixelRatio())
    colors = {img.pixelColor(x, row_y).name() for x in range(img.width())}
    assert "#2e9e5b" in colors
    with pytest.raises(OSError, match="missing/run.png"):
        chart.export_png(tmp_path / "missing" / "run.png")


@pytest.mark.parametrize("width", [700, 760, 800, 901, 1000, 1234, 1440])
def test_axis_labels_stay_clear_of_the_stats_header(qtbot: QtBot, width: int) -> None:
    chart = TimelineWidget()
    qtbot.addWidget(chart)
    for e in _events():
        chart.add_event(e)
    chart.resize(width, 200)
    fm = QFontMetrics(chart.font())
    area = chart._chart_rect()
    ticks = chart.axis_ticks(area, fm)
    assert ticks[0] == (area.left(), "0s")
    # The run lasts 6 s: its last tick sits on the chart's right edge, with no room for "6s".
    assert ticks[-1] == (pytest.approx(area.right()), "")
    labelled = [(x, label) for x, label in ticks if label]
    assert len(labelled) >= len(ticks) - 1
    for x, label in labelled:
        assert x + 2 + fm.horizontalAdvance(label) <= area.right() + 8


def test_rows_follow_the_given_order_not_the_first_event(qtbot: QtBot) -> None:
    chart = TimelineWidget()
    qtbot.addWidget(chart)
    chart.model.set_order(["read", "report", "write"])
    chart.clear()  # a new run keeps the order it was given
    for e in [
        ev.RunStateChanged(R, 1.0, ev.RUN_RUNNING),
        ev.NodeStateChanged(R, 1.0, "write", ev.QUEUED),
        ev.NodeStateChanged(R, 1.0, "extra", ev.QUEUED),
        ev.NodeStateChanged(R, 1.5, "report", ev.SUCCEEDED),
        ev.NodeStateChanged(R, 2.0, "read", ev.SUCCEEDED),
    ]:
        chart.add_event(e)
    assert list(chart.model.rows) == ["write", "extra", "report", "read"]
    assert [r.node_id for r in chart.model.ordered_rows()] == ["read", "report", "write", "extra"]
    hit = chart._hit(QPointF(200, _HEADER_H + _ROW_H + 5))  # the second row on screen
    assert hit is not None
    assert hit[0].node_id == "report"
