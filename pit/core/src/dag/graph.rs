//! One workflow: its nodes, edges and states, and the engine that derives readiness.
//!
//! The persistent part of a workflow is [`Core`] (nodes with their states, edges, artifact
//! bindings). Everything else in [`Workflow`] is derived from it and rebuilt by
//! [`Workflow::rebuild`]: name index, adjacency, the per-node count of dependencies still awaited,
//! the ready set. Transitions update the derived state incrementally; [`Workflow::recompute`]
//! derives it from scratch and is the oracle the tests compare the incremental engine with.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::DagError;
use crate::{ArtifactId, Micros, SECOND};

/// A small fast hasher (the `FxHash` of rustc, with a mixing finish) for node ids and index pairs. Ids come from the
/// application's own workflows, so resistance to crafted collisions is not needed here.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits (hashbrown's bucket index) depending only on the low
        // bytes of the input ("n1", "n2", … share them): mix the high bits down.
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^ (h >> 33)
    }
}

/// A map with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;
/// A set with [`FxHasher`].
pub(crate) type FxSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;

/// "No node".
pub(crate) const NONE: u32 = u32::MAX;

/// The state of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum NodeState {
    /// Waiting for dependencies.
    Pending = 0,
    /// Every dependency it waits for is resolved: it may start.
    Ready = 1,
    /// Started.
    Running = 2,
    /// Finished successfully.
    Succeeded = 3,
    /// Finished unsuccessfully.
    Failed = 4,
    /// Did not run (skipped on purpose, or because a hard dependency did not succeed).
    Skipped = 5,
    /// Stopped on purpose.
    Cancelled = 6,
}

impl NodeState {
    /// Every state, in order of their numbers.
    pub const ALL: [NodeState; 7] = [
        Self::Pending,
        Self::Ready,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Skipped,
        Self::Cancelled,
    ];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parse a lowercase name.
    pub fn parse(s: &str) -> Result<Self, DagError> {
        Ok(match s {
            "pending" => Self::Pending,
            "ready" => Self::Ready,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "skipped" => Self::Skipped,
            "cancelled" => Self::Cancelled,
            _ => {
                return Err(DagError::Invalid(format!(
                    "unknown node state {s:?}; expected one of pending, ready, running, \
                     succeeded, failed, skipped, cancelled"
                )))
            }
        })
    }

    /// The state numbered `b`.
    pub fn from_u8(b: u8) -> Option<Self> {
        Self::ALL.get(b as usize).copied()
    }

    /// Succeeded, failed, skipped or cancelled.
    #[inline]
    pub fn is_terminal(self) -> bool {
        self as u8 >= 3
    }

    /// Pending or ready: not started and not finished.
    #[inline]
    pub fn is_waiting(self) -> bool {
        self as u8 <= 1
    }

    /// Whether a caller may move a node from `self` to `to` (automatic moves aside).
    #[inline]
    pub fn allows(self, to: Self) -> bool {
        matches!(
            (self, to),
            (Self::Pending | Self::Ready, Self::Skipped | Self::Cancelled)
                | (Self::Ready, Self::Running)
                | (
                    Self::Running,
                    Self::Succeeded | Self::Failed | Self::Cancelled
                )
        )
    }
}

/// The kind of a dependency edge `source → target` (the target depends on the source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum DepKind {
    /// The target waits for the source, which must succeed; otherwise the target is skipped.
    Hard = 0,
    /// The target waits for the source to finish, whatever its outcome.
    Soft = 1,
    /// The target does not wait; it takes the source's output if it has succeeded by then.
    Optional = 2,
    /// No order: the two may run at the same time (a scheduling group).
    Parallel = 3,
}

impl DepKind {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
            Self::Optional => "optional",
            Self::Parallel => "parallel",
        }
    }

    /// Parse a lowercase name.
    pub fn parse(s: &str) -> Result<Self, DagError> {
        Ok(match s {
            "hard" => Self::Hard,
            "soft" => Self::Soft,
            "optional" => Self::Optional,
            "parallel" => Self::Parallel,
            _ => {
                return Err(DagError::Invalid(format!(
                    "unknown dependency kind {s:?}; expected one of hard, soft, optional, parallel"
                )))
            }
        })
    }

    /// The kind numbered `b`.
    pub fn from_u8(b: u8) -> Option<Self> {
        [Self::Hard, Self::Soft, Self::Optional, Self::Parallel]
            .get(b as usize)
            .copied()
    }

    /// Whether the target waits for the source (hard, soft).
    #[inline]
    fn waits(self) -> bool {
        matches!(self, Self::Hard | Self::Soft)
    }
}

/// The persistent part of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeCore {
    pub name: String,
    pub state: NodeState,
    /// Index into the tracker's node-type table, or [`NONE`].
    pub node_type: u32,
    /// Its own duration estimate in seconds.
    pub estimate: Option<f64>,
    /// When it entered running (0: never).
    pub started_at: Micros,
    /// When it reached a terminal state (0: not terminal).
    pub finished_at: Micros,
    /// Measured or reported duration of its successful run, seconds.
    pub duration: Option<f64>,
    /// The next alternative in its chain, or [`NONE`].
    pub alt_next: u32,
    /// The previous member of its chain (it is an alternative of that node), or [`NONE`].
    pub alt_prev: u32,
}

/// Everything about a workflow that is persisted (and copied into a checkpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Core {
    pub nodes: Vec<NodeCore>,
    /// Every edge in the order added: (source, target, kind).
    pub edges: Vec<(u32, u32, DepKind)>,
    /// Artifact references: (node, artifact), in the order bound.
    pub bindings: Vec<(u32, ArtifactId)>,
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    node: u32,
    kind: DepKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// The node just reached a terminal state: propagate its outcome.
    Done(u32),
    /// Skip the node if it is still pending or ready.
    Skip(u32),
}

