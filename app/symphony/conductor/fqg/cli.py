"""``symphony fqg train`` and ``symphony fqg eval``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from symphony.conductor.run_cli import stdout_gone

if TYPE_CHECKING:
    from symphony.conductor.policy.learned import Weights

DEFAULT_OUT = "policy.npz"

#: Ctrl-C: 128 + SIGINT, what a shell reports for a tool SIGINT ended. Not ``symphony run``'s
#: 3, which promises that ``--resume`` continues the run: training starts over.
EXIT_INTERRUPTED: Final = 128 + 2


def add_subcommand(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fqg`` (with ``train`` and ``eval``) to the ``symphony`` command line."""
    fqg = subparsers.add_parser(
        "fqg", help="the Function Quest Game: train and evaluate the recovery policy"
    )
    sub = fqg.add_subparsers(dest="fqg_command", metavar="FQG_COMMAND", required=True)
    tr = sub.add_parser("train", help="train the recovery policy (deterministic from --seed)")
    tr.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    tr.add_argument("--episodes", type=int, default=None, help="training puzzles (default 12000)")
    tr.add_argument(
        "--out", default=DEFAULT_OUT, help=f"weights file to write (default {DEFAULT_OUT})"
    )
    tr.add_argument(
        "--from-traces",
        metavar="DATA_DIR",
        help="fine-tune on the decisions recorded in this Pit data directory",
    )
    tr.add_argument("--key-file", help="the Pit's key file (default: the OS keyring)")
    tr.add_argument(
        "--weights",
        help="weights to start fine-tuning from (default: the shipped ones)",
    )
    ev = sub.add_parser("eval", help="evaluate the policy and the fixed rules on held-out puzzles")
    ev.add_argument("--episodes", type=int, required=True, help="puzzles to play")
    ev.add_argument("--seed", type=int, required=True, help="evaluation seed")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--weights", help="weights file (default: the shipped one)")
    fqg.set_defaults(handler=run)


def _err(message: str, *, as_json: bool = False) -> int:
    """Report an invalid option (exit 2); with ``as_json`` also as ``{"error", "exit_code"}``.

    On stdout, as ``symphony run --json`` does: a script reading the JSON gets JSON either way.
    """
    if as_json:
        print(json.dumps({"error": message, "exit_code": 2}, ensure_ascii=False))
    print(f"symphony fqg: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run ``symphony fqg ...``; return the exit code.

    0 done; 1 the weights could not be written after training; 2 an invalid option (nothing
    ran). Output cut short by its reader (``| head``) ends quietly with :data:`EXIT_PIPE`, as
    ``symphony runs`` does; an interrupt (Ctrl-C) prints one line and exits with
    :data:`EXIT_INTERRUPTED`: there is nothing to resume, and ``--out`` is only replaced once the
    new weights are complete.
    """
    try:
        code = _train(args) if args.fqg_command == "train" else _eval(args)
        sys.stdout.flush()  # here, where a reader gone away can be handled
    except BrokenPipeError:
        return stdout_gone()
    except KeyboardInterrupt:
        print(f"symphony fqg {args.fqg_command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


def _check_out(out: Path) -> str | None:
    """Say why the weights cannot be written to ``out``, or ``None``; checked before training."""
    if out.is_dir():
        return f"--out {out} is a folder; give the weights file to write, e.g. {out / DEFAULT_OUT}"
    if out.exists() and not out.is_file():
        return f"--out {out} is not a regular file"
    if not out.parent.is_dir():
        return f"--out {out}: the folder {out.parent} does not exist"
    if not os.access(out.parent, os.W_OK | os.X_OK):
        return f"--out {out}: the folder {out.parent} is not writable"
    return None


def _save(weights: Weights, out: Path) -> str | None:
    """Write ``weights`` to ``out``; say why not, or ``None``."""
    try:
        weights.save(out)
    except OSError as e:
        return f"--out {out}: cannot write the weights ({e.strerror or e})"
    return None


def _train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    problem = _check_out(out)
    if problem is not None:
        return _err(problem)
    if args.episodes is not None and args.episodes < 1:
        return _err(f"--episodes must be at least 1, got {args.episodes}")
    if args.key_file is not None and args.from_traces is None:
        return _err("--key-file only goes with --from-traces")
    if args.weights is not None and args.from_traces is None:
        return _err("--weights only goes with --from-traces (training from scratch starts anew)")
    if args.episodes is not None and args.from_traces is not None:
        # fine-tuning replays the recorded traces; it plays no puzzles
        return _err("--episodes does not go with --from-traces (fine-tuning plays no puzzles)")
    from symphony.conductor.policy import PolicyLoadError, TraceError, read_traces
    from symphony.conductor.policy.learned import Weights, default_weights_path

    if args.from_traces is not None:
        from symphony.pit import Pit, PitError

        data_dir = Path(args.from_traces)
        if not data_dir.is_dir():
            return _err(f"--from-traces {data_dir}: no such directory")
        try:
            base = Weights.load(args.weights or default_weights_path())
        except PolicyLoadError as e:
            return _err(str(e))
        try:
            with Pit.open(data_dir, key_file=args.key_file) as pit:
                traces = read_traces(pit)
        except (PitError, TraceError) as e:
            return _err(f"--from-traces {data_dir}: {e}")
        if not traces:
            return _err(f"--from-traces {data_dir}: the Pit holds no fqg.trace/* artifacts")
        from symphony.conductor.fqg.train import fine_tune

        try:
            weights = fine_tune(base, traces, seed=args.seed)
        except ValueError as e:
            return _err(str(e))
        problem = _save(weights, out)
        if problem is not None:
            print(f"symphony fqg: {problem}", file=sys.stderr)
            return 1
        print(f"fine-tuned on {len(traces)} traces; wrote {out}", file=sys.stderr)
        return 0

    from symphony.conductor.fqg.train import TrainConfig, train

    config = TrainConfig(seed=args.seed)
    if args.episodes is not None:
        config = TrainConfig(
            seed=args.seed, episodes=args.episodes, rounds=min(config.rounds, args.episodes)
        )
    start = time.perf_counter()
    weights = train(
        config,
        log=lambda line: print(f"{line} ({time.perf_counter() - start:.1f} s)", file=sys.stderr),
    )
    problem = _save(weights, out)
    if problem is not None:
        print(f"symphony fqg: {problem}", file=sys.stderr)
        return 1
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _eval(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        return _err(f"--episodes must be at least 1, got {args.episodes}", as_json=args.json)
    from symphony.conductor.fqg.game import evaluate, policy_chooser
    from symphony.conductor.policy import HEURISTICS, PolicyLoadError, load_policy

    try:
        policy = load_policy(args.weights)
    except PolicyLoadError as e:
        return _err(str(e), as_json=args.json)
    result: dict[str, Any] = {
        "policy": evaluate(
            policy_chooser(policy), episodes=args.episodes, seed=args.seed
        ).to_json(),
        "heuristics": {
            name: evaluate(policy_chooser(h), episodes=args.episodes, seed=args.seed).to_json()
            for name, h in HEURISTICS.items()
        },
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'policy':<20} {'success':>8} {'mean cost':>10} {'mean time':>10}")
    rows = [("learned", result["policy"]), *result["heuristics"].items()]
    for name, s in rows:
        print(
            f"{name:<20} {s['success_rate']:>8.1%} {s['mean_cost']:>10.2f} {s['mean_time']:>9.1f}s"
        )
    return 0
