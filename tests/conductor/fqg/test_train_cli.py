"""Training (deterministic), fine-tuning on traces from a real Pit, and the ``fqg`` CLI."""

from __future__ import annotations

import dataclasses
import json
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
