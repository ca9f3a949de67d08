use proptest::prelude::*;

use super::graph::{Core, Workflow};
use super::*;
use crate::{Clock, Pit, PitOptions};

use NodeState::{Cancelled, Failed, Pending, Ready, Running, Skipped, Succeeded};

fn tracker() -> DagTracker {
    DagTracker::new(&Ctx::in_memory(Clock::manual(1_000 * SECOND)))
}

fn build(t: &DagTracker, wf: &str, nodes: &[&str], edges: &[(&str, &str, DepKind)]) {
    t.create_workflow(wf, false).unwrap();
    t.add_nodes(wf, nodes, None, None, false).unwrap();
    for &(s, d, k) in edges {
        t.add_edges(wf, &[(s, d)], k, false).unwrap();
    }
}

fn st(t: &DagTracker, wf: &str, n: &str) -> NodeState {
    t.state(wf, n).unwrap()
}

fn run(t: &DagTracker, wf: &str, n: &str, end: NodeState) {
    t.transition(wf, n, Running, None, false).unwrap();
    t.transition(wf, n, end, None, false).unwrap();
}

/// Bring `x` to `outcome` (running first when the outcome needs a run).
fn finish(t: &DagTracker, wf: &str, x: &str, outcome: NodeState) {
    match outcome {
        Succeeded | Failed => run(t, wf, x, outcome),
        Skipped | Cancelled => t.transition(wf, x, outcome, None, false).unwrap(),
        _ => unreachable!(),
    }
}

/// Fresh incremental state equals the state derived from scratch.
fn assert_consistent(t: &DagTracker) {
    let st = t.state.lock();
    for w in st.wfs.iter().flatten() {
        let fresh = Workflow::from_core(w.name.clone(), w.core.clone(), Vec::new(), 1);
        assert_eq!(w.derived(), fresh.derived(), "workflow {}", w.name);
    }
}

#[test]
fn semantics_table_every_cell() {
    let kinds = [
        DepKind::Hard,
        DepKind::Soft,
        DepKind::Optional,
        DepKind::Parallel,
    ];
    for kind in kinds {
        // Before the dependency finishes: hard and soft wait; optional and parallel do not.
        let t = tracker();
        build(&t, "w", &["x", "d"], &[("x", "d", kind)]);
        let waits = matches!(kind, DepKind::Hard | DepKind::Soft);
        assert_eq!(
            st(&t, "w", "d"),
            if waits { Pending } else { Ready },
            "{kind:?}"
        );
        t.transition("w", "x", Running, None, false).unwrap();
        assert_eq!(
            st(&t, "w", "d"),
            if waits { Pending } else { Ready },
            "{kind:?}"
        );
        for outcome in [Succeeded, Failed, Skipped, Cancelled] {
            let t = tracker();
            build(&t, "w", &["x", "d", "keep"], &[("x", "d", kind)]);
            // `keep` consumes x's output for real so x is never "unneeded".
            t.add_edges("w", &[("x", "keep")], DepKind::Hard, false)
                .unwrap();
            finish(&t, "w", "x", outcome);
            let expect = match (kind, outcome) {
                (DepKind::Hard, Failed | Skipped | Cancelled) => Skipped,
                _ => Ready,
            };
            assert_eq!(st(&t, "w", "d"), expect, "{kind:?} after {outcome:?}");
            assert_consistent(&t);
        }
    }
}

#[test]
fn hard_failure_cascades_and_soft_stops_it() {
    let t = tracker();
    build(
        &t,
        "w",
        &["a", "b", "c", "d"],
        &[
            ("a", "b", DepKind::Hard),
            ("b", "c", DepKind::Hard),
            ("c", "d", DepKind::Soft),
        ],
    );
    run(&t, "w", "a", Failed);
    assert_eq!(st(&t, "w", "b"), Skipped);
    assert_eq!(st(&t, "w", "c"), Skipped);
    assert_eq!(st(&t, "w", "d"), Ready);
    assert_consistent(&t);
}

