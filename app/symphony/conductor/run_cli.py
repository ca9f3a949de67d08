"""``symphony run FILE.melody``: run a melody headless, with live progress on stderr.

Extension node types run in their extension processes, hosted by the same
:class:`~symphony.extension_host.host.ExtensionHost` the app uses; the host needs a Qt event
loop, so the run goes on a ``QCoreApplication`` driven by qasync (no widgets, no display). A melody
of built-in operators only runs on plain asyncio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shlex
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, TextIO

from symphony.conductor import DEFAULT_KEEP_RUNS
from symphony.conductor.events import (
    NodeStateChanged,
    RecoveryChosen,
    RunEvent,
    RunStateChanged,
)

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_PIPE",
    "add_runs_subcommand",
    "add_subcommand",
    "main",
    "main_runs",
    "resume_command",
    "strict_json",
]

EXIT_OK: Final = 0
#: The run ended with a failed node.
EXIT_FAILED: Final = 1
#: The melody file, an ``--input`` or an option is invalid (nothing ran).
EXIT_INVALID: Final = 2
#: Interrupted (SIGINT/SIGTERM); ``--resume RUN_ID`` continues it.
EXIT_INTERRUPTED: Final = 3
#: The data directory could not be opened (wrong key, damaged, in use), or the run's record
#: in it is damaged.
EXIT_DATA: Final = 4
#: Whoever read stdout went away (``symphony runs | head``): 128 + SIGPIPE, what a shell
#: reports for a Unix tool that SIGPIPE ended.
EXIT_PIPE: Final = 128 + 13

#: Nodes running at once unless ``--max-parallel`` (``RunOptions``' default, which this module
#: does not import: ``symphony --help`` need not load the conductor).
DEFAULT_MAX_PARALLEL: Final = 4


def default_data_dir() -> Path:
    """Return the default Pit data directory (``$XDG_DATA_HOME/symphony/pit``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "symphony" / "pit"


def resume_command(
    run_id: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
    workspace: str | os.PathLike[str] | None = None,
) -> str:
    """Return the shell command that resumes run ``run_id``, quoted for a POSIX shell.

    What ``symphony run`` prints when a run is interrupted, ``symphony runs RUN_ID`` for a
    resumable run, and what the Runs dock's *Copy Resume Command* should copy. Each option is
    left out when it is the default: ``data_dir`` when it is :func:`default_data_dir` (or
    ``None``), ``key_file`` when ``None``, ``workspace`` when ``None`` or the current folder
    (a resume uses the workspace its run recorded anyway). Paths are made absolute, so that the
    command works from any folder.

    Examples
    --------
    >>> resume_command("20261122-1", data_dir="/tmp/my pit")
    "symphony run --resume 20261122-1 --data-dir '/tmp/my pit'"
    """
    words = ["symphony", "run", "--resume", run_id]
    if data_dir is not None:
        path = Path(data_dir).absolute()
        if path.resolve() != default_data_dir().absolute().resolve():
            words += ["--data-dir", str(path)]
    if key_file is not None:
        words += ["--key-file", str(Path(key_file).absolute())]
    if workspace is not None:
        path = Path(workspace).absolute()
        if path.resolve() != Path.cwd().resolve():
            words += ["--workspace", str(path)]
    return shlex.join(words)


def strict_json(value: Any) -> Any:
    """Return ``value`` with every non-finite float as a string: strict JSON has none.

    ``NaN``, ``inf`` and ``-inf`` become ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (what
    ``json.dumps`` would print bare, which ``JSON.parse`` and RFC 8259 parsers refuse); dicts,
    lists and tuples are walked, everything else is returned as it is. A node output can hold
    them: ``op.json_extract`` reads ``NaN`` in its input as Python's ``json`` does.
    """
    if type(value) is float:
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    return json.dumps(strict_json(value), ensure_ascii=False, default=str, allow_nan=False)


def stdout_gone() -> int:
    """Stop quietly after stdout's reader went away, as Unix tools do (``| head``).

    Returns :data:`EXIT_PIPE`; every ``symphony`` command that prints a listing uses it.
    """
    # Python flushes stdout again at exit and would report the broken pipe there: point the
    # descriptor at /dev/null first.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE


def add_subcommand(sub: Any) -> None:
    """Add ``run`` to the ``symphony`` subcommands."""
    p = sub.add_parser(
        "run",
        help="run a melody headless",
        description="Run a melody headless, with live progress on stderr.",
    )
    p.add_argument("melody", nargs="?", help="the .melody file (not needed with --resume)")
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set an input: a name the melody declares, or NODE.FIELD (repeatable)",
    )
    p.add_argument("--data-dir", help=f"the Pit data directory (default: {default_data_dir()})")
    p.add_argument("--key-file", help="the Pit key file (default: SYMPHONY_PIT_KEY_FILE/keyring)")
    p.add_argument(
        "--workspace",
        help="the File Explorer's workspace folder (default: cwd; with --resume, the run's)",
    )
    p.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue an interrupted or failed run, with the options and workspace it was "
        "started with (options given here replace them)",
    )
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    # None when not given: a resume then keeps the run's stored option
    p.add_argument(
        "--no-cache",
        action="store_true",
        default=None,
        help="run every node, even unchanged ones",
    )
    p.add_argument("--budget", type=_budget, metavar="X", help="money the run may spend (≥ 0)")
    p.add_argument(
        "--max-parallel",
        type=_max_parallel,
        metavar="N",
        help=f"nodes running at once (default: {DEFAULT_MAX_PARALLEL})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument(
        "--keep-runs",
        type=_keep_runs,
        default=DEFAULT_KEEP_RUNS,
        metavar="N",
        help=f"ended runs kept resumable; older ones are pruned (default: {DEFAULT_KEEP_RUNS})",
    )


