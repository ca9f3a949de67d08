"""The error code table and its classes."""

from __future__ import annotations

import pickle

import pytest

from symphony.protocol import errors as e


def test_codes_are_distinct_and_documented() -> None:
    codes = [c.value for c in e.ErrorCode]
    assert len(codes) == len(set(codes))
    assert e.ErrorCode.REQUEST_CANCELLED == -32800
    assert e.ErrorCode.INCOMPATIBLE_PROTOCOL == -32006


@pytest.mark.parametrize("code", list(e.ErrorCode))
def test_every_code_maps_to_a_class_that_keeps_it(code: e.ErrorCode) -> None:
    err = e.error_for_code(code, "msg", {"d": 1})
    assert isinstance(err, e.ProtocolError)
    assert (err.code, err.message, err.data) == (code, "msg", {"d": 1})
    assert err.fatal == (code in {e.ErrorCode.UNAUTHORIZED, e.ErrorCode.INCOMPATIBLE_PROTOCOL})
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err)
    assert (again.code, again.message, again.data) == (code, "msg", {"d": 1})


def test_specific_classes() -> None:
    assert type(e.error_for_code(-32001, "x")) is e.DeadlineExceededError
    assert isinstance(e.DeadlineExceededError("x"), TimeoutError)
    assert type(e.error_for_code(-32006, "x")) is e.IncompatibleProtocolError
    custom = e.error_for_code(42, "app error")
    assert type(custom) is e.RequestError
    assert custom.code == 42
    assert e.ProtocolViolation("x").code == -32003
    assert not e.is_fatal(-32003)