#[test]
fn optional_source_is_skipped_gracefully_once_nobody_waits() {
    let t = tracker();
    build(
        &t,
        "w",
        &["up", "x", "d"],
        &[("up", "x", DepKind::Hard), ("x", "d", DepKind::Optional)],
    );
    assert_eq!(st(&t, "w", "d"), Ready);
    t.transition("w", "d", Running, None, false).unwrap();
    assert_eq!(st(&t, "w", "x"), Skipped);
    assert_eq!(
        st(&t, "w", "up"),
        Ready,
        "upstream of a skipped node is not touched"
    );
    // A source that someone still needs is not skipped.
    let t = tracker();
    build(
        &t,
        "w",
        &["x", "d", "e"],
        &[("x", "d", DepKind::Optional), ("x", "e", DepKind::Hard)],
    );
    t.transition("w", "d", Running, None, false).unwrap();
    assert_eq!(st(&t, "w", "x"), Ready);
    assert_consistent(&t);
}

#[test]
fn illegal_transitions_are_rejected_and_change_nothing() {
    let t = tracker();
    build(&t, "w", &["a", "b"], &[("a", "b", DepKind::Hard)]);
    for (node, to) in [
        ("b", Running),
        ("a", Succeeded),
        ("a", Pending),
        ("a", Ready),
        ("a", Failed),
    ] {
        let e = t.transition("w", node, to, None, false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::IllegalTransition, "{e}");
    }
    run(&t, "w", "a", Succeeded);
    let e = t.transition("w", "a", Running, None, false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "illegal transition of node \"a\" in workflow \"w\": succeeded → running"
    );
    for from in NodeState::ALL {
        for to in NodeState::ALL {
            let ok = matches!(
                (from, to),
                (Pending | Ready, Skipped | Cancelled)
                    | (Ready, Running)
                    | (Running, Succeeded | Failed | Cancelled)
            );
            assert_eq!(from.allows(to), ok, "{from:?} → {to:?}");
        }
    }
}

#[test]
fn cycle_is_named_and_nothing_changes() {
    let t = tracker();
    build(
        &t,
        "w",
        &["a", "b", "c"],
        &[("a", "b", DepKind::Hard), ("b", "c", DepKind::Soft)],
    );
    let e = t
        .add_edges("w", &[("c", "a")], DepKind::Optional, false)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DagCycle);
    assert_eq!(
        e.detail(),
        Detail::Items(vec!["c".into(), "a".into(), "b".into(), "c".into()])
    );
    let e = t
        .add_edges("w", &[("a", "a")], DepKind::Hard, false)
        .unwrap_err();
    assert_eq!(e.detail(), Detail::Items(vec!["a".into(), "a".into()]));
    // Batch with a cycle: all or nothing.
    let e = t
        .add_edges_idx("w", &[(0, 2), (2, 0)], DepKind::Hard, false)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DagCycle);
    assert_eq!(t.dependants("w", "c").unwrap(), vec![]);
    assert_eq!(t.dependencies("w", "c").unwrap().len(), 1);
    // Parallel edges have no order and never close a cycle.
    t.add_edges("w", &[("c", "a")], DepKind::Parallel, false)
        .unwrap();
    assert_eq!(t.parallel_groups("w").unwrap(), vec![vec!["a", "c"]]);
    assert_consistent(&t);
}

#[test]
fn alternatives_stand_in_for_failures() {
    let t = tracker();
    build(&t, "w", &["x", "y", "z", "d"], &[("x", "d", DepKind::Hard)]);
    t.add_alternative("w", "x", "y", false).unwrap();
    t.add_alternative("w", "x", "z", false).unwrap();
    assert_eq!(t.alternatives("w", "x").unwrap(), vec!["y", "z"]);
    assert_eq!(st(&t, "w", "y"), Pending);
    run(&t, "w", "x", Failed);
    assert_eq!(st(&t, "w", "y"), Ready);
    assert_eq!(st(&t, "w", "d"), Pending);
    run(&t, "w", "y", Failed);
    assert_eq!(st(&t, "w", "z"), Ready);
    run(&t, "w", "z", Succeeded);
    assert_eq!(
        st(&t, "w", "d"),
        Ready,
        "the alternative's success satisfies x's dependants"
    );
    assert_eq!(t.node_info("w", "x").unwrap().outcome, Some(Succeeded));
    assert_consistent(&t);

    // The primary succeeds: alternatives are skipped.
    let t = tracker();
    build(&t, "w", &["x", "y", "d"], &[("x", "d", DepKind::Hard)]);
    t.add_alternative("w", "x", "y", false).unwrap();
    run(&t, "w", "x", Succeeded);
    assert_eq!(st(&t, "w", "y"), Skipped);
    assert_eq!(st(&t, "w", "d"), Ready);

    // Every alternative fails: dependants are skipped.
    let t = tracker();
    build(&t, "w", &["x", "y", "d"], &[("x", "d", DepKind::Hard)]);
    t.add_alternative("w", "x", "y", false).unwrap();
    run(&t, "w", "x", Failed);
    run(&t, "w", "y", Failed);
    assert_eq!(st(&t, "w", "d"), Skipped);

    // An alternative that depends on a dependant of x would deadlock: refused as a cycle.
    let t = tracker();
    build(
        &t,
        "w",
        &["x", "y", "d"],
        &[("x", "d", DepKind::Hard), ("d", "y", DepKind::Hard)],
    );
    let e = t.add_alternative("w", "x", "y", false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DagCycle, "{e}");
    assert!(t.alternatives("w", "x").unwrap().is_empty());
    assert_consistent(&t);
}

