"""Training (deterministic), fine-tuning on traces from a real Pit, and the ``fqg`` CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symphony.cli import main
from symphony.conductor.fqg.train import TrainConfig, fine_tune, train
from symphony.conductor.policy import (
    HEURISTICS,
    TRACE_PREFIX,
    ErrorKind,
    FailureContext,
    Strategy,
    Trace,
    encode_traces,
    load_policy,
)
from symphony.conductor.policy.learned import Weights, default_weights_path
from symphony.pit import Pit
from tests.conftest import TEST_KEY

TINY = TrainConfig(seed=3, episodes=12, rounds=2, rollouts=2, epochs=20)


def _same(a: Weights, b: Weights) -> bool:
    return all(
        np.array_equal(wa, wb) and np.array_equal(ba, bb)
        for (wa, ba), (wb, bb) in zip(a.layers, b.layers, strict=True)
    )


def test_training_is_reproducible_from_the_seed() -> None:
    a, b = train(TINY), train(TINY)
    assert _same(a, b)
    c = train(TrainConfig(seed=4, episodes=12, rounds=2, rollouts=2, epochs=20))
    assert not _same(a, c)
    assert a.meta["seed"] == 3


def test_training_needs_an_episode_per_round() -> None:
    with pytest.raises(ValueError, match=r"episodes \(1\) must be at least rounds \(2\)"):
        train(TrainConfig(episodes=1, rounds=2))


def test_cli_train_writes_loadable_reproducible_weights(tmp_path: Path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["fqg", "train", "--seed", "5", "--episodes", "6", "--out", str(a)]) == 0
    assert main(["fqg", "train", "--seed", "5", "--episodes", "6", "--out", str(b)]) == 0
    assert _same(Weights.load(a), Weights.load(b))
    load_policy(a)


def test_cli_eval_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fqg", "eval", "--episodes", "30", "--seed", "9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"policy", "heuristics"}
    assert set(out["heuristics"]) == set(HEURISTICS)
    for score in [out["policy"], *out["heuristics"].values()]:
        assert set(score) == {"success_rate", "mean_cost", "mean_time"}
        assert 0.0 <= score["success_rate"] <= 1.0
        assert score["mean_cost"] > 0
        assert score["mean_time"] > 0


def test_cli_eval_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fqg", "eval", "--episodes", "10", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert "learned" in text
    assert "cheapest-first" in text


def test_cli_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fqg", "eval", "--episodes", "0", "--seed", "1"]) == 2
    assert "--episodes must be at least 1" in capsys.readouterr().err
    missing = tmp_path / "gone.npz"
    assert main(["fqg", "eval", "--episodes", "5", "--seed", "1", "--weights", str(missing)]) == 2
    assert "gone.npz: no such file" in capsys.readouterr().err
    out = tmp_path / "nowhere" / "w.npz"
    assert main(["fqg", "train", "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["fqg", "train", "--from-traces", str(tmp_path / "nodir")]) == 2
    assert "nodir: no such directory" in capsys.readouterr().err
    assert main(["fqg", "train", "--key-file", "k"]) == 2
    assert "--key-file only goes with --from-traces" in capsys.readouterr().err


def test_cli_refuses_options_it_would_ignore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "w.npz")
    args = ["fqg", "train", "--from-traces", str(tmp_path), "--episodes", "5", "--out", out]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "symphony fqg: --episodes does not go with --from-traces (fine-tuning plays no puzzles)\n"
    )
    assert main(["fqg", "train", "--weights", out, "--out", out]) == 2
    assert "--weights only goes with --from-traces" in capsys.readouterr().err
    assert not (tmp_path / "w.npz").exists()


def test_cli_eval_json_errors_are_json_and_never_advise_unpickling(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    args = ["fqg", "eval", "--episodes", "5", "--seed", "1", "--weights", str(pickled)]
    assert main([*args, "--json"]) == 2
    captured = capsys.readouterr()
    error = (
        f"policy weights {pickled}: not a readable weights file (it holds pickled Python "
        "objects, which are never loaded)"
    )
    assert json.loads(captured.out) == {"error": error, "exit_code": 2}
    assert captured.err == f"symphony fqg: {error}\n"
    assert "allow_pickle" not in captured.err
    assert main(["fqg", "eval", "--episodes", "0", "--seed", "1", "--json"]) == 2
    assert json.loads(capsys.readouterr().out) == {
        "error": "--episodes must be at least 1, got 0",
        "exit_code": 2,
    }


def _traces(n: int) -> list[Trace]:
    """Real-run-like traces: persistent errors where retries failed and fallbacks worked."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        ctx = FailureContext(
            importance=0.75,
            error_kind=ErrorKind.TRANSIENT,
            attempt=int(rng.integers(1, 3)),
            max_retries=3,
            fallbacks_left=1,
            can_reconstruct=False,
            skippable=False,
            budget_left=float(rng.uniform(0.6, 0.9)),
            time_left=0.8,
            risk_tolerance=0.3,
            cost_retry=0.05,
            cost_fallback=0.1,
            cost_reconstruct=0.0,
            downstream=2,
        )
        out.append(Trace(ctx, Strategy.RETRY, False, 0.05, 3.0))
        out.append(Trace(ctx, Strategy.FALLBACK, True, 0.1, 5.0))
    return out