def add_runs_subcommand(sub: Any) -> None:
    """Add ``runs`` to the ``symphony`` subcommands."""
    p = sub.add_parser(
        "runs",
        help="list the runs a data directory remembers",
        description="List recorded runs, the most recently active first, or show one run's "
        "nodes. Interrupted and failed runs that are still kept can be continued with "
        "`symphony run --resume RUN_ID`.",
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="show this run and its nodes")
    p.add_argument("--data-dir", help=f"the Pit data directory (default: {default_data_dir()})")
    p.add_argument("--key-file", help="the Pit key file (default: SYMPHONY_PIT_KEY_FILE/keyring)")
    how_many = p.add_mutually_exclusive_group()
    how_many.add_argument("--limit", type=_keep_runs, default=20, metavar="N",
                          help="list the N most recent runs (default: 20)")  # fmt: skip
    how_many.add_argument("--all", action="store_true", help="list every run")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _keep_runs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, not {text!r}")
    return n


_max_parallel = _keep_runs


def _budget(text: str) -> float:
    # float() takes "nan" and "inf": neither is an amount of money, and NaN is not JSON
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or x < 0:
        raise argparse.ArgumentTypeError(f"expected an amount ≥ 0, not {text!r}")
    return x


def _parse_inputs(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not name:
            raise ValueError(f"--input {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


class _Progress:
    """Prints node states and recoveries to stderr, one line each."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, e: RunEvent) -> None:
        if isinstance(e, NodeStateChanged):
            extra = f" ({e.model})" if e.model else ""
            detail = f": {e.detail}" if e.detail and e.state in ("failed", "skipped") else ""
            attempt = f" attempt {e.attempt}" if e.attempt > 1 else ""
            print(f"  {e.node_id:<16} {e.state}{attempt}{extra}{detail}", file=self.out)
        elif isinstance(e, RecoveryChosen):
            print(f"  {e.node_id:<16} recovery: {e.strategy} — {e.why}", file=self.out)
        elif isinstance(e, RunStateChanged):
            detail = f" ({e.detail})" if e.detail else ""
            print(f"run {e.run_id}: {e.state}{detail}", file=self.out)
        self.out.flush()


def main(args: argparse.Namespace) -> int:
    """Run ``symphony run`` with parsed ``args``; return the exit code.

    With ``--resume``, the run goes on with the options its record keeps (``--no-cache``,
    ``--budget``, ``--max-parallel`` given here replace theirs) in the workspace it recorded
    (``--workspace`` given here replaces it); a run recorded before the workspace was kept
    resumes in ``--workspace`` or the current folder, as before.
    """
    try:
        code = _main(args)
        sys.stdout.flush()  # here, where a reader gone away can be handled
    except BrokenPipeError:
        return stdout_gone()
    return code


def _main(args: argparse.Namespace) -> int:
    from symphony.conductor.conductor import InvalidMelodyError, RunNotFoundError, apply_inputs
    from symphony.conductor.history import RunRecordDamagedError, read_record
    from symphony.pit import Pit, PitError
    from symphony.workflow import MelodyFormatError, load

    def fail(code: int, message: str) -> int:
        if args.json:
            print(_dumps({"error": message, "exit_code": code}))
        print(f"symphony run: {message}", file=sys.stderr)
        return code

    # said once the run has started: a resume refused (pruned, invalid) needs no word on it
    notes: list[str] = []

    if not args.melody and not args.resume:
        return fail(EXIT_INVALID, "give a .melody file, or --resume RUN_ID")
    if args.resume and (args.melody or args.input):
        # a resume continues the melody the run recorded: a file or inputs given with it would
        # be silently ignored, and the user would think the fix was in
        given_too = "a .melody file" if args.melody else "--input"
        return fail(
            EXIT_INVALID,
            f"--resume continues run {args.resume} with the melody it recorded, so {given_too} "
            "cannot change it: start a new run with the fixed melody, or edit the node's output "
            "in the app and use Resume After Edit",
        )
    try:
        inputs = _parse_inputs(args.input)
    except ValueError as e:
        return fail(EXIT_INVALID, str(e))
    melody = None
    if args.melody:
        try:
            melody = load(args.melody)
        except FileNotFoundError:
            return fail(EXIT_INVALID, f"{args.melody}: no such file")
        except (MelodyFormatError, OSError, UnicodeDecodeError) as e:
            return fail(EXIT_INVALID, str(e))
        try:
            apply_inputs(melody, inputs)
        except InvalidMelodyError as e:
            return fail(EXIT_INVALID, str(e))
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    given = Path(args.workspace).resolve() if args.workspace else None
    if given is not None and not given.is_dir():
        return fail(EXIT_INVALID, f"--workspace {given}: not a folder")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        pit = Pit.open(data_dir, key_file=args.key_file)
    except (PitError, OSError) as e:
        return fail(EXIT_DATA, f"data directory {data_dir}: {e}")
    try:
        record = None
        if args.resume:
            try:
                record = json.loads(read_record(pit, args.resume))
            except RunRecordDamagedError as e:
                return fail(EXIT_DATA, str(e))
            except RunNotFoundError as e:
                return fail(EXIT_INVALID, str(e))
            except ValueError as e:
                return fail(EXIT_INVALID, f"run {args.resume!r}: its record is not readable ({e})")
        workspace = _workspace(args, given, record, notes.append)
        if isinstance(workspace, str):
            return fail(EXIT_INVALID, workspace)
        outcome = _run(pit, melody, args, workspace, record, notes)
    except RunRecordDamagedError as e:
        return fail(EXIT_DATA, str(e))
    except (InvalidMelodyError, RunNotFoundError) as e:
        return fail(EXIT_INVALID, str(e))
    except PitError as e:
        return fail(EXIT_DATA, str(e))
    finally:
        pit.close()
    result, interrupted = outcome
    if args.json:
        print(_dumps(result))
    else:  # --quiet silences the progress on stderr, not the outputs asked for
        for name, value in result["outputs"].items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            print(f"{name}:\n{text}\n")
    if interrupted or result["status"] == "interrupted":
        again = resume_command(
            result["run_id"], data_dir=args.data_dir, key_file=args.key_file, workspace=workspace
        )
        print(f"resume with: {again}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if result["status"] == "succeeded" else EXIT_FAILED


def _workspace(
    args: argparse.Namespace,
    given: Path | None,
    record: Mapping[str, Any] | None,
    note: Callable[[str], None],
) -> Path | str:
    """Return the workspace a run uses, or why it cannot have one (a message).

    A new run: ``--workspace``, else the current folder. A resume: the one its record keeps,
    unless ``--workspace`` is given; a record from before workspaces were kept says nothing, and
    the run resumes in ``--workspace`` or the current folder, as it did then. Which one is used
    is said on stderr (unless ``--quiet``); a ``--workspace`` that is not the run's, always.
    """
    if record is None:
        return given if given is not None else Path.cwd().resolve()
    recorded = record.get("workspace")
    recorded = Path(recorded) if isinstance(recorded, str) and recorded else None
    if given is not None:
        if recorded is not None and given != recorded:
            note(f"resuming in --workspace {given}, not in the run's workspace {recorded}")
        elif not args.quiet:
            note(f"resuming in workspace {given}")
        return given
    if recorded is None:
        here = Path.cwd().resolve()
        if not args.quiet:
            note(
                f"the run's record does not say which workspace it used: resuming in the "
                f"current folder {here} (give --workspace to choose another)"
            )
        return here
    if not recorded.is_dir():
        return (
            f"the run's workspace {recorded} is not a folder any more; give --workspace to "
            "resume it in another"
        )
    if not args.quiet:
        note(f"resuming in the run's workspace {recorded}")
    return recorded


def _needs_extensions(melody: Any, registry: Any) -> bool:
    return any(
        (d := registry.get(n.type_id)) is not None and d.source != "builtin"
        for n in melody.nodes.values()
    )


def _run(
    pit: Any,
    melody: Any,
    args: argparse.Namespace,
    workspace: Path,
    record: Mapping[str, Any] | None,
    notes: list[str],
) -> tuple[Mapping[str, Any], bool]:
    from symphony.conductor.conductor import Conductor, RunOptions
    from symphony.conductor.executor import LocalExecutor
    from symphony.extension_host.discovery import discover
    from symphony.registry import NodeTypeError, default_registry
    from symphony.ui.settings import Preferences, catalog_from

    registry = default_registry()
    found = discover(None)
    for ext_id, manifest in found.manifests.items():
        try:
            registry.register_from_manifest(ext_id, manifest.node_types)
        except NodeTypeError as e:
            # all or nothing per extension, as in the app: one broken extension must not stop
            # melodies that do not use it (a melody that does is refused: unknown node type)
            print(f"symphony run: extension skipped: {e}", file=sys.stderr)
    for error in found.errors:
        print(f"symphony run: extension skipped: {error}", file=sys.stderr)
    if record is not None:  # --resume: the run's own options, with what is given here
        probe = Conductor(pit, registry)
        melody_for_check = probe.melody_of(record) if melody is None else melody
        # the command line has no Step or Continue: a run stepped in the app runs on here, and
        # a breakpoint would stop it for good
        changes: dict[str, Any] = {"step": False, "breakpoints": False}
        if args.no_cache:
            changes["use_cache"] = False
        if args.budget is not None:
            changes["budget"] = args.budget
        if args.max_parallel is not None:
            changes["max_parallel"] = args.max_parallel
        options = probe.stored_options(args.resume, record, **changes)
    else:
        melody_for_check = melody
        options = RunOptions(
            use_cache=not args.no_cache,
            budget=args.budget,
            max_parallel=args.max_parallel or DEFAULT_MAX_PARALLEL,
            breakpoints=False,
        )
    state = {"interrupted": False}

    async def go(conductor: Conductor) -> Mapping[str, Any]:
        if not args.quiet:
            conductor.subscribe(_Progress(sys.stderr))
        if args.resume:
            run = conductor.resume(args.resume, options, workspace=workspace)
            for text in notes:
                print(f"symphony run: {text}", file=sys.stderr)
        else:
            run = conductor.start(
                melody, options, source=str(Path(args.melody).resolve()), workspace=workspace
            )
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            state["interrupted"] = True
            run.cancel(interrupted=True)

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, interrupt)
            except (NotImplementedError, RuntimeError):
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(interrupt))
        result = await run.wait()
        return result.to_json()

    # the models the app's Settings give (endpoints, their prices, the embedded switch): a melody
    # runs on the same models here as in the app, and --budget counts the same prices
    catalog = catalog_from(Preferences.load())
    if not _needs_extensions(melody_for_check, registry):
        executor = LocalExecutor(registry)
        conductor = Conductor(pit, registry, executor, catalog=catalog, keep_runs=args.keep_runs)
        return asyncio.run(go(conductor)), state["interrupted"]
    result = _run_with_host(pit, registry, workspace, go, args.keep_runs, catalog)
    return result, state["interrupted"]


def _run_with_host(
    pit: Any, registry: Any, workspace: Path, go: Any, keep_runs: int, catalog: Any
) -> Mapping[str, Any]:
    from PySide6.QtCore import QCoreApplication

    from symphony.conductor.conductor import Conductor
    from symphony.conductor.executor import LocalExecutor
    from symphony.conductor.host_gateway import HostGateway, ModelTracker
    from symphony.extension_host.host import ExtensionHost
    from symphony.qtloop import QtEventLoop

    app = QCoreApplication.instance() or QCoreApplication(sys.argv[:1])
    loop = QtEventLoop(app)
    host = ExtensionHost(workspace=workspace)
    executor = LocalExecutor(registry, HostGateway(host))
    conductor = Conductor(pit, registry, executor, catalog=catalog, keep_runs=keep_runs)
    tracker = ModelTracker(host, pit, conductor.catalog)  # noqa: F841 - Qt holds its slot weakly
    try:
        with loop:
            result: Mapping[str, Any] = loop.run_until_complete(go(conductor))
            return result
    finally:
        host.shutdown()


def main_runs(args: argparse.Namespace) -> int:
    """Run ``symphony runs`` with parsed ``args``; return the exit code.

    With ``--json`` a failure prints ``{"error", "exit_code"}`` on stdout too, as ``symphony
    run --json`` does. Output cut short by its reader (``| head``) ends the command quietly with
    :data:`EXIT_PIPE`.
    """
    try:
        code = _main_runs(args)
        sys.stdout.flush()  # here, where a reader gone away can be handled
    except BrokenPipeError:
        return stdout_gone()
    return code


def _main_runs(args: argparse.Namespace) -> int:
    from symphony.conductor import history
    from symphony.conductor.events import EventLogError
    from symphony.pit import Pit, PitError

    def fail(code: int, message: str) -> int:
        if args.json:
            print(_dumps({"error": message, "exit_code": code}))
        print(f"symphony runs: {message}", file=sys.stderr)
        return code

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if not data_dir.is_dir():
        return fail(EXIT_DATA, f"data directory {data_dir}: no such folder")
    try:
        pit = Pit.open(data_dir, key_file=args.key_file)
    except (PitError, OSError) as e:
        return fail(EXIT_DATA, f"data directory {data_dir}: {e}")
    with pit:
        if args.run_id:
            try:
                run = history.read_run(pit, args.run_id)
            except history.RunRecordDamagedError as e:
                return fail(EXIT_DATA, str(e))
            except (KeyError, ValueError) as e:  # none, or not a record this version reads
                return fail(EXIT_INVALID, str(e.args[0]))
            try:
                events, log_error = history.read_events(pit, args.run_id), None
            except (EventLogError, PitError) as e:
                # what the DAG Tracker keeps is still worth showing; saying nothing would
                # pass the missing attempts and recoveries off as none
                events, log_error = [], str(e)
            steps = history.node_steps(pit, args.run_id, events)
            if args.json:
                out = run.to_json()
                out["steps"] = [_step_json(s) for s in steps] if run.kept or steps else None
                out["event_log_error"] = log_error
                print(_dumps(out))
            else:
                _print_run(run, steps, log_error, args)
            return EXIT_OK
        try:
            runs = history.list_runs(pit, limit=None if args.all else args.limit)
        except PitError as e:
            return fail(EXIT_DATA, f"data directory {data_dir}: {e}")
    if args.json:
        print(_dumps([r.to_json() for r in runs]))
        return EXIT_OK
    if not runs:
        print(f"no runs recorded in {data_dir}")
        return EXIT_OK
    rows = [("RUN ID", "STARTED", "STATUS", "TOOK", "NODES", "COST", "MELODY")]
    rows += [
        (
            r.run_id,
            _when(r.started),
            r.status + (" *" if r.resumable else ""),
            history.format_duration(r.duration),
            f"{r.done_nodes}/{r.total_nodes}" if r.nodes else "-",
            "-" if r.cost is None else f"{r.cost:.4g}",
            r.melody if r.status != history.DAMAGED else "(its record cannot be read)",
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    if any(r.resumable for r in runs):
        again = resume_command("RUN_ID", data_dir=args.data_dir, key_file=args.key_file)
        print(f"\n* resumable: {again}")
    if any(r.status == history.DAMAGED for r in runs):
        print("damaged: the store cannot read the run's record; `symphony runs RUN_ID` says why")
    return EXIT_OK


def _print_run(run: Any, steps: list[Any], log_error: str | None, args: argparse.Namespace) -> None:
    from symphony.conductor import history

    print(f"run:      {run.run_id}")
    print(f"melody:   {run.melody}")
    print(f"status:   {run.status}" + (f" ({run.detail})" if run.detail else ""))
    print(f"started:  {_when(run.started)}")
    print(f"took:     {history.format_duration(run.duration)}")
    if run.cost is not None:
        print(f"cost:     {run.cost:.4g}")
    if run.workspace:
        print(f"workspace: {run.workspace}")
    if log_error is not None:
        print(
            f"events:   its event log is not readable ({log_error}); attempts, recoveries and "
            "costs are not shown"
        )
    if not steps:
        print("nodes:    not kept (pruned from the run history; its record and outputs stay)")
    else:
        if not run.kept:
            print("nodes:    (pruned from the run history: as its event log tells them)")
        else:
            print("nodes:")
        width = max((len(s.node_id) for s in steps), default=4)
        for s in steps:
            cost = f"  cost {s.cost:.4g}" if s.cost is not None else ""
            tries = f"  attempts {s.attempts_text}" if s.attempts_text else ""
            outs = f"  outputs {', '.join(map(str, s.outputs))}" if s.outputs else ""
            took = history.format_duration(s.took)
            print(f"  {s.node_id:<{width}}  {s.label:<9}  {took:>7}{tries}{cost}{outs}")
    if run.resumable:
        again = resume_command(run.run_id, data_dir=args.data_dir, key_file=args.key_file)
        print(f"resume with: {again}")


def _step_json(step: Any) -> dict[str, Any]:
    return {
        "id": step.node_id,
        "state": step.state,
        "cached": step.cached,
        "started": step.started,
        "finished": step.finished,
        "artifacts": list(step.outputs),
        "attempts": step.attempts or None,
        "cost": step.cost,
        "model": step.model or None,
        "recoveries": list(step.recoveries),
    }


def _when(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
