"""``symphony run FILE.melody``: run a melody headless, with live progress on stderr.

Extension node types run in their extension processes, hosted by the same
:class:`~symphony.extension_host.host.ExtensionHost` the app uses; the host needs a Qt event
loop, so the run goes on a ``QCoreApplication`` driven by qasync (no widgets, no display). A melody
of built-in operators only runs on plain asyncio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Mapping
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
    "add_runs_subcommand",
    "add_subcommand",
    "main",
    "main_runs",
]

EXIT_OK: Final = 0
#: The run ended with a failed node.
EXIT_FAILED: Final = 1
#: The melody file, an ``--input`` or an option is invalid (nothing ran).
EXIT_INVALID: Final = 2
#: Interrupted (SIGINT/SIGTERM); ``--resume RUN_ID`` continues it.
EXIT_INTERRUPTED: Final = 3
#: The data directory could not be opened (wrong key, damaged, in use).
EXIT_DATA: Final = 4


def default_data_dir() -> Path:
    """Return the default Pit data directory (``$XDG_DATA_HOME/symphony/pit``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "symphony" / "pit"


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
    p.add_argument("--workspace", help="the File Explorer's workspace folder (default: cwd)")
    p.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted or failed run")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--no-cache", action="store_true", help="run every node, even unchanged ones")
    p.add_argument("--budget", type=float, help="money the run may spend")
    p.add_argument("--max-parallel", type=int, default=4, help="nodes running at once")
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
            print(f"  {e.node_id:<16} recovery: {e.strategy} — {e.reason}", file=self.out)
        elif isinstance(e, RunStateChanged):
            detail = f" ({e.detail})" if e.detail else ""
            print(f"run {e.run_id}: {e.state}{detail}", file=self.out)
        self.out.flush()


def main(args: argparse.Namespace) -> int:
    """Run ``symphony run`` with parsed ``args``; return the exit code."""
    from symphony.conductor.conductor import InvalidMelodyError, RunNotFoundError, apply_inputs
    from symphony.pit import Pit, PitError
    from symphony.workflow import MelodyFormatError, load

    def fail(code: int, message: str) -> int:
        if args.json:
            print(json.dumps({"error": message, "exit_code": code}))
        print(f"symphony run: {message}", file=sys.stderr)
        return code

    if not args.melody and not args.resume:
        return fail(EXIT_INVALID, "give a .melody file, or --resume RUN_ID")
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
    workspace = Path(args.workspace or os.getcwd()).resolve()
    if not workspace.is_dir():
        return fail(EXIT_INVALID, f"--workspace {workspace}: not a folder")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        pit = Pit.open(data_dir, key_file=args.key_file)
    except (PitError, OSError) as e:
        return fail(EXIT_DATA, f"data directory {data_dir}: {e}")
    try:
        outcome = _run(pit, melody, args, workspace)
    except (InvalidMelodyError, RunNotFoundError) as e:
        return fail(EXIT_INVALID, str(e))
    except PitError as e:
        return fail(EXIT_DATA, str(e))
    finally:
        pit.close()
    result, interrupted = outcome
    if args.json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    elif not args.quiet:
        for name, value in result["outputs"].items():
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            print(f"{name}:\n{text}\n")
    if interrupted or result["status"] == "interrupted":
        print(f"resume with: symphony run --resume {result['run_id']}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if result["status"] == "succeeded" else EXIT_FAILED


def _needs_extensions(melody: Any, registry: Any) -> bool:
    return any(
        (d := registry.get(n.type_id)) is not None and d.source != "builtin"
        for n in melody.nodes.values()
    )


def _run(
    pit: Any, melody: Any, args: argparse.Namespace, workspace: Path
) -> tuple[Mapping[str, Any], bool]:
    from symphony.conductor.conductor import Conductor, RunOptions
    from symphony.conductor.executor import LocalExecutor
    from symphony.extension_host.discovery import discover
    from symphony.registry import default_registry

    registry = default_registry()
    found = discover(None)
    for ext_id, manifest in found.manifests.items():
        registry.register_from_manifest(ext_id, manifest.node_types)
    for error in found.errors:
        print(f"symphony run: extension skipped: {error}", file=sys.stderr)
    if melody is None:  # --resume: the stored melody decides what is needed
        probe = Conductor(pit, registry)
        melody_for_check = probe.melody_of(probe.record(args.resume))
    else:
        melody_for_check = melody
    options = RunOptions(
        use_cache=not args.no_cache, budget=args.budget, max_parallel=max(1, args.max_parallel)
    )
    state = {"interrupted": False}

    async def go(conductor: Conductor) -> Mapping[str, Any]:
        if not args.quiet:
            conductor.subscribe(_Progress(sys.stderr))
        if args.resume:
            run = conductor.resume(args.resume, options)
        else:
            run = conductor.start(melody, options, source=str(Path(args.melody).resolve()))
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

    if not _needs_extensions(melody_for_check, registry):
        conductor = Conductor(pit, registry, LocalExecutor(registry), keep_runs=args.keep_runs)
        return asyncio.run(go(conductor)), state["interrupted"]
    return _run_with_host(pit, registry, workspace, go, args.keep_runs), state["interrupted"]


def _run_with_host(
    pit: Any, registry: Any, workspace: Path, go: Any, keep_runs: int
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
    conductor = Conductor(pit, registry, executor, keep_runs=keep_runs)
    tracker = ModelTracker(host, pit, conductor.catalog)  # noqa: F841 - Qt holds its slot weakly
    try:
        with loop:
            result: Mapping[str, Any] = loop.run_until_complete(go(conductor))
            return result
    finally:
        host.shutdown()


def main_runs(args: argparse.Namespace) -> int:
    """Run ``symphony runs`` with parsed ``args``; return the exit code."""
    from symphony.conductor import history
    from symphony.pit import Pit, PitError

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    if not data_dir.is_dir():
        print(f"symphony runs: data directory {data_dir}: no such folder", file=sys.stderr)
        return EXIT_DATA
    try:
        pit = Pit.open(data_dir, key_file=args.key_file)
    except (PitError, OSError) as e:
        print(f"symphony runs: data directory {data_dir}: {e}", file=sys.stderr)
        return EXIT_DATA
    with pit:
        if args.run_id:
            try:
                run = history.read_run(pit, args.run_id)
            except (KeyError, ValueError) as e:
                print(f"symphony runs: {e.args[0]}", file=sys.stderr)
                return EXIT_INVALID
            steps = history.node_steps(pit, args.run_id)
            if args.json:
                out = run.to_json()
                out["steps"] = [_step_json(s) for s in steps] if run.kept or steps else None
                print(json.dumps(out, ensure_ascii=False))
            else:
                _print_run(run, steps)
            return EXIT_OK
        runs = history.list_runs(pit, limit=None if args.all else args.limit)
    if args.json:
        print(json.dumps([r.to_json() for r in runs], ensure_ascii=False))
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
            r.melody,
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])
    if any(r.resumable for r in runs):
        print("\n* resumable: symphony run --resume RUN_ID")
    return EXIT_OK


def _print_run(run: Any, steps: list[Any]) -> None:
    from symphony.conductor import history

    print(f"run:      {run.run_id}")
    print(f"melody:   {run.melody}")
    print(f"status:   {run.status}" + (f" ({run.detail})" if run.detail else ""))
    print(f"started:  {_when(run.started)}")
    print(f"took:     {history.format_duration(run.duration)}")
    if run.cost is not None:
        print(f"cost:     {run.cost:.4g}")
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
        print(f"resume with: symphony run --resume {run.run_id}")


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