#[test]
fn reset_reruns_downstream_only() {
    let t = tracker();
    build(
        &t,
        "w",
        &["a", "b", "c", "side"],
        &[("a", "b", DepKind::Hard), ("b", "c", DepKind::Hard)],
    );
    run(&t, "w", "a", Succeeded);
    run(&t, "w", "b", Succeeded);
    run(&t, "w", "c", Failed);
    run(&t, "w", "side", Succeeded);
    let reset = t.reset("w", "b", false).unwrap();
    assert_eq!(reset, vec!["b", "c"]);
    assert_eq!(st(&t, "w", "a"), Succeeded);
    assert_eq!(st(&t, "w", "b"), Ready);
    assert_eq!(st(&t, "w", "c"), Pending);
    assert_eq!(st(&t, "w", "side"), Succeeded);
    assert_consistent(&t);
}

#[test]
fn checkpoint_and_rollback() {
    let t = tracker();
    build(&t, "w", &["a", "b"], &[("a", "b", DepKind::Hard)]);
    t.bind_artifact("w", "a", 7, false).unwrap();
    let cp = t.checkpoint("w", false).unwrap();
    run(&t, "w", "a", Succeeded);
    t.add_nodes("w", &["c"], None, None, false).unwrap();
    t.unbind_artifact("w", "a", 7, false).unwrap();
    t.bind_artifact("w", "c", 9, false).unwrap();
    assert_eq!(
        t.referenced_artifacts(),
        vec![7, 9],
        "checkpoints keep references"
    );
    let cp2 = t.checkpoint("w", false).unwrap();
    t.rollback("w", cp, false).unwrap();
    assert_eq!(t.nodes("w").unwrap(), vec!["a", "b"]);
    assert_eq!(st(&t, "w", "a"), Ready);
    assert_eq!(
        t.referenced_artifacts(),
        vec![7, 9],
        "9 is still in checkpoint 2"
    );
    t.drop_checkpoint("w", cp2, false).unwrap();
    assert_eq!(t.referenced_artifacts(), vec![7]);
    t.drop_checkpoint("w", cp, false).unwrap();
    assert_eq!(t.checkpoints("w").unwrap(), Vec::<u32>::new());
    t.drop_workflow("w", false).unwrap();
    assert!(t.referenced_artifacts().is_empty());
    let e = t.rollback("x", 1, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WorkflowNotFound);
}

#[test]
fn bindings_after_a_rollback_are_those_of_the_checkpoint() {
    let t = tracker();
    build(&t, "w", &["a", "b"], &[]);
    assert!(t.bind_artifact("w", "a", 7, false).unwrap());
    assert!(
        !t.bind_artifact("w", "a", 7, false).unwrap(),
        "bound already"
    );
    let cp = t.checkpoint("w", false).unwrap();
    assert!(t.unbind_artifact("w", "a", 7, false).unwrap());
    assert!(
        !t.unbind_artifact("w", "a", 7, false).unwrap(),
        "unbound already"
    );
    assert!(t.bind_artifact("w", "b", 8, false).unwrap());
    t.rollback("w", cp, false).unwrap();
    assert!(
        !t.bind_artifact("w", "a", 7, false).unwrap(),
        "7 is bound again"
    );
    assert!(
        t.unbind_artifact("w", "b", 8, false).is_ok_and(|was| !was),
        "8 is not"
    );
    assert_eq!(t.node_info("w", "a").unwrap().artifacts, vec![7]);
    assert!(t.node_info("w", "b").unwrap().artifacts.is_empty());
}

