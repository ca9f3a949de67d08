"""Every Rust error kind maps to exactly one Python exception class, with message and subject."""

from __future__ import annotations

import pickle

import pytest

from symphony.pit import _native, errors


def test_every_kind_maps_to_a_class_of_that_name() -> None:
    kinds = _native._error_kinds()
    assert len(kinds) == len(set(kinds)), "two kinds share a class"
    for name in kinds:
        cls = getattr(errors, name)
        with pytest.raises(cls) as info:
            _native._raise_kind(name, f"message for {name}")
        assert type(info.value) is cls
        assert str(info.value) == f"message for {name}"
        assert info.value.subject == "subject"


def test_every_exception_class_is_reachable_from_rust() -> None:
    abstract = {"NotFoundError", "IntegrityError"}  # grouping bases, never raised themselves
    declared = {n for n in errors.__all__ if n not in abstract}
    assert declared == set(_native._error_kinds())


def test_hierarchy_lets_callers_catch_broadly() -> None:
    assert issubclass(errors.ModelNotFoundError, LookupError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.AcquireTimeoutError, TimeoutError)
    assert issubclass(errors.DataDirCorruptError, errors.StorageError)
    assert issubclass(errors.ArtifactIntegrityError, errors.IntegrityError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.PitError)


def test_unknown_kind_name_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="no error kind maps to NoSuchError"):
        _native._raise_kind("NoSuchError")


def test_cycle_and_pickling() -> None:
    e = errors.DagCycleError("cycle a → b → a", ["a", "b", "a"])
    assert e.cycle == ("a", "b", "a")
    assert errors.DagCycleError("x").cycle == ()
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is errors.DagCycleError
    assert back.cycle == e.cycle
    assert str(back) == str(e)
