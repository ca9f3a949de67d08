#![allow(clippy::float_cmp)] // exact values are set and read back unchanged

use std::sync::Arc;

use proptest::prelude::{prop_assert, prop_assert_eq, proptest};

use super::*;
use crate::pool::{ModelSpec, Outcome, PoolManager};
use crate::{Clock, Ctx, ErrorKind};

fn engine(slots: &[(&str, u32)]) -> (ArbitrationEngine, Arc<PoolManager>, Clock) {
    let clock = Clock::manual(1_000 * SECOND);
    let ctx = Ctx::in_memory(clock.clone());
    let pool = Arc::new(PoolManager::new(&ctx));
    for (id, n) in slots {
        pool.register(
            ModelSpec {
                id: (*id).into(),
                slots: *n,
                memory: 0,
                price_per_call: 0.0,
                price_per_token: 0.0,
                fallbacks: vec![],
                keep_alive: 300 * SECOND,
            },
            false,
        )
        .unwrap();
    }
    (ArbitrationEngine::new(&ctx, Arc::clone(&pool)), pool, clock)
}

fn req<'a>(owner: &'a str, model: &'a str, priority: i32) -> Submit<'a> {
    Submit {
        owner,
        workflow: "wf",
        model,
        priority,
        value: 0.5,
        impact: 0.5,
        cost: 0.0,
        deadline: None,
    }
}

#[test]
fn weighted_prefers_priority_and_records_rationale() {
    let (e, _, _) = engine(&[("m", 4)]);
    let ids = e
        .submit(&[req("a", "m", 1), req("b", "m", 9)], false)
        .unwrap();
    let d = e.decide(1, false).unwrap();
    assert_eq!(d[0].request, ids[1]);
    let r = e.rationale(d[0].id).unwrap();
    assert_eq!(r.values[0], 0.9);
    let total: f64 = r.weights.iter().zip(&r.values).map(|(w, v)| w * v).sum();
    assert!((total - r.score).abs() < 1e-12);
    assert_eq!(kind(e.rationale(999)), ErrorKind::RequestNotFound);
}

fn kind<T: std::fmt::Debug>(r: Result<T>) -> ErrorKind {
    r.unwrap_err().kind()
}

#[test]
fn decisions_stop_at_free_slots_and_acquire() {
    let (e, pool, _) = engine(&[("m", 2)]);
    e.submit(
        &[req("a", "m", 1), req("a", "m", 1), req("a", "m", 1)],
        false,
    )
    .unwrap();
    let d = e.decide(10, true).unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(pool.leases(), 2);
    assert!(e.decide(10, true).unwrap().is_empty());
    pool.release(d[0].lease.unwrap(), Outcome::default(), false)
        .unwrap();
    assert_eq!(e.decide(10, true).unwrap().len(), 1);
}

#[test]
fn starvation_bound_holds_under_constant_high_priority_load() {
    let (e, _, _) = engine(&[("m", 1)]);
    let bound = e.config().starvation_bound;
    let low = e.submit(&[req("low", "m", 0)], false).unwrap()[0];
    let mut served_after = None;
    for i in 0..200 {
        e.submit(&[req("high", "m", 10)], false).unwrap();
        let d = e.decide(1, false).unwrap();
        if d[0].request == low {
            served_after = Some(i);
            assert_eq!(d[0].reason, Reason::Starvation);
            break;
        }
    }
    let n = served_after.expect("low-priority request starved");
    assert!(n as u64 <= bound, "served after {n} decisions");
}

#[test]
fn round_robin_alternates_owners() {
    let (e, _, _) = engine(&[("m", 100)]);
    e.set_config(
        Config {
            strategy: Strategy::RoundRobin,
            ..Config::default()
        },
        false,
    )
    .unwrap();
    e.submit(
        &[
            req("a", "m", 9),
            req("a", "m", 9),
            req("b", "m", 0),
            req("b", "m", 0),
        ],
        false,
    )
    .unwrap();
    let owners: Vec<String> = e
        .decide(4, false)
        .unwrap()
        .iter()
        .map(|d| d.owner.to_string())
        .collect();
    assert_eq!(owners, ["a", "b", "a", "b"]);
}

#[test]
fn collaborative_batches_a_warm_model() {
    let (e, pool, _) = engine(&[("x", 1), ("y", 1)]);
    pool.prewarm("y").unwrap();
    e.set_config(
        Config {
            strategy: Strategy::Collaborative,
            ..Config::default()
        },
        false,
    )
    .unwrap();
    e.submit(
        &[
            req("a", "x", 9),
            req("b", "y", 0),
            req("c", "y", 0),
            req("d", "y", 0),
        ],
        false,
    )
    .unwrap();
    let d = e.decide(1, false).unwrap();
    assert_eq!(pool.model_id(d[0].model).as_deref(), Some("y"));
    assert_eq!(d[0].batch.len(), 2);
    assert_eq!(e.pending(), 1);
}