#[test]
fn many_bindings_stay_cheap_and_in_order() {
    // a set beside the list: binding was a scan of every binding of the workflow
    let t = tracker();
    let names: Vec<String> = (0..20_000).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    build(&t, "w", &refs, &[]);
    for (i, n) in refs.iter().enumerate() {
        assert!(t.bind_artifact("w", n, i as u64, false).unwrap());
    }
    assert!(!t.bind_artifact("w", "n19999", 19_999, false).unwrap());
    assert_eq!(t.node_info("w", "n123").unwrap().artifacts, vec![123]);
    assert_eq!(t.referenced_artifacts().len(), 20_000);
}

#[test]
fn durations_are_learned_per_type_and_used_for_planning() {
    let clock = Clock::manual(1_000 * SECOND);
    let t = DagTracker::new(&Ctx::in_memory(clock.clone()));
    t.create_workflow("w", false).unwrap();
    t.add_nodes("w", &["a", "b"], Some("llm"), None, false)
        .unwrap();
    t.add_nodes("w", &["c"], None, Some(5.0), false).unwrap();
    t.add_edges("w", &[("a", "b"), ("b", "c")], DepKind::Hard, false)
        .unwrap();
    t.transition("w", "a", Running, None, false).unwrap();
    clock.advance(4 * SECOND);
    t.transition("w", "a", Succeeded, None, false).unwrap();
    assert_eq!(t.type_estimate("llm"), Some((4.0, 1)));
    t.transition("w", "b", Running, None, false).unwrap();
    t.transition("w", "b", Succeeded, Some(8.0), false).unwrap();
    assert_eq!(t.type_estimate("llm"), Some((5.0, 2)));
    let (len, path) = t.critical_path("w").unwrap();
    assert!((len - 15.0).abs() < 1e-9, "{len}");
    assert_eq!(path, vec!["a", "b", "c"]);
    // Cached planning data follows estimates, alternatives and new edges.
    t.add_nodes("w", &["x", "alt"], None, Some(100.0), false)
        .unwrap();
    assert!((t.critical_path("w").unwrap().0 - 100.0).abs() < 1e-9);
    t.add_alternative("w", "c", "alt", false).unwrap();
    t.set_estimate("w", "x", Some(1.0), false).unwrap();
    assert!(
        (t.critical_path("w").unwrap().0 - 15.0).abs() < 1e-9,
        "alternatives weigh 0"
    );
    t.add_edges("w", &[("c", "x")], DepKind::Soft, false)
        .unwrap();
    assert!((t.critical_path("w").unwrap().0 - 16.0).abs() < 1e-9);
    let s = t.schedule("w").unwrap();
    assert!(
        (s.slack[4] - 16.0).abs() < 1e-9,
        "the alternative can wait: {:?}",
        s.slack
    );
}

#[test]
fn batch_transitions_stop_at_the_first_illegal_one() {
    let t = tracker();
    build(&t, "w", &["a", "b", "c"], &[("a", "c", DepKind::Hard)]);
    assert_eq!(t.transition_batch("w", &[0, 1], Running, false).unwrap(), 2);
    let e = t
        .transition_batch("w", &[0, 2, 1], Succeeded, false)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::IllegalTransition);
    assert_eq!(e.detail(), Detail::Subject("c".into()));
    assert_eq!(st(&t, "w", "a"), Succeeded);
    assert_eq!(st(&t, "w", "b"), Running);
    let e = t
        .transition_batch("w", &[1, 99], Succeeded, false)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NodeNotFound);
    assert_eq!(
        st(&t, "w", "b"),
        Running,
        "unknown indexes refuse the whole batch"
    );
    assert_consistent(&t);
}

/// Brute-force longest path over hard/soft edges (node weights).
fn brute_longest(n: usize, edges: &[(u32, u32, DepKind)], w: &[f64]) -> f64 {
    fn go(v: usize, edges: &[(u32, u32, DepKind)], w: &[f64], memo: &mut Vec<Option<f64>>) -> f64 {
        if let Some(x) = memo[v] {
            return x;
        }
        let mut best = 0.0f64;
        for &(s, t, k) in edges {
            if s as usize == v && matches!(k, DepKind::Hard | DepKind::Soft) {
                best = best.max(go(t as usize, edges, w, memo));
            }
        }
        let r = w[v] + best;
        memo[v] = Some(r);
        r
    }
    let mut memo = vec![None; n];
    (0..n)
        .map(|v| go(v, edges, w, &mut memo))
        .fold(0.0, f64::max)
}

