"""The Timeline dock: a Gantt chart of a run, fed by conductor events.

:class:`TimelineModel` turns :mod:`symphony.conductor.events` into per-node spans (queued,
running, paused — one per attempt, so retries show as separate bars), recovery markers (retry,
fallback, skip, …) and per-node totals (seconds, cost, tokens, peak memory).
:class:`TimelineWidget` paints it, explains a bar on hover and exports a PNG.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFontMetrics,
    QHelpEvent,
    QImage,
    QImageWriter,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QScrollArea, QToolTip, QWidget

from symphony.conductor import events as ev

#: Bar colours per state (final states colour the running bar that ended in them).
STATE_COLORS: dict[str, str] = {
    ev.QUEUED: "#b0b6c0",
    ev.RUNNING: "#3d7be0",
    ev.PAUSED: "#d9a400",
    ev.SUCCEEDED: "#2e9e5b",
    ev.FAILED: "#d64545",
    ev.SKIPPED: "#8a8f98",
    ev.CACHED: "#7a5cc7",
    ev.CANCELLED: "#a36a2c",
}
_FINAL = {ev.SUCCEEDED, ev.FAILED, ev.SKIPPED, ev.CACHED, ev.CANCELLED}


@dataclass(slots=True)
class Span:
    """One bar: ``kind`` is queued, running or paused; ``outcome`` the state that ended it."""

    kind: str
    start: float
    end: float | None = None
    attempt: int = 1
    model: str = ""
    outcome: str = ""
    detail: str = ""


@dataclass(slots=True)
class Marker:
    """A recovery decision at a moment: ``strategy`` and the conductor's reason."""

    at: float
    strategy: str
    reason: str
    error: str
    attempt: int


@dataclass(slots=True)
class NodeRow:
    """Everything the timeline knows about one node of the run."""

    node_id: str
    spans: list[Span] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    state: str = ""
    seconds: float = 0.0
    cost: float = 0.0
    tokens: int = 0
    memory_bytes: int = 0
    attempts: int = 0
    models: list[str] = field(default_factory=list)
    #: whether a ``NodeCost`` came (a past run drawn from the Pit has none: no cost is known)
    measured: bool = False

    @property
    def retries(self) -> int:
        """Recovery decisions that tried the node again."""
        return sum(1 for m in self.markers if m.strategy == "retry")

    @property
    def fallbacks(self) -> int:
        """Recovery decisions that switched to a fallback model."""
        return sum(1 for m in self.markers if m.strategy == "fallback")