def test_fine_tune_moves_toward_what_worked() -> None:
    base = Weights.load(default_weights_path())
    traces = _traces(40)
    tuned = fine_tune(base, traces, epochs=150, lr=3e-3)
    assert tuned.meta["fine_tuned_on"] == len(traces)
    before = load_policy().decide(traces[0].context).scores[Strategy.FALLBACK]
    from symphony.conductor.policy import LearnedPolicy

    after = LearnedPolicy(tuned).decide(traces[0].context).scores[Strategy.FALLBACK]
    assert after > before
    assert _same(fine_tune(base, traces, epochs=5), fine_tune(base, traces, epochs=5))


def test_fine_tune_needs_traces() -> None:
    with pytest.raises(ValueError, match="no traces"):
        fine_tune(Weights.load(default_weights_path()), [])
    illegal = [
        dataclasses.replace(t, strategy=Strategy.RECONSTRUCT)  # can_reconstruct is False
        for t in _traces(2)
    ]
    with pytest.raises(ValueError, match="no trace has a legal strategy"):
        fine_tune(Weights.load(default_weights_path()), illegal)


def test_cli_train_from_traces_in_a_real_pit(tmp_path: Path) -> None:
    data_dir = tmp_path / "pit"
    key_file = tmp_path / "pit.key"
    key_file.write_text(TEST_KEY.hex())
    key_file.chmod(0o600)
    with Pit.open(data_dir, key_file=key_file) as pit:
        pit.artifacts.put(f"{TRACE_PREFIX}run-a", encode_traces(_traces(20)), kind="jsonl")
        pit.artifacts.put(f"{TRACE_PREFIX}run-b", encode_traces(_traces(5)), kind="jsonl")
    out = tmp_path / "tuned.npz"
    argv = ["fqg", "train", "--from-traces", str(data_dir), "--key-file", str(key_file)]
    assert main([*argv, "--out", str(out)]) == 0
    assert Weights.load(out).meta["fine_tuned_on"] == 50
    load_policy(out)


def test_cli_train_from_a_pit_without_traces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "pit"
    key_file = tmp_path / "pit.key"
    key_file.write_text(TEST_KEY.hex())
    key_file.chmod(0o600)
    with Pit.open(data_dir, key_file=key_file) as pit:
        pit.artifacts.put("notes", b"hello")
    argv = ["fqg", "train", "--from-traces", str(data_dir), "--key-file", str(key_file)]
    assert main([*argv, "--out", str(tmp_path / "w.npz")]) == 2
    assert "holds no fqg.trace/* artifacts" in capsys.readouterr().err
    with Pit.open(data_dir, key_file=key_file) as pit:
        pit.artifacts.put(f"{TRACE_PREFIX}bad", b"{broken\n", kind="jsonl")
    assert main([*argv, "--out", str(tmp_path / "w.npz")]) == 2
    assert "fqg.trace/bad line 1: not JSON" in capsys.readouterr().err


def _no_training(*args: object, **kwargs: object) -> Weights:
    raise AssertionError("trained before checking --out")


def test_cli_train_refuses_an_out_it_cannot_write_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from symphony.conductor.fqg import train as train_module

    monkeypatch.setattr(train_module, "train", _no_training)
    monkeypatch.setattr(train_module, "fine_tune", _no_training)
    folder = tmp_path / "outdir"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["fqg", "train", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"--out {folder} is a folder" in err
    assert str(folder / "policy.npz") in err
    plain = tmp_path / "plain"
    plain.write_text("x")
    assert main(["fqg", "train", "--out", str(plain / "w.npz")]) == 2
    assert f"the folder {plain} does not exist" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outdir", "plain"]
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_cli_train_refuses_a_read_only_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from symphony.conductor.fqg import train as train_module

    monkeypatch.setattr(train_module, "train", _no_training)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["fqg", "train", "--out", str(locked / "w.npz")]) == 2
    finally:
        locked.chmod(0o700)
    assert f"the folder {locked} is not writable" in capsys.readouterr().err


def test_weights_save_leaves_no_temporary_file_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = Weights.load(default_weights_path())
    folder = tmp_path / "outdir"
    folder.mkdir()
    with pytest.raises(OSError, match="outdir"):
        weights.save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outdir"]
    target = tmp_path / "w.npz"
    weights.save(target)
    before = target.read_bytes()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        weights.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outdir", "w.npz"]
    assert target.read_bytes() == before


def _symphony(*argv: str) -> list[str]:
    return [sys.executable, "-m", "symphony", *argv]


def test_cli_eval_stops_quietly_when_its_reader_goes_away() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `| head -0`: nobody will read
    try:
        done = subprocess.run(
            _symphony("fqg", "eval", "--episodes", "5", "--seed", "1"),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert done.stderr == ""


def test_cli_train_interrupted_says_so_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    # 2000 puzzles take most of a minute: the interrupt lands in round 2.
    argv = _symphony("fqg", "train", "--episodes", "2000", "--out", str(out))
    # A background job inherits SIGINT ignored, and Python then leaves it ignored: restore it.
    with subprocess.Popen(
        argv,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    ) as proc:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("round 1/"), first
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        code = proc.wait()
    assert code == 130, rest
    assert rest.strip().splitlines()[-1] == "symphony fqg train: interrupted"
    assert "Traceback" not in rest
    assert list(tmp_path.iterdir()) == []


def test_training_logs_a_round_with_nothing_to_learn() -> None:
    lines: list[str] = []
    # seed 1's first puzzle has no failure the policy decides: round 1 collects nothing
    train(TrainConfig(seed=1, episodes=3, rounds=3, rollouts=2, epochs=5), log=lines.append)
    assert lines[0] == "round 1/3: 0 situations, nothing to learn yet"
    assert all("nan" not in line for line in lines)
    assert any("loss" in line for line in lines)