#[derive(Debug, Clone)]
enum Op {
    Edge(u32, u32, u8),
    Alt(u32, u32),
    Trans(u32, u8),
    Batch(Vec<u32>, u8),
    Reset(u32),
    Checkpoint,
    Rollback,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..12, 0u32..12, 0u8..4).prop_map(|(a, b, k)| Op::Edge(a, b, k)),
        (0u32..12, 0u32..12).prop_map(|(a, b)| Op::Alt(a, b)),
        (0u32..12, 2u8..7).prop_map(|(a, s)| Op::Trans(a, s)),
        (0u32..12, 2u8..7).prop_map(|(a, s)| Op::Trans(a, s)),
        (0u32..12, 2u8..7).prop_map(|(a, s)| Op::Trans(a, s)),
        (proptest::collection::vec(0u32..12, 0..6), 2u8..7).prop_map(|(v, s)| Op::Batch(v, s)),
        (0u32..12).prop_map(Op::Reset),
        Just(Op::Checkpoint),
        Just(Op::Rollback),
    ]
}

fn apply(t: &DagTracker, op: &Op) {
    let names: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
    let _ = match *op {
        Op::Edge(a, b, k) => t.add_edges_idx("w", &[(a, b)], DepKind::from_u8(k).unwrap(), false),
        Op::Alt(a, b) => t.add_alternative("w", &names[a as usize], &names[b as usize], false),
        Op::Trans(a, s) => t.transition_idx(0, a, NodeState::from_u8(s).unwrap(), None, false),
        Op::Batch(ref v, s) => t
            .transition_batch("w", v, NodeState::from_u8(s).unwrap(), false)
            .map(|_| ()),
        Op::Reset(a) => t.reset("w", &names[a as usize], false).map(|_| ()),
        Op::Checkpoint => t.checkpoint("w", false).map(|_| ()),
        Op::Rollback => match t.checkpoints("w").unwrap().last() {
            Some(&c) => t.rollback("w", c, false),
            None => Ok(()),
        },
    };
}

fn fresh_random() -> DagTracker {
    let t = tracker();
    t.create_workflow("w", false).unwrap();
    let names: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    t.add_nodes("w", &refs, None, Some(1.0), false).unwrap();
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The incremental engine agrees with the state derived from scratch after any sequence of
    /// operations, the graph stays acyclic, and every node is in a state its dependencies allow.
    #[test]
    fn incremental_engine_matches_recompute(ops in proptest::collection::vec(op(), 1..60)) {
        let t = fresh_random();
        for op in &ops {
            apply(&t, op);
            assert_consistent(&t);
        }
        let st = t.state.lock();
        let w = st.wfs[0].as_ref().unwrap();
        prop_assert!(w.find_cycle().is_none());
        for (i, c) in w.core.nodes.iter().enumerate() {
            if matches!(c.state, Running | Succeeded | Failed) {
                for (s, k) in w.dependencies(i as u32) {
                    if k == DepKind::Hard {
                        prop_assert_eq!(w.outcome(s), Some(Succeeded));
                    }
                    if k == DepKind::Soft {
                        prop_assert!(w.outcome(s).is_some());
                    }
                }
            }
        }
    }

    /// The critical path equals a brute-force longest path.
    #[test]
    fn critical_path_is_the_longest_path(
        edges in proptest::collection::vec((0u32..10, 0u32..10, 0u8..3), 0..30),
        weights in proptest::collection::vec(0.0f64..10.0, 10),
    ) {
        let t = tracker();
        t.create_workflow("w", false).unwrap();
        for (i, w) in weights.iter().enumerate() {
            t.add_nodes("w", &[format!("n{i}").as_str()], None, Some(*w), false).unwrap();
        }
        for (a, b, k) in edges {
            let _ = t.add_edges_idx("w", &[(a, b)], DepKind::from_u8(k).unwrap(), false);
        }
        let s = t.schedule("w").unwrap();
        let st = t.state.lock();
        let w = st.wfs[0].as_ref().unwrap();
        let expect = brute_longest(10, &w.core.edges, &weights);
        prop_assert!((s.length - expect).abs() < 1e-9, "{} vs {}", s.length, expect);
        let along: f64 = s.path.iter().map(|&n| weights[n as usize]).sum();
        prop_assert!((along - expect).abs() < 1e-9);
        for &n in &s.path {
            prop_assert!(s.slack[n as usize].abs() < 1e-9);
        }
    }
}