class TimelineModel:
    """Spans, markers and totals of one run, built from its events in order."""

    def __init__(self) -> None:
        self.run_id = ""
        self.run_state = ""
        self.rows: dict[str, NodeRow] = {}
        self.start: float | None = None
        self.last: float | None = None
        #: node id → its place top to bottom (see :meth:`set_order`); kept across runs
        self.order: dict[str, int] = {}
        self._sorted: list[NodeRow] | None = None

    def clear(self) -> None:
        """Forget the run (not the row order)."""
        order = self.order
        self.__init__()  # type: ignore[misc]
        self.order = order

    def set_order(self, node_ids: list[str]) -> None:
        """Put rows in this order (the melody's dependency order); others follow as they come.

        Without it rows come in the order of their first event, and a node that runs in-process
        announces itself only when it is done: "write" could come above the "report" it waits on.
        """
        self.order = {n: i for i, n in enumerate(node_ids)}
        self._sorted = None

    def ordered_rows(self) -> list[NodeRow]:
        """Return the rows top to bottom."""
        if self._sorted is None:
            last = len(self.order)
            rows = list(self.rows.values())  # first-event order breaks ties
            self._sorted = sorted(rows, key=lambda r: self.order.get(r.node_id, last))
        return self._sorted

    def _row(self, node_id: str) -> NodeRow:
        row = self.rows.get(node_id)
        if row is None:
            row = self.rows[node_id] = NodeRow(node_id)
            self._sorted = None
        return row

    def add(self, event: ev.RunEvent) -> None:
        """Take one event into account (events of another run start a new timeline)."""
        if event.run_id != self.run_id:
            if self.run_id and not isinstance(event, ev.RunStateChanged):
                return  # a late event of an earlier run
            self.clear()
            self.run_id = event.run_id
        self.start = event.at if self.start is None else min(self.start, event.at)
        self.last = event.at if self.last is None else max(self.last, event.at)
        if isinstance(event, ev.RunStateChanged):
            self.run_state = event.state
            if event.state in (ev.RUN_SUCCEEDED, ev.RUN_FAILED, ev.RUN_CANCELLED):
                self._close_all(event.at, ev.CANCELLED)
        elif isinstance(event, ev.NodeStateChanged):
            self._node_state(event)
        elif isinstance(event, ev.RecoveryChosen):
            row = self._row(event.node_id)
            row.markers.append(
                Marker(event.at, event.strategy, event.reason, event.error, event.attempt)
            )
            last = row.spans[-1] if row.spans else None
            if last is not None and last.end is None and last.kind == ev.RUNNING:
                # the attempt failed here: its bar ends red, with the error, and the backoff
                # before the next attempt is a gap, not more running
                last.end, last.outcome, last.detail = event.at, ev.FAILED, event.error
        elif isinstance(event, ev.NodeCost):
            row = self._row(event.node_id)
            row.measured = True
            row.seconds += event.seconds
            row.cost += event.cost
            row.tokens += event.tokens
            row.memory_bytes = max(row.memory_bytes, event.memory_bytes)

    def _node_state(self, e: ev.NodeStateChanged) -> None:
        row = self._row(e.node_id)
        row.state = e.state
        open_span = row.spans[-1] if row.spans and row.spans[-1].end is None else None
        if open_span is not None:
            open_span.end = e.at
            if e.state in _FINAL:
                open_span.outcome = e.state
                open_span.detail = e.detail
        if e.state in (ev.QUEUED, ev.RUNNING, ev.PAUSED):
            row.spans.append(Span(e.state, e.at, None, e.attempt, e.model))
            if e.state == ev.RUNNING:
                row.attempts = max(row.attempts, e.attempt)
                if e.model and e.model not in row.models:
                    row.models.append(e.model)
        elif open_span is None:
            last = row.spans[-1] if row.spans else None
            if e.state == ev.FAILED and last is not None and last.outcome == ev.FAILED:
                return  # its last attempt's bar already ends in the failure
            # A node that ends without having run (skipped, cached): a zero-length mark.
            row.spans.append(Span(e.state, e.at, e.at, e.attempt, e.model, e.state, e.detail))

    def _close_all(self, at: float, outcome: str) -> None:
        for row in self.rows.values():
            if row.spans and row.spans[-1].end is None:
                row.spans[-1].end = at
                row.spans[-1].outcome = row.spans[-1].outcome or outcome

    def is_live(self) -> bool:
        """Whether the run is still going (open spans grow with the clock)."""
        return self.run_state in (ev.RUN_RUNNING, ev.RUN_PAUSED)

    def end(self) -> float:
        """Return the right edge of the chart."""
        if self.last is None:
            return 0.0
        return max(self.last, time.time()) if self.is_live() else self.last


_ROW_H = 24
_HEADER_H = 22
_LABEL_W = 150
_STATS_W = 230
# How far a tick label may reach past the chart: the stats header starts 12 px after it.
_AXIS_OVERHANG = 8


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n else "–"


