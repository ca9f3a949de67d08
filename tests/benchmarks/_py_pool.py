"""Pure-Python baselines for P2 (pool) and P6 (arbitration), with the same features per call.

``PyPool.try_acquire``/``release`` do what the Rust pool does on every call: route through
health and fallbacks, check per-request, model and owner budgets, respect the waiter queue,
plan memory eviction for a cold start, move the lifecycle with a timestamped history, pick a
slot, reserve the estimate, feed the pre-warming predictor (idle-time histogram + successor
scan), and on release price the call, charge model and owner, update the health window and the
lifecycle. ``PyArbiter`` scores the heads of per-owner queues on the same eight factors and
records a rationale per decision.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class _Model:
    name: str
    slots: int
    memory: int
    price: float
    fallbacks: list[str]
    state: str = "idle"
    since: float = 0.0
    history: deque[tuple[str, str, float]] = field(default_factory=lambda: deque(maxlen=32))
    free: list[int] = field(default_factory=list)
    in_use: int = 0
    last_used: float = 0.0
    outcomes: deque[tuple[bool, float]] = field(default_factory=lambda: deque(maxlen=20))
    errors: int = 0
    health: str = "healthy"
    spent: float = 0.0
    reserved: float = 0.0
    budget: float | None = None
    waiters: list[tuple[int, int]] = field(default_factory=list)
    idle_hist: list[int] = field(default_factory=lambda: [0] * 481)
    last_call: float | None = None
    succ: dict[str, int] = field(default_factory=dict)


@dataclass
class _Owner:
    spent: float = 0.0
    reserved: float = 0.0
    budget: float | None = None


class PoolExhausted(Exception):
    """No free slot."""


class PyPool:
    """A thread-safe pure-Python pool with the Rust pool's per-call work."""

    def __init__(self) -> None:
        self.models: dict[str, _Model] = {}
        self.owners: dict[str, _Owner] = {}
        self.leases: dict[int, tuple[str, str, int, float, float]] = {}
        self.next_lease = 1
        self.memory_limit: int | None = None
        self.lock = threading.Lock()

    def register(self, name: str, slots: int, price: float = 0.0, memory: int = 0) -> None:
        with self.lock:
            m = _Model(name, slots, memory, price, [], since=time.time())
            m.free = list(range(slots - 1, -1, -1))
            self.models[name] = m

    def _set(self, m: _Model, to: str, now: float) -> None:
        if m.state != to:
            m.history.append((m.state, to, now))
            m.state, m.since = to, now

    def _route(self, name: str) -> _Model:
        stack, seen = [name], set()
        while stack:
            c = stack.pop()
            if c in seen:
                continue
            seen.add(c)
            m = self.models[c]
            if m.health != "down":
                return m
            stack.extend(reversed(m.fallbacks))
        raise RuntimeError(f"model {name!r} unavailable")

    def _observe(self, m: _Model, now: float) -> None:
        for other in self.models.values():
            if other is not m and other.last_call is not None and now - other.last_call < 600:
                other.succ[m.name] = other.succ.get(m.name, 0) + 1
        if m.last_call is not None:
            m.idle_hist[min(int((now - m.last_call) / 30), 480)] += 1
        m.last_call = now

    def try_acquire(
        self,
        model: str,
        owner: str = "",
        priority: int = 0,
        budget: float | None = None,
        estimate: float | None = None,
    ) -> int:
        now = time.time()
        with self.lock:
            m = self._route(model)
            est = m.price if estimate is None else estimate
            if budget is not None and est > budget:
                raise RuntimeError("budget")
            if m.budget is not None and m.spent + m.reserved >= m.budget and est > 0:
                raise RuntimeError("model budget")
            acct = self.owners.get(owner)
            if acct is None:
                acct = self.owners[owner] = _Owner()
            if acct.budget is not None and acct.spent + acct.reserved >= acct.budget and est > 0:
                raise RuntimeError("owner budget")
            if m.in_use >= m.slots:
                raise PoolExhausted(model)
            if m.waiters and -m.waiters[0][0] >= priority:
                raise PoolExhausted(model)
            cold = m.state in ("idle", "loading")
            if m.state == "idle":
                if self.memory_limit is not None:
                    used = sum(x.memory for x in self.models.values() if x.state != "idle")
                    if used + m.memory > self.memory_limit:
                        raise RuntimeError("memory")
                self._set(m, "loading", now)
            if cold:
                self._set(m, "warm", now)
            self._set(m, "active", now)
            acct.reserved += est
            m.reserved += est
            m.in_use += 1
            m.last_used = now
            slot = m.free.pop()
            lease = self.next_lease
            self.next_lease += 1
            self.leases[lease] = (m.name, owner, slot, est, now)
            self._observe(m, now)
            return lease

    def release(
        self, lease: int, ok: bool = True, latency: float = 0.0, cost: float | None = None
    ) -> float:
        now = time.time()
        with self.lock:
            name, owner, slot, est, _ = self.leases.pop(lease)
            m = self.models[name]
            c = m.price if cost is None else cost
            m.spent += c
            acct = self.owners[owner]
            acct.spent += c
            acct.reserved = max(acct.reserved - est, 0.0)
            m.reserved = max(m.reserved - est, 0.0)
            if len(m.outcomes) == m.outcomes.maxlen and not m.outcomes[0][0]:
                m.errors -= 1
            m.outcomes.append((ok, latency))
            m.errors += not ok
            n = len(m.outcomes)
            if n >= 5:
                rate = m.errors / n
                m.health = "down" if rate >= 0.5 else "degraded" if rate >= 0.2 else "healthy"
            m.in_use -= 1
            m.free.append(slot)
            m.last_used = now
            if m.in_use == 0:
                self._set(m, "cooldown", now)
            return c


