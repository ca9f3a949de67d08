"""The policy interface: contexts, legality, heuristics, the trained network, traces."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from symphony.conductor.policy import (
    FEATURE_NAMES,
    HEURISTICS,
    STRATEGIES,
    TRACE_PREFIX,
    ErrorKind,
    FailureContext,
    PolicyLoadError,
    Strategy,
    Trace,
    TraceError,
    decode_traces,
    default_weights_path,
    encode_traces,
    legal_strategies,
    load_policy,
    read_traces,
)
from symphony.conductor.policy.learned import Weights


def ctx(**kw: object) -> FailureContext:
    base: dict[str, object] = {
        "importance": 0.5,
        "error_kind": ErrorKind.TRANSIENT,
        "attempt": 1,
        "max_retries": 3,
        "fallbacks_left": 1,
        "can_reconstruct": True,
        "skippable": True,
        "budget_left": 0.8,
        "time_left": 0.9,
        "risk_tolerance": 0.5,
        "cost_retry": 0.05,
        "cost_fallback": 0.2,
        "cost_reconstruct": 0.1,
        "downstream": 2,
    }
    base.update(kw)
    return FailureContext(**base)  # type: ignore[arg-type]


def test_importing_the_policy_imports_neither_torch_nor_numpy() -> None:
    code = (
        "import sys, symphony.conductor.policy, symphony.conductor.fqg.game\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_features_have_the_documented_order() -> None:
    c = ctx(error_kind=ErrorKind.RESOURCE, attempt=2, downstream=20)
    f = c.features()
    assert f.dtype == np.float32
    assert f.shape == (len(FEATURE_NAMES),)
    named = dict(zip(FEATURE_NAMES, f.tolist(), strict=True))
    assert named["error_resource"] == 1.0
    assert named["error_transient"] == 0.0
    assert named["importance"] == 0.5
    assert named["attempt"] == pytest.approx(0.2)
    assert named["retries_left"] == pytest.approx(2 / 5)
    assert named["downstream"] == 1.0
    assert named["skip_acceptable"] == 1.0
    assert named["retry_share"] == pytest.approx(0.05 / 0.8 / 2)
    # The history and rest-of-run features default to "first failure, nothing known".
    assert named["model_failures"] == pytest.approx(0.2)
    assert not any(named[f"previous_{k.value}"] for k in ErrorKind)
    assert named["last_retry"] == named["last_fallback"] == named["last_reconstruct"] == 0.0
    assert named["cost_rest"] == 0.0
    assert named["inputs_skipped"] == 0.0


def test_history_and_rest_of_run_features() -> None:
    c = ctx(
        model_failures=3,
        previous_kind=ErrorKind.PERSISTENT,
        last_strategy=Strategy.RETRY,
        cost_rest=0.3,
        inputs_skipped=True,
    )
    named = dict(zip(FEATURE_NAMES, c.feature_list(), strict=True))
    assert named["model_failures"] == pytest.approx(0.6)
    assert named["previous_persistent"] == 1.0
    assert named["previous_transient"] == 0.0
    assert (named["last_retry"], named["last_fallback"], named["last_reconstruct"]) == (1, 0, 0)
    assert named["cost_rest"] == pytest.approx(0.3)
    assert named["rest_share"] == pytest.approx((0.05 + 0.3) / 0.8 / 2)
    assert named["inputs_skipped"] == 1.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("importance", 1.5, "importance: expected 0..1"),
        ("budget_left", float("nan"), "budget_left: expected a finite number"),
        ("attempt", 0, "attempt: expected >= 1"),
        ("fallbacks_left", -1, "fallbacks_left: expected >= 0"),
        ("error_kind", "transient", "error_kind: expected an ErrorKind"),
        ("max_retries", 2.0, "max_retries: expected an int"),
        ("cost_retry", "1", "cost_retry: expected a number"),
        ("model_failures", 0, "model_failures: expected >= 1"),
        ("previous_kind", "transient", "previous_kind: expected an ErrorKind or None"),
        ("last_strategy", Strategy.SKIP, "last_strategy: expected retry, fallback, reconstruct"),
        ("cost_rest", -0.1, "cost_rest: expected a finite number >= 0"),
        ("inputs_skipped", 1, "inputs_skipped: expected a bool"),
    ],
)
def test_bad_contexts_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        ctx(**{field: value})


def test_legality() -> None:
    assert legal_strategies(ctx()) == frozenset(Strategy)
    none = ctx(attempt=4, max_retries=3, fallbacks_left=0, can_reconstruct=False, skippable=False)
    assert legal_strategies(none) == frozenset({Strategy.ABORT})
    assert Strategy.RETRY in legal_strategies(ctx(attempt=3, max_retries=3))


@pytest.mark.parametrize("name", ["retry-3-then-fail", "fallback-first", "cheapest-first"])
def test_heuristics_are_legal_everywhere(name: str) -> None:
    rng = np.random.default_rng(0)
    policy = HEURISTICS[name]
    for _ in range(500):
        c = ctx(
            importance=float(rng.choice([0.25, 0.5, 0.75, 1.0])),
            error_kind=ErrorKind(rng.choice([k.value for k in ErrorKind])),
            attempt=int(rng.integers(1, 7)),
            max_retries=int(rng.integers(0, 5)),
            fallbacks_left=int(rng.integers(0, 3)),
            can_reconstruct=bool(rng.integers(0, 2)),
            skippable=bool(rng.integers(0, 2)),
            budget_left=float(rng.random()),
            risk_tolerance=float(rng.random()),
        )
        d = policy.decide(c)
        assert d.strategy in legal_strategies(c)
        assert d.reason.startswith(d.strategy.value + ":")
        assert max(d.scores, key=lambda s: d.scores[s]) is d.strategy


def test_heuristics_follow_their_rules() -> None:
    assert HEURISTICS["fallback-first"].decide(ctx()).strategy is Strategy.FALLBACK
    assert HEURISTICS["retry-3-then-fail"].decide(ctx()).strategy is Strategy.RETRY
    cheapest = HEURISTICS["cheapest-first"].decide(ctx(cost_retry=0.3)).strategy
    assert cheapest is Strategy.RECONSTRUCT
    # out of retries: skip when the importance is within the risk tolerance, else abort
    spent = ctx(attempt=4)
    assert HEURISTICS["retry-3-then-fail"].decide(spent).strategy is Strategy.SKIP
    risky = ctx(attempt=4, importance=0.75)
    assert HEURISTICS["retry-3-then-fail"].decide(risky).strategy is Strategy.ABORT
    # an option dearer than the budget left is not taken
    broke = ctx(budget_left=0.1, fallbacks_left=1, cost_fallback=0.2)
    assert HEURISTICS["fallback-first"].decide(broke).strategy is Strategy.RETRY


def test_shipped_policy_is_legal_and_explains_itself() -> None:
    policy = load_policy()
    rng = np.random.default_rng(1)
    for _ in range(300):
        c = ctx(
            error_kind=ErrorKind(rng.choice([k.value for k in ErrorKind])),
            attempt=int(rng.integers(1, 7)),
            max_retries=int(rng.integers(0, 5)),
            fallbacks_left=int(rng.integers(0, 3)),
            can_reconstruct=bool(rng.integers(0, 2)),
            skippable=bool(rng.integers(0, 2)),
            budget_left=float(rng.random()),
        )
        d = policy.decide(c)
        assert d.strategy in legal_strategies(c)
        assert set(d.scores) == legal_strategies(c)
        assert sum(d.scores.values()) == pytest.approx(1.0)
        assert d.reason.startswith(d.strategy.value + ":")


def test_numpy_and_torch_backends_agree() -> None:
    fast = load_policy()
    slow = load_policy(backend="torch")
    for kind in ErrorKind:
        for attempt in (1, 3, 6):
            c = ctx(error_kind=kind, attempt=attempt)
            a, b = fast.decide(c), slow.decide(c)
            assert a.strategy is b.strategy
            for s in a.scores:
                assert a.scores[s] == pytest.approx(b.scores[s], abs=1e-5)


def test_missing_weights_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match=r"nope\.npz: no such file"):
        load_policy(tmp_path / "nope.npz")


def test_corrupt_weights_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(PolicyLoadError, match="bad.npz: not a readable weights file"):
        load_policy(bad)
    damaged = tmp_path / "damaged.npz"
    data = default_weights_path().read_bytes()
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(PolicyLoadError, match="damaged.npz"):
        load_policy(damaged)


def test_weights_for_other_features_are_refused(tmp_path: Path) -> None:
    w = Weights.load(default_weights_path())
    p = tmp_path / "w.npz"
    w.save(p)
    with np.load(p) as z:
        arrays = dict(z)
    meta = json.loads(arrays["meta"].tobytes())
    meta["features"] = meta["features"][:-1]
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(p, **arrays)
    with pytest.raises(PolicyLoadError, match="trained on other features"):
        load_policy(p)
    arrays["meta"] = np.frombuffer(b"{not json", dtype=np.uint8)
    np.savez(p, **arrays)
    with pytest.raises(PolicyLoadError, match="'meta' is not JSON"):
        load_policy(p)


def test_weights_with_nan_are_refused(tmp_path: Path) -> None:
    w = Weights.load(default_weights_path())
    (w0, b0), *rest = w.layers
    broken = w0.copy()
    broken[0, 0] = np.nan
    p = tmp_path / "nan.npz"
    Weights(((broken, b0), *rest), w.meta).save(p)
    with pytest.raises(PolicyLoadError, match="layer 0 holds NaN"):
        load_policy(p)


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="backend must be"):
        load_policy(backend="jax")  # type: ignore[arg-type]


def test_trace_round_trip() -> None:
    t = Trace(ctx(error_kind=ErrorKind.MISSING_INPUT), Strategy.RECONSTRUCT, True, 0.1, 3.5)
    assert Trace.from_json(json.loads(json.dumps(t.to_json()))) == t
    assert decode_traces(encode_traces([t, t])) == [t, t]
    h = Trace(
        ctx(
            model_failures=2,
            previous_kind=ErrorKind.TRANSIENT,
            last_strategy=Strategy.FALLBACK,
            cost_rest=0.25,
            inputs_skipped=True,
        ),
        Strategy.RETRY,
        False,
        0.2,
        1.0,
    )
    assert Trace.from_json(json.loads(json.dumps(h.to_json()))) == h


def test_traces_written_before_the_history_fields_still_load() -> None:
    d = Trace(ctx(), Strategy.RETRY, True, 0.1, 1.0).to_json()
    for name in ("model_failures", "previous_kind", "last_strategy", "cost_rest", "inputs_skipped"):
        del d["context"][name]
    t = Trace.from_json(d)
    assert t.context == ctx()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("strategy"), "field 'strategy' must be one of"),
        (lambda d: d.update(strategy="pray"), "'pray'"),
        (lambda d: d.update(success="yes"), "field 'success' must be true or false"),
        (lambda d: d.update(cost=-1), "field 'cost' must be >= 0"),
        (lambda d: d.update(time="1"), "field 'time' must be a finite number"),
        (lambda d: d.pop("context"), "field 'context' must be an object"),
        (lambda d: d["context"].pop("attempt"), "field 'attempt' must be an integer"),
        (lambda d: d["context"].update(error_kind="oops"), "field 'error_kind' must be one of"),
        (lambda d: d["context"].update(skippable=1), "field 'skippable' must be true or false"),
        (lambda d: d["context"].pop("budget_left"), "missing field 'budget_left'"),
        (lambda d: d["context"].update(importance=2.0), "importance: expected 0..1"),
        (
            lambda d: d["context"].update(previous_kind="flaky"),
            "field 'previous_kind' must be null or one of",
        ),
        (
            lambda d: d["context"].update(last_strategy="pray"),
            "field 'last_strategy' must be null or one of",
        ),
        (
            lambda d: d["context"].update(last_strategy="skip"),
            "last_strategy: expected retry, fallback, reconstruct or None",
        ),
        (lambda d: d["context"].update(model_failures=1.5), "'model_failures' must be an integer"),
        (lambda d: d["context"].update(inputs_skipped=0), "'inputs_skipped' must be true or false"),
    ],
)
def test_bad_traces_name_the_field(mutate: object, message: str) -> None:
    d = Trace(ctx(), Strategy.RETRY, False, 0.1, 1.0).to_json()
    mutate(d)  # type: ignore[operator]
    with pytest.raises(TraceError, match=message):
        Trace.from_json(d)


def test_bad_jsonl_names_the_line() -> None:
    good = encode_traces([Trace(ctx(), Strategy.RETRY, True, 0.0, 0.0)])
    with pytest.raises(TraceError, match="fqg.trace/r1 line 2: not JSON"):
        decode_traces(good + b"{oops\n", where="fqg.trace/r1")
    with pytest.raises(TraceError, match="not UTF-8"):
        decode_traces(b"\xff\xfe")


def test_read_traces_from_a_real_pit(open_pit) -> None:  # type: ignore[no-untyped-def]
    pit = open_pit()
    a = Trace(ctx(), Strategy.RETRY, True, 0.05, 2.0)
    b = Trace(ctx(error_kind=ErrorKind.PERSISTENT), Strategy.FALLBACK, False, 0.2, 4.0)
    pit.artifacts.put(f"{TRACE_PREFIX}run-2", encode_traces([b]), kind="jsonl")
    pit.artifacts.put(f"{TRACE_PREFIX}run-1", encode_traces([a]), kind="jsonl")
    pit.artifacts.put("other", b"not a trace")
    assert read_traces(pit) == [a, b]
    pit.artifacts.put(f"{TRACE_PREFIX}run-3", b"[1]\n", kind="jsonl")
    with pytest.raises(TraceError, match="fqg.trace/run-3 line 1: expected an object"):
        read_traces(pit)


def test_strategies_order_is_the_enum_order() -> None:
    assert tuple(Strategy) == STRATEGIES
    assert dataclasses.is_dataclass(FailureContext)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        (
            {"error_kind": ErrorKind.PERSISTENT, "fallbacks_left": 0, "can_reconstruct": False,
             "skippable": False},
            "abort: persistent error after 1 attempt: a retry rarely clears a persistent error, "
            "no fallback model, the input cannot be regenerated, the step may not be skipped",
        ),
        (
            {"attempt": 4, "budget_left": 0.1, "importance": 0.9, "time_left": 0.01},
            "abort: transient error after 4 attempts: no retries left, the fallback model costs "
            "more than the budget left, its importance 0.90 is above the risk tolerance 0.50, "
            "1% of the time is left",
        ),
        ({}, "abort: transient error after 1 attempt: no option is likely to see the run through"),
    ],
)  # fmt: skip
def test_an_abort_names_what_stands_in_the_way(kw: dict[str, object], reason: str) -> None:
    from symphony.conductor.policy.context import describe

    assert describe(Strategy.ABORT, ctx(**kw)) == reason
