"""Run events: what views read off them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from symphony.conductor import events as ev


def test_why_drops_the_strategy_a_policy_names_first() -> None:
    def chosen(strategy: str, reason: str) -> ev.RecoveryChosen:
        return ev.RecoveryChosen("r", 1.0, "n", "boom", "transient", strategy, reason, 1)

    assert chosen("retry", "retry: transient error, 2 retries left").why == (
        "transient error, 2 retries left"
    )
    assert chosen("abort", "no retries left").why == "no retries left"
    # Only the chosen strategy's own name is dropped, and only at the start.
    assert chosen("skip", "retry: not allowed").why == "retry: not allowed"


ONE_OF_EACH: list[ev.RunEvent] = [
    ev.RunStateChanged("r", 100.0, "running"),
    ev.NodeStateChanged("r", 100.5, "n1", "running", 2, "tiny", ""),
    ev.NodeStateChanged("r", 101.25, "n1", "failed", 2, "tiny", 'boom: "quoted" ✓'),
    ev.RecoveryChosen("r", 101.3, "n1", "boom", "transient", "retry", "retry: cheap", 2),
    ev.NodeCost("r", 101.3, "n1", 2, 0.75, 0.01, 42, 1 << 33),
    ev.ArtifactStored("r", 102.0, "n1", "out", 7, "text", 0.5, False),
    ev.ArtifactStored("r", 102.0, "n2", "out", 8, "json", None, True),
    ev.RunStateChanged("r", 103.0, "succeeded", "all done"),
]


def test_the_event_log_gives_back_what_it_was_given_to_the_microsecond() -> None:
    first = ev.encode_session(ONE_OF_EACH[:4], 100.0)
    second = ev.encode_session(ONE_OF_EACH[4:], 101.0)
    assert first.endswith(b"\n")
    assert first.count(b"\n") == 1
    back = ev.decode_log(first + second, "r")
    assert [type(e) for e in back] == [type(e) for e in ONE_OF_EACH]
    for got, sent in zip(back, ONE_OF_EACH, strict=True):
        assert got.at == pytest.approx(sent.at, abs=1e-6)
        assert got == dataclasses.replace(sent, at=got.at)
    assert ev.decode_log(b"", "r") == []
    # it was read as a different run's id: the log does not repeat it on every row
    assert {e.run_id for e in ev.decode_log(first, "other")} == {"other"}


def _line(rows: object, **top: object) -> bytes:
    return json.dumps({"v": 1, "t0": 5.0, "events": rows, **top}).encode() + b"\n"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json\n", "run.events/r, line 1: not JSON"),
        (b"[1, 2]\n", "line 1: not an object"),
        (_line([], v=2), "line 1: format version 2 (this build reads 1)"),
        (_line([], t0="soon"), "field 't0' must be a number"),
        (_line({}), "field 'events' must be a list"),
        (_line([["node", 1]]), "event 0: a 'node' event has 5 fields, not 0"),
        (_line([["bogus", 1]]), "event 0: unknown event 'bogus'"),
        (_line([["run", 1.5, "running", ""]]), "its time must be whole microseconds"),
        (
            _line([["run", 1, "running", ""], ["node", 2, "n", "running", "1", "", ""]]),
            "event 1: field 'attempt' of a 'node' event is '1'",
        ),
        (
            _line([["artifact", 2, "n", "out", 7, "text", None, 1]]),
            "field 'cached' of a 'artifact' event is 1",
        ),
        (
            _line([["cost", 2, "n", True, 0.5, 0, 0, 0]]),
            "field 'attempt' of a 'cost' event is True",
        ),
        (_line([]) + b"\n" + _line(["x"]), "line 3, event 0: not a row"),
    ],
)
def test_a_damaged_event_log_is_refused_naming_line_event_and_field(
    data: bytes, message: str
) -> None:
    with pytest.raises(ev.EventLogError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ev.decode_log(data, "r", "run.events/r")