#[test]
fn replay_and_snapshot_restore_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PitOptions {
        key: Some([7; 32]),
        clock: Clock::manual(1_000 * SECOND),
        ..PitOptions::default()
    };
    let expect = {
        let pit = Pit::open(dir.path(), &opts).unwrap();
        let t = &pit.dag;
        t.create_workflow("w", false).unwrap();
        t.add_nodes("w", &["a", "b", "c", "d"], Some("tool"), None, false)
            .unwrap();
        t.add_edges("w", &[("a", "b"), ("b", "c")], DepKind::Hard, false)
            .unwrap();
        t.add_alternative("w", "b", "d", false).unwrap();
        t.transition_batch("w", &[0], Running, false).unwrap();
        pit.clock().advance(3 * SECOND);
        t.transition("w", "a", Succeeded, None, false).unwrap();
        let cp = t.checkpoint("w", false).unwrap();
        run(t, "w", "b", Failed);
        t.bind_artifact("w", "d", 42, true).unwrap();
        assert_eq!(st(t, "w", "d"), Ready);
        t.rollback("w", cp, false).unwrap();
        run(t, "w", "b", Failed);
        // Simulated crash: no close, no checkpoint; the journal was flushed by the sync above.
        pit.sync().unwrap();
        let s = t.states("w").unwrap();
        drop(pit); // no close: no snapshot, reopening must replay the journal
        s
    };
    let pit = Pit::open(dir.path(), &opts).unwrap();
    assert_eq!(pit.dag.states("w").unwrap(), expect);
    assert_eq!(pit.dag.type_estimate("tool"), Some((3.0, 1)));
    pit.checkpoint().unwrap();
    let (_, snap) = pit.dag.snapshot().unwrap();
    let t2 = tracker();
    t2.restore(&snap).unwrap();
    assert_eq!(t2.states("w").unwrap(), expect);
    assert_eq!(t2.checkpoints("w").unwrap(), vec![1]);
    assert_eq!(t2.type_estimate("tool"), Some((3.0, 1)));
    assert_consistent(&t2);
    pit.close().unwrap();
}

#[test]
fn records_round_trip() {
    let rec = Rec::Batch {
        wf: 3,
        state: Succeeded,
        at: 99,
        nodes: Raw(Cow::Owned(vec![1, 0, 0, 0, 2, 0, 0, 0])),
    };
    let bytes = postcard::to_stdvec(&rec).unwrap();
    let back: Rec<'static> = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(back, rec);
    let core = Core::default();
    assert_eq!(core.nodes.len(), 0);
}