/// Learned per-node-type duration (exponentially weighted moving average).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TypeStat {
    pub name: String,
    pub ewma: f64,
    pub samples: u64,
}

/// Weight of a new sample in a node type's moving average.
pub const EWMA_ALPHA: f64 = 0.25;

impl TypeStat {
    pub(crate) fn learn(&mut self, seconds: f64) {
        self.ewma = if self.samples == 0 {
            seconds
        } else {
            EWMA_ALPHA * seconds + (1.0 - EWMA_ALPHA) * self.ewma
        };
        self.samples += 1;
    }

    pub(crate) fn estimate(&self) -> Option<f64> {
        (self.samples > 0).then_some(self.ewma)
    }
}

/// The result of a critical-path computation.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Length of the critical path (seconds).
    pub length: f64,
    /// The critical path, node indexes from first to last.
    pub path: Vec<u32>,
    /// Earliest start of each node.
    pub earliest_start: Vec<f64>,
    /// Slack of each node: how much it may be delayed without delaying the workflow.
    pub slack: Vec<f64>,
}

/// Compressed awaited edges and a topological order of them.
#[derive(Debug)]
struct Plan {
    offs: Vec<u32>,
    adj: Vec<u32>,
    order: Vec<u32>,
    /// Every edge goes from a lower to a higher index (index order is topological).
    forward_only: bool,
}

/// A workflow with its derived state.
#[derive(Debug)]
pub(crate) struct Workflow {
    pub name: String,
    pub core: Core,
    pub checkpoints: Vec<(u32, Core)>,
    pub next_checkpoint: u32,
    index: FxMap<String, u32>,
    out: Vec<Vec<Edge>>,
    inn: Vec<Vec<Edge>>,
    par: Vec<Vec<u32>>,
    edge_set: FxSet<u64>,
    /// `core.bindings` as a set: binding is checked per node success, and a scan of the list
    /// made a long run's bindings quadratic.
    bound: FxSet<(u32, ArtifactId)>,
    /// Per node: number of awaited dependencies not yet resolved (+1 while its gate is closed).
    waiting: Vec<u32>,
    /// Per chain member: whether every earlier member has failed (its turn has come).
    gate_open: Vec<bool>,
    /// Per chain head: whether the chain's outcome is decided and announced.
    group_done: Vec<bool>,
    ready: Vec<u32>,
    ready_pos: Vec<u32>,
    work: Vec<Work>,
    counts: [u32; 7],
    /// While `recording`: the dynamic fields of nodes before each caller's transition and each
    /// automatic skip (readiness is re-derived by [`Workflow::recompute`] on undo).
    undo: Vec<(u32, NodeState, Micros, Micros, Option<f64>)>,
    recording: bool,
    plan: OnceLock<Plan>,
    /// Per node: own estimate (NaN: none) and type, dense for planning (alternatives: 0).
    basis: OnceLock<Vec<(f64, u32)>>,
}

