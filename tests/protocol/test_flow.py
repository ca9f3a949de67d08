"""Credit windows, the receiver's grant policy and the log token bucket."""

from __future__ import annotations

import pytest

from symphony.protocol import (
    MAX_CREDIT,
    CreditGranter,
    CreditWindow,
    ProtocolViolation,
    TokenBucket,
)


def test_credit_window() -> None:
    w = CreditWindow(2)
    assert [w.consume(), w.consume()] == [0, 1]
    assert w.available == 0
    with pytest.raises(ProtocolViolation, match="without credit"):
        w.consume()
    w.grant(3)
    assert w.consume() == 2
    assert (w.available, w.sent) == (2, 3)
    with pytest.raises(ProtocolViolation):
        w.grant(0)
    with pytest.raises(ProtocolViolation):
        w.grant(MAX_CREDIT)
    with pytest.raises(ValueError, match="initial credit"):
        CreditWindow(-1)


def test_granter_replenishes_half_windows() -> None:
    g = CreditGranter(8)
    assert [g.consumed() for _ in range(8)] == [0, 0, 0, 4, 0, 0, 0, 4]
    assert CreditGranter(1).consumed() == 1


def test_token_bucket() -> None:
    now = [0.0]
    b = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [b.try_take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert b.try_take()
    assert not b.try_take()
    now[0] += 100
    assert sum(b.try_take() for _ in range(10)) == 3