#[test]
fn specialization_routes_to_best_model() {
    let (e, pool, _) = engine(&[("general", 1), ("coder", 1)]);
    e.set_config(
        Config {
            strategy: Strategy::Specialization,
            ..Config::default()
        },
        false,
    )
    .unwrap();
    e.set_skill("wf", "coder", 0.9, false).unwrap();
    e.set_skill("wf", "general", 0.2, false).unwrap();
    e.submit(&[req("a", "general", 5), req("a", "general", 5)], false)
        .unwrap();
    let d = e.decide(2, false).unwrap();
    assert_eq!(pool.model_id(d[0].model).as_deref(), Some("coder"));
    assert_eq!(pool.model_id(d[1].model).as_deref(), Some("general"));
}

#[test]
fn prioritization_uses_deadline_for_ties() {
    let (e, _, clock) = engine(&[("m", 10)]);
    e.set_config(
        Config {
            strategy: Strategy::Prioritization,
            ..Config::default()
        },
        false,
    )
    .unwrap();
    let mut late = req("a", "m", 5);
    late.deadline = Some(clock.now() + 3600 * SECOND);
    let mut soon = req("b", "m", 5);
    soon.deadline = Some(clock.now() + 10 * SECOND);
    let ids = e.submit(&[late, soon, req("c", "m", 7)], false).unwrap();
    let order: Vec<u64> = e
        .decide(3, false)
        .unwrap()
        .iter()
        .map(|d| d.request)
        .collect();
    assert_eq!(order, [ids[2], ids[1], ids[0]]);
}

#[test]
fn budgets_and_spending_policy() {
    let (e, _, _) = engine(&[("m", 10)]);
    e.set_policy("o", Some(2.0), Some(1.5), false).unwrap();
    let mut r = req("o", "m", 1);
    r.cost = 2.0;
    assert_eq!(kind(e.submit(&[r], false)), ErrorKind::BudgetExceeded);
    r.cost = 1.0;
    e.submit(&[r, r], false).unwrap();
    assert_eq!(kind(e.submit(&[r], false)), ErrorKind::BudgetExceeded);
    let d = e.decide(2, false).unwrap();
    assert!(d.iter().all(|d| d.granted));
    e.report(d[0].id, true, 1.0, false).unwrap();
    assert_eq!(
        kind(e.report(d[0].id, true, 1.0, false)),
        ErrorKind::InvalidArgument
    );
    let o = e.owners().into_iter().find(|o| &*o.owner == "o").unwrap();
    assert_eq!((o.spent, o.committed), (1.0, 1.0));
}

#[test]
fn fairness_decays() {
    let (e, _, clock) = engine(&[("m", 10)]);
    e.submit(&[req("a", "m", 1); 5], false).unwrap();
    e.decide(5, false).unwrap();
    let share = |e: &ArbitrationEngine| e.owners()[0].share;
    let s0 = share(&e);
    clock.advance(60 * SECOND);
    assert!((share(&e) - s0 / 2.0).abs() < 1e-9);
}

#[test]
fn feedback_moves_weights() {
    let (e, _, _) = engine(&[("m", 100)]);
    let w0 = e.config().weights;
    let mut r = req("a", "m", 10);
    r.value = 0.0;
    r.impact = 0.0;
    e.submit(&[r; 10], false).unwrap();
    for d in e.decide(10, false).unwrap() {
        e.report(d.id, true, 0.0, false).unwrap();
    }
    let w1 = e.config().weights;
    assert!(w1[0] > w0[0], "priority weight grew: {w0:?} -> {w1:?}");
    assert!(w1[1] < w0[1]);
    assert!((w1.iter().sum::<f64>() - w0.iter().sum::<f64>()).abs() < 1e-9);
}

proptest! {
    /// Every submitted request is decided exactly once and never above free capacity.
    #[test]
    fn each_request_decided_once(prios in proptest::collection::vec(0i32..11, 1..60), slots in 1u32..5) {
        let (e, pool, _) = engine(&[("m", slots)]);
        let owners = ["a", "b", "c"];
        let reqs: Vec<Submit<'_>> = prios.iter().enumerate().map(|(i, p)| req(owners[i % 3], "m", *p)).collect();
        let ids = e.submit(&reqs, false).unwrap();
        let mut seen = std::collections::HashSet::new();
        loop {
            let d = e.decide(64, true).unwrap();
            prop_assert!(d.len() <= slots as usize);
            if d.is_empty() { break; }
            for x in d {
                prop_assert!(seen.insert(x.request));
                pool.release(x.lease.unwrap(), Outcome::default(), false).unwrap();
            }
        }
        prop_assert_eq!(seen.len(), ids.len());
    }
}

#[test]
fn slab_keeps_a_bounded_span_and_finds_everything() {
    let (e, pool, _) = engine(&[("busy", 1), ("free", 1_000_000)]);
    let held = pool
        .try_acquire(&crate::pool::Request::new("busy", "x"))
        .unwrap();
    let stuck = e.submit(&[req("a", "busy", 0)], false).unwrap()[0];
    for _ in 0..20 {
        e.submit(&vec![req("b", "free", 5); 500], false).unwrap();
        assert_eq!(e.decide(500, false).unwrap().len(), 500);
    }
    let s = e.state.lock();
    assert!(s.pending.items.len() <= 2 * s.pending.in_items + 1024);
    assert!(s.pending.contains_key(stuck));
    assert_eq!(s.pending.len(), 1);
    drop(s);
    pool.release(held.id, Outcome::default(), false).unwrap();
    assert_eq!(e.decide(1, false).unwrap()[0].request, stuck);
    assert_eq!(e.pending(), 0);
}
