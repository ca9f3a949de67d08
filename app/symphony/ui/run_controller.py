"""Running melodies from the window: the Run menu's actions over the conductor.

The conductor's coroutines run on the qasync loop, which is the GUI thread's Qt event loop, so
its events reach the window in order and on the right thread; nothing here blocks. The
conductor is made the first time a run starts, once the Pit, the registry and the extension
host exist (they start after the window is shown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QMessageBox

from symphony.conductor import events as ev
from symphony.ui.settings import catalog_from

if TYPE_CHECKING:
    from symphony.conductor.conductor import Conductor, Run, RunOptions, RunResult
    from symphony.pit import ArtifactStore, DagTracker
    from symphony.ui.board_tab import BoardTab
    from symphony.ui.main_window import MainWindow

__all__ = ["RunController", "catalog_from"]

_log = logging.getLogger("symphony.ui.run")


def _node_output_behind(
    store: ArtifactStore, artifact_id: int
) -> tuple[str, str, frozenset[int]] | None:
    """Return the node output an edited version derives from.

    An edit saved in the IDE records only the version it was made from as its input, and that
    version may itself be an earlier edit with no ``produced_by``; so the lineage is followed
    back through such versions of the same name until a node's output is reached. Without
    this, a second save would find no node output and the first edit would stay adopted.

    Returns
    -------
    tuple of (str, str, frozenset of int) or None
        ``(run_id, node_id, versions)``: the run that computed the output (its
        ``produced_by``, which is not always the run that last used it: a later run may have
        been served it from the cache), the node, and the versions crossed on the way back
        (earlier edits and the output itself), one of which a run binds to the node.
    """
    name = store.info(artifact_id).name
    seen = {artifact_id}
    crossed: set[int] = set()
    pending = list(store.info(artifact_id).inputs)
    while pending:
        source = pending.pop(0)
        if source in seen:
            continue
        seen.add(source)
        info = store.info(source)
        if info.produced_by:
            crossed.add(source)
            return info.produced_by[0], info.produced_by[1], frozenset(crossed)
        # Only earlier edits of the same artifact are crossed: another name in the lineage
        # is something the version was computed from, not an earlier state of it.
        if info.name == name:
            crossed.add(source)
            pending.extend(info.inputs)
    return None


def _run_holding(
    dag: DagTracker, node_id: str, versions: frozenset[int], prefer: str | None
) -> str | None:
    """Return the run whose node ``node_id`` holds one of ``versions`` as its output.

    That is the run whose output the user saw and edited: ``prefer`` (the run the window
    showed last) if it holds one, else the run in which the node last finished holding one.
    A cached output names, in ``produced_by``, the run that first computed it, which may be
    long gone by; resuming that run would rewrite its history instead of the one shown.
    ``None`` if no run's progress holds any of them (pruned, or replaced by another edit).
    """
    from symphony.pit import PitError

    def finished(run_id: str) -> float | None:
        try:
            info = dag.node(run_id, node_id)
        except PitError:  # not a run of this melody, or pruned meanwhile
            return None
        if info.state != "succeeded" or versions.isdisjoint(info.artifacts):
            return None
        return info.finished_at or 0.0

    if prefer is not None and prefer in dag and finished(prefer) is not None:
        return prefer
    best: tuple[float, str] | None = None
    for run_id in dag.workflows():
        at = finished(run_id)
        if at is not None and (best is None or (at, run_id) > best):
            best = (at, run_id)
    return None if best is None else best[1]


class RunController(QObject):
    """Starts, pauses, steps and stops runs of the current board's melody.

    Signals
    -------
    sig_run_finished(object)
        The :class:`~symphony.conductor.conductor.RunResult` of a run that ended (tests and
        the status bar wait on it).
    """

    sig_run_finished = Signal(object)

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.conductor: Conductor | None = None
        self.run: Run | None = None
        self.last_result: RunResult | None = None
        self._tracker: Any = None
        x = window.action_map
        x["run.all"].triggered.connect(lambda _c=False: self.start("all"))
        x["run.selected"].triggered.connect(lambda _c=False: self.start("selected"))
        x["run.from_here"].triggered.connect(lambda _c=False: self.start("from_here"))
        x["run.stop"].triggered.connect(lambda _c=False: self.stop())
        x["run.pause"].triggered.connect(lambda _c=False: self.pause())
        x["run.step"].triggered.connect(lambda _c=False: self.step())
        x["run.continue"].triggered.connect(lambda _c=False: self.resume())
        x["run.resume"].triggered.connect(lambda _c=False: self.resume_after_edit())
        self._resumable: str | None = None
        #: the shown run's budget and what it has spent; hidden for a run without a budget
        self.budget_label = QLabel()
        self.budget_label.setObjectName("run_budget")
        self.budget_label.setToolTip(
            "What the run may spend (Settings → Budget per run) and what its model calls have "
            "cost so far, at the endpoints' prices. A call the rest does not cover fails its node."
        )
        self.budget_label.hide()
        window.statusBar().addPermanentWidget(self.budget_label)

    @property
    def budget(self) -> float | None:
        """The budget of the runs started or resumed here: the Settings' "Budget per run"."""
        budget: float | None = getattr(self.window.prefs, "budget", None)
        return budget

    # ---------------------------------------------------------------- conductor

    def _conductor(self) -> Conductor | None:
        if self.conductor is not None:
            return self.conductor
        w = self.window
        if w.pit is None or w.registry is None or w.host is None:
            if w.pit is None and w.pit_error:
                w.report(f"The run cannot start: {w.pit_error}")
            else:
                w.report(
                    "The run cannot start yet: "
                    + (
                        "the Pit is still opening."
                        if w.pit is None
                        else "extensions are still starting."
                    ),
                )
            return None
        from symphony.conductor.conductor import Conductor
        from symphony.conductor.executor import LocalExecutor
        from symphony.conductor.host_gateway import HostGateway, ModelTracker

        executor = LocalExecutor(w.registry, HostGateway(w.host))
        self.conductor = Conductor(w.pit, w.registry, executor, catalog=catalog_from(w.prefs),
                                   keep_runs=w.prefs.keep_runs)  # fmt: skip
        self.conductor.subscribe(w.handle_run_event)
        self.conductor.subscribe(self._spending)
        self._tracker = ModelTracker(w.host, w.pit, self.conductor.catalog)
        return self.conductor

    # ---------------------------------------------------------------- actions

    def start(self, what: str = "all", board: BoardTab | None = None) -> Run | None:
        """Start a run of ``board`` (default: the current board).

        ``what`` is ``"all"`` (unchanged nodes come from the store), ``"selected"`` (the
        selected nodes again, with what they need) or ``"from_here"`` (the selected nodes and
        everything downstream again).
        """
        if self.run is not None and not self.run.done:
            return None
        self.window.commit_typing()  # run what is typed, not what was
        board = board or self.window.current_board()
        conductor = self._conductor()
        if board is None or conductor is None:
            return None
        from symphony.conductor.conductor import InvalidMelodyError

        options = self.options_for(what, board, budget=self.budget)
        self.window.attach_run(board)
        self.last_result = None
        self._resumable = None
        try:
            source = str(board.path) if board.path is not None else None
            self.run = conductor.start(
                board.melody, options, source=source, workspace=self._workspace()
            )
        except InvalidMelodyError as e:
            self.window.revalidate()
            self.window.report(str(e))
            self.window.set_run_state(ev.RUN_FAILED, "the melody does not validate")
            return None
        self._watch(self.run)
        self._notice_edits(board, self.run)
        return self.run

    def _workspace(self) -> Path | None:
        """Return the folder the File Explorer reads and writes in (the open workspace)."""
        host = self.window.host
        return None if host is None else host.workspace

    def _in_its_workspace(self, run_id: str, record: Mapping[str, Any]) -> bool:
        """Whether run ``run_id`` may resume here: in the workspace it read and wrote files in.

        A run resumed in another folder would read one folder's files and write the rest of
        its outputs into another. When the open workspace is not the run's, the user is asked
        to open the run's (and the run resumes there) or to cancel; a run's folder that is gone
        is named and nothing resumes. Runs recorded without a workspace resume as they are.
        """
        recorded = record.get("workspace")
        if not isinstance(recorded, str) or not recorded:
            return True
        theirs, here = Path(recorded).resolve(), self._workspace()
        if here is not None and here.resolve() == theirs:
            return True
        w = self.window
        if not theirs.is_dir():
            w.report(
                f"Run {run_id} cannot be resumed: it read and wrote files in {theirs}, which is "
                "no longer a folder"
            )
            return False
        open_now = "no workspace is open" if here is None else f"the open workspace is {here}"
        answer = QMessageBox.question(
            w,
            "Resume in the run's workspace?",
            f"Run {run_id} read and wrote files in\n{theirs}\nbut {open_now}.\n\n"
            f"Open {theirs.name or theirs} as the workspace and resume the run there?",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Open,
        )
        if answer != QMessageBox.StandardButton.Open:
            w.report(f"Run {run_id} was not resumed: its workspace is {theirs}", "info")
            return False
        w.set_workspace(theirs)
        now = self._workspace()
        return now is not None and now.resolve() == theirs

    def _resume(self, conductor: Conductor, run_id: str, record: dict[str, Any]) -> Run:
        """Resume ``run_id`` with its stored options under the Settings' budget of now.

        Breakpoints are on, whatever the record says.

        The budget the run was started with may be what stopped it; raised in the Settings,
        it lets the resumed run go on (the Arbitration Engine still counts what it spent).

        Raises
        ------
        RunNotFoundError, InvalidMelodyError
            As :meth:`Conductor.resume`; also for stored options that are not valid.
        """
        # breakpoints stop a run here, where Continue and Step can go on: a run last resumed on
        # the command line (which has neither, and so ran with them off) honours them again
        options = conductor.stored_options(run_id, record, budget=self.budget, breakpoints=True)
        return conductor.resume(run_id, options)

    def _watch(self, run: Run) -> None:
        self._show_budget()
        task = asyncio.ensure_future(run.wait())
        task.add_done_callback(lambda t: self._finished(run, t))

    def _notice_edits(self, board: BoardTab, run: Run) -> None:
        """Say once, at the first edit of ``board`` while ``run`` goes on, that it is not run.

        The run is the melody as it started (its record stores that one); only breakpoints
        count at once. Without a word, deleting a node from a paused run and seeing it run
        anyway looks like a bug.
        """
        from symphony.workflow import BreakpointChanged, MelodyEvent, NodeMoved

        events = board.melody.events

        notice = (
            f"Run {run.run_id} goes on with the melody as it started: edits made now "
            "apply to the next run (breakpoints apply at once)."
        )

        def edited(event: MelodyEvent) -> None:
            if isinstance(event, NodeMoved | BreakpointChanged):
                return
            events.unsubscribe(edited)
            if not run.done:
                self.window.report(notice, "warning")

        def ended(_task: object) -> None:
            events.unsubscribe(edited)
            # "goes on" is false once the run has ended; a newer message stays
            status = self.window.statusBar()
            if status.currentMessage() == notice:
                status.clearMessage()

        events.subscribe(edited)
        asyncio.ensure_future(run.wait()).add_done_callback(ended)

    def _finished(self, run: Run, task: asyncio.Future[RunResult]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            _log.error("run %s ended with an error: %s", run.run_id, error)
            self.window.report(f"Run {run.run_id}: {error}")
            self.window.set_run_state(ev.RUN_FAILED, str(error))
            return
        self.last_result = task.result()
        self.sig_run_finished.emit(self.last_result)

    def stop(self) -> None:
        """Stop the run: running nodes are cancelled (their extension calls too)."""
        if self.run is not None and not self.run.done:
            self.run.cancel()

    def pause(self) -> None:
        """Start no further node; running ones finish."""
        if self.run is not None and not self.run.done:
            self.run.pause()

    def step(self) -> None:
        """Run the next node, then pause again."""
        if self.run is not None and not self.run.done:
            self.run.step()

    def resume(self) -> None:
        """Leave pause or step mode."""
        if self.run is not None and not self.run.done:
            self.run.resume()

    def settings_changed(self, prefs: Any) -> None:
        """Take the Settings' models and run history size into the next runs.

        The conductor's catalog then holds exactly the models of ``prefs`` (:func:`catalog_from`):
        a removed or renamed endpoint stops being a model at once, so no new attempt sends a
        request, with the key entry it named, to its server; the embedded model comes and goes
        with its check box. A node of a running run that names a model gone meanwhile fails on
        its next attempt, naming the model.
        """
        if self.conductor is not None:
            # In place: the conductor's broker and the model tracker hold this same catalog.
            self.conductor.catalog.sync(catalog_from(prefs))
            self.conductor.keep_runs = prefs.keep_runs

    # ---------------------------------------------------------------- edit and resume

    @property
    def can_resume(self) -> bool:
        """Whether an edited output waits for its downstream nodes to run again."""
        return self._resumable is not None

    def artifact_edited(self, artifact_id: int) -> list[str]:
        """Make an edited node output part of its run; return the nodes that will run again.

        Called when the user saves an artifact opened from the Artifacts dock: if it derives
        from a node's output of a run (directly, or through earlier saved edits), the new
        version takes its place and *Resume After Edit* reruns only what depends on it.
        """
        w = self.window
        conductor = self._conductor()
        if w.pit is None or conductor is None:
            return []
        from symphony.conductor.conductor import InvalidMelodyError, RunNotFoundError
        from symphony.pit import PitError

        produced = _node_output_behind(w.pit.artifacts, artifact_id)
        if produced is None:
            return []
        computed_by, node_id, versions = produced
        shown = self.run.run_id if self.run is not None else None
        # With no run holding it any more, the run that computed it gives the error to show.
        run_id = _run_holding(w.pit.dag, node_id, versions, shown) or computed_by
        try:
            again = conductor.adopt_output(run_id, node_id, artifact_id)
        except (RunNotFoundError, InvalidMelodyError, PitError, KeyError) as e:
            w.report(f"The edit stays a new version only: {e}", "warning")
            return []
        self._resumable = run_id
        w.report(
            f"Output of {node_id!r} edited: Resume After Edit reruns "
            + (", ".join(again) or "nothing (no node depends on it)")
            + f" in run {run_id}",
            "info",
        )
        w.update_actions()
        return again

    def resume_after_edit(self) -> Run | None:
        """Resume the run whose output was edited: only what depends on the edit runs.

        Its states are shown on a board of the melody it ran (the board it ran on if still
        open and unchanged, else the melody opened again, as for a resume from the Runs dock),
        never on whatever board is current: that may hold another melody.
        """
        conductor = self._conductor()
        run_id = self._resumable
        if conductor is None or run_id is None or self.active:
            return None
        from symphony.conductor.conductor import RunNotFoundError

        w = self.window
        try:
            record = conductor.record(run_id)
            melody = conductor.melody_of(record)
        except (RunNotFoundError, ValueError) as e:
            self._resumable = None
            w.report(f"Run {run_id} cannot be resumed: {e}")
            w.update_actions()
            return None
        if w.registry is None:
            w.report("the node types are still loading; try again in a moment", "warning")
            return None  # Resume After Edit stays offered
        # asked before a board is opened for it: Cancel leaves no tab behind
        if not self._in_its_workspace(run_id, record):
            return None
        board = w.board_for_run(melody, record.get("source"))
        if board is None:
            return None
        return self._resume_on(board, conductor, run_id, record)

    def resume_run(self, run_id: str) -> Run | None:
        """Continue a stopped, failed or interrupted run (Runs dock) from its checkpoint.

        The melody it ran opens on a board (an open board of the same melody is used), whose
        nodes then show the resumed run: what succeeded before stays done, the rest runs.
        """
        if self.active:
            self.window.report("Another run is going on: stop it before resuming one", "warning")
            return None
        conductor = self._conductor()
        if conductor is None:
            return None
        from symphony.conductor.conductor import RunNotFoundError

        w = self.window
        try:
            record = conductor.record(run_id)
            melody = conductor.melody_of(record)
        except (RunNotFoundError, ValueError) as e:
            w.report(f"Run {run_id} cannot be resumed: {e}")
            return None
        if not self._in_its_workspace(run_id, record):  # before a board is opened for it
            return None
        board = w.board_for_run(melody, record.get("source"))
        if board is None:
            return None
        return self._resume_on(board, conductor, run_id, record)

    def _resume_on(
        self, board: BoardTab, conductor: Conductor, run_id: str, record: dict[str, Any]
    ) -> Run | None:
        """Resume ``run_id`` shown on ``board``; a refusal is reported and returns ``None``."""
        from symphony.conductor.conductor import InvalidMelodyError, RunNotFoundError

        w = self.window
        w.attach_run(board)
        self.last_result = None
        self._resumable = None
        try:
            self.run = self._resume(conductor, run_id, record)
        except (RunNotFoundError, InvalidMelodyError) as e:
            w.report(f"Run {run_id} cannot be resumed: {e}")
            w.set_run_state(ev.RUN_FAILED, "the run cannot be resumed")
            return None
        self._watch(self.run)
        # the run's melody comes from its record; the user sets breakpoints on this board
        self.run.follow_breakpoints(board.melody)
        self._notice_edits(board, self.run)
        return self.run

    @property
    def active(self) -> bool:
        """Whether a run is going on (running or paused)."""
        return self.run is not None and not self.run.done

    @staticmethod
    def options_for(what: str, board: BoardTab, *, budget: float | None = None) -> RunOptions:
        """Return the run options of ``what`` (``all``, ``selected``, ``from_here``).

        ``budget`` is what the run may spend (``None``: no limit).
        """
        from symphony.conductor.conductor import RunOptions

        if what == "selected":
            return RunOptions.selected(board.melody, board.selected_node_ids(), budget=budget)
        if what == "from_here":
            return RunOptions.from_here(board.melody, board.selected_node_ids(), budget=budget)
        return RunOptions(budget=budget)

    # ---------------------------------------------------------------- budget

    def spent(self, run_id: str) -> float:
        """Return what run ``run_id`` has spent, as its budget counts it (0 if nothing yet).

        The Arbitration Engine's account of the run: what its model calls cost, over every
        session of a resumed run.
        """
        pit = self.window.pit
        if pit is None:
            return 0.0
        from symphony.pit import PitError

        try:
            owners = pit.arbitration.owners()
        except PitError:  # the Pit closed under the window
            return 0.0
        return next((o.spent for o in owners if o.owner == run_id), 0.0)

    def _show_budget(self) -> None:
        run = self.run
        budget = None if run is None else run.options.budget
        if run is None or budget is None:
            self.budget_label.hide()
            return
        self.budget_label.setText(f"Budget: {self.spent(run.run_id):.4g} of {budget:.4g} spent")
        self.budget_label.show()

    def _spending(self, event: ev.RunEvent) -> None:
        # What a call cost is reported once the call ends; the end of a run settles the sum.
        run = self.run
        if (
            run is not None
            and event.run_id == run.run_id
            and isinstance(event, ev.NodeCost | ev.RunStateChanged)
        ):
            self._show_budget()
