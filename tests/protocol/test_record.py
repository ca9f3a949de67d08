"""``@record``: what the messages rely on from it (the dataclass behaviour, cheaper to import)."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from typing import Any, ClassVar

import pytest

from symphony.protocol._record import FrozenInstanceError, field, record, replace
from symphony.protocol.messages import Log, Request


@record(frozen=True)
class Point:
    KIND: ClassVar[str] = "point"
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)


@record(eq=False)
class Counter:
    n: int = 0


def test_init_defaults_and_factories() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, [])
    assert Point(1).tags is not Point(1).tags  # one list per instance
    assert Point(x=2, y=3).norm1() == 5
    assert Point.KIND == "point"
    assert Point.__match_args__ == ("x", "y", "tags")
    assert not hasattr(p, "__dict__")  # slotted
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=3)  # type: ignore[call-arg]


def test_frozen_eq_hash_repr() -> None:
    p = Point(1, 2)
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'x'"):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]
    assert p == Point(1, 2)
    assert p != Point(1, 3)
    assert p != (1, 2, [])
    assert repr(p) == "Point(x=1, y=2, tags=[])"
    assert hash(Request(1, "m")) == hash(Request(1, "m"))
    with pytest.raises(TypeError):
        hash(p)  # a list field is unhashable, as with dataclasses


def test_mutable_records_without_eq() -> None:
    c = Counter()
    c.n += 1
    assert c.n == 1
    assert c != Counter(1)  # identity comparison
    assert Counter.__hash__ is not None


def test_replace_copy_and_pickle() -> None:
    p = Point(1, 2, ["a"])
    assert replace(p, y=5) == Point(1, 5, ["a"])
    with pytest.raises(TypeError, match="has no field"):
        replace(p, z=1)
    assert copy.copy(p) == p
    assert copy.deepcopy(p) == p
    msg = Log("info", "hello", "x", {"a": 1}, 0, 3)
    assert pickle.loads(pickle.dumps(msg)) == msg


def test_matching_by_position() -> None:
    def kind(m: Any) -> str:
        match m:
            case Request(rid, "echo"):
                return f"echo {rid}"
            case _:
                return "other"

    assert kind(Request(7, "echo")) == "echo 7"
    assert kind(Request(7, "x")) == "other"


def test_a_required_field_after_a_default_is_refused() -> None:
    with pytest.raises(TypeError, match="'b' without a default follows one with"):

        @record
        class Bad:
            a: int = 0
            b: int


def test_the_child_start_path_does_not_import_dataclasses() -> None:
    # Each is milliseconds of every extension child's start (P12); the C modules under `json`,
    # `socket` and `queue` are used directly.
    code = (
        "import sys, symphony.sdk.runner\n"
        "bad = {'dataclasses', 'inspect', 'tomllib', 'pathlib', 'logging', 'traceback',\n"
        "       'json', 'socket', 'selectors', 'queue', 'ctypes'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, check=True)
    assert out.stdout.strip() == b"[]"