#[test]
fn a_batch_the_journal_refuses_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = PitOptions {
        key: Some([3; 32]),
        clock: Clock::manual(1_000 * SECOND),
        ..PitOptions::default()
    };
    let pit = Pit::open(dir.path(), &opts).unwrap();
    let t = &pit.dag;
    build(
        t,
        "w",
        &["a", "b", "c", "d"],
        &[
            ("a", "c", DepKind::Hard),
            ("c", "d", DepKind::Hard),
            ("b", "d", DepKind::Soft),
        ],
    );
    t.transition_batch("w", &[0, 1], Running, false).unwrap();
    let before = t.states("w").unwrap();
    pit.close().unwrap();
    let e = t.transition_batch("w", &[0, 1], Failed, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
    assert_eq!(
        t.states("w").unwrap(),
        before,
        "the cascade was taken back too"
    );
    assert_consistent(t);
    let e = t.transition("w", "a", Failed, None, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
    assert_eq!(t.states("w").unwrap(), before);
}

#[test]
fn fx_hash_spreads_similar_ids_over_buckets() {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let b = BuildHasherDefault::<super::graph::FxHasher>::default();
    let mut low = std::collections::HashSet::new();
    for i in 0..4096 {
        low.insert(b.hash_one(format!("n{i}")) & 4095);
    }
    // A uniform hash fills about 63% of 4096 buckets with 4096 keys.
    assert!(
        low.len() > 2300,
        "only {} distinct low-bit patterns",
        low.len()
    );
}

#[test]
fn an_alternative_is_never_skipped_as_unneeded() {
    let t = tracker();
    build(
        &t,
        "w",
        &["x", "y", "d", "e"],
        &[("x", "d", DepKind::Hard), ("y", "e", DepKind::Optional)],
    );
    t.add_alternative("w", "x", "y", false).unwrap();
    // e does not wait for y; y's only own dependant has started, but y may still stand in for x.
    t.transition("w", "e", Running, None, false).unwrap();
    assert_eq!(st(&t, "w", "y"), Pending);
    run(&t, "w", "x", Failed);
    assert_eq!(st(&t, "w", "y"), Ready);
    run(&t, "w", "y", Succeeded);
    assert_eq!(st(&t, "w", "d"), Ready);
    assert_consistent(&t);
}

fn observe(t: &DagTracker) -> (Vec<NodeState>, Vec<u32>, Vec<String>, Vec<ArtifactId>) {
    (
        t.states("w").unwrap(),
        t.checkpoints("w").unwrap(),
        t.ready("w").unwrap(),
        t.referenced_artifacts(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever happened, reopening (snapshot + journal replay) restores the same workflow.
    #[test]
    fn reopening_restores_any_history(
        ops in proptest::collection::vec(op(), 1..40),
        snapshot_at in 0usize..40,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = PitOptions {
            key: Some([5; 32]),
            clock: Clock::manual(1_000 * SECOND),
            ..PitOptions::default()
        };
        let expect = {
            let pit = Pit::open(dir.path(), &opts).unwrap();
            let t = &pit.dag;
            t.create_workflow("w", false).unwrap();
            let names: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            t.add_nodes("w", &refs, Some("kind"), None, false).unwrap();
            for (k, op) in ops.iter().enumerate() {
                if k == snapshot_at {
                    pit.checkpoint().unwrap();
                }
                if k % 5 == 0 {
                    t.bind_artifact("w", &names[k % 12], k as u64, false).unwrap();
                }
                pit.clock().advance(SECOND);
                apply(t, op);
            }
            pit.sync().unwrap();
            (observe(t), t.type_estimate("kind"))
        };
        let pit = Pit::open(dir.path(), &opts).unwrap();
        prop_assert_eq!((observe(&pit.dag), pit.dag.type_estimate("kind")), expect);
        assert_consistent(&pit.dag);
        pit.close().unwrap();
    }
}

#[test]
fn critical_path_at_names_indexes_for_one_epoch() {
    let t = tracker();
    build(&t, "w", &["a", "b"], &[("a", "b", DepKind::Hard)]);
    t.set_estimate("w", "a", Some(1.0), false).unwrap();
    t.set_estimate("w", "b", Some(1.0), false).unwrap();
    let p = t.critical_path_at("w").unwrap();
    assert_eq!(p.handle, t.workflow_handle("w").unwrap());
    assert_eq!((p.path.clone(), p.epoch), (vec![0, 1], t.naming_epoch()));
    assert_eq!(
        t.node_names_at(p.handle, p.epoch, &p.path).unwrap(),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert!(t.node_names_at(p.handle, p.epoch, &[2]).is_err());
    // Adding nodes keeps the epoch: old indexes name the same nodes.
    let cp = t.checkpoint("w", false).unwrap();
    t.add_nodes("w", &["c"], None, None, false).unwrap();
    assert_eq!(t.naming_epoch(), p.epoch);
    // A rollback may give an index to another node: the epoch moves on.
    t.rollback("w", cp, false).unwrap();
    assert_ne!(t.naming_epoch(), p.epoch);
    assert_eq!(t.node_names_at(p.handle, p.epoch, &[0]).unwrap(), None);
    // A dropped workflow names nothing; its recreation gets a new handle.
    t.drop_workflow("w", false).unwrap();
    let e = t.naming_epoch();
    assert_eq!(t.node_names_at(p.handle, e, &[0]).unwrap(), None);
    build(&t, "w", &["x"], &[]);
    assert_ne!(t.workflow_handle("w").unwrap(), p.handle);
    // Restoring a snapshot moves the epoch on as well.
    let (_, snap) = t.snapshot().unwrap();
    t.restore(&snap).unwrap();
    assert_ne!(t.naming_epoch(), e);
    assert_eq!(t.critical_path_at("w").unwrap().path, vec![0]);
}
