"""The ``symphony`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from symphony import __version__


class _Parser(argparse.ArgumentParser):
    """``argparse`` whose usage errors are also a JSON object on stdout when asked for.

    ``run --json`` and ``runs --json`` promise ``{"error", "exit_code"}`` for every failure; a
    bad option (``--budget -1``) is refused by argparse before the command sees ``--json``.
    """

    json_errors = False  # set by main() from the command line, for the parser and its subparsers

    def error(self, message: str) -> NoReturn:  # noqa: D102 - argparse's
        if _Parser.json_errors:
            print(json.dumps({"error": f"{self.prog}: {message}", "exit_code": 2}))
        super().error(message)


def _parser() -> argparse.ArgumentParser:
    # Imported here: ``symphony --run-extension`` and the GUI start must not pay for them.
    from symphony.conductor import run_cli
    from symphony.conductor.fqg import cli as fqg_cli

    p = _Parser(
        prog="symphony",
        description="Symphony AIDE: compose and run melodies of AI instruments.",
    )
    p.add_argument("--version", action="version", version=f"symphony {__version__}")
    p.add_argument(
        "--smoke-test",
        action="store_true",
        help="open the main window offscreen, print its start-up time in ms and exit",
    )
    sub: Any = p.add_subparsers(dest="command", metavar="COMMAND")  # makes _Parser subparsers
    pit = sub.add_parser("pit", help="inspect a Pit data directory")
    pit_sub = pit.add_subparsers(dest="pit_command", metavar="PIT_COMMAND", required=True)
    info = pit_sub.add_parser("info", help="open a data directory and print what it holds")
    info.add_argument("data_dir", help="the Pit data directory")
    info.add_argument("--key-file", help="the key file (default: the OS keyring)")
    run_cli.add_subcommand(sub)
    run_cli.add_runs_subcommand(sub)
    fqg_cli.add_subcommand(sub)
    gui = sub.add_parser("gui", help="launch the desktop app (the default without a command)")
    gui.add_argument("--workspace", metavar="DIR", help="a folder to show in the Files dock")
    gui.add_argument("--data-dir", help="the Pit data directory (default: the settings')")
    gui.add_argument("--key-file", help="the Pit key file (default: the OS keyring)")
    gui.add_argument("files", nargs="*", metavar="FILE", help="melodies or text files to open")
    return p


def _pit_info_refusal(data_dir: str, key_file: str | None) -> str | None:
    """Say why ``pit info`` will not open ``data_dir``, or ``None``.

    ``Pit.open(read_only=True)`` refuses these too, but with the Pit's wording; here a mistyped
    path, a missing key file or keyring entry is named in the command's own words.
    """
    from symphony.pit import PitError, check_data_dir
    from symphony.pit.keys import KEY_FILE_ENV, key_from_keyring

    try:
        check_data_dir(data_dir)
    except PitError as e:
        return f"data directory {e}"
    path = Path(data_dir)
    if not path.is_dir():
        return f"data directory {data_dir}: no such folder"
    if not (path / "PIT").is_file():
        # the manifest every Pit has; an empty folder would become a new Pit
        return f"data directory {data_dir}: not a Pit data directory (it has no PIT manifest)"
    key_file = key_file or os.environ.get(KEY_FILE_ENV) or None
    if key_file is not None and not os.path.lexists(key_file):
        return f"key file {key_file}: no such file"
    if key_file is None:
        try:
            key_from_keyring(data_dir, create=False)
        except PitError as e:
            hint = "; was it made with a key file (--key-file)?" if "has no key" in str(e) else ""
            return f"data directory {data_dir}: {e}{hint}"
    return None


def _pit_info(data_dir: str, key_file: str | None) -> int:
    """Print what the Pit in ``data_dir`` holds; return the exit code (4 if it cannot open).

    The Pit is opened read-only: nothing in ``data_dir`` is created or written (no lock file,
    archive folder, journal repair or checkpoint), so an immutable folder can be inspected.
    """
    from symphony.conductor.run_cli import EXIT_DATA
    from symphony.pit import Pit, PitError

    refusal = _pit_info_refusal(data_dir, key_file)
    if refusal is not None:
        print(f"symphony pit info: {refusal}", file=sys.stderr)
        return EXIT_DATA
    try:
        with Pit.open(data_dir, key_file=key_file, read_only=True) as pit:
            print(f"data directory: {pit.data_dir}")
            print(f"models:         {len(pit.pool)}")
            print(f"workflows:      {len(pit.dag)}")
            print(f"artifacts:      {len(pit.artifacts)}")
            print(f"pending:        {len(pit.arbitration)} arbitration requests")
            print(f"stale view:     {len(pit.stale)} artifacts tracked")
    except (PitError, OSError) as e:
        # most of the Pit's errors name the folder already ("… is in use by another process")
        message = str(e) if data_dir in str(e) else f"data directory {data_dir}: {e}"
        print(f"symphony pit info: {message}", file=sys.stderr)
        return EXIT_DATA
    return 0


def _refuse_data_dir(args: argparse.Namespace) -> int | None:
    """Refuse the data directory of ``run``/``runs`` if it is not a folder; else ``None``.

    Checked before the command creates or opens it, so a file given as ``--data-dir`` is named
    as one ("… is a file, not a folder"), not as "[Errno 17] File exists" or "no such folder".
    ``pit info`` gets the same message from its own check (:func:`_pit_info_refusal`); the GUI
    shows it as the Pit's error.
    """
    if args.command not in ("run", "runs"):
        return None
    from symphony.conductor.run_cli import EXIT_DATA, default_data_dir
    from symphony.pit import PitError, check_data_dir

    data_dir = args.data_dir or default_data_dir()
    try:
        check_data_dir(data_dir)
    except PitError as e:
        message = f"data directory {e}"
        if getattr(args, "json", False):  # `run --json` and `runs --json` alike
            print(json.dumps({"error": message, "exit_code": EXIT_DATA}))
        print(f"symphony {args.command}: {message}", file=sys.stderr)
        return EXIT_DATA
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    given = list(sys.argv[1:] if argv is None else argv)
    # An extension child of a frozen bundle (launcher.RUN_EXTENSION_FLAG): dispatch before
    # argparse and before any other import, so the child starts fast and never loads Qt.
    if given[:1] == ["--run-extension"]:
        from symphony.sdk.runner import main as run_extension

        return run_extension(given[1:])
    # The GUI's start-up budget is 1 s: without a command, skip building the full parser
    # (it imports the run and fqg commands).
    if given == ["--smoke-test"]:
        from symphony.ui.app import smoke_test

        return smoke_test()
    if not given:
        from symphony.ui.app import run_gui

        return run_gui([sys.argv[0]])
    _Parser.json_errors = given[:1] in (["run"], ["runs"]) and "--json" in given
    args = _parser().parse_args(given)
    refused = _refuse_data_dir(args)
    if refused is not None:
        return refused
    if args.command == "pit" and args.pit_command == "info":
        return _pit_info(args.data_dir, args.key_file)
    if args.command == "run":
        from symphony.conductor import run_cli

        return run_cli.main(args)
    if args.command == "runs":
        from symphony.conductor import run_cli

        return run_cli.main_runs(args)
    if args.command == "fqg":
        from symphony.conductor.fqg import cli as fqg_cli

        return fqg_cli.run(args)
    if args.smoke_test:
        from symphony.ui.app import smoke_test

        return smoke_test()
    from symphony.ui.app import run_gui

    if args.command == "gui":
        return run_gui(
            [sys.argv[0]],
            workspace=args.workspace,
            files=args.files,
            data_dir=args.data_dir,
            key_file=args.key_file,
        )
    return run_gui([sys.argv[0]])