fn key(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

impl Workflow {
    pub fn new(name: String) -> Self {
        Self::from_core(name, Core::default(), Vec::new(), 1)
    }

    pub fn from_core(
        name: String,
        core: Core,
        checkpoints: Vec<(u32, Core)>,
        next_checkpoint: u32,
    ) -> Self {
        let mut wf = Self {
            name,
            core,
            checkpoints,
            next_checkpoint,
            index: FxMap::default(),
            out: Vec::new(),
            inn: Vec::new(),
            par: Vec::new(),
            edge_set: FxSet::default(),
            bound: FxSet::default(),
            waiting: Vec::new(),
            gate_open: Vec::new(),
            group_done: Vec::new(),
            ready: Vec::new(),
            ready_pos: Vec::new(),
            work: Vec::new(),
            counts: [0; 7],
            undo: Vec::new(),
            recording: false,
            plan: OnceLock::new(),
            basis: OnceLock::new(),
        };
        wf.rebuild(0);
        wf
    }

    // ----- lookups ---------------------------------------------------------------------------

    pub fn node_index(&self, node: &str) -> Result<u32, DagError> {
        self.index
            .get(node)
            .copied()
            .ok_or_else(|| DagError::NodeNotFound {
                workflow: self.name.clone(),
                node: node.to_string(),
            })
    }

    pub fn check_index(&self, idx: u32) -> Result<(), DagError> {
        if (idx as usize) < self.core.nodes.len() {
            Ok(())
        } else {
            Err(DagError::NodeNotFound {
                workflow: self.name.clone(),
                node: format!("#{idx}"),
            })
        }
    }

    pub fn node_name(&self, idx: u32) -> &str {
        &self.core.nodes[idx as usize].name
    }

    pub fn node(&self, idx: u32) -> &NodeCore {
        &self.core.nodes[idx as usize]
    }

    pub fn state(&self, idx: u32) -> NodeState {
        self.core.nodes[idx as usize].state
    }

    pub fn counts(&self) -> [u32; 7] {
        self.counts
    }

    /// Ready nodes in index order.
    pub fn ready(&self) -> Vec<u32> {
        let mut r = self.ready.clone();
        r.sort_unstable();
        r
    }

    /// (source, kind) of every edge into `idx`, in the order added.
    pub fn dependencies(&self, idx: u32) -> Vec<(u32, DepKind)> {
        let mut v: Vec<(u32, DepKind)> = self.inn[idx as usize]
            .iter()
            .map(|e| (e.node, e.kind))
            .collect();
        v.extend(
            self.par[idx as usize]
                .iter()
                .map(|&p| (p, DepKind::Parallel)),
        );
        v
    }

    /// (target, kind) of every edge out of `idx`.
    pub fn dependants(&self, idx: u32) -> Vec<(u32, DepKind)> {
        let mut v: Vec<(u32, DepKind)> = self.out[idx as usize]
            .iter()
            .map(|e| (e.node, e.kind))
            .collect();
        v.extend(
            self.par[idx as usize]
                .iter()
                .map(|&p| (p, DepKind::Parallel)),
        );
        v
    }

    /// The alternatives of the chain `idx` belongs to, after `idx`, in order.
    pub fn alternatives(&self, idx: u32) -> Vec<u32> {
        let mut v = Vec::new();
        let mut m = self.core.nodes[idx as usize].alt_next;
        while m != NONE {
            v.push(m);
            m = self.core.nodes[m as usize].alt_next;
        }
        v
    }

    fn head(&self, mut n: u32) -> u32 {
        while self.core.nodes[n as usize].alt_prev != NONE {
            n = self.core.nodes[n as usize].alt_prev;
        }
        n
    }

    fn in_chain(&self, n: u32) -> bool {
        let c = &self.core.nodes[n as usize];
        c.alt_prev != NONE || c.alt_next != NONE
    }

    /// The outcome dependants of `n` see: for a chain head, the chain's outcome; otherwise the
    /// node's own terminal state. `None` while undecided.
    pub fn outcome(&self, n: u32) -> Option<NodeState> {
        let c = &self.core.nodes[n as usize];
        if c.alt_prev == NONE && c.alt_next != NONE {
            self.chain_outcome(n, NONE).0
        } else {
            c.state.is_terminal().then_some(c.state)
        }
    }

    /// Walk the chain from `head` up to (not including) `stop`: the decided outcome, if any, and
    /// whether every member walked failed.
    fn chain_outcome(&self, head: u32, stop: u32) -> (Option<NodeState>, bool) {
        let mut m = head;
        while m != stop && m != NONE {
            let c = &self.core.nodes[m as usize];
            match c.state {
                NodeState::Failed => {
                    if c.alt_next == NONE {
                        return (Some(NodeState::Failed), true);
                    }
                    m = c.alt_next;
                }
                NodeState::Succeeded | NodeState::Skipped | NodeState::Cancelled => {
                    return (Some(c.state), false)
                }
                _ => return (None, false),
            }
        }
        (None, true)
    }

    // ----- building --------------------------------------------------------------------------

    /// Validate names for [`Workflow::add_nodes`].
    pub fn check_new_nodes(&self, names: &[&str]) -> Result<(), DagError> {
        let mut seen = FxSet::with_capacity_and_hasher(names.len(), BuildHasherDefault::default());
        for &n in names {
            if n.is_empty() {
                return Err(DagError::Invalid(format!(
                    "node ids must not be empty (workflow {:?})",
                    self.name
                )));
            }
            if self.index.contains_key(n) || !seen.insert(n) {
                return Err(DagError::NodeExists {
                    workflow: self.name.clone(),
                    node: n.to_string(),
                });
            }
        }
        if self.core.nodes.len() + names.len() > (NONE - 1) as usize {
            return Err(DagError::Invalid("too many nodes in one workflow".into()));
        }
        Ok(())
    }

    /// Add validated nodes; returns the index of the first.
    pub fn add_nodes(&mut self, names: &[&str], node_type: u32, estimate: Option<f64>) -> u32 {
        let first = self.core.nodes.len() as u32;
        let n = names.len();
        self.invalidate_plan();
        self.invalidate_basis();
        self.core.nodes.reserve(n);
        self.index.reserve(n);
        for (i, &name) in names.iter().enumerate() {
            let idx = first + i as u32;
            self.core.nodes.push(NodeCore {
                name: name.to_string(),
                state: NodeState::Pending,
                node_type,
                estimate,
                started_at: 0,
                finished_at: 0,
                duration: None,
                alt_next: NONE,
                alt_prev: NONE,
            });
            self.index.insert(name.to_string(), idx);
            self.out.push(Vec::new());
            self.inn.push(Vec::new());
            self.par.push(Vec::new());
            self.waiting.push(0);
            self.gate_open.push(false);
            self.group_done.push(false);
            self.ready_pos.push(NONE);
            self.counts[NodeState::Pending as usize] += 1;
            self.set_state(idx, NodeState::Ready, 0);
        }
        first
    }

    /// Check one new edge (nodes exist, not a duplicate, the target has not started).
    fn check_edge(&self, s: u32, t: u32, kind: DepKind) -> Result<(), DagError> {
        self.check_index(s)?;
        self.check_index(t)?;
        let dup = if kind == DepKind::Parallel {
            if s == t {
                return Err(DagError::Invalid(format!(
                    "a parallel edge needs two different nodes (got {:?} twice in workflow {:?})",
                    self.node_name(s),
                    self.name
                )));
            }
            self.par[s as usize].contains(&t)
        } else {
            self.edge_set.contains(&key(s, t))
        };
        if dup {
            return Err(DagError::EdgeExists {
                workflow: self.name.clone(),
                from: self.node_name(s).to_string(),
                to: self.node_name(t).to_string(),
            });
        }
        if kind != DepKind::Parallel && !self.state(t).is_waiting() {
            return Err(DagError::NodeStarted {
                workflow: self.name.clone(),
                node: self.node_name(t).to_string(),
                state: self.state(t),
            });
        }
        Ok(())
    }

    /// Nodes whose new edge to `t` would be created by an edge `s → t` (s, and every alternative
    /// of s when s heads a chain).
    fn edge_sources(&self, s: u32) -> Vec<u32> {
        let mut v = vec![s];
        if self.core.nodes[s as usize].alt_prev == NONE {
            v.extend(self.alternatives(s));
        }
        v
    }

    /// Ordering successors of `n`: its out-edges, its next alternative, and for an alternative the
    /// dependants of its chain head (whose wait its success ends).
    fn successors(&self, n: u32, out: &mut Vec<u32>) {
        out.extend(self.out[n as usize].iter().map(|e| e.node));
        let c = &self.core.nodes[n as usize];
        if c.alt_next != NONE {
            out.push(c.alt_next);
        }
        if c.alt_prev != NONE {
            let h = self.head(n);
            out.extend(self.out[h as usize].iter().map(|e| e.node));
        }
    }

    /// If `s → t` would close a cycle, the cycle as node indexes (closing on the first).
    fn cycle_through(&self, s: u32, t: u32) -> Option<Vec<u32>> {
        let sources = self.edge_sources(s);
        if sources.contains(&t) {
            return Some(if s == t { vec![s, s] } else { vec![s, t, s] });
        }
        // Breadth-first from t: the first source reached gives a shortest cycle.
        let mut parent: FxMap<u32, u32> = FxMap::default();
        parent.insert(t, NONE);
        let mut queue = vec![t];
        let mut head = 0;
        let mut succ = Vec::new();
        while head < queue.len() {
            let n = queue[head];
            head += 1;
            succ.clear();
            self.successors(n, &mut succ);
            for &c in &succ {
                if parent.contains_key(&c) {
                    continue;
                }
                parent.insert(c, n);
                if sources.contains(&c) {
                    let mut path = vec![c];
                    let mut x = n;
                    while x != NONE {
                        path.push(x);
                        x = parent[&x];
                    }
                    path.reverse(); // t … c
                    let mut cycle = vec![c];
                    cycle.extend(path);
                    return Some(cycle);
                }
                queue.push(c);
            }
        }
        None
    }

    /// Any cycle of the ordering graph (iterative depth-first search).
    pub fn find_cycle(&self) -> Option<Vec<u32>> {
        let n = self.core.nodes.len();
        let mut color = vec![0u8; n]; // 0 new, 1 on the stack, 2 done
        let mut spare: Vec<Vec<u32>> = Vec::new();
        let mut stack: Vec<(u32, usize)> = Vec::new();
        let mut succs: Vec<Vec<u32>> = Vec::new();
        for root in 0..n as u32 {
            if color[root as usize] != 0 {
                continue;
            }
            color[root as usize] = 1;
            let mut s = spare.pop().unwrap_or_default();
            s.clear();
            self.successors(root, &mut s);
            stack.push((root, 0));
            succs.push(s);
            while let Some(top) = stack.len().checked_sub(1) {
                let (node, pos) = stack[top];
                if pos < succs[top].len() {
                    let c = succs[top][pos];
                    stack[top].1 += 1;
                    match color[c as usize] {
                        0 => {
                            color[c as usize] = 1;
                            let mut s = spare.pop().unwrap_or_default();
                            s.clear();
                            self.successors(c, &mut s);
                            stack.push((c, 0));
                            succs.push(s);
                        }
                        1 => {
                            let start = stack.iter().position(|f| f.0 == c).expect("on stack");
                            let mut cycle: Vec<u32> = stack[start..].iter().map(|f| f.0).collect();
                            cycle.push(c);
                            return Some(cycle);
                        }
                        _ => {}
                    }
                } else {
                    color[node as usize] = 2;
                    stack.pop();
                    if let Some(s) = succs.pop() {
                        spare.push(s);
                    }
                }
            }
        }
        None
    }

    fn cycle_error(&self, cycle: &[u32]) -> DagError {
        DagError::Cycle {
            workflow: self.name.clone(),
            cycle: cycle
                .iter()
                .map(|&i| self.node_name(i).to_string())
                .collect(),
        }
    }

    /// Add an edge validated by [`Workflow::check_add_edge`].
    pub fn add_edge(&mut self, s: u32, t: u32, kind: DepKind, at: Micros) {
        self.core.edges.push((s, t, kind));
        self.link(s, t, kind);
        if kind == DepKind::Parallel {
            return;
        }
        match (kind, self.outcome(s)) {
            (DepKind::Hard, Some(o)) if o != NodeState::Succeeded => {
                self.work.push(Work::Skip(t));
                self.drain(at);
            }
            (DepKind::Hard | DepKind::Soft, None) => {
                self.waiting[t as usize] += 1;
                if self.state(t) == NodeState::Ready {
                    self.set_state(t, NodeState::Pending, at);
                }
            }
            _ => {}
        }
    }

    fn link(&mut self, s: u32, t: u32, kind: DepKind) {
        if kind == DepKind::Parallel {
            self.par[s as usize].push(t);
            self.par[t as usize].push(s);
        } else {
            self.invalidate_plan();
            self.edge_set.insert(key(s, t));
            self.out[s as usize].push(Edge { node: t, kind });
            self.inn[t as usize].push(Edge { node: s, kind });
        }
    }

    /// Validate a batch of edges: every edge individually, no duplicates within the batch and no
    /// cycle once all are added. Changes nothing.
    pub fn check_add_edges(&mut self, edges: &[(u32, u32)], kind: DepKind) -> Result<(), DagError> {
        let mut batch = FxSet::with_capacity_and_hasher(edges.len(), BuildHasherDefault::default());
        for &(s, t) in edges {
            self.check_edge(s, t, kind)?;
            let k = if kind == DepKind::Parallel {
                key(s.min(t), s.max(t))
            } else {
                key(s, t)
            };
            if !batch.insert(k) {
                return Err(DagError::EdgeExists {
                    workflow: self.name.clone(),
                    from: self.node_name(s).to_string(),
                    to: self.node_name(t).to_string(),
                });
            }
        }
        if kind == DepKind::Parallel {
            return Ok(());
        }
        if edges.len() == 1 {
            let (s, t) = edges[0];
            return match self.cycle_through(s, t) {
                Some(c) => Err(self.cycle_error(&c)),
                None => Ok(()),
            };
        }
        // Add tentatively, search for a cycle, take them out again.
        for &(s, t) in edges {
            self.out[s as usize].push(Edge { node: t, kind });
        }
        let cycle = self.find_cycle();
        for &(s, _) in edges.iter().rev() {
            self.out[s as usize].pop();
        }
        match cycle {
            Some(c) => Err(self.cycle_error(&c)),
            None => Ok(()),
        }
    }

    /// Add edges validated by [`Workflow::check_add_edges`].
    pub fn add_edges(&mut self, edges: &[(u32, u32)], kind: DepKind, at: Micros) {
        if edges.len() <= 16 {
            for &(s, t) in edges {
                self.add_edge(s, t, kind, at);
            }
            return;
        }
        self.core.edges.reserve(edges.len());
        for &(s, t) in edges {
            self.core.edges.push((s, t, kind));
            self.link(s, t, kind);
        }
        if kind != DepKind::Parallel {
            self.recompute(at);
        }
    }

    /// Validate `alt` as the next alternative of `node`'s chain. Changes nothing.
    pub fn check_add_alternative(&mut self, node: u32, alt: u32) -> Result<(), DagError> {
        self.check_index(node)?;
        self.check_index(alt)?;
        let invalid = |m: String| Err(DagError::Invalid(m));
        if node == alt {
            return invalid(format!(
                "node {:?} cannot be its own alternative (workflow {:?})",
                self.node_name(node),
                self.name
            ));
        }
        if self.in_chain(alt) {
            return invalid(format!(
                "node {:?} already belongs to a chain of alternatives (workflow {:?})",
                self.node_name(alt),
                self.name
            ));
        }
        if !self.state(alt).is_waiting() {
            return Err(DagError::NodeStarted {
                workflow: self.name.clone(),
                node: self.node_name(alt).to_string(),
                state: self.state(alt),
            });
        }
        let head = self.head(node);
        if self.chain_outcome(head, NONE).0.is_some() {
            return invalid(format!(
                "the outcome of node {:?} is already decided; it can take no more alternatives \
                 (workflow {:?})",
                self.node_name(node),
                self.name
            ));
        }
        self.link_alternative(head, alt);
        let cycle = self.find_cycle();
        self.unlink_alternative(alt);
        match cycle {
            Some(c) => Err(self.cycle_error(&c)),
            None => Ok(()),
        }
    }

    fn link_alternative(&mut self, head: u32, alt: u32) {
        self.invalidate_basis();
        let mut tail = head;
        while self.core.nodes[tail as usize].alt_next != NONE {
            tail = self.core.nodes[tail as usize].alt_next;
        }
        self.core.nodes[tail as usize].alt_next = alt;
        self.core.nodes[alt as usize].alt_prev = tail;
    }

    fn unlink_alternative(&mut self, alt: u32) {
        self.invalidate_basis();
        let prev = self.core.nodes[alt as usize].alt_prev;
        self.core.nodes[prev as usize].alt_next = NONE;
        self.core.nodes[alt as usize].alt_prev = NONE;
    }

    /// Add an alternative validated by [`Workflow::check_add_alternative`].
    pub fn add_alternative(&mut self, node: u32, alt: u32, at: Micros) {
        let head = self.head(node);
        self.link_alternative(head, alt);
        self.recompute(at);
    }

    pub fn set_estimate(&mut self, idx: u32, estimate: Option<f64>) {
        self.invalidate_basis();
        self.core.nodes[idx as usize].estimate = estimate;
    }

    pub fn is_bound(&self, idx: u32, artifact: ArtifactId) -> bool {
        self.bound.contains(&(idx, artifact))
    }

    pub fn bind(&mut self, idx: u32, artifact: ArtifactId) -> bool {
        if !self.bound.insert((idx, artifact)) {
            return false;
        }
        self.core.bindings.push((idx, artifact));
        true
    }

    pub fn unbind(&mut self, idx: u32, artifact: ArtifactId) -> bool {
        if !self.bound.remove(&(idx, artifact)) {
            return false;
        }
        self.core.bindings.retain(|&b| b != (idx, artifact));
        true
    }

    // ----- transitions -----------------------------------------------------------------------

    /// Check a caller's transition. Changes nothing.
    #[inline]
    pub fn check_transition(&self, idx: u32, to: NodeState) -> Result<(), DagError> {
        let from = self.state(idx);
        if from.allows(to) {
            Ok(())
        } else {
            Err(self.illegal(idx, to))
        }
    }

    pub fn illegal(&self, idx: u32, to: NodeState) -> DagError {
        DagError::IllegalTransition {
            workflow: self.name.clone(),
            node: self.node_name(idx).to_string(),
            from: self.state(idx),
            to,
        }
    }

    /// Apply a checked transition at time `at`. Returns `(node type, duration)` when a success
    /// has a duration to learn from.
    #[inline]
    pub fn transition(
        &mut self,
        idx: u32,
        to: NodeState,
        at: Micros,
        duration: Option<f64>,
    ) -> Option<(u32, f64)> {
        if self.recording {
            self.remember(idx);
        }
        let mut learned = None;
        match to {
            NodeState::Running => {
                self.core.nodes[idx as usize].started_at = at;
            }
            NodeState::Succeeded => {
                let c = &mut self.core.nodes[idx as usize];
                let d = duration.or_else(|| {
                    (c.started_at > 0 && at >= c.started_at)
                        .then(|| (at - c.started_at) as f64 / SECOND as f64)
                });
                c.duration = d;
                if let (Some(d), true) = (d, c.node_type != NONE) {
                    learned = Some((c.node_type, d));
                }
            }
            _ => {}
        }
        self.set_state(idx, to, at);
        if !self.work.is_empty() {
            self.drain(at);
        }
        learned
    }

    /// Change a node's state, keeping counts, the ready set and timestamps; queue the outcome
    /// propagation of a node that becomes terminal and the graceful skips of nodes nobody waits
    /// for any more.
    #[inline]
    fn set_state(&mut self, idx: u32, to: NodeState, at: Micros) {
        let i = idx as usize;
        let from = self.core.nodes[i].state;
        self.counts[from as usize] -= 1;
        self.counts[to as usize] += 1;
        self.core.nodes[i].state = to;
        if from == NodeState::Ready {
            let pos = self.ready_pos[i] as usize;
            let last = *self.ready.last().expect("ready set holds the node");
            self.ready.swap_remove(pos);
            if last != idx {
                self.ready_pos[last as usize] = pos as u32;
            }
            self.ready_pos[i] = NONE;
        }
        if to == NodeState::Ready {
            self.ready_pos[i] = self.ready.len() as u32;
            self.ready.push(idx);
            return;
        }
        if to.is_terminal() {
            self.core.nodes[i].finished_at = at;
            self.work.push(Work::Done(idx));
        }
        if from.is_waiting() && !to.is_waiting() {
            // Graceful skip: an optional source whose every dependant has started is not needed.
            for k in 0..self.inn[i].len() {
                let e = self.inn[i][k];
                if e.kind == DepKind::Optional
                    && self.core.nodes[e.node as usize].state.is_waiting()
                    && self.unneeded(e.node)
                {
                    self.work.push(Work::Skip(e.node));
                }
            }
        }
    }

    fn remember(&mut self, idx: u32) {
        let c = &self.core.nodes[idx as usize];
        self.undo
            .push((idx, c.state, c.started_at, c.finished_at, c.duration));
    }

    /// Start remembering changes so that [`Workflow::undo`] can take them back.
    pub fn begin_undo(&mut self) {
        self.undo.clear();
        self.recording = true;
    }

    /// Keep the changes made since [`Workflow::begin_undo`].
    pub fn commit_undo(&mut self) {
        self.undo.clear();
        self.recording = false;
    }

    /// Take back every change made since [`Workflow::begin_undo`].
    pub fn undo(&mut self, at: Micros) {
        self.recording = false;
        while let Some((i, state, started, finished, duration)) = self.undo.pop() {
            let c = &mut self.core.nodes[i as usize];
            c.state = state;
            c.started_at = started;
            c.finished_at = finished;
            c.duration = duration;
        }
        self.recompute(at);
    }

    /// Whether `x` only feeds optional edges into nodes that have all started or finished (an
    /// alternative is always needed: it may stand in for its chain head).
    fn unneeded(&self, x: u32) -> bool {
        let out = &self.out[x as usize];
        self.core.nodes[x as usize].alt_prev == NONE
            && !out.is_empty()
            && out.iter().all(|e| {
                e.kind == DepKind::Optional && !self.core.nodes[e.node as usize].state.is_waiting()
            })
    }

    fn drain(&mut self, at: Micros) {
        while let Some(w) = self.work.pop() {
            match w {
                Work::Skip(n) => {
                    if self.state(n).is_waiting() {
                        if self.recording {
                            self.remember(n);
                        }
                        self.set_state(n, NodeState::Skipped, at);
                    }
                }
                Work::Done(n) => {
                    let c = &self.core.nodes[n as usize];
                    let (prev, next) = (c.alt_prev, c.alt_next);
                    if prev == NONE && next == NONE {
                        self.resolve(n, c.state);
                    } else {
                        if prev != NONE {
                            self.resolve(n, c.state);
                        }
                        self.advance_chain(self.head(n), at);
                    }
                }
            }
        }
    }

    /// Announce the outcome `o` of `src` to its dependants.
    fn resolve(&mut self, src: u32, o: NodeState) {
        for k in 0..self.out[src as usize].len() {
            let e = self.out[src as usize][k];
            if !e.kind.waits() {
                continue;
            }
            if e.kind == DepKind::Hard && o != NodeState::Succeeded {
                self.waiting[e.node as usize] -= 1;
                self.work.push(Work::Skip(e.node));
            } else {
                self.release(e.node);
            }
        }
    }

    /// One awaited thing of `t` is resolved.
    #[inline]
    fn release(&mut self, t: u32) {
        let w = &mut self.waiting[t as usize];
        *w -= 1;
        if *w == 0 && self.core.nodes[t as usize].state == NodeState::Pending {
            self.set_state(t, NodeState::Ready, 0);
        }
    }

    /// Open the gates of alternatives whose predecessors all failed; decide and announce the
    /// chain's outcome once it is known; skip the alternatives it no longer needs.
    fn advance_chain(&mut self, head: u32, _at: Micros) {
        let mut m = head;
        loop {
            if m != head && !self.gate_open[m as usize] {
                self.gate_open[m as usize] = true;
                self.release(m);
            }
            let c = &self.core.nodes[m as usize];
            let (state, next) = (c.state, c.alt_next);
            let decided = match state {
                NodeState::Failed if next != NONE => {
                    m = next;
                    continue;
                }
                NodeState::Failed
                | NodeState::Succeeded
                | NodeState::Skipped
                | NodeState::Cancelled => state,
                _ => return,
            };
            if !self.group_done[head as usize] {
                self.group_done[head as usize] = true;
                self.resolve(head, decided);
            }
            let mut rest = next;
            while rest != NONE {
                self.work.push(Work::Skip(rest));
                rest = self.core.nodes[rest as usize].alt_next;
            }
            return;
        }
    }

    // ----- derived state from scratch --------------------------------------------------------

    /// Rebuild every derived structure from `core` (after a restore or a rollback).
    pub fn rebuild(&mut self, at: Micros) {
        let n = self.core.nodes.len();
        self.invalidate_plan();
        self.invalidate_basis();
        self.index = FxMap::with_capacity_and_hasher(n, BuildHasherDefault::default());
        for (i, c) in self.core.nodes.iter().enumerate() {
            self.index.insert(c.name.clone(), i as u32);
        }
        self.out = vec![Vec::new(); n];
        self.inn = vec![Vec::new(); n];
        self.par = vec![Vec::new(); n];
        self.edge_set =
            FxSet::with_capacity_and_hasher(self.core.edges.len(), BuildHasherDefault::default());
        for k in 0..self.core.edges.len() {
            let (s, t, kind) = self.core.edges[k];
            self.link(s, t, kind);
        }
        self.bound = self.core.bindings.iter().copied().collect();
        self.recompute(at);
    }

    /// Derive waiting counts, gates, chain outcomes and the ready set from the node states, then
    /// apply the automatic moves they call for (readiness, skips).
    pub fn recompute(&mut self, at: Micros) {
        let n = self.core.nodes.len();
        self.work.clear();
        self.counts = [0; 7];
        for c in &mut self.core.nodes {
            if c.state == NodeState::Ready {
                c.state = NodeState::Pending;
            }
        }
        for c in &self.core.nodes {
            self.counts[c.state as usize] += 1;
        }
        self.ready.clear();
        self.ready_pos = vec![NONE; n];
        self.waiting = vec![0; n];
        self.gate_open = vec![false; n];
        self.group_done = vec![false; n];
        let mut doomed = vec![false; n];
        for t in 0..n as u32 {
            for k in 0..self.inn[t as usize].len() {
                let e = self.inn[t as usize][k];
                if !e.kind.waits() {
                    continue;
                }
                match self.outcome(e.node) {
                    None => self.waiting[t as usize] += 1,
                    Some(o) if e.kind == DepKind::Hard && o != NodeState::Succeeded => {
                        doomed[t as usize] = true;
                    }
                    Some(_) => {}
                }
            }
            let c = &self.core.nodes[t as usize];
            if c.alt_prev != NONE {
                let (decided, all_failed) = self.chain_outcome(self.head(t), t);
                if decided.is_some() {
                    self.waiting[t as usize] += 1;
                    doomed[t as usize] = true;
                } else if all_failed {
                    self.gate_open[t as usize] = true;
                } else {
                    self.waiting[t as usize] += 1;
                }
            } else if c.alt_next != NONE {
                self.group_done[t as usize] = self.chain_outcome(t, NONE).0.is_some();
            }
        }
        for t in 0..n as u32 {
            let i = t as usize;
            if self.core.nodes[i].state != NodeState::Pending {
                continue;
            }
            if doomed[i] || self.unneeded(t) {
                self.work.push(Work::Skip(t));
            } else if self.waiting[i] == 0 {
                self.set_state(t, NodeState::Ready, 0);
            }
        }
        self.drain(at);
    }

    /// Every node downstream of `idx` (ordering successors, transitively), `idx` first.
    pub fn downstream(&self, idx: u32) -> Vec<u32> {
        let mut seen = vec![false; self.core.nodes.len()];
        seen[idx as usize] = true;
        let mut out = vec![idx];
        let mut head = 0;
        let mut succ = Vec::new();
        while head < out.len() {
            let n = out[head];
            head += 1;
            succ.clear();
            self.successors(n, &mut succ);
            for &c in &succ {
                if !seen[c as usize] {
                    seen[c as usize] = true;
                    out.push(c);
                }
            }
        }
        out
    }

    /// Reset `idx` and everything downstream to pending; returns them.
    pub fn reset(&mut self, idx: u32, at: Micros) -> Vec<u32> {
        let nodes = self.downstream(idx);
        for &n in &nodes {
            let c = &mut self.core.nodes[n as usize];
            c.state = NodeState::Pending;
            c.started_at = 0;
            c.finished_at = 0;
            c.duration = None;
        }
        self.recompute(at);
        nodes
    }

    pub fn checkpoint(&mut self) -> u32 {
        let id = self.next_checkpoint;
        self.next_checkpoint += 1;
        self.checkpoints.push((id, self.core.clone()));
        id
    }

    pub fn find_checkpoint(&self, id: u32) -> Result<usize, DagError> {
        self.checkpoints
            .iter()
            .position(|c| c.0 == id)
            .ok_or_else(|| DagError::CheckpointNotFound {
                workflow: self.name.clone(),
                checkpoint: id,
            })
    }

    pub fn rollback(&mut self, pos: usize, at: Micros) {
        self.core = self.checkpoints[pos].1.clone();
        self.rebuild(at);
    }

    // ----- planning --------------------------------------------------------------------------

    /// Parallel groups: connected components of parallel edges, each sorted, in order of their
    /// smallest node.
    pub fn parallel_groups(&self) -> Vec<Vec<u32>> {
        let n = self.core.nodes.len();
        let mut seen = vec![false; n];
        let mut groups = Vec::new();
        for start in 0..n {
            if seen[start] || self.par[start].is_empty() {
                continue;
            }
            seen[start] = true;
            let mut g = vec![start as u32];
            let mut head = 0;
            while head < g.len() {
                let x = g[head];
                head += 1;
                for &p in &self.par[x as usize] {
                    if !seen[p as usize] {
                        seen[p as usize] = true;
                        g.push(p);
                    }
                }
            }
            g.sort_unstable();
            groups.push(g);
        }
        groups
    }

    /// The awaited edges in compressed form with a topological order, cached until the next
    /// structural change (nodes or edges added, rollback, restore).
    fn plan(&self) -> &Plan {
        self.plan.get_or_init(|| {
            let n = self.core.nodes.len();
            // Counting sort of the flat edge list by source (sequential reads, unlike the
            // per-node adjacency lists).
            let mut offs = vec![0u32; n + 1];
            let mut indeg = vec![0u32; n];
            for &(s, t, kind) in &self.core.edges {
                if kind.waits() {
                    offs[s as usize + 1] += 1;
                    indeg[t as usize] += 1;
                }
            }
            for i in 0..n {
                offs[i + 1] += offs[i];
            }
            let mut fill: Vec<u32> = offs[..n].to_vec();
            let mut adj = vec![0u32; offs[n] as usize];
            for &(s, t, kind) in &self.core.edges {
                if kind.waits() {
                    let p = &mut fill[s as usize];
                    adj[*p as usize] = t;
                    *p += 1;
                }
            }
            // Workflows are usually built in order: then index order is topological and the
            // passes run over the arrays sequentially.
            let forward_only = (0..n).all(|s| {
                adj[offs[s] as usize..offs[s + 1] as usize]
                    .iter()
                    .all(|&t| t as usize > s)
            });
            let mut order: Vec<u32> = Vec::new();
            if !forward_only {
                order.reserve(n);
                order.extend((0..n as u32).filter(|&i| indeg[i as usize] == 0));
                let mut head = 0;
                while head < order.len() {
                    let s = order[head] as usize;
                    head += 1;
                    for &t in &adj[offs[s] as usize..offs[s + 1] as usize] {
                        let d = &mut indeg[t as usize];
                        *d -= 1;
                        if *d == 0 {
                            order.push(t);
                        }
                    }
                }
                debug_assert_eq!(order.len(), n, "the awaited edges form a DAG");
            }
            Plan {
                offs,
                adj,
                order,
                forward_only,
            }
        })
    }

    /// Drop the cached plan after a structural change.
    fn invalidate_plan(&mut self) {
        if self.plan.get().is_some() {
            self.plan = OnceLock::new();
        }
    }

    /// Node weights for planning: a node's own estimate, else its type's (`type_est`, by type
    /// index), else 0; alternatives weigh nothing (they only run when something fails).
    fn weights(&self, type_est: &[f64]) -> Vec<f64> {
        let basis = self.basis.get_or_init(|| {
            self.core
                .nodes
                .iter()
                .map(|c| {
                    if c.alt_prev == NONE {
                        (c.estimate.unwrap_or(f64::NAN), c.node_type)
                    } else {
                        (0.0, NONE)
                    }
                })
                .collect()
        });
        basis
            .iter()
            .map(|&(e, t)| {
                if e.is_nan() {
                    type_est.get(t as usize).copied().unwrap_or(0.0)
                } else {
                    e
                }
            })
            .collect()
    }

    fn invalidate_basis(&mut self) {
        if self.basis.get().is_some() {
            self.basis = OnceLock::new();
        }
    }

    /// Forward pass: earliest starts, best predecessors, length, last node of the critical path.
    fn forward(plan: &Plan, w: &[f64]) -> (Vec<f64>, Vec<u32>, f64, u32) {
        if plan.forward_only {
            Self::forward_in(plan, w, 0..w.len() as u32)
        } else {
            Self::forward_in(plan, w, plan.order.iter().copied())
        }
    }

    #[inline]
    fn forward_in(
        plan: &Plan,
        w: &[f64],
        order: impl Iterator<Item = u32>,
    ) -> (Vec<f64>, Vec<u32>, f64, u32) {
        let n = w.len();
        let (offs, adj) = (&plan.offs, &plan.adj);
        // Every weight is >= 0, so any finish time beats -1 and the first relaxation wins.
        let mut es = vec![-1.0f64; n];
        let mut pred = vec![NONE; n];
        let mut length = -1.0f64;
        let mut end = NONE;
        for s in order {
            let s = s as usize;
            let start = es[s].max(0.0);
            es[s] = start;
            let ef = start + w[s];
            if ef > length {
                length = ef;
                end = s as u32;
            }
            for &t in &adj[offs[s] as usize..offs[s + 1] as usize] {
                let t = t as usize;
                if ef > es[t] {
                    es[t] = ef;
                    pred[t] = s as u32;
                }
            }
        }
        (es, pred, length.max(0.0), end)
    }

    fn path(pred: &[u32], end: u32) -> Vec<u32> {
        let mut path = Vec::new();
        let mut x = end;
        while x != NONE {
            path.push(x);
            x = pred[x as usize];
        }
        path.reverse();
        path
    }

    /// Length and nodes of the critical path over hard and soft edges, each node weighted by
    /// `weight`.
    pub fn critical_path(&self, type_est: &[f64]) -> (f64, Vec<u32>) {
        let plan = self.plan();
        let w = self.weights(type_est);
        let (_, pred, length, end) = Self::forward(plan, &w);
        (length, Self::path(&pred, end))
    }

    /// Critical path and slack over hard and soft edges, each node weighted by `weight`.
    pub fn schedule(&self, type_est: &[f64]) -> Schedule {
        let plan = self.plan();
        let w = self.weights(type_est);
        let n = w.len();
        let (es, pred, length, end) = Self::forward(plan, &w);
        let (offs, adj) = (&plan.offs, &plan.adj);
        let mut lf = vec![length; n];
        let mut backward = |s: usize| {
            let mut m = length;
            for &t in &adj[offs[s] as usize..offs[s + 1] as usize] {
                m = m.min(lf[t as usize] - w[t as usize]);
            }
            lf[s] = m;
        };
        if plan.forward_only {
            (0..n).rev().for_each(&mut backward);
        } else {
            plan.order.iter().rev().for_each(|&s| backward(s as usize));
        }
        let slack: Vec<f64> = (0..n).map(|i| (lf[i] - w[i] - es[i]).max(0.0)).collect();
        Schedule {
            length,
            path: Self::path(&pred, end),
            earliest_start: es,
            slack,
        }
    }

    // ----- consistency (tests) ---------------------------------------------------------------

    /// The derived state, for comparing the incremental engine with [`Workflow::recompute`].
    #[cfg(test)]
    pub fn derived(&self) -> (Vec<NodeState>, Vec<u32>, Vec<u32>, [u32; 7]) {
        (
            self.core.nodes.iter().map(|c| c.state).collect(),
            self.waiting.clone(),
            self.ready(),
            self.counts,
        )
    }
}
