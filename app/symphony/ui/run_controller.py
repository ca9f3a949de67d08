"""Running melodies from the window: the Run menu's actions over the conductor.

The conductor's coroutines run on the qasync loop, which is the GUI thread's Qt event loop, so
its events reach the window in order and on the right thread; nothing here blocks. The
conductor is made the first time a run starts, once the Pit, the registry and the extension
host exist (they start after the window is shown).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from symphony.conductor import events as ev

if TYPE_CHECKING:
    from symphony.conductor.conductor import Conductor, Run, RunOptions, RunResult
    from symphony.conductor.models import ModelCatalog
    from symphony.pit import ArtifactStore
    from symphony.ui.board_tab import BoardTab
    from symphony.ui.main_window import MainWindow

__all__ = ["RunController", "catalog_from"]

_log = logging.getLogger("symphony.ui.run")


def catalog_from(prefs: Any) -> ModelCatalog:
    """Return the models runs may use: the embedded one plus the Settings' endpoints.

    Each endpoint is a model named by the endpoint's name; its API key stays in the keyring
    under the endpoint's secret name, fetched by the AI Instrument per request.
    """
    from symphony.conductor.models import ModelCatalog, ModelSpec

    catalog = ModelCatalog()
    for ep in getattr(prefs, "endpoints", ()):
        provider = {
            "kind": "openai",
            "base_url": ep.base_url,
            "model": ep.model,
            "api_key_secret": ep.secret,
        }
        catalog.add(ModelSpec(ep.name, provider, slots=4))
    return catalog


def _node_output_behind(store: ArtifactStore, artifact_id: int) -> tuple[str, str] | None:
    """Return ``(run_id, node_id)`` of the node output an edited version derives from.

    An edit saved in the IDE records only the version it was made from as its input, and that
    version may itself be an earlier edit with no ``produced_by``; so the lineage is followed
    back through such versions of the same name until a node's output is reached. Without
    this, a second save would find no node output and the first edit would stay adopted.
    """
    name = store.info(artifact_id).name
    seen = {artifact_id}
    pending = list(store.info(artifact_id).inputs)
    while pending:
        source = pending.pop(0)
        if source in seen:
            continue
        seen.add(source)
        info = store.info(source)
        if info.produced_by:
            return info.produced_by[0], info.produced_by[1]
        # Only earlier edits of the same artifact are crossed: another name in the lineage
        # is something the version was computed from, not an earlier state of it.
        if info.name == name:
            pending.extend(info.inputs)
    return None


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

        options = self.options_for(what, board)
        self.window.attach_run(board)
        self.last_result = None
        self._resumable = None
        try:
            source = str(board.path) if board.path is not None else None
            self.run = conductor.start(board.melody, options, source=source)
        except InvalidMelodyError as e:
            self.window.revalidate()
            self.window.report(str(e))
            self.window.set_run_state(ev.RUN_FAILED, "the melody does not validate")
            return None
        self._watch(self.run)
        return self.run

    def _watch(self, run: Run) -> None:
        task = asyncio.ensure_future(run.wait())
        task.add_done_callback(lambda t: self._finished(run, t))

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
        """Take the Settings' endpoints and run history size into the next runs."""
        if self.conductor is not None:
            for spec in catalog_from(prefs):
                self.conductor.catalog.add(spec)
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
        run_id, node_id = produced
        try:
            again = conductor.adopt_output(run_id, node_id, artifact_id)
        except (RunNotFoundError, InvalidMelodyError, PitError, KeyError) as e:
            w.report(f"The edit stays a new version only: {e}", "warning")
            return []
        self._resumable = run_id
        w.report(
            f"Output of {node_id!r} edited: Resume After Edit reruns "
            + (", ".join(again) or "nothing (no node depends on it)"),
            "info",
        )
        w.update_actions()
        return again

    def resume_after_edit(self) -> Run | None:
        """Resume the run whose output was edited: only what depends on the edit runs."""
        conductor = self._conductor()
        run_id = self._resumable
        if conductor is None or run_id is None or self.active:
            return None
        self._resumable = None
        board = self.window.run_board or self.window.current_board()
        self.window.attach_run(board)
        run = conductor.resume(run_id)
        self.run = run
        self.last_result = None
        self._watch(run)
        return run

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
        from symphony.conductor.conductor import InvalidMelodyError, RunNotFoundError

        w = self.window
        try:
            record = conductor.record(run_id)
            melody = conductor.melody_of(record)
        except (RunNotFoundError, ValueError) as e:
            w.report(f"Run {run_id} cannot be resumed: {e}")
            return None
        board = w.board_for_run(melody, record.get("source"))
        if board is None:
            return None
        w.attach_run(board)
        self.last_result = None
        self._resumable = None
        try:
            self.run = conductor.resume(run_id)
        except (RunNotFoundError, InvalidMelodyError) as e:
            w.report(f"Run {run_id} cannot be resumed: {e}")
            w.set_run_state(ev.RUN_FAILED, "the run cannot be resumed")
            return None
        self._watch(self.run)
        return self.run

    @property
    def active(self) -> bool:
        """Whether a run is going on (running or paused)."""
        return self.run is not None and not self.run.done

    @staticmethod
    def options_for(what: str, board: BoardTab) -> RunOptions:
        """Return the run options of ``what`` (``all``, ``selected``, ``from_here``)."""
        from symphony.conductor.conductor import RunOptions

        if what == "selected":
            return RunOptions.selected(board.melody, board.selected_node_ids())
        if what == "from_here":
            return RunOptions.from_here(board.melody, board.selected_node_ids())
        return RunOptions()