FACTORS = (
    "priority",
    "business_value",
    "user_impact",
    "urgency",
    "cost_efficiency",
    "fairness",
    "warm",
    "wait",
)
WEIGHTS = (0.30, 0.15, 0.15, 0.15, 0.05, 0.10, 0.05, 0.05)


@dataclass(frozen=True, slots=True)
class PyDecision:
    """A decision with its factor breakdown."""

    id: int
    request: int
    owner: str
    model: str
    score: float
    factors: tuple[tuple[str, float, float, float], ...]


class PyArbiter:
    """Pure-Python weighted multi-factor arbiter over per-owner queues."""

    def __init__(self, slots: dict[str, int], half_life: float = 60.0) -> None:
        self.free = dict(slots)
        self.total = float(sum(slots.values()))
        self.queues: dict[str, list[tuple[float, int, tuple[object, ...]]]] = {}
        self.usage: dict[str, tuple[float, float]] = {}
        self.half_life = half_life
        self.next_id = 1
        self.next_decision = 1
        self.grants = 0
        self.history: deque[PyDecision] = deque(maxlen=65536)

    def submit_batch(
        self, reqs: list[tuple[str, str, str, int, float, float, float, float | None]]
    ) -> None:
        """Queue requests ``(owner, workflow, model, priority, value, impact, cost, deadline)``."""
        for r in reqs:
            rid = self.next_id
            self.next_id += 1
            static = (
                WEIGHTS[0] * min(max(r[3], 0), 10) / 10
                + WEIGHTS[1] * r[4]
                + WEIGHTS[2] * r[5]
                + WEIGHTS[4] / (1 + r[6])
            )
            heapq.heappush(self.queues.setdefault(r[0], []), (-static, rid, (*r, self.grants)))

    def _share(self, owner: str, now: float) -> float:
        used, last = self.usage.get(owner, (0.0, now))
        return used * math.exp(-(now - last) / self.half_life * math.log(2)) / self.total

    def decide_batch(self, n: int) -> list[PyDecision]:
        """Make up to ``n`` decisions."""
        now = time.time()
        out = []
        shares = {o: self._share(o, now) for o in self.queues}
        for _ in range(n):
            best = None
            max_share = max(shares.values(), default=0.0)
            for owner, q in self.queues.items():
                if not q:
                    continue
                _, rid, r = q[0]
                model = r[2]
                if self.free.get(model, 0) <= 0:
                    continue
                deadline = r[7]
                urgency = 0.0 if deadline is None else 1 / (1 + max(deadline - now, 0) / 60)
                fair = 1 - shares[owner] / max_share if max_share > 0 else 1.0
                values = (
                    min(max(r[3], 0), 10) / 10,
                    r[4],
                    r[5],
                    urgency,
                    1 / (1 + r[6]),
                    fair,
                    1.0,
                    min((self.grants - r[8]) / 32, 1.0),
                )
                score = sum(w * v for w, v in zip(WEIGHTS, values, strict=True))
                if best is None or score > best[0]:
                    best = (score, owner, rid, model, values)
            if best is None:
                break
            score, owner, rid, model, values = best
            heapq.heappop(self.queues[owner])
            self.free[model] -= 1
            used, _ = self.usage.get(owner, (0.0, now))
            self.usage[owner] = (used + 1, now)
            shares[owner] = self._share(owner, now)
            self.grants += 1
            d = PyDecision(
                self.next_decision,
                rid,
                owner,
                model,
                score,
                tuple(
                    (name, w, v, w * v) for name, w, v in zip(FACTORS, WEIGHTS, values, strict=True)
                ),
            )
            self.next_decision += 1
            self.history.append(d)
            out.append(d)
        return out