class TimelineWidget(QWidget):
    """Paints a :class:`TimelineModel`: one row per node, time left to right.

    Signals
    -------
    sig_node_activated(str)
        A row was double-clicked (select the node on the board).
    """

    sig_node_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = TimelineModel()
        self.setMouseTracking(True)
        self.setMinimumHeight(_HEADER_H + _ROW_H)
        self._tick = QTimer(self)
        self._tick.setInterval(250)
        self._tick.timeout.connect(self.update)

    def add_event(self, event: ev.RunEvent) -> None:
        """Feed one conductor event."""
        before = len(self.model.rows)
        self.model.add(event)
        if len(self.model.rows) != before:
            self.updateGeometry()
            self.resize(self.width(), self.sizeHint().height())
        if self.model.is_live() and not self._tick.isActive():
            self._tick.start()
        elif not self.model.is_live():
            self._tick.stop()
        self.update()

    def clear(self) -> None:
        """Empty the chart."""
        self.model.clear()
        self._tick.stop()
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        """Return the preferred size: every row visible."""
        return QSize(640, _HEADER_H + _ROW_H * max(1, len(self.model.rows)) + 4)

    # ---------------------------------------------------------------- geometry

    def _chart_rect(self) -> QRectF:
        w = max(10.0, self.width() - _LABEL_W - _STATS_W - 8)
        return QRectF(_LABEL_W, _HEADER_H, w, _ROW_H * len(self.model.rows))

    def _x(self, t: float, chart: QRectF) -> float:
        start = self.model.start or 0.0
        total = max(self.model.end() - start, 1e-6)
        return chart.left() + (t - start) / total * chart.width()

    def _hit(self, pos: QPointF) -> tuple[NodeRow, Span | Marker | None] | None:
        chart = self._chart_rect()
        index = int((pos.y() - _HEADER_H) // _ROW_H)
        rows = self.model.ordered_rows()
        if pos.y() < _HEADER_H or not 0 <= index < len(rows):
            return None
        row = rows[index]
        for m in row.markers:
            if abs(self._x(m.at, chart) - pos.x()) <= 4:
                return row, m
        end = self.model.end()
        for span in row.spans:
            x0 = self._x(span.start, chart)
            x1 = max(x0 + 2, self._x(span.end if span.end is not None else end, chart))
            if x0 - 1 <= pos.x() <= x1 + 1:
                return row, span
        return row, None

    # ---------------------------------------------------------------- painting

    def axis_ticks(self, chart: QRectF, fm: QFontMetrics) -> list[tuple[float, str]]:
        """Return the time axis' ticks: about one per 90 px at a round step.

        Parameters
        ----------
        chart : QRectF
            Where the bars are drawn.
        fm : QFontMetrics
            Metrics of the font the labels are drawn in.

        Returns
        -------
        list of (float, str)
            Each tick's x and its label, empty when the label would run into the stats
            column's header (the last tick, near the chart's right edge).
        """
        start = self.model.start or 0.0
        total = max(self.model.end() - start, 1e-6)
        step = _nice_step(total / max(1.0, chart.width() / 90))
        ticks: list[tuple[float, str]] = []
        t = 0.0
        while t <= total + 1e-9:
            x = chart.left() + t / total * chart.width()
            label = _fmt_seconds(t)
            fits = x + 2 + fm.horizontalAdvance(label) <= chart.right() + _AXIS_OVERHANG
            ticks.append((x, label if fits else ""))
            t += step
        return ticks

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        """Paint the widget."""
        painter = QPainter(self)
        try:
            self.paint(painter, QRectF(self.rect()))
        finally:
            painter.end()

    def paint(self, p: QPainter, area: QRectF) -> None:
        """Paint the chart into ``area`` (the widget, or an export image)."""
        pal = self.palette()
        p.fillRect(area, pal.color(pal.ColorRole.Base))
        text = pal.color(pal.ColorRole.Text)
        dim = pal.color(pal.ColorRole.PlaceholderText)
        fm = QFontMetrics(p.font())
        if not self.model.rows:
            p.setPen(dim)
            p.drawText(
                area, Qt.AlignmentFlag.AlignCenter, "No run yet: run a melody to see it here"
            )
            return
        chart = self._chart_rect()
        p.setPen(dim)
        for x, label in self.axis_ticks(chart, fm):
            p.drawLine(QPointF(x, _HEADER_H - 4), QPointF(x, chart.bottom()))
            if label:
                p.drawText(QPointF(x + 2, _HEADER_H - 7), label)
        p.setPen(text)
        p.drawText(QPointF(_LABEL_W + chart.width() + 12, _HEADER_H - 7), "time · cost · mem")
        end = self.model.end()
        for i, row in enumerate(self.model.ordered_rows()):
            y = _HEADER_H + i * _ROW_H
            if i % 2:
                p.fillRect(
                    QRectF(area.left(), y, area.width(), _ROW_H),
                    pal.color(pal.ColorRole.AlternateBase),
                )
            p.setPen(text)
            label = fm.elidedText(row.node_id, Qt.TextElideMode.ElideRight, _LABEL_W - 10)
            p.drawText(QRectF(6, y, _LABEL_W - 10, _ROW_H), Qt.AlignmentFlag.AlignVCenter, label)
            for span in row.spans:
                x0 = self._x(span.start, chart)
                x1 = max(x0 + 2, self._x(span.end if span.end is not None else end, chart))
                color = QColor(STATE_COLORS.get(span.outcome or span.kind, "#888888"))
                if span.kind == ev.QUEUED:
                    color = QColor(STATE_COLORS[ev.QUEUED])
                h = _ROW_H - 10 if span.kind == ev.RUNNING else _ROW_H - 16
                rect = QRectF(x0, y + (_ROW_H - h) / 2, x1 - x0, h)
                p.fillRect(rect, color)
                if span.attempt > 1 and span.kind == ev.RUNNING and rect.width() > 14:
                    p.setPen(QColor("#ffffff"))
                    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"#{span.attempt}")
            for m in row.markers:
                x = self._x(m.at, chart)
                color = QColor("#e08a00" if m.strategy in ("retry", "fallback") else "#d64545")
                p.setPen(QPen(color, 2))
                p.drawLine(QPointF(x, y + 2), QPointF(x, y + _ROW_H - 2))
                p.drawText(QPointF(x + 3, y + 10), m.strategy[:1].upper())
            p.setPen(text)
            stats = self.stats(row)
            p.drawText(
                QRectF(chart.right() + 12, y, _STATS_W - 14, _ROW_H),
                Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(stats, Qt.TextElideMode.ElideRight, _STATS_W - 14),
            )

    def stats(self, row: NodeRow) -> str:
        """Return a row's "time · cost · mem" column.

        Until a cost arrives (a node still running, or a past run replayed from what the Pit
        kept), the time is the one its bars span and cost and memory are unknown, not zero.
        """
        if row.measured:
            return f"{row.seconds:.2f} s · {row.cost:.4g} · {_mib(row.memory_bytes)}"
        now = self.model.end()
        ran = sum(
            (s.end if s.end is not None else now) - s.start
            for s in row.spans
            if s.kind == ev.RUNNING
        )
        return f"{ran:.2f} s · – · –"

    # ---------------------------------------------------------------- interaction

    def describe(self, pos: QPointF) -> str:
        """Return the hover text at ``pos`` (empty where there is nothing)."""
        hit = self._hit(pos)
        if hit is None:
            return ""
        row, what = hit
        start = self.model.start or 0.0
        head = (
            f"<b>{row.node_id}</b> — {row.state or 'idle'}<br>"
            f"attempts {row.attempts} · retries {row.retries} · fallbacks {row.fallbacks}<br>"
            f"time {row.seconds:.2f} s · cost {row.cost:.4g} · tokens {row.tokens} · "
            f"peak memory {_mib(row.memory_bytes)}"
        )
        if row.models:
            head += "<br>models: " + ", ".join(row.models)
        if isinstance(what, Marker):
            return (
                f"{head}<hr><b>{what.strategy}</b> after attempt {what.attempt}: {what.reason}"
                f"<br>error: {what.error}"
            )
        if isinstance(what, Span):
            end = what.end if what.end is not None else self.model.end()
            line = (
                f"{what.kind} attempt {what.attempt}: +{what.start - start:.2f} s → "
                f"+{end - start:.2f} s ({end - what.start:.2f} s)"
            )
            if what.model:
                line += f" on {what.model}"
            if what.outcome:
                line += f" → {what.outcome}"
            if what.detail:
                line += f"<br>{what.detail}"
            return f"{head}<hr>{line}"
        return head

    def event(self, e: QEvent) -> bool:
        """Show hover details as a tooltip."""
        if e.type() == QEvent.Type.ToolTip and isinstance(e, QHelpEvent):
            tip = self.describe(QPointF(e.pos()))
            if tip:
                QToolTip.showText(e.globalPos(), tip, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(e)

    def mouseDoubleClickEvent(self, e: object) -> None:  # noqa: N802 - Qt override
        """Ask to select the node of the row."""
        from PySide6.QtGui import QMouseEvent

        if isinstance(e, QMouseEvent):
            hit = self._hit(e.position())
            if hit is not None:
                self.sig_node_activated.emit(hit[0].node_id)

    def to_image(self, width: int | None = None) -> QImage:
        """Render the chart (all rows) into an image."""
        w = width or max(self.width(), 800)
        h = _HEADER_H + _ROW_H * max(1, len(self.model.rows)) + 6
        ratio = self.devicePixelRatioF()
        img = QImage(int(w * ratio), int(h * ratio), QImage.Format.Format_ARGB32)
        img.setDevicePixelRatio(ratio)
        old = self.size()
        self.resize(w, h)  # the geometry helpers read the widget's width
        painter = QPainter(img)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self.paint(painter, QRectF(0, 0, w, h))
        finally:
            painter.end()
            self.resize(old)
        return img

    def export_png(self, path: str | Path) -> Path:
        """Write the chart to ``path`` as PNG; raises ``OSError`` naming the file on failure."""
        target = Path(path)
        writer = QImageWriter(str(target), QByteArray(b"png"))
        if not writer.write(self.to_image()):
            raise OSError(f"could not write the timeline image to {target}: {writer.errorString()}")
        return target


def _nice_step(raw: float) -> float:
    for step in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60):
        if step >= raw:
            return float(step)
    return 60.0 * max(1, round(raw / 60))


def _fmt_seconds(t: float) -> str:
    if t >= 60:
        return f"{int(t // 60)}m{int(t % 60):02d}s"
    return f"{t:.3g}s"


class TimelineView(QScrollArea):
    """The dock's content: the chart in a vertical scroll area."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chart = TimelineWidget()
        self.setWidget(self.chart)
        self.setWidgetResizable(True)
