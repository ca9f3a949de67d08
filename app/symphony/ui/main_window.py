"""The main window: menus, toolbar, status bar, docks and central tabs.

Start-up is cheap on purpose: the constructor builds widgets only. After the window is shown,
:meth:`MainWindow.start_services` (scheduled with ``QTimer.singleShot(0)``) creates the node-type
registry and the extension host and opens the Pit on a worker thread; the canvas package is
imported the first time a melody is opened.

Run actions (:attr:`MainWindow.action_map` ``run.*``) are only *enabled* here, following
:meth:`MainWindow.set_run_state` and the current tab; the conductor connects to their
``triggered`` signals and feeds its events to :meth:`MainWindow.handle_run_event`.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from PySide6.QtCore import QByteArray, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QFontDatabase, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QStackedWidget,
    QStyle,
    QTabWidget,
    QToolButton,
    QWidget,
)

from symphony import __version__
from symphony.conductor import events as ev
from symphony.conductor import history
from symphony.ui import settings as st
from symphony.ui.artifacts_view import ArtifactsView
from symphony.ui.command_palette import CommandPalette
from symphony.ui.files_view import FILE_EXPLORER, FilesView
from symphony.ui.log_view import LogView, ProblemsView, QtLogHandler
from symphony.ui.run_controller import RunController
from symphony.ui.runs_view import RunsView
from symphony.ui.text_editor import ArtifactSource, FileChangedError, FileSource, TextEditorTab
from symphony.ui.theme import app_icon, apply_theme, current_theme
from symphony.ui.timeline import TimelineView

if TYPE_CHECKING:
    from symphony.extension_host.host import ExtensionHost
    from symphony.extension_host.manifest import Manifest
    from symphony.pit import Pit
    from symphony.registry import NodeTypeRegistry
    from symphony.ui.board_tab import BoardTab
    from symphony.workflow import Melody

_log = logging.getLogger("symphony.ui")

#: Run states in which a run is in progress (Run actions disabled, Stop enabled).
_ACTIVE_RUN: Final = (ev.RUN_RUNNING, ev.RUN_PAUSED)
MELODY_SUFFIX: Final = ".melody"
#: ``extension_host.host.DISABLED``, spelled out: the window imports the host module lazily.
_DISABLED: Final = "disabled"
#: Artifact kinds whose start a past run's board shows in the node's preview strip.
_TEXT_KINDS: Final = frozenset({"text", "markdown", "json"})
#: How much of an output the preview strip is given (it shows the last lines that fit), and
#: the largest output read for it (a past run is shown at once, not after reading megabytes).
PREVIEW_CHARS: Final = 600
PREVIEW_MAX_BYTES: Final = 256 * 1024
STATE_VERSION: Final = 1


class _PitOpener(QObject):
    """Opens the Pit on a worker thread; the result arrives on the GUI thread."""

    sig_done = Signal(object, str)

    def start(self, data_dir: Path, key_file: str | None) -> None:
        def work() -> None:
            from symphony.pit import Pit

            try:
                # Pit.open makes the folder (and its parents) itself, after refusing a path that
                # is a file with a message that says so (mkdir here would say "File exists").
                if key_file:
                    Path(key_file).parent.mkdir(parents=True, exist_ok=True)
                pit = Pit.open(data_dir, key_file=key_file)
            except Exception as e:  # any failure is reported to the user, the app goes on
                self.sig_done.emit(None, f"the Pit at {data_dir} could not be opened: {e}")
                return
            self.sig_done.emit(pit, "")

        threading.Thread(target=work, name="symphony-pit-open", daemon=True).start()


class MainWindow(QMainWindow):
    """The Symphony IDE window.

    Parameters
    ----------
    workspace
        A folder to show in the Files dock.
    data_dir, key_file
        Where the Pit lives and its key file (``None``: the OS keyring).
    start_services
        Start the registry, extension host and Pit after the window is shown (tests that inject
        their own pass ``False`` and call :meth:`set_host`, :meth:`set_pit`, :meth:`set_registry`).
    remember_layout
        Restore and save the window layout in QSettings (the smoke test does not).

    Signals
    -------
    sig_services_started()
        The registry and extension host exist (the Pit may still be opening).
    sig_pit_ready(object)
        The Pit is open (or ``None`` if it could not be).
    sig_current_tab_changed(object)
        The current central tab (a ``BoardTab``, a ``TextEditorTab`` or ``None``).
    """

    sig_services_started = Signal()
    sig_pit_ready = Signal(object)
    sig_current_tab_changed = Signal(object)

    def __init__(
        self,
        *,
        workspace: str | Path | None = None,
        data_dir: str | Path | None = None,
        key_file: str | None = None,
        start_services: bool = True,
        remember_layout: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("main_window")
        self.setWindowTitle("Symphony AIDE")
        self.setWindowIcon(app_icon())
        self.setDockNestingEnabled(True)
        self.registry: NodeTypeRegistry | None = None
        self.host: ExtensionHost | None = None
        #: The Files dock's own hint while it says the File Explorer is disabled (else None).
        self.pit: Pit | None = None
        #: Why the Pit could not be opened ("" while it opens, once it is open, or with no Pit).
        self.pit_error = ""
        self._pit_opening = False
        self.prefs = st.Preferences.load()
        self._data_dir = Path(data_dir) if data_dir else self.prefs.effective_data_dir()
        self._key_file = key_file
        self._initial_workspace = Path(workspace) if workspace else None
        self.run_state = ""
        self.run_board: BoardTab | None = None
        #: the board the run in the Timeline (and its Problems rows) is shown on, if still open
        self.timeline_board: BoardTab | None = None
        self._running_since: dict[str, float] = {}
        self._closing = False
        self._remember_layout = remember_layout
        self._pit_opener = _PitOpener(self)
        self._pit_opener.sig_done.connect(self._on_pit_opened)
        self._pending_opens: list[Path] = []
        self.palette_widget: QWidget | None = None
        self.properties_widget: Any = None

        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("central_tabs")
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(lambda i: self.close_tab(i))
        self.tabs.currentChanged.connect(self._on_current_changed)
        self._welcome = QLabel(
            "<h2>Symphony AIDE</h2><p>File → New from template… (Ctrl+Shift+N) to start a "
            "melody,<br>or File → Open… (Ctrl+O).</p><p>Ctrl+Shift+P lists every command.</p>",
            self,
        )
        self._welcome.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._welcome.setObjectName("welcome")
        self._center = QStackedWidget(self)
        self._center.addWidget(self._welcome)
        self._center.addWidget(self.tabs)
        self.setCentralWidget(self._center)

        self.action_map: dict[str, QAction] = {}
        self._build_actions()
        self._build_docks()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self.command_palette = CommandPalette(self.all_actions, self)
        self.runs = RunController(self)

        self._validate_timer = QTimer(self)
        self._validate_timer.setSingleShot(True)
        self._validate_timer.setInterval(250)
        self._validate_timer.timeout.connect(self.revalidate)
        self._artifacts_timer = QTimer(self)
        self._artifacts_timer.setSingleShot(True)
        self._artifacts_timer.setInterval(300)
        # Catches the Artifacts dock up with what runs store, at most every 300 ms.
        self._artifacts_timer.timeout.connect(self.artifacts.catch_up)

        self._log_handler = QtLogHandler(self.log_view)
        logging.getLogger("symphony").addHandler(self._log_handler)
        if remember_layout:
            self.restore_layout()
        else:
            self.resize(1400, 860)
        self.update_actions()
        if start_services:
            QTimer.singleShot(0, self.start_services)

    # ================================================================ actions

    def _act(
        self,
        key: str,
        text: str,
        slot: Callable[[], object] | None = None,
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
        *,
        tip: str = "",
        icon: QStyle.StandardPixmap | None = None,
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(key)
        if shortcut is not None:
            if isinstance(shortcut, QKeySequence.StandardKey):
                action.setShortcuts(shortcut)
            else:
                action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.setCheckable(checkable)
        if slot is not None:
            action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)  # shortcuts work even when the menu bar is hidden
        self.action_map[key] = action
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        sk = QKeySequence.StandardKey
        a = self._act
        a(
            "file.new",
            "&New Melody",
            self.new_melody,
            sk.New,
            tip="A new empty melody",
            icon=sp.SP_FileIcon,
        )
        a(
            "file.new_template",
            "New from &Template…",
            self.new_from_template_dialog,
            "Ctrl+Shift+N",
            tip="A new melody from a shipped template",
        )
        a(
            "file.open",
            "&Open…",
            self.open_dialog,
            sk.Open,
            tip="Open a melody or a text file",
            icon=sp.SP_DialogOpenButton,
        )
        a(
            "file.open_workspace",
            "Open &Workspace Folder…",
            self.open_workspace_dialog,
            "Ctrl+K, Ctrl+O",
            tip="Show a folder in the Files dock",
            icon=sp.SP_DirOpenIcon,
        )
        a(
            "file.save",
            "&Save",
            self.save_current,
            sk.Save,
            tip="Save the current tab",
            icon=sp.SP_DialogSaveButton,
        )
        a("file.save_as", "Save &As…", self.save_current_as, sk.SaveAs)
        a("file.close", "&Close Tab", lambda: self.close_tab(self.tabs.currentIndex()), sk.Close)
        a("file.clear_recent", "Clear Recent Files", self.clear_recent)
        self.action_map["file.clear_recent"].setEnabled(bool(st.recent_files()))
        a("file.quit", "&Quit", self.close, sk.Quit)
        a("edit.undo", "&Undo", self.undo, sk.Undo, icon=sp.SP_ArrowBack)
        a("edit.redo", "&Redo", self.redo, sk.Redo, icon=sp.SP_ArrowForward)
        a("edit.cut", "Cu&t", lambda: self._edit("cut"), sk.Cut)
        a("edit.copy", "&Copy", lambda: self._edit("copy"), sk.Copy)
        a("edit.paste", "&Paste", lambda: self._edit("paste"), sk.Paste)
        # Not sk.Delete: on X11 that is Del *and* Ctrl+D, and a window shortcut fires before
        # the board sees the key, so Ctrl+D (duplicate on the board) deleted the selection.
        # The board takes Backspace itself; as a window shortcut it would also fire in the
        # docks' lists and trees.
        a("edit.delete", "&Delete", lambda: self._edit("delete"), "Del")
        a("edit.select_all", "Select &All", lambda: self._edit("select_all"), sk.SelectAll)
        a(
            "edit.settings",
            "Se&ttings…",
            self.open_settings,
            "Ctrl+,",
            tip="AI providers, data folder, theme",
        )
        a(
            "view.command_palette",
            "Command &Palette…",
            self.show_command_palette,
            "Ctrl+Shift+P",
            tip="Search every command",
        )
        a("view.zoom_in", "Zoom &In", lambda: self._zoom("in"), sk.ZoomIn)
        a("view.zoom_out", "Zoom &Out", lambda: self._zoom("out"), sk.ZoomOut)
        a("view.zoom_reset", "&Actual Size", lambda: self._zoom("reset"), "Ctrl+1")
        a("view.fit", "&Fit Melody", lambda: self._zoom("fit"), "Ctrl+0")
        group = QActionGroup(self)
        for theme in st.THEMES:
            act = a(
                f"view.theme.{theme}",
                f"{theme.capitalize()} Theme",
                functools.partial(self.set_theme, theme),
                checkable=True,
            )
            group.addAction(act)
        a("run.all", "&Run All", None, "F5", tip="Run the whole melody", icon=sp.SP_MediaPlay)
        a("run.selected", "Run &Selected", None, "Ctrl+F5", tip="Run the selected nodes")
        a(
            "run.from_here",
            "Run &From Here",
            None,
            "Alt+F5",
            tip="Run the selected node and everything downstream",
            icon=sp.SP_MediaSeekForward,
        )
        a("run.stop", "St&op", None, "Shift+F5", tip="Stop the run", icon=sp.SP_MediaStop)
        a(
            "run.resume",
            "Resume After &Edit",
            None,
            "Ctrl+Shift+F5",
            tip="Run again what depends on an output you edited, keeping the rest of the run",
        )
        a(
            "run.pause",
            "&Pause",
            None,
            "F6",
            tip="Pause after the running nodes",
            icon=sp.SP_MediaPause,
        )
        a(
            "run.continue",
            "&Continue",
            None,
            "F8",
            tip="Run on from a pause (breakpoint, Pause or Step) until the next breakpoint",
            icon=sp.SP_ArrowRight,
        )
        a(
            "run.step",
            "S&tep",
            None,
            "F10",
            tip="Run the next node, then pause again",
            icon=sp.SP_MediaSkipForward,
        )
        a(
            "run.toggle_breakpoint",
            "Toggle &Breakpoint",
            self.toggle_breakpoints,
            "F9",
            tip="Pause the run before the selected nodes",
        )
        a(
            "run.history",
            "Run &History",
            self.show_run_history,
            "Ctrl+Alt+H",
            tip="List past runs: resume an interrupted or failed one, or show one on its board",
        )
        a("help.about", "&About Symphony AIDE", self.about)

    def all_actions(self) -> list[QAction]:
        """Every action of the window (what the command palette searches)."""
        return list(self.action_map.values())

    def _build_menus(self) -> None:
        bar = self.menuBar()
        x = self.action_map
        file = bar.addMenu("&File")
        file.addActions([x["file.new"], x["file.new_template"], x["file.open"]])
        file.addAction(x["file.open_workspace"])
        self.recent_menu = file.addMenu("Open &Recent")
        self.recent_menu.setObjectName("recent_menu")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file.addSeparator()
        file.addActions([x["file.save"], x["file.save_as"], x["file.close"]])
        file.addSeparator()
        file.addAction(x["file.quit"])
        edit = bar.addMenu("&Edit")
        edit.addActions([x["edit.undo"], x["edit.redo"]])
        edit.addSeparator()
        edit.addActions([x[k] for k in ("edit.cut", "edit.copy", "edit.paste", "edit.delete")])
        edit.addAction(x["edit.select_all"])
        edit.addSeparator()
        edit.addAction(x["edit.settings"])
        view = bar.addMenu("&View")
        view.addAction(x["view.command_palette"])
        view.addSeparator()
        docks = view.addMenu("&Docks")
        for dock in self.docks.values():
            docks.addAction(dock.toggleViewAction())
        # Each extension's state and a Restart action (filled when the host exists).
        self.extensions_menu = view.addMenu("E&xtensions")
        self.extensions_menu.setObjectName("extensions_menu")
        self.extensions_menu.setToolTipsVisible(True)
        self.extensions_menu.aboutToShow.connect(self._fill_extensions_menu)
        view.addSeparator()
        view.addActions([x[k] for k in ("view.zoom_in", "view.zoom_out", "view.zoom_reset")])
        view.addAction(x["view.fit"])
        view.addSeparator()
        themes = view.addMenu("&Theme")
        themes.addActions([x[f"view.theme.{t}"] for t in st.THEMES])
        run = bar.addMenu("&Run")
        run.addActions([x["run.all"], x["run.selected"], x["run.from_here"]])
        run.addSeparator()
        run.addActions([x["run.pause"], x["run.continue"], x["run.step"], x["run.stop"]])
        run.addAction(x["run.resume"])
        run.addSeparator()
        run.addAction(x["run.toggle_breakpoint"])
        run.addSeparator()
        run.addAction(x["run.history"])
        help_ = bar.addMenu("&Help")
        help_.addAction(x["view.command_palette"])
        help_.addAction(x["help.about"])

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        x = self.action_map
        tb.addActions([x["file.new"], x["file.open"], x["file.save"]])
        tb.addSeparator()
        tb.addActions([x["edit.undo"], x["edit.redo"]])
        tb.addSeparator()
        tb.addActions([x["run.all"], x["run.from_here"], x["run.pause"], x["run.continue"]])
        tb.addAction(x["run.step"])
        tb.addAction(x["run.stop"])

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.run_label = QLabel("Idle")
        self.run_label.setObjectName("run_status")
        self.position_label = QLabel("")
        self.position_label.setObjectName("position_status")
        self.services_label = QLabel("Starting…")
        self.services_label.setObjectName("services_status")
        # Shown only while an extension is disabled: says which, and its menu restarts it.
        self.extensions_button = QToolButton(self)
        self.extensions_button.setObjectName("extensions_status")
        self.extensions_button.setAutoRaise(True)
        self.extensions_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.extensions_button.setIcon(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        )
        self.extensions_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.extensions_button.setMenu(QMenu(self.extensions_button))
        self.extensions_button.hide()
        sb.addPermanentWidget(self.position_label)
        sb.addPermanentWidget(self.extensions_button)
        sb.addPermanentWidget(self.services_label)
        sb.addPermanentWidget(self.run_label)

    # ================================================================ docks

    def _dock(self, key: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{key}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.docks[key] = dock
        return dock

    def _build_docks(self) -> None:
        self.docks: dict[str, QDockWidget] = {}
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        self.files = FilesView(None, self)
        self.files.sig_open_file.connect(lambda p: self.open_path(p))
        self.files.sig_error.connect(lambda m: self._report(m, "warning", "files"))
        self.files.sig_renamed.connect(self.follow_rename)
        self.files.sig_deleted.connect(self.follow_delete)
        self._palette_holder = _placeholder("The node palette appears when the registry is ready")
        self._properties_holder = _placeholder("Select a node on a board to edit its properties")
        self.artifacts = ArtifactsView(self)
        self.artifacts.sig_open_artifact.connect(self.open_artifact)
        self.timeline = TimelineView(self)
        self.timeline.chart.sig_node_activated.connect(self._select_timeline_node)
        self.log_view = LogView(self)
        self.problems = ProblemsView(self)
        self.problems.sig_node_activated.connect(self.select_node)
        self.problems.sig_run_node_activated.connect(
            lambda _run_id, node_id: self._select_timeline_node(node_id)
        )
        self.runs_view = RunsView(self)
        self.runs_view.key_file = None if self._key_file is None else str(self._key_file)
        self.runs_view.live = self._live_runs
        self.runs_view.can_start = lambda: self.run_state not in _ACTIVE_RUN
        self.runs_view.sig_resume.connect(lambda run_id: self.runs.resume_run(run_id))
        self.runs_view.sig_show.connect(lambda run_id: self.show_run(run_id))
        self.runs_view.sig_artifact_activated.connect(self._show_artifact)
        files = self._dock("files", "Files", self.files, left)
        palette = self._dock("palette", "Palette", self._palette_holder, left)
        self.tabifyDockWidget(files, palette)
        files.raise_()
        self._dock("properties", "Properties", self._properties_holder, right)
        self._dock("artifacts", "Artifacts", self.artifacts, right)
        self.splitDockWidget(
            self.docks["properties"], self.docks["artifacts"], Qt.Orientation.Vertical
        )
        timeline = self._dock("timeline", "Timeline", self.timeline, bottom)
        problems = self._dock("problems", "Problems", self.problems, bottom)
        runs = self._dock("runs", "Runs", self.runs_view, bottom)
        log = self._dock("log", "Log", self.log_view, bottom)
        self.tabifyDockWidget(timeline, problems)
        self.tabifyDockWidget(problems, runs)
        self.tabifyDockWidget(runs, log)
        timeline.raise_()
        self.resizeDocks([files, self.docks["properties"]], [260, 380], Qt.Orientation.Horizontal)
        self.resizeDocks([timeline], [170], Qt.Orientation.Vertical)
        self.resizeDocks(
            [self.docks["properties"], self.docks["artifacts"]], [400, 300], Qt.Orientation.Vertical
        )

    # ================================================================ services

    def start_services(self, *, staged: bool = True) -> None:
        """Start the Pit (on a thread), the extension host, the registry and the palette.

        With ``staged``, each step runs from its own zero-time timer, so the window handles
        input between them (none takes more than about 100 ms); ``sig_services_started`` is
        emitted after the last one.
        """
        self._pit_opening = True
        self._pit_opener.start(self._data_dir, self._key_file)
        steps = [self._start_host, self._start_registry, self._start_workspace]

        def run(i: int) -> None:
            if self._closing:
                return
            steps[i]()
            if i + 1 < len(steps):
                if staged:
                    QTimer.singleShot(0, lambda: run(i + 1))
                else:
                    run(i + 1)
            else:
                self.sig_services_started.emit()

        run(0)

    def _start_host(self) -> None:
        from symphony.extension_host.host import ExtensionHost

        host = ExtensionHost(None, self)
        for err in host.errors:
            self._report(str(err), "error", "extensions")
        self.set_host(host)

    def _start_registry(self) -> None:
        assert self.host is not None
        registry, errors = build_registry(self.host.manifests.values())
        for err in errors:
            self._report(err, "error", "registry")
        self.set_registry(registry)

    def _start_workspace(self) -> None:
        assert self.host is not None
        workspace = self._initial_workspace or _path_or_none(st.settings().value("workspace/last"))
        # The workspace first: started before it, the File Explorer would be stopped at once
        # to start again on it (and a warning logged at every start).
        if workspace is not None and workspace.is_dir():
            self.set_workspace(workspace)
        elif workspace is not None:
            what = "is not a folder" if workspace.exists() else "no such folder"
            if self._initial_workspace is not None:
                # asked for on the command line: as loud as a missing FILE argument
                self._error("Cannot open workspace", f"workspace {workspace}: {what}")
            else:  # the last session's folder is gone: worth a line, not a dialog
                self._report(f"the last workspace {workspace} was not reopened: {what}", "info")
        self.host.activate("onStartup")

    def set_registry(self, registry: NodeTypeRegistry) -> None:
        """Use ``registry`` for new boards, the Palette dock and validation."""
        from symphony.ui.board_tab import make_palette, make_properties
        from symphony.ui.palette import PaletteWidget

        def add_from_palette(type_id: str) -> None:
            board = self.current_board()
            if board is None:
                self.statusBar().showMessage("Open or create a melody to add nodes to it", 5000)
            else:
                board.view.add_node_in_view(type_id)

        self.registry = registry
        self.palette_widget = make_palette(registry, self)
        if isinstance(self.palette_widget, PaletteWidget):  # double-click or Enter on an entry
            self.palette_widget.sig_activated.connect(add_from_palette)
        self.docks["palette"].setWidget(self.palette_widget)
        self.properties_widget = make_properties(self)
        self.docks["properties"].setWidget(self.properties_widget)
        self.properties_widget.set_models(
            (ep.name for ep in self.prefs.endpoints), embedded=self.prefs.embedded_model
        )
        board = self.current_board()
        self.properties_widget.set_editor(board.editor if board is not None else None)
        self._update_services_label()
        for path in self._pending_opens:
            self.open_path(path)
        self._pending_opens = []

    def set_host(self, host: ExtensionHost) -> None:
        """Use ``host`` for the Files dock; its log lines go to the Log dock."""
        self.host = host
        host.sig_log.connect(lambda ext, level, msg: self.log_view.append_line(ext, level, msg))
        host.sig_breaker_opened.connect(
            lambda ext, why: self._report(f"{ext} was disabled: {why}", "error", "extensions")
        )
        host.sig_state_changed.connect(self._on_extension_state)
        for ext_id in self._extension_ids():
            key = f"extensions.restart.{ext_id}"
            name = host.manifests[ext_id].name
            if key not in self.action_map:
                self._act(
                    key,
                    f"Restart {name}",
                    functools.partial(self.restart_extension, ext_id),
                    tip=f"Start the {name} extension again after it was disabled",
                )
        self.files.set_host(host)
        self._on_extension_state()

    # ================================================================ extension status

    def _on_extension_state(self, ext_id: str = "", _state: str = "") -> None:
        """Follow the extensions' states: status bar, restart actions, the Files dock."""
        host = self.host
        if host is None:
            return
        disabled = self.disabled_extensions()
        for other in host.manifests:
            action = self.action_map.get(f"extensions.restart.{other}")
            if action is not None:
                action.setEnabled(other in disabled)
                action.setToolTip(self._extension_summary(other))
        button = self.extensions_button
        names = [host.manifests[e].name for e in disabled]
        if len(names) == 1:
            button.setText(f"{names[0]} disabled")
        else:
            button.setText(f"{len(names)} extensions disabled")
        button.setToolTip("\n".join(self._extension_summary(e) for e in disabled))
        menu = button.menu()
        menu.clear()
        menu.addActions([self.action_map[f"extensions.restart.{e}"] for e in disabled])
        button.setVisible(bool(disabled))
        self._update_services_label()
        if not ext_id or ext_id == FILE_EXPLORER:
            self._sync_files_dock()

    def _extension_ids(self) -> list[str]:
        if self.host is None:
            return []
        manifests = self.host.manifests
        return sorted(manifests, key=lambda e: (manifests[e].name.lower(), e))

    def disabled_extensions(self) -> list[str]:
        """Ids of the extensions that are disabled (crashed too often, or a fatal error)."""
        host = self.host
        if host is None:
            return []
        return [e for e in self._extension_ids() if host.state(e) == _DISABLED]

    def _extension_summary(self, ext_id: str) -> str:
        assert self.host is not None
        name, state = self.host.manifests[ext_id].name, self.host.state(ext_id)
        if state == _DISABLED:
            return f"{name} is disabled: {self.host.last_error(ext_id)}"
        return f"{name}: {state.replace('-', ' ')}"

    def _fill_extensions_menu(self) -> None:
        menu = self.extensions_menu
        menu.clear()
        host = self.host
        if host is None:
            menu.addAction("Extensions are starting…").setEnabled(False)
            return
        for ext_id in self._extension_ids():
            summary = self._extension_summary(ext_id)
            shown = summary if len(summary) <= 100 else summary[:99] + "…"
            info = menu.addAction(shown)
            info.setToolTip(summary)
            info.setEnabled(False)
            menu.addAction(self.action_map[f"extensions.restart.{ext_id}"])
            menu.addSeparator()

    def restart_extension(self, ext_id: str) -> None:
        """Start a disabled extension again (its crash count starts over).

        The File Explorer lists the open workspace again, so the Files dock is current.
        """
        host = self.host
        if host is None or host.state(ext_id) != _DISABLED:
            return
        name = host.manifests[ext_id].name
        host.enable(ext_id)
        if ext_id == FILE_EXPLORER and self.files.workspace is not None:
            self.files.set_workspace(self.files.workspace)  # starts it and lists again
        else:
            host.start(ext_id)
        self._report(f"{name} restarted", "info", "extensions")

    def _sync_files_dock(self) -> None:
        """While the File Explorer is disabled, the Files dock says so instead of an empty tree."""
        host = self.host
        if host is None or FILE_EXPLORER not in host.manifests:
            return
        reason = None
        if host.state(FILE_EXPLORER) == _DISABLED:
            name = host.manifests[FILE_EXPLORER].name
            reason = (
                f"The {name} is disabled, so the folder cannot be shown.\n\n"
                f"{host.last_error(FILE_EXPLORER)}\n\n"
                f"View → Extensions → Restart {name} starts it again."
            )
        self.files.set_unavailable(reason)

    def set_pit(self, pit: Pit | None) -> None:
        """Show ``pit``'s artifacts (``None``: none)."""
        self.pit = pit
        if pit is not None:
            self.pit_error = ""
        self.artifacts.set_pit(pit, error=self.pit_error)
        self.runs_view.set_pit(pit, error=self.pit_error)
        self._update_services_label()
        if pit is not None:
            self._announce_resumable()
        self.sig_pit_ready.emit(pit)

    def _announce_resumable(self) -> None:
        # A run cut short by a closed window, a crash or kill -9 is worth saying at start, when
        # it is the last thing that happened (not at every start while an old one lies there).
        stopped = [s for s in self.runs_view.resumable() if s.status == ev.RUN_INTERRUPTED]
        if not stopped or self.runs_view.run_ids()[0] != stopped[0].run_id:
            return
        n = len(stopped)
        what = f"{n} interrupted run{'s' if n != 1 else ''} can be resumed (Run → Run History)"
        names = ", ".join(f"{s.melody} ({s.run_id})" for s in stopped[:3])
        self._report(f"{what}: {names}{', …' if n > 3 else ''}", "info", "conductor")
        self.statusBar().showMessage(what, 10000)

    def _on_pit_opened(self, pit: Pit | None, error: str) -> None:
        if self._closing:
            if pit is not None:
                pit.close()
            return
        self._pit_opening = False
        self.pit_error = error
        if error:
            self._report(error, "error", "pit")
        self.set_pit(pit)

    def _update_services_label(self) -> None:
        parts = []
        if self.registry is not None:
            parts.append(f"{len(self.registry)} node types")
        disabled = self.disabled_extensions()
        if self.host is not None:
            n = len(self.host.manifests)
            parts.append(f"{n} extensions" + (f" ({len(disabled)} disabled)" if disabled else ""))
        if self.pit is not None:
            parts.append("Pit open")
        elif self.pit_error:
            parts.append("Pit failed to open")
        else:
            parts.append("Pit opening…" if self._pit_opening else "Pit —")
        self.services_label.setText(" · ".join(parts))
        # The reason stays at hand after the status bar's message has gone.
        why = [self.pit_error, *(self._extension_summary(e) for e in disabled)]
        self.services_label.setToolTip("\n".join(w for w in why if w))

    def report(self, message: str, level: str = "error", source: str = "conductor") -> None:
        """Show a message in the Log (and, for warnings and errors, the status bar)."""
        self._report(message, level, source)

    def _report(self, message: str, level: str = "info", source: str = "symphony") -> None:
        self.log_view.append_line(source, level, message)
        if level in ("warning", "error"):
            self.statusBar().showMessage(message, 8000)

    # ================================================================ workspace and files

    def set_workspace(self, folder: str | Path) -> None:
        """Show ``folder`` in the Files dock and remember it."""
        path = Path(folder).expanduser().resolve()
        try:
            self.files.set_workspace(path)
        except NotADirectoryError as e:
            self._report(str(e), "error", "files")
            return
        self._sync_files_dock()  # a disabled File Explorer would leave an empty-looking tree
        self.docks["files"].raise_()
        st.settings().setValue("workspace/last", str(path))
        self.setWindowTitle(f"{path.name} — Symphony AIDE")

    def open_workspace_dialog(self) -> None:
        """Ask for a folder and show it."""
        folder = QFileDialog.getExistingDirectory(self, "Open Workspace Folder")
        if folder:
            self.set_workspace(folder)

    def open_dialog(self) -> None:
        """Ask for a file and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Open", "", "Melodies (*.melody);;All files (*)"
        )
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> QWidget | None:
        """Open ``path``: a ``.melody`` on a board, anything else in a text editor.

        An already open file is brought to front. Errors are shown and logged, naming the file.
        """
        p = Path(path).expanduser().resolve()
        for i in range(self.tabs.count()):
            tab = self.tabs.widget(i)
            if _tab_path(tab) == p:
                self.tabs.setCurrentIndex(i)
                self._add_recent(p)
                return tab
        opened: QWidget
        try:
            if p.suffix == MELODY_SUFFIX:
                if self.registry is None:
                    self._pending_opens.append(p)  # opened when the registry is ready
                    return None
                from symphony.ui.board_tab import BoardTab

                opened = BoardTab.open(p, self.registry)
            else:
                # binary, too large or unreadable files are refused here, naming the reason
                opened = TextEditorTab(FileSource(p))
        except (OSError, ValueError) as e:
            self._error("Cannot open", f"{p}: {e}")
            return None
        if isinstance(opened, TextEditorTab):
            opened.sig_disk_changed.connect(lambda m: self._report(m, "warning", "editor"))
            if not opened.encoding.is_utf:
                self._report(
                    f"{p.name} is not valid UTF-8: opened as {opened.encoding.name}, and saved "
                    f"in {opened.encoding.name} again",
                    "warning",
                    "editor",
                )
        self.add_tab(opened)
        self._add_recent(p)
        return opened

    def open_artifact(self, artifact_id: int) -> TextEditorTab | None:
        """Open artifact version ``artifact_id`` in a text tab (saving stores a new version)."""
        if self.pit is None:
            return None
        for i in range(self.tabs.count()):
            tab = self.tabs.widget(i)
            if isinstance(tab, TextEditorTab) and isinstance(tab.source, ArtifactSource):
                if tab.source.artifact_id == artifact_id:
                    self.tabs.setCurrentIndex(i)
                    return tab
        try:
            editor = TextEditorTab(ArtifactSource(self.pit, artifact_id))
        except Exception as e:  # Pit errors name the artifact
            self._error("Cannot open artifact", str(e))
            return None
        editor.sig_saved.connect(lambda _s: self._artifact_saved(editor))
        self.add_tab(editor)
        return editor

    def _artifact_saved(self, tab: TextEditorTab) -> None:
        self.artifacts.refresh()
        if isinstance(tab.source, ArtifactSource):
            self.artifacts.select_artifact(tab.source.artifact_id)
            self.runs.artifact_edited(tab.source.artifact_id)

    # ================================================================ tabs

    def add_tab(self, tab: QWidget) -> int:
        """Add a central tab, make it current and follow its title and modified state."""
        index = self.tabs.addTab(tab, "")
        self._retitle(tab)
        sig_mod = getattr(tab, "sig_modified_changed", None)
        if sig_mod is not None:
            sig_mod.connect(lambda _m, t=tab: self._tab_modified(t))
        sig_title = getattr(tab, "sig_title_changed", None)
        if sig_title is not None:
            sig_title.connect(lambda _t, t=tab: self._retitle(t))
        if isinstance(tab, TextEditorTab):
            ed = tab.editor
            ed.undoAvailable.connect(self._refresh_actions)
            ed.redoAvailable.connect(self._refresh_actions)
            ed.copyAvailable.connect(self._refresh_actions)
            ed.cursorPositionChanged.connect(self._update_position)
        else:
            self._connect_board(tab)
        self.tabs.setCurrentIndex(index)
        # what was just opened takes the keys: Delete, Select All, Undo then act on it, not on
        # whichever dock box had the focus before
        focus = tab.editor if isinstance(tab, TextEditorTab) else getattr(tab, "view", tab)
        focus.setFocus()
        return index

    def _refresh_actions(self, *_args: object) -> None:
        self.update_actions()

    def _tab_modified(self, tab: QWidget) -> None:
        self._retitle(tab)
        self.update_actions()

    def _connect_board(self, tab: Any) -> None:
        stack = tab.undo_stack
        # Bound methods, not lambdas: Qt drops them when the window goes, even if the stack
        # outlives it for a moment during teardown.
        stack.canUndoChanged.connect(self._refresh_actions)
        stack.canRedoChanged.connect(self._refresh_actions)
        stack.undoTextChanged.connect(self._refresh_actions)
        tab.sig_selection_changed.connect(self._board_selection_changed)
        tab.sig_melody_changed.connect(self._validate_timer.start)
        # The status bar's "N nodes · Zoom P %" follows the wheel, fits and edits.
        tab.view.sig_zoom_changed.connect(self._update_position)
        tab.sig_melody_changed.connect(self._update_position)

    def _board_selection_changed(self, _ids: list[str]) -> None:
        self._sync_artifacts_to_selection()
        self.update_actions()

    def _sync_artifacts_to_selection(self) -> None:
        # One node selected on the current board: the Artifacts dock shows what that node of
        # that melody produced (its lineage is a click away); anything else, including no
        # board, shows every artifact. Called on selection and on tab changes and closes, so
        # the dock never keeps a node of a board that is no longer in front, or gone.
        board = self.current_board()
        ids = board.selected_node_ids() if board is not None else []
        wanted: tuple[str, str | None] = ("", None)
        if board is not None and len(ids) == 1:
            wanted = (ids[0], board.melody.name)
        if wanted != self.artifacts.node_view:  # most tab changes: no rebuild of a long list
            self.artifacts.show_node(*wanted)

    def _retitle(self, tab: QWidget) -> None:
        i = self.tabs.indexOf(tab)
        if i < 0:
            return
        title = str(getattr(tab, "title", "untitled"))
        modified = bool(getattr(tab, "is_modified", lambda: False)())
        self.tabs.setTabText(i, ("● " if modified else "") + title)
        path = _tab_path(tab)
        self.tabs.setTabToolTip(i, str(path) if path else title)

    def current_tab(self) -> QWidget | None:
        """Return the current central tab."""
        return self.tabs.currentWidget()

    def current_board(self) -> BoardTab | None:
        """Return the current tab if it is a board."""
        tab = self.tabs.currentWidget()
        return tab if _is_board(tab) else None  # type: ignore[return-value]

    def _tabs_under(self, path: str) -> list[tuple[QWidget, Path]]:
        """Return the open tabs of file ``path`` or of files in folder ``path``, with theirs."""
        root = Path(path).resolve()
        out = []
        for i in range(self.tabs.count()):
            tab = self.tabs.widget(i)
            p = _tab_path(tab)
            if tab is not None and p is not None and (p == root or p.is_relative_to(root)):
                out.append((tab, p))
        return out

    def follow_rename(self, old: str, new: str) -> None:
        """Let open tabs follow a file or folder renamed from ``old`` to ``new``.

        Otherwise the tab would save to the old name and bring the old file back beside the
        renamed one, with the edits split between them.
        """
        for tab, p in self._tabs_under(old):
            moved = Path(new).resolve() / p.relative_to(Path(old).resolve())
            target: Any = tab.editor if _is_board(tab) else tab  # type: ignore[attr-defined]
            target.move_to(moved)
            self._retitle(tab)
            self._report(f"{p.name} was renamed: its tab now saves to {moved}", "info", "files")

    def follow_delete(self, path: str) -> None:
        """Mark the open tabs of a deleted file (or folder) unsaved, so closing offers to save."""
        for tab, p in self._tabs_under(path):
            target: Any = tab.editor if _is_board(tab) else tab  # type: ignore[attr-defined]
            target.mark_unsaved()
            self._retitle(tab)
            self._report(
                f"{p.name} was deleted; its tab keeps the text: save to write it again",
                "warning",
                "files",
            )

    def board_tabs(self) -> list[BoardTab]:
        """Every open board."""
        return [t for i in range(self.tabs.count()) if _is_board(t := self.tabs.widget(i))]  # type: ignore[misc]

    def _on_current_changed(self, _index: int) -> None:
        tab = self.current_tab()
        self._center.setCurrentWidget(self.tabs if tab is not None else self._welcome)
        if self.properties_widget is not None:
            board = self.current_board()
            self.properties_widget.set_editor(board.editor if board is not None else None)
        self._sync_artifacts_to_selection()
        self.update_actions()
        self._update_position()
        self.revalidate()
        self.sig_current_tab_changed.emit(tab)

    def commit_typing(self) -> None:
        """Apply what is being typed in Properties (saving, closing and running use it)."""
        if self.properties_widget is not None:
            self.properties_widget.commit_pending()

    def close_tab(self, index: int, *, ask: bool = True) -> bool:
        """Close tab ``index``; unsaved edits are offered for saving first (False: cancelled)."""
        self.commit_typing()
        found = self.tabs.widget(index)
        if found is None:
            return True
        tab: QWidget = found
        if ask and bool(getattr(tab, "is_modified", lambda: False)()):
            answer = QMessageBox.question(
                self,
                "Unsaved changes",
                f"Save the changes to {getattr(tab, 'title', 'this tab')}?",
                QMessageBox.StandardButton.Save
                | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Save,
            )
            if answer == QMessageBox.StandardButton.Cancel:
                return False
            if answer == QMessageBox.StandardButton.Save and not self.save_tab(tab):
                return False
        if tab is self.run_board:
            self.run_board = None
        if tab is self.timeline_board:
            self.timeline_board = None
        dispose = getattr(tab, "dispose", None)
        if dispose is not None:
            dispose()
        self.tabs.removeTab(index)
        tab.deleteLater()
        self.update_actions()
        return True

    # ================================================================ new / save

    def new_melody(self) -> BoardTab | None:
        """Open a new, empty melody."""
        if self.registry is None:
            self._report("the node types are still loading; try again in a moment", "warning")
            return None
        from symphony.ui.board_tab import UNTITLED, BoardTab

        # unsaved boards are told apart by name (tab titles, the run history, output names)
        taken = {b.melody.name for b in self.board_tabs()}
        name = next(n for i in range(1, len(taken) + 2)
                    if (n := UNTITLED if i == 1 else f"{UNTITLED} {i}") not in taken)  # fmt: skip
        tab = BoardTab.new(self.registry, name)
        self.add_tab(tab)
        return tab

    def new_from_template(self, template_id: str) -> BoardTab | None:
        """Open a new, unsaved melody from template ``template_id``."""
        if self.registry is None:
            self._report("the node types are still loading; try again in a moment", "warning")
            return None
        from symphony.ui.board_tab import BoardTab

        try:
            tab = BoardTab.from_template(template_id, self.registry)
        except (KeyError, ValueError) as e:
            self._error("Cannot create the melody", str(e))
            return None
        self.add_tab(tab)
        QTimer.singleShot(0, tab.fit)
        return tab

    def new_from_template_dialog(self) -> None:
        """Ask which template to start from."""
        from symphony.workflow import list_templates

        infos = list_templates()
        labels = [f"{t.name} — {t.description}" if t.description else t.name for t in infos]
        choice, ok = QInputDialog.getItem(self, "New from Template", "Template:", labels, 0, False)
        if ok and choice in labels:
            self.new_from_template(infos[labels.index(choice)].id)

    def save_tab(self, tab: QWidget, path: str | Path | None = None) -> bool:
        """Save ``tab`` (to ``path``, or ask for one if it has none). False if not saved."""
        self.commit_typing()
        try:
            if isinstance(tab, TextEditorTab):
                try:
                    if path is not None and isinstance(tab.source, FileSource):
                        self._refuse_open_elsewhere(tab, path)
                        tab.save_as(Path(path))  # if it fails, the tab keeps its old file
                    else:
                        tab.save()
                except FileChangedError as e:
                    answer = QMessageBox.question(
                        self,
                        "File changed on disk",
                        f"{e}.\n\nSave overwrites that change with the text of this tab; Cancel "
                        "writes nothing (the tab's Reload button shows the file's new text).",
                        QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Cancel,
                        QMessageBox.StandardButton.Cancel,
                    )
                    if answer != QMessageBox.StandardButton.Save:
                        tab.check_disk()  # shows the banner with Reload, if not yet shown
                        self._report(f"{tab.title} was not saved: {e}", "warning", "editor")
                        return False
                    tab.save(force=True)
                saved = _tab_path(tab)
            else:
                board: Any = tab
                if path is None and board.path is None:
                    chosen, _ = QFileDialog.getSaveFileName(
                        self,
                        "Save Melody",
                        f"{board.title}{MELODY_SUFFIX}",
                        "Melodies (*.melody)",
                    )
                    if not chosen:
                        return False
                    path = chosen if chosen.endswith(MELODY_SUFFIX) else chosen + MELODY_SUFFIX
                if path is not None:
                    self._refuse_open_elsewhere(tab, path)
                board.save(path)
                saved = board.path
        except Exception as e:  # OSError, Pit and format errors all name what failed
            self._error("Cannot save", f"{getattr(tab, 'title', '')}: {e}")
            return False
        if saved is not None:
            self._add_recent(saved)
        self._retitle(tab)
        self.statusBar().showMessage(f"Saved {getattr(tab, 'title', '')}", 3000)
        return True

    def _refuse_open_elsewhere(self, tab: QWidget, path: str | Path) -> None:
        """Raise ``OSError`` if another tab edits ``path``.

        Two tabs on one file would each overwrite the other's work at their next save.
        """
        target = Path(path).resolve()
        for i in range(self.tabs.count()):
            other = self.tabs.widget(i)
            if other is not tab and _tab_path(other) == target:
                raise OSError(
                    f"{target} is open in another tab ({getattr(other, 'title', target.name)}): "
                    "save there, or close that tab first"
                )

    def save_current(self) -> bool:
        """Save the current tab."""
        tab = self.current_tab()
        return tab is not None and self.save_tab(tab)

    def save_current_as(self) -> bool:
        """Save the current tab under a new file name."""
        self.commit_typing()
        tab = self.current_tab()
        if tab is None:
            return False
        if isinstance(tab, TextEditorTab) and isinstance(tab.source, ArtifactSource):
            return self.save_tab(tab)  # an artifact is saved as a new version, not a file
        suffix = MELODY_SUFFIX if _is_board(tab) else ""
        chosen, _ = QFileDialog.getSaveFileName(self, "Save As", str(_tab_path(tab) or ""))
        if not chosen:
            return False
        if suffix and not chosen.endswith(suffix):
            chosen += suffix
        return self.save_tab(tab, chosen)

    # ================================================================ recent files

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = st.recent_files()
        for path in files:
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _c=False, p=path: self.open_path(p))
        if not files:
            none = self.recent_menu.addAction("No recent files")
            none.setEnabled(False)
        self.recent_menu.addSeparator()
        self.recent_menu.addAction(self.action_map["file.clear_recent"])

    def clear_recent(self) -> None:
        """Forget the recent files."""
        st.clear_recent_files()
        self.action_map["file.clear_recent"].setEnabled(False)  # nothing left to clear

    def _add_recent(self, path: str | Path) -> None:
        st.add_recent_file(path)
        self.action_map["file.clear_recent"].setEnabled(True)

    # ================================================================ edit

    def undo(self) -> None:
        """Undo in the current tab."""
        self._history("undo")

    def redo(self) -> None:
        """Redo in the current tab."""
        self._history("redo")

    def _history(self, op: str) -> None:
        tab = self.current_tab()
        if isinstance(tab, TextEditorTab):
            getattr(tab.editor, op)()
        elif tab is not None and _is_board(tab):
            getattr(tab.undo_stack, op)()  # type: ignore[attr-defined]
        self.update_actions()

    def _edit(self, op: str) -> None:
        from PySide6.QtWidgets import QLineEdit, QPlainTextEdit, QTextEdit

        focus = QApplication.focusWidget()
        # A text box in a dock (palette search, Properties fields) gets the standard edit keys
        # itself; the menu entries (and the command palette) act on it too when it has the
        # focus, never on the board behind it. Qt names two of the operations differently.
        if isinstance(focus, QLineEdit | QPlainTextEdit | QTextEdit) and not self.tabs.isAncestorOf(
            focus
        ):
            if op == "delete":
                if isinstance(focus, QLineEdit):
                    focus.del_()  # the selection, or the character after the cursor
                else:
                    focus.textCursor().deleteChar()
            elif op == "select_all":
                focus.selectAll()
            else:
                getattr(focus, op)()
            return
        tab = self.current_tab()
        if isinstance(tab, TextEditorTab):
            ed = tab.editor
            if op == "delete":
                ed.textCursor().removeSelectedText()
            elif op == "select_all":
                ed.selectAll()
            else:
                getattr(ed, op)()
        elif tab is not None and _is_board(tab):
            problem = getattr(tab, op)()
            if problem:
                self._report(str(problem), "warning", "board")

    # ================================================================ view

    def _zoom(self, how: str) -> None:
        tab = self.current_tab()
        if isinstance(tab, TextEditorTab):
            ed = tab.editor
            if how == "in":
                ed.zoomIn(1)
            elif how == "out":
                ed.zoomOut(1)
            elif how in ("reset", "fit"):
                ed.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        elif tab is not None and _is_board(tab):
            board: Any = tab
            {
                "in": board.zoom_in,
                "out": board.zoom_out,
                "fit": board.fit,
                "reset": lambda: board.set_zoom(1.0),
            }[how]()
        self._update_position()

    def set_theme(self, theme: str) -> None:
        """Switch to ``theme`` and remember it."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, theme)
        self.action_map[f"view.theme.{theme}"].setChecked(True)
        self.prefs.theme = theme
        st.settings().setValue("ui/theme", theme)

    def show_command_palette(self) -> None:
        """Open the command palette."""
        self.command_palette.open_palette()

    def _update_position(self) -> None:
        tab = self.current_tab()
        if isinstance(tab, TextEditorTab):
            c = tab.editor.textCursor()
            self.position_label.setText(
                f"Ln {c.blockNumber() + 1}, Col {c.positionInBlock() + 1} · {tab.editor.language}"
            )
        elif tab is not None and _is_board(tab):
            board: Any = tab
            self.position_label.setText(
                f"{_count(len(board.melody.nodes), 'node')} · Zoom {board.zoom() * 100:.0f}%"
            )
        else:
            self.position_label.setText("")

    # ================================================================ run

    def set_run_state(self, state: str, detail: str = "") -> None:
        """Show the run's state (a ``RUN_*`` value, ``""`` when idle) and update the actions."""
        self.run_state = state
        text = {
            "": "Idle",
            ev.RUN_RUNNING: "Running…",
            ev.RUN_PAUSED: "Paused",
            ev.RUN_SUCCEEDED: "Run succeeded",
            ev.RUN_FAILED: "Run failed",
            ev.RUN_CANCELLED: "Run stopped",
            ev.RUN_INTERRUPTED: "Run interrupted",
        }.get(state, state)
        self.run_label.setText(text + (f": {detail}" if detail else ""))
        self.run_label.setToolTip(detail)
        self.update_actions()

    def attach_run(self, board: BoardTab | None) -> None:
        """Send the coming run's node states to ``board`` (default: the current board)."""
        self.run_board = self.timeline_board = board
        self.timeline.chart.clear()
        if board is not None:
            board.view.clear_run_states()
            self.timeline.chart.model.set_order(history.run_order(board.melody))
        self.problems.clear_run()
        self._running_since.clear()

    def _live_runs(self) -> dict[str, str]:
        run = self.runs.run if self.runs.active else None
        # A run announcing its end is not live any more: its record says how it ended.
        if run is None or run.state not in _ACTIVE_RUN:
            return {}
        return {run.run_id: run.state}

    def show_run_history(self) -> None:
        """Show the Runs dock."""
        dock = self.docks["runs"]
        dock.show()
        dock.raise_()
        self.runs_view.tree.setFocus()

    def board_for_run(self, melody: Melody, source: object = None) -> BoardTab | None:
        """Return a board showing ``melody`` (the melody a past run ran).

        In order: an open board of that melody (the board of the last run first) that is the
        file the run was started from (``source``) or unsaved; that file, opened, if it still
        holds that melody; else a new, unsaved copy of the melody as the run ran it. "That
        melody" means what decides a run: its name, nodes (type, config, policy), links and
        inputs; where nodes sit, their titles, breakpoints and notes may differ. A file edited
        since (other paths, prompts, links under the same node ids) is not the melody as it
        ran: showing the run's outputs under its config would mislead.
        """
        from symphony.workflow import to_document

        def what_runs(m: Melody) -> object:
            doc = to_document(m)
            nodes = [
                (n["id"], n["type"], n["config"], n["policy"])
                for n in doc["nodes"]  # the document's order is stable (sorted by id)
            ]
            inputs = doc["metadata"].get("inputs")
            return doc["name"], nodes, doc["links"], inputs

        ran = what_runs(melody)

        def fits(board: BoardTab) -> bool:
            m = board.melody
            if m.name != melody.name or m.nodes.keys() != melody.nodes.keys():
                return False  # the cheap test first: most boards differ here
            return what_runs(m) == ran

        path = Path(source) if isinstance(source, str) and source else None
        boards = self.board_tabs()
        last = self.run_board
        if last is not None and last in boards:  # the board the last run was shown on, if fits
            boards.remove(last)
            boards.insert(0, last)
        for board in boards:
            # With a file recorded, only its own board or an unsaved one will do: another
            # file's board may hold a melody of the same name and node ids (a copy, a template)
            if fits(board) and (path is None or board.path in (None, path)):
                self.tabs.setCurrentWidget(board)
                return board
        if self.registry is None:
            self._report("the node types are still loading; try again in a moment", "warning")
            return None
        from symphony.ui.board_tab import BoardTab

        if path is not None and path.is_file() and path not in {b.path for b in self.board_tabs()}:
            try:
                opened = BoardTab.open(path, self.registry)
            except (OSError, ValueError) as e:
                _log.info("the run's file %s is not opened: %s", source, e)
            else:
                if fits(opened):
                    self.add_tab(opened)
                    self._add_recent(path)
                    return opened
                opened.dispose()
                opened.deleteLater()

        tab = BoardTab.from_melody(melody, self.registry)
        self.add_tab(tab)
        QTimer.singleShot(0, tab.fit)
        return tab

    def show_run(self, run_id: str) -> BoardTab | None:
        """Open the melody run ``run_id`` ran and paint its nodes' last states on it."""
        if self.pit is None:
            self._report(f"Run {run_id} cannot be shown: {self.pit_error or 'no Pit'}", "warning")
            return None
        live = self.runs.run if self.runs.active else None
        if live is not None and live.run_id == run_id and self.run_board is not None:
            self.tabs.setCurrentWidget(self.run_board)  # it is on its board already
            return self.run_board
        try:
            record = json.loads(history.read_record(self.pit, run_id))
            melody = history.load_melody(self.pit, record)
            summary = history.read_run(self.pit, run_id, live=self._live_runs())
        except (KeyError, ValueError) as e:
            self._report(f"Run {run_id} cannot be shown: {e}", "warning")
            return None
        from symphony.pit import PitError

        try:
            logged = history.read_events(self.pit, run_id)
        except (ValueError, PitError) as e:  # the DAG Tracker's spans still show the run
            self._report(f"Run {run_id}: its event log is not readable: {e}", "warning")
            logged = []
        steps = history.node_steps(self.pit, run_id, logged)
        board = self.board_for_run(melody, record.get("source"))
        if board is None:
            return None
        if self.run_board is board and self.run_state in _ACTIVE_RUN:
            return board  # another run of it is going on there: its states win
        board.view.clear_run_states()
        for step in steps:
            state = step.shown_state
            if state is None or step.node_id not in board.melody.nodes:
                continue
            took = None
            if step.started is not None and step.finished is not None:
                took = step.finished - step.started
            detail = history.STOPPED_WHILE_RUNNING if step.state == "running" else ""
            board.view.set_node_run_state(step.node_id, state, elapsed=took, detail=detail)
            preview = self._output_preview(step.outputs)
            if preview:
                board.view.append_node_preview(step.node_id, preview)
        if live is not None and live.run_id == run_id and self.run_board is None:
            # its board was closed while it ran: what is left of it now paints on this one
            self.run_board = self.timeline_board = board
        if self.run_state not in _ACTIVE_RUN:  # a run going on keeps its live timeline
            self.timeline_board = board
            self.timeline.chart.clear()
            self.timeline.chart.model.set_order([s.node_id for s in steps])
            for event in history.replay_events(summary, steps, logged):
                self.timeline.chart.add_event(event)
        if not steps:
            self._report(
                f"Run {run_id}: its node states were pruned from the run history and its "
                "event log kept none; the melody is shown as it ran",
                "info",
            )
        self.statusBar().showMessage(f"Showing run {run_id} of {melody.name}", 6000)
        return board

    def _output_preview(self, outputs: tuple[int, ...]) -> str:
        """Return the end of a node's first text output: what its preview showed as it ran."""
        if self.pit is None or not outputs:
            return ""
        from symphony.pit import PitError

        store = self.pit.artifacts
        try:
            info = store.info(outputs[0])
            if info.kind not in _TEXT_KINDS or info.size > PREVIEW_MAX_BYTES:
                return ""
            text = store.get(outputs[0], actor="ide").decode("utf-8", "replace")
        except PitError:
            return ""
        return text[-PREVIEW_CHARS:]

    def _show_artifact(self, artifact_id: int) -> None:
        dock = self.docks["artifacts"]
        dock.show()
        dock.raise_()
        if not self.artifacts.select_artifact(artifact_id):
            # hidden by the filter or by a selected node's view: show everything, then look again
            self.artifacts.filter.clear()
            self.artifacts.show_node("")
            if not self.artifacts.select_artifact(artifact_id):
                self._report(f"artifact #{artifact_id} is no longer stored", "warning")

    def _catch_up_artifacts(self) -> None:
        # Not restarted while pending: a stream of outputs must not hold the update back.
        if not self._artifacts_timer.isActive():
            self._artifacts_timer.start()

    def handle_run_event(self, event: ev.RunEvent) -> None:
        """Show one conductor event: board states, timeline, problems, artifacts, status."""
        self.timeline.chart.add_event(event)
        self.problems.add_event(event)
        # Only the board the run was attached to: once it is closed, the run's node states go
        # to no board. The current tab may hold another melody, whose nodes can share the ids.
        board = self.run_board
        view = board.view if board is not None else None
        if isinstance(event, ev.RunStateChanged):
            self.set_run_state(event.state, event.detail)
            self._catch_up_artifacts()  # the run's own record
            self.runs_view.run_changed(event.run_id)
        elif isinstance(event, ev.NodeStateChanged):
            self.runs_view.node_changed(event.run_id)
            elapsed = None
            if event.state == ev.RUNNING:
                self._running_since[event.node_id] = event.at
            elif event.node_id in self._running_since:
                elapsed = event.at - self._running_since[event.node_id]
            if view is not None:
                view.set_node_run_state(
                    event.node_id, event.state, elapsed=elapsed, detail=event.detail
                )
        elif isinstance(event, ev.NodeProgress):
            if view is not None:
                since = self._running_since.get(event.node_id)
                view.set_node_run_state(
                    event.node_id,
                    ev.RUNNING,
                    progress=event.fraction,
                    elapsed=None if since is None else event.at - since,
                    detail=event.message,
                )
        elif isinstance(event, ev.NodeToken):
            if view is not None:
                view.append_node_preview(event.node_id, event.text)
        elif isinstance(event, ev.ArtifactStored):
            self._catch_up_artifacts()
            if view is not None:
                shown = view.board_scene.run_states.get(event.node_id)
                if shown is None or not shown.preview:
                    # a node that streamed nothing (an operator, a file read) shows the end of
                    # its output, as Show on Board does, rather than "no output yet"
                    preview = self._output_preview((event.artifact_id,))
                    if preview:
                        view.append_node_preview(event.node_id, preview)
        elif isinstance(event, ev.RecoveryChosen):
            self._report(
                f"{event.node_id}: {event.error} → {event.strategy} ({event.why})",
                "warning",
                "conductor",
            )

    # ================================================================ state of actions

    def update_actions(self) -> None:
        """Enable each action according to the current tab, its selection and the run."""
        tab = self.current_tab()
        board = self.current_board()
        text = tab if isinstance(tab, TextEditorTab) else None
        x = self.action_map
        has_tab = tab is not None
        x["file.save"].setEnabled(has_tab)
        x["file.save_as"].setEnabled(has_tab)
        x["file.close"].setEnabled(has_tab)
        if text is not None:
            doc = text.editor.document()
            x["edit.undo"].setEnabled(doc.isUndoAvailable())
            x["edit.redo"].setEnabled(doc.isRedoAvailable())
            has_sel = text.editor.textCursor().hasSelection()
            x["edit.cut"].setEnabled(has_sel)
            x["edit.copy"].setEnabled(has_sel)
            x["edit.delete"].setEnabled(has_sel)
            x["edit.paste"].setEnabled(True)
            x["edit.select_all"].setEnabled(True)
        elif board is not None:
            stack = board.undo_stack
            x["edit.undo"].setEnabled(stack.canUndo())
            x["edit.redo"].setEnabled(stack.canRedo())
            x["edit.undo"].setText(f"&Undo {stack.undoText()}".rstrip())
            x["edit.redo"].setText(f"&Redo {stack.redoText()}".rstrip())
            has_sel = bool(board.selected_node_ids())
            for k in ("edit.cut", "edit.copy", "edit.delete"):
                x[k].setEnabled(has_sel)
            x["edit.paste"].setEnabled(True)
            x["edit.select_all"].setEnabled(True)
        else:
            for k in (
                "edit.undo",
                "edit.redo",
                "edit.cut",
                "edit.copy",
                "edit.paste",
                "edit.delete",
                "edit.select_all",
            ):
                x[k].setEnabled(False)
        if board is None:
            x["edit.undo"].setText("&Undo")
            x["edit.redo"].setText("&Redo")
        for k in ("view.zoom_in", "view.zoom_out", "view.zoom_reset"):
            x[k].setEnabled(has_tab)
        x["view.fit"].setEnabled(board is not None)
        active = self.run_state in _ACTIVE_RUN
        selected = board is not None and bool(board.selected_node_ids())
        x["run.all"].setEnabled(board is not None and not active)
        x["run.selected"].setEnabled(selected and not active)
        x["run.from_here"].setEnabled(selected and not active)
        x["run.stop"].setEnabled(active)
        x["run.pause"].setEnabled(self.run_state == ev.RUN_RUNNING)
        x["run.step"].setEnabled(self.run_state == ev.RUN_PAUSED)
        x["run.continue"].setEnabled(self.run_state == ev.RUN_PAUSED)
        x["run.toggle_breakpoint"].setEnabled(selected)
        runs = getattr(self, "runs", None)
        x["run.resume"].setEnabled(runs is not None and runs.can_resume and not active)
        self.runs_view.update_actions()
        x[f"view.theme.{current_theme_name()}"].setChecked(True)

    # ================================================================ problems

    def revalidate(self) -> None:
        """Validate the current melody and list its issues in Problems."""
        board = self.current_board()
        if board is None or self.registry is None:
            self.problems.set_validation([])
            return
        from symphony.workflow import validate

        self.problems.set_validation(validate(board.melody, self.registry))

    def toggle_breakpoints(self) -> None:
        """Toggle the breakpoints of the selected nodes (an undoable edit of the melody)."""
        board = self.current_board()
        if board is not None:
            # what is being typed in Properties is applied first, as saving and running do;
            # the breakpoint's refresh of the form would otherwise show the stored text
            self.commit_typing()
            board.toggle_breakpoints()

    def _select_timeline_node(self, node_id: str) -> None:
        """Select a node of the run the Timeline and Problems show, on the board it is shown on.

        Never on whatever board is in front: that may hold another melody with the same ids.
        """
        board = self.timeline_board
        if board is None:
            self._report(
                f"node {node_id}: the board the run was shown on is closed (Runs → Show on Board "
                "opens it again)",
                "info",
            )
            return
        self.tabs.setCurrentWidget(board)
        if board.select_node(node_id):
            board.view.setFocus()

    def select_node(self, node_id: str) -> None:
        """Select ``node_id`` on the board in front (whose melody Problems validated)."""
        board = self.current_board()
        if board is None:
            return
        self.tabs.setCurrentWidget(board)
        if board.select_node(node_id):
            board.view.setFocus()

    # ================================================================ dialogs

    def open_settings(self) -> None:
        """Open the settings dialog (modal)."""
        from symphony.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(st.Preferences.load(), self)
        dialog.sig_applied.connect(self._settings_applied)
        dialog.exec()

    def _settings_applied(self, prefs: st.Preferences) -> None:
        self.prefs = prefs
        self.set_theme(prefs.theme)
        self.runs.settings_changed(prefs)
        if self.properties_widget is not None:
            self.properties_widget.set_models(
                (ep.name for ep in prefs.endpoints), embedded=prefs.embedded_model
            )
        if prefs.effective_data_dir() != self._data_dir:
            self._report(
                f"the data folder {prefs.effective_data_dir()} is used from the next start",
                "info",
            )

    def about(self) -> None:
        """Show the About box."""
        QMessageBox.about(
            self,
            "About Symphony AIDE",
            f"<h3>Symphony AIDE {__version__}</h3>"
            "<p>Compose melodies of AI instruments on the Harmony Board and run them.</p>"
            "<p>Apache-2.0</p>",
        )

    def _error(self, title: str, message: str) -> None:
        self._report(message, "error")
        if not self._closing:
            box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=self)
            box.setObjectName("error_box")
            box.open()

    # ================================================================ layout and closing

    def save_layout(self) -> None:
        """Remember geometry and dock layout."""
        s = st.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(STATE_VERSION))
        s.sync()

    def restore_layout(self) -> bool:
        """Restore geometry and dock layout (False if none was saved)."""
        s = st.settings()
        geometry = s.value("window/geometry")
        state = s.value("window/state")
        restored = False
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            restored = self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
        if isinstance(state, QByteArray) and not state.isEmpty():
            restored = self.restoreState(state, STATE_VERSION) and restored
        return restored

    @staticmethod
    def _release_clipboard() -> None:
        # Copied nodes are a Python-owned QMimeData: left on the clipboard past the
        # application's end, it is freed after Qt is gone and the process crashes on exit.
        if _clipboard_holds_ours():
            QApplication.clipboard().clear()

    def _may_quit_during_run(self) -> bool:
        """Ask before quitting stops a run (an IDE does not end work behind the user's back)."""
        run = self.runs.run if self.runs.active else None
        if run is None:
            return True
        answer = QMessageBox.question(
            self,
            "Quit Symphony AIDE",
            f"A run of “{run.melody.name}” is in progress.\n\nQuit anyway? The run stops now; "
            "Run → Run History resumes it after the next start.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Offer to save unsaved tabs, remember the layout, stop services."""
        # the run first: a user who then keeps it going has not been asked about every tab
        if not self._may_quit_during_run():
            event.ignore()
            return
        for i in reversed(range(self.tabs.count())):
            tab = self.tabs.widget(i)
            if bool(getattr(tab, "is_modified", lambda: False)()):
                self.tabs.setCurrentIndex(i)
                if not self.close_tab(i):
                    event.ignore()
                    return
        self._closing = True
        if self._remember_layout:
            self.save_layout()
        logging.getLogger("symphony").removeHandler(self._log_handler)
        if self.runs.conductor is not None:  # what the run does as it winds down is not ours
            self.runs.conductor.unsubscribe(self.handle_run_event)
        if self.runs.active and self.runs.run is not None:
            # Stopped as interrupted: its state is in the Pit; the Runs dock of the next start
            # (or `symphony run --resume`) continues it.
            self.runs.run.cancel(interrupted=True)
        self._release_clipboard()
        if self.host is not None:
            self.host.shutdown(grace=2)
        if self.pit is not None:
            self.pit.close()
        event.accept()


def _clipboard_holds_ours() -> bool:
    from symphony.document.editor import CLIPBOARD_MIME

    data = QApplication.clipboard().mimeData()
    return data is not None and data.hasFormat(CLIPBOARD_MIME)


def build_registry(manifests: Iterable[Manifest]) -> tuple[NodeTypeRegistry, list[str]]:
    """Return the built-in node types plus those of ``manifests``, and the refused manifests.

    A manifest whose node types are malformed or clash is left out (all or nothing per
    extension); its error message is returned so the user sees why its nodes are missing.
    """
    from symphony.registry import NodeTypeError, default_registry

    registry = default_registry()
    errors: list[str] = []
    for m in manifests:
        if m.node_types:
            try:
                registry.register_from_manifest(m.id, m.node_types)
            except NodeTypeError as e:
                errors.append(str(e))
    return registry, errors


def current_theme_name() -> str:
    """Return the theme in use (``light`` before any was applied)."""
    app = QApplication.instance()
    return current_theme(app) if isinstance(app, QApplication) else "light"


def _placeholder(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    label.setEnabled(False)
    return label


def _is_board(tab: object) -> bool:
    # Checked by duck type so this module does not import the canvas at start-up.
    return tab is not None and hasattr(tab, "undo_stack") and hasattr(tab, "view")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _tab_path(tab: object) -> Path | None:
    if isinstance(tab, TextEditorTab):
        return tab.source.path.resolve() if isinstance(tab.source, FileSource) else None
    p = getattr(tab, "path", None)
    return Path(p).resolve() if p else None


def _path_or_none(value: object) -> Path | None:
    return Path(str(value)) if value else None


def menu_actions(menu: QMenu) -> Iterable[QAction]:
    """Every action of ``menu`` and its submenus (tests, the command palette)."""
    for action in menu.actions():
        sub = action.menu()
        if isinstance(sub, QMenu):
            yield from menu_actions(sub)
        else:
            yield action
