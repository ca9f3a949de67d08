//! DAG Tracker: workflows of nodes and dependency edges, node states, readiness, critical path,
//! checkpoints, partial re-execution, alternatives and learned duration estimates.
//!
//! Semantics (the table in `docs/pit.md` (DAG Tracker) is the reference): an edge `source → target` says
//! the target depends on the source.
//!
//! | kind     | target waits for source | source succeeded | source failed / skipped / cancelled |
//! |----------|-------------------------|------------------|-------------------------------------|
//! | hard     | yes                     | released         | target skipped (cascades)           |
//! | soft     | yes                     | released         | released                            |
//! | optional | no                      | output available | target unaffected                   |
//! | parallel | no (no order at all)    | no effect        | no effect                           |
//!
//! A chain head with alternatives shows its dependants the chain's outcome: the first member
//! that succeeds satisfies them; an alternative gets its turn when every member before it failed.
//!
//! State lives under one lock; every mutation appends its journal record under that lock, and
//! replay re-applies the records through the same code, so the automatic moves (readiness,
//! skips) are re-derived identically.

mod graph;
mod record;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use parking_lot::Mutex;

pub use self::graph::{DepKind, NodeState, Schedule, EWMA_ALPHA};
use self::graph::{FxMap, TypeStat, Workflow, NONE};
use self::record::{Raw, Rec, Snap, SnapRef, WfSnapRef, SNAPSHOT_VERSION};
use crate::error::{Classify, Detail, Error, ErrorKind, Result};
use crate::{ArtifactId, Ctx, Lsn, Micros, Persistent, Tag, SECOND};

/// The most node indexes one batch transition takes.
pub const MAX_BATCH: usize = 1 << 24;

/// DAG Tracker failures.
#[derive(Debug, thiserror::Error)]
pub enum DagError {
    /// No workflow has this id.
    #[error("unknown workflow {0:?}")]
    WorkflowNotFound(String),
    /// A workflow with this id exists.
    #[error("workflow {0:?} already exists")]
    WorkflowExists(String),
    /// The workflow has no such node.
    #[error("unknown node {node:?} in workflow {workflow:?}")]
    NodeNotFound {
        /// The workflow.
        workflow: String,
        /// The node id (or `#index`).
        node: String,
    },
    /// The workflow already has a node with this id.
    #[error("node {node:?} already exists in workflow {workflow:?}")]
    NodeExists {
        /// The workflow.
        workflow: String,
        /// The node id.
        node: String,
    },
    /// The edge exists.
    #[error("edge {from:?} → {to:?} already exists in workflow {workflow:?}")]
    EdgeExists {
        /// The workflow.
        workflow: String,
        /// Its source.
        from: String,
        /// Its target.
        to: String,
    },
    /// The edge (or alternative) would close a cycle; nothing was changed.
    #[error("adding this would close a cycle in workflow {workflow:?}: {}", cycle.join(" → "))]
    Cycle {
        /// The workflow.
        workflow: String,
        /// The nodes of the cycle in order, closing on the first.
        cycle: Vec<String>,
    },
    /// A caller's transition the state machine does not allow.
    #[error(
        "illegal transition of node {node:?} in workflow {workflow:?}: {} → {}",
        from.name(),
        to.name()
    )]
    IllegalTransition {
        /// The workflow.
        workflow: String,
        /// The node.
        node: String,
        /// Its state.
        from: NodeState,
        /// The requested state.
        to: NodeState,
    },
    /// A batch stopped at an illegal transition; the transitions before it were applied.
    #[error(
        "illegal transition of node {node:?} in workflow {workflow:?}: {} → {} (item {applied} \
         of the batch; the {applied} before it were applied)",
        from.name(),
        to.name()
    )]
    BatchStopped {
        /// The workflow.
        workflow: String,
        /// The node.
        node: String,
        /// Its state.
        from: NodeState,
        /// The requested state.
        to: NodeState,
        /// How many transitions of the batch were applied.
        applied: usize,
    },
    /// Dependencies and alternatives can only be added to nodes that have not started.
    #[error(
        "node {node:?} of workflow {workflow:?} is {}: dependencies and alternatives can only be \
         added to pending or ready nodes",
        state.name()
    )]
    NodeStarted {
        /// The workflow.
        workflow: String,
        /// The node.
        node: String,
        /// Its state.
        state: NodeState,
    },
    /// The workflow has no checkpoint with this id.
    #[error("workflow {workflow:?} has no checkpoint {checkpoint}")]
    CheckpointNotFound {
        /// The workflow.
        workflow: String,
        /// The checkpoint id.
        checkpoint: u32,
    },
    /// A bad argument value.
    #[error("{0}")]
    Invalid(String),
}

impl Classify for DagError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::WorkflowNotFound(_) => ErrorKind::WorkflowNotFound,
            Self::WorkflowExists(_) | Self::NodeExists { .. } | Self::EdgeExists { .. } => {
                ErrorKind::AlreadyExists
            }
            Self::NodeNotFound { .. } => ErrorKind::NodeNotFound,
            Self::Cycle { .. } => ErrorKind::DagCycle,
            Self::IllegalTransition { .. } | Self::BatchStopped { .. } => {
                ErrorKind::IllegalTransition
            }
            Self::NodeStarted { .. } | Self::CheckpointNotFound { .. } | Self::Invalid(_) => {
                ErrorKind::InvalidArgument
            }
        }
    }

    fn detail(&self) -> Detail {
        match self {
            Self::WorkflowNotFound(w)
            | Self::WorkflowExists(w)
            | Self::CheckpointNotFound { workflow: w, .. } => Detail::Subject(w.clone()),
            Self::NodeNotFound { node, .. }
            | Self::NodeExists { node, .. }
            | Self::IllegalTransition { node, .. }
            | Self::BatchStopped { node, .. }
            | Self::NodeStarted { node, .. } => Detail::Subject(node.clone()),
            Self::EdgeExists { to, .. } => Detail::Subject(to.clone()),
            Self::Cycle { cycle, .. } => Detail::Items(cycle.clone()),
            Self::Invalid(_) => Detail::None,
        }
    }
}

/// Everything about one node, for inspection.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// Its id.
    pub name: String,
    /// Its index in the workflow.
    pub index: u32,
    /// Its state.
    pub state: NodeState,
    /// What its dependants see: the chain's outcome for a chain head, else its own terminal
    /// state; `None` while undecided.
    pub outcome: Option<NodeState>,
    /// Its node type.
    pub node_type: Option<String>,
    /// Its own duration estimate (seconds).
    pub estimate: Option<f64>,
    /// The estimate planning uses: its own, else its type's learned one.
    pub effective_estimate: Option<f64>,
    /// Duration of its successful run (seconds).
    pub duration: Option<f64>,
    /// When it started running (µs since the epoch).
    pub started_at: Option<Micros>,
    /// When it finished (µs since the epoch).
    pub finished_at: Option<Micros>,
    /// Artifacts bound to it.
    pub artifacts: Vec<ArtifactId>,
}

#[derive(Debug, Default)]
struct State {
    /// Indexed by workflow number; numbers are never reused.
    wfs: Vec<Option<Workflow>>,
    by_name: FxMap<String, u32>,
    types: Vec<TypeStat>,
    type_index: FxMap<String, u32>,
    /// Naming epoch: bumped whenever a node index of a live workflow may come to name a different
    /// node (rollback, restore). Adding nodes only appends, and handles are never reused, so
    /// `(handle, index)` names the same node for as long as this is unchanged.
    epoch: u64,
}

/// A critical path by node index, with what identifies the indexes (see
/// [`DagTracker::critical_path_at`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedPath {
    /// The workflow's handle.
    pub handle: u32,
    /// The naming epoch the indexes belong to.
    pub epoch: u64,
    /// Length of the critical path (seconds).
    pub length: f64,
    /// The critical path, node indexes from first to last.
    pub path: Vec<u32>,
}

/// What applying a record produced.
enum Out {
    None,
    Id(u32),
    Names(Vec<String>),
}

impl Out {
    fn id(&self) -> u32 {
        match self {
            Self::Id(i) => *i,
            _ => 0,
        }
    }
}

fn check_estimate(what: &str, v: Option<f64>) -> Result<(), DagError> {
    match v {
        Some(x) if !(x.is_finite() && x >= 0.0) => Err(DagError::Invalid(format!(
            "{what} must be a finite number of seconds ≥ 0, got {x}"
        ))),
        _ => Ok(()),
    }
}

impl State {
    fn handle(&self, name: &str) -> Result<u32, DagError> {
        self.by_name
            .get(name)
            .copied()
            .ok_or_else(|| DagError::WorkflowNotFound(name.to_string()))
    }

    fn wf(&self, no: u32) -> Result<&Workflow, DagError> {
        self.wfs
            .get(no as usize)
            .and_then(Option::as_ref)
            .ok_or_else(|| DagError::WorkflowNotFound(format!("#{no}")))
    }

    fn wf_mut(&mut self, no: u32) -> Result<&mut Workflow, DagError> {
        self.wfs
            .get_mut(no as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| DagError::WorkflowNotFound(format!("#{no}")))
    }

    fn named(&self, name: &str) -> Result<&Workflow, DagError> {
        self.wf(self.handle(name)?)
    }

    fn intern_type(&mut self, name: &str) -> u32 {
        if let Some(&t) = self.type_index.get(name) {
            return t;
        }
        let t = self.types.len() as u32;
        self.types.push(TypeStat {
            name: name.to_string(),
            ewma: 0.0,
            samples: 0,
        });
        self.type_index.insert(name.to_string(), t);
        t
    }

    fn effective_estimate(&self, node: &graph::NodeCore) -> Option<f64> {
        node.estimate.or_else(|| {
            self.types
                .get(node.node_type as usize)
                .and_then(TypeStat::estimate)
        })
    }

    /// Every node type's learned estimate by type index (0 before the first sample).
    fn type_estimates(&self) -> Vec<f64> {
        self.types
            .iter()
            .map(|t| t.estimate().unwrap_or(0.0))
            .collect()
    }

    fn learn(&mut self, learned: Option<(u32, f64)>) {
        if let Some((t, d)) = learned {
            if let Some(ts) = self.types.get_mut(t as usize) {
                ts.learn(d);
            }
        }
    }

    /// Validate a record against the state. Changes nothing (except scratch space).
    fn check(&mut self, rec: &Rec<'_>) -> Result<(), DagError> {
        match rec {
            Rec::Create { name } => {
                if name.is_empty() {
                    return Err(DagError::Invalid("workflow ids must not be empty".into()));
                }
                if self.by_name.contains_key(name.as_ref()) {
                    return Err(DagError::WorkflowExists(name.to_string()));
                }
                if self.wfs.len() >= NONE as usize {
                    return Err(DagError::Invalid("too many workflows".into()));
                }
            }
            Rec::Drop { wf } | Rec::Checkpoint { wf } => {
                self.wf(*wf)?;
            }
            Rec::AddNodes {
                wf,
                names,
                estimate,
                ..
            } => {
                check_estimate("estimate", *estimate)?;
                let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
                self.wf(*wf)?.check_new_nodes(&names)?;
            }
            Rec::AddEdges {
                wf, kind, edges, ..
            } => {
                self.wf_mut(*wf)?.check_add_edges(edges, *kind)?;
            }
            Rec::AddAlternative { wf, node, alt, .. } => {
                self.wf_mut(*wf)?.check_add_alternative(*node, *alt)?;
            }
            Rec::Transition {
                wf,
                node,
                state,
                duration,
                ..
            } => {
                check_estimate("duration", *duration)?;
                let w = self.wf(*wf)?;
                w.check_index(*node)?;
                w.check_transition(*node, *state)?;
            }
            Rec::Batch { wf, nodes, .. } => {
                let w = self.wf(*wf)?;
                if nodes.0.len() % 4 != 0 {
                    return Err(DagError::Invalid(
                        "batch of node indexes is not u32s".into(),
                    ));
                }
                for c in nodes.0.chunks_exact(4) {
                    w.check_index(u32::from_le_bytes(c.try_into().expect("4 bytes")))?;
                }
            }
            Rec::Reset { wf, node, .. }
            | Rec::Bind { wf, node, .. }
            | Rec::Unbind { wf, node, .. } => {
                self.wf(*wf)?.check_index(*node)?;
            }
            Rec::SetEstimate { wf, node, estimate } => {
                check_estimate("estimate", *estimate)?;
                self.wf(*wf)?.check_index(*node)?;
            }
            Rec::Rollback { wf, id, .. } | Rec::DropCheckpoint { wf, id } => {
                self.wf(*wf)?.find_checkpoint(*id)?;
            }
        }
        Ok(())
    }

    /// Apply a record validated by [`State::check`].
    fn exec(&mut self, rec: &Rec<'_>) -> Result<Out, DagError> {
        Ok(match rec {
            Rec::Create { name } => {
                let no = self.wfs.len() as u32;
                self.wfs.push(Some(Workflow::new(name.to_string())));
                self.by_name.insert(name.to_string(), no);
                Out::Id(no)
            }
            Rec::Drop { wf } => {
                let w = self.wfs[*wf as usize].take().expect("checked");
                self.by_name.remove(&w.name);
                Out::None
            }
            Rec::AddNodes {
                wf,
                names,
                node_type,
                estimate,
                ..
            } => {
                let t = node_type.as_ref().map_or(NONE, |t| self.intern_type(t));
                let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
                Out::Id(self.wf_mut(*wf)?.add_nodes(&names, t, *estimate))
            }
            Rec::AddEdges {
                wf,
                kind,
                edges,
                at,
            } => {
                self.wf_mut(*wf)?.add_edges(edges, *kind, *at);
                Out::None
            }
            Rec::AddAlternative { wf, node, alt, at } => {
                self.wf_mut(*wf)?.add_alternative(*node, *alt, *at);
                Out::None
            }
            Rec::Transition {
                wf,
                node,
                state,
                at,
                duration,
            } => {
                let learned = self.wf_mut(*wf)?.transition(*node, *state, *at, *duration);
                self.learn(learned);
                Out::None
            }
            Rec::Batch {
                wf,
                state,
                at,
                nodes,
            } => {
                // Replay only: the live path applies batches itself (see `transition_batch`).
                let mut learned = Vec::new();
                let w = self.wf_mut(*wf)?;
                for c in nodes.0.chunks_exact(4) {
                    let n = u32::from_le_bytes(c.try_into().expect("4 bytes"));
                    w.check_transition(n, *state)?;
                    learned.push(w.transition(n, *state, *at, None));
                }
                for l in learned {
                    self.learn(l);
                }
                Out::None
            }
            Rec::Reset { wf, node, at } => {
                let w = self.wf_mut(*wf)?;
                let nodes = w.reset(*node, *at);
                Out::Names(nodes.iter().map(|&n| w.node_name(n).to_string()).collect())
            }
            Rec::Checkpoint { wf } => Out::Id(self.wf_mut(*wf)?.checkpoint()),
            Rec::Rollback { wf, id, at } => {
                let w = self.wf_mut(*wf)?;
                let pos = w.find_checkpoint(*id)?;
                w.rollback(pos, *at);
                self.epoch += 1;
                Out::None
            }
            Rec::DropCheckpoint { wf, id } => {
                let w = self.wf_mut(*wf)?;
                let pos = w.find_checkpoint(*id)?;
                w.checkpoints.remove(pos);
                Out::None
            }
            Rec::SetEstimate { wf, node, estimate } => {
                self.wf_mut(*wf)?.set_estimate(*node, *estimate);
                Out::None
            }
            Rec::Bind { wf, node, artifact } => {
                self.wf_mut(*wf)?.bind(*node, *artifact);
                Out::None
            }
            Rec::Unbind { wf, node, artifact } => {
                self.wf_mut(*wf)?.unbind(*node, *artifact);
                Out::None
            }
        })
    }
}

/// Workflows, their dependencies and node states.
#[derive(Debug)]
pub struct DagTracker {
    ctx: Ctx,
    state: Mutex<State>,
}

impl DagTracker {
    /// A tracker with no workflows.
    pub fn new(ctx: &Ctx) -> Self {
        Self {
            ctx: ctx.clone(),
            state: Mutex::new(State::default()),
        }
    }

    fn now(&self) -> Micros {
        self.ctx.clock.now()
    }

    /// Build a record under the lock, validate it, log it, apply it; sync after unlocking when
    /// `durable`.
    fn mutate<'a>(
        &self,
        durable: bool,
        build: impl FnOnce(&State, Micros) -> Result<Rec<'a>, DagError>,
    ) -> Result<Out> {
        let (out, lsn) = {
            let mut st = self.state.lock();
            let rec = build(&st, self.now())?;
            st.check(&rec)?;
            let lsn = self.ctx.journal.append(Tag::Dag, &rec)?;
            (st.exec(&rec)?, lsn)
        };
        if durable {
            self.ctx.journal.sync(lsn)?;
        }
        Ok(out)
    }

    // ----- workflows -------------------------------------------------------------------------

    /// Create an empty workflow; returns its handle (for the `*_idx` fast paths).
    pub fn create_workflow(&self, name: &str, durable: bool) -> Result<u32> {
        Ok(self
            .mutate(durable, |_, _| {
                Ok(Rec::Create {
                    name: Cow::Borrowed(name),
                })
            })?
            .id())
    }

    /// Drop a workflow with its checkpoints; its artifact references end when this returns.
    pub fn drop_workflow(&self, name: &str, durable: bool) -> Result<()> {
        self.mutate(durable, |st, _| {
            Ok(Rec::Drop {
                wf: st.handle(name)?,
            })
        })?;
        Ok(())
    }

    /// Every workflow id, sorted.
    pub fn workflows(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state.lock().by_name.keys().cloned().collect();
        v.sort_unstable();
        v
    }

    /// Number of workflows.
    pub fn len(&self) -> usize {
        self.state.lock().by_name.len()
    }

    /// Whether there are no workflows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the workflow exists.
    pub fn contains(&self, name: &str) -> bool {
        self.state.lock().by_name.contains_key(name)
    }

    /// The handle of a workflow (valid until it is dropped; never reused).
    pub fn workflow_handle(&self, name: &str) -> Result<u32> {
        Ok(self.state.lock().handle(name)?)
    }

    // ----- building --------------------------------------------------------------------------

    /// Add nodes (all or none); returns the index of the first (the others follow in order).
    pub fn add_nodes(
        &self,
        wf: &str,
        names: &[&str],
        node_type: Option<&str>,
        estimate: Option<f64>,
        durable: bool,
    ) -> Result<u32> {
        if let Some(t) = node_type {
            if t.is_empty() {
                return Err(DagError::Invalid("node types must not be empty".into()).into());
            }
        }
        Ok(self
            .mutate(durable, |st, at| {
                Ok(Rec::AddNodes {
                    wf: st.handle(wf)?,
                    names: names.iter().map(|n| Cow::Borrowed(*n)).collect(),
                    node_type: node_type.map(Cow::Borrowed),
                    estimate,
                    at,
                })
            })?
            .id())
    }

    /// Add edges `source → target` of one kind (all or none: a duplicate, a started target or
    /// a cycle refuses the whole batch).
    pub fn add_edges(
        &self,
        wf: &str,
        edges: &[(&str, &str)],
        kind: DepKind,
        durable: bool,
    ) -> Result<()> {
        self.mutate(durable, |st, at| {
            let no = st.handle(wf)?;
            let w = st.wf(no)?;
            let idx = edges
                .iter()
                .map(|(s, t)| Ok((w.node_index(s)?, w.node_index(t)?)))
                .collect::<Result<Vec<_>, DagError>>()?;
            Ok(Rec::AddEdges {
                wf: no,
                kind,
                edges: Cow::Owned(idx),
                at,
            })
        })?;
        Ok(())
    }

    /// [`DagTracker::add_edges`] by node index.
    pub fn add_edges_idx(
        &self,
        wf: &str,
        edges: &[(u32, u32)],
        kind: DepKind,
        durable: bool,
    ) -> Result<()> {
        self.mutate(durable, |st, at| {
            Ok(Rec::AddEdges {
                wf: st.handle(wf)?,
                kind,
                edges: Cow::Borrowed(edges),
                at,
            })
        })?;
        Ok(())
    }

    /// Make `alternative` the next alternative of `node`'s chain.
    pub fn add_alternative(
        &self,
        wf: &str,
        node: &str,
        alternative: &str,
        durable: bool,
    ) -> Result<()> {
        self.mutate(durable, |st, at| {
            let no = st.handle(wf)?;
            let w = st.wf(no)?;
            Ok(Rec::AddAlternative {
                wf: no,
                node: w.node_index(node)?,
                alt: w.node_index(alternative)?,
                at,
            })
        })?;
        Ok(())
    }

    /// Set (or clear) a node's own duration estimate, seconds.
    pub fn set_estimate(
        &self,
        wf: &str,
        node: &str,
        estimate: Option<f64>,
        durable: bool,
    ) -> Result<()> {
        self.mutate(durable, |st, _| {
            let no = st.handle(wf)?;
            Ok(Rec::SetEstimate {
                wf: no,
                node: st.wf(no)?.node_index(node)?,
                estimate,
            })
        })?;
        Ok(())
    }

    /// Bind an artifact to a node; returns whether it was new. While bound (in the workflow or
    /// any of its checkpoints) the artifact is in [`DagTracker::referenced_artifacts`].
    pub fn bind_artifact(
        &self,
        wf: &str,
        node: &str,
        artifact: ArtifactId,
        durable: bool,
    ) -> Result<bool> {
        self.bind_impl(wf, node, artifact, durable, true)
    }

    /// Unbind an artifact from a node; returns whether it was bound.
    pub fn unbind_artifact(
        &self,
        wf: &str,
        node: &str,
        artifact: ArtifactId,
        durable: bool,
    ) -> Result<bool> {
        self.bind_impl(wf, node, artifact, durable, false)
    }

    fn bind_impl(
        &self,
        wf: &str,
        node: &str,
        artifact: ArtifactId,
        durable: bool,
        bind: bool,
    ) -> Result<bool> {
        let mut changed = false;
        self.mutate(durable, |st, _| {
            let no = st.handle(wf)?;
            let w = st.wf(no)?;
            let node = w.node_index(node)?;
            let bound = w.is_bound(node, artifact);
            changed = bound != bind;
            Ok(if bind {
                Rec::Bind {
                    wf: no,
                    node,
                    artifact,
                }
            } else {
                Rec::Unbind {
                    wf: no,
                    node,
                    artifact,
                }
            })
        })?;
        Ok(changed)
    }

    // ----- transitions -----------------------------------------------------------------------

    /// Move a node to `to` (see [`NodeState::allows`]). `duration` (seconds) overrides the
    /// measured duration of a success.
    pub fn transition(
        &self,
        wf: &str,
        node: &str,
        to: NodeState,
        duration: Option<f64>,
        durable: bool,
    ) -> Result<()> {
        self.transition_fast(durable, duration, to, |st| {
            let no = st.handle(wf)?;
            let n = st.wf(no)?.node_index(node)?;
            Ok((no, n))
        })
    }

    /// [`DagTracker::transition`] by workflow handle and node index.
    #[inline]
    pub fn transition_idx(
        &self,
        handle: u32,
        node: u32,
        to: NodeState,
        duration: Option<f64>,
        durable: bool,
    ) -> Result<()> {
        self.transition_fast(durable, duration, to, |st| {
            st.wf(handle)?.check_index(node)?;
            Ok((handle, node))
        })
    }

    /// The hot path of one transition: resolve, validate, log, apply; one lock, one lookup.
    #[inline]
    fn transition_fast(
        &self,
        durable: bool,
        duration: Option<f64>,
        to: NodeState,
        resolve: impl FnOnce(&State) -> Result<(u32, u32), DagError>,
    ) -> Result<()> {
        check_estimate("duration", duration)?;
        let lsn = {
            let mut st = self.state.lock();
            let (no, node) = resolve(&st)?;
            let at = self.now();
            let w = st.wf_mut(no)?;
            w.check_transition(node, to)?;
            let lsn = self.ctx.journal.append(
                Tag::Dag,
                &Rec::Transition {
                    wf: no,
                    node,
                    state: to,
                    at,
                    duration,
                },
            )?;
            let learned = w.transition(node, to, at, duration);
            st.learn(learned);
            lsn
        };
        if durable {
            self.ctx.journal.sync(lsn)?;
        }
        Ok(())
    }

    /// Move many nodes to `to`, in order, each validated as by [`DagTracker::transition`], one
    /// journal record for all. Unknown indexes refuse the batch before anything changes; an
    /// illegal transition stops it there (`BatchStopped` says how many were applied, and those
    /// are logged). Returns how many were applied.
    pub fn transition_batch(
        &self,
        wf: &str,
        nodes: &[u32],
        to: NodeState,
        durable: bool,
    ) -> Result<usize> {
        if nodes.len() > MAX_BATCH {
            return Err(DagError::Invalid(format!(
                "a batch takes at most {MAX_BATCH} nodes, got {}",
                nodes.len()
            ))
            .into());
        }
        let (applied, stopped, lsn) = {
            let mut st = self.state.lock();
            let at = self.now();
            let no = st.handle(wf)?;
            let persistent = self.ctx.journal.is_persistent();
            // In memory nothing is appended below, so a closed Pit is refused here.
            self.ctx.journal.check_open()?;
            let w = st.wf_mut(no)?;
            for &n in nodes {
                w.check_index(n)?;
            }
            if persistent {
                w.begin_undo();
            }
            let mut learned = Vec::new();
            let mut stopped = None;
            for (k, &n) in nodes.iter().enumerate() {
                if let Err(e) = w.check_transition(n, to) {
                    let DagError::IllegalTransition { node, from, .. } = e else {
                        unreachable!("check_transition only reports illegal transitions")
                    };
                    stopped = Some(DagError::BatchStopped {
                        workflow: w.name.clone(),
                        node,
                        from,
                        to,
                        applied: k,
                    });
                    break;
                }
                if let Some(l) = w.transition(n, to, at, None) {
                    learned.push(l);
                }
            }
            let applied = match &stopped {
                Some(DagError::BatchStopped { applied, .. }) => *applied,
                _ => nodes.len(),
            };
            let mut lsn = 0;
            if applied > 0 && persistent {
                let mut bytes = Vec::with_capacity(applied * 4);
                for &n in &nodes[..applied] {
                    bytes.extend_from_slice(&n.to_le_bytes());
                }
                let rec = Rec::Batch {
                    wf: no,
                    state: to,
                    at,
                    nodes: Raw(Cow::Owned(bytes)),
                };
                match self.ctx.journal.append(Tag::Dag, &rec) {
                    Ok(l) => lsn = l,
                    Err(e) => {
                        w.undo(at);
                        return Err(e);
                    }
                }
            }
            if persistent {
                w.commit_undo();
            }
            for l in learned {
                st.learn(Some(l));
            }
            (applied, stopped, lsn)
        };
        if durable && lsn > 0 {
            self.ctx.journal.sync(lsn)?;
        }
        match stopped {
            Some(e) => Err(e.into()),
            None => Ok(applied),
        }
    }

    /// Partial re-execution: reset `node` and everything downstream of it to pending (then
    /// ready where nothing is awaited). Returns the nodes reset, `node` first.
    pub fn reset(&self, wf: &str, node: &str, durable: bool) -> Result<Vec<String>> {
        let out = self.mutate(durable, |st, at| {
            let no = st.handle(wf)?;
            Ok(Rec::Reset {
                wf: no,
                node: st.wf(no)?.node_index(node)?,
                at,
            })
        })?;
        Ok(match out {
            Out::Names(names) => names,
            _ => Vec::new(),
        })
    }

    // ----- checkpoints -----------------------------------------------------------------------

    /// Save the workflow (nodes, edges, states, bindings); returns the checkpoint id.
    pub fn checkpoint(&self, wf: &str, durable: bool) -> Result<u32> {
        Ok(self
            .mutate(durable, |st, _| Ok(Rec::Checkpoint { wf: st.handle(wf)? }))?
            .id())
    }

    /// Return the workflow to a checkpoint (the checkpoint is kept; learned type estimates are
    /// not rolled back).
    pub fn rollback(&self, wf: &str, checkpoint: u32, durable: bool) -> Result<()> {
        self.mutate(durable, |st, at| {
            Ok(Rec::Rollback {
                wf: st.handle(wf)?,
                id: checkpoint,
                at,
            })
        })?;
        Ok(())
    }

    /// Forget a checkpoint.
    pub fn drop_checkpoint(&self, wf: &str, checkpoint: u32, durable: bool) -> Result<()> {
        self.mutate(durable, |st, _| {
            Ok(Rec::DropCheckpoint {
                wf: st.handle(wf)?,
                id: checkpoint,
            })
        })?;
        Ok(())
    }

    /// The workflow's checkpoint ids, oldest first.
    pub fn checkpoints(&self, wf: &str) -> Result<Vec<u32>> {
        let st = self.state.lock();
        Ok(st.named(wf)?.checkpoints.iter().map(|c| c.0).collect())
    }

    // ----- queries ---------------------------------------------------------------------------

    fn read<T>(
        &self,
        wf: &str,
        f: impl FnOnce(&State, &Workflow) -> Result<T, DagError>,
    ) -> Result<T> {
        let st = self.state.lock();
        let w = st.named(wf)?;
        Ok(f(&st, w)?)
    }

    /// A node's index.
    pub fn node_index(&self, wf: &str, node: &str) -> Result<u32> {
        self.read(wf, |_, w| w.node_index(node))
    }

    /// A node's id.
    pub fn node_name(&self, wf: &str, index: u32) -> Result<String> {
        self.read(wf, |_, w| {
            w.check_index(index)?;
            Ok(w.node_name(index).to_string())
        })
    }

    /// A node's state.
    pub fn state(&self, wf: &str, node: &str) -> Result<NodeState> {
        self.read(wf, |_, w| Ok(w.state(w.node_index(node)?)))
    }

    /// Every node's state, by index.
    pub fn states(&self, wf: &str) -> Result<Vec<NodeState>> {
        self.read(wf, |_, w| {
            Ok(w.core.nodes.iter().map(|c| c.state).collect())
        })
    }

    /// Every node id, by index.
    pub fn nodes(&self, wf: &str) -> Result<Vec<String>> {
        self.read(wf, |_, w| {
            Ok(w.core.nodes.iter().map(|c| c.name.clone()).collect())
        })
    }

    /// Number of nodes in each state, in the order of [`NodeState::ALL`].
    pub fn counts(&self, wf: &str) -> Result<[u32; 7]> {
        self.read(wf, |_, w| Ok(w.counts()))
    }

    /// The ready set, by index (ascending).
    pub fn ready_idx(&self, wf: &str) -> Result<Vec<u32>> {
        self.read(wf, |_, w| Ok(w.ready()))
    }

    /// The ready set, by id (in index order).
    pub fn ready(&self, wf: &str) -> Result<Vec<String>> {
        self.read(wf, |_, w| {
            Ok(w.ready()
                .into_iter()
                .map(|n| w.node_name(n).to_string())
                .collect())
        })
    }

    /// Everything about a node.
    pub fn node_info(&self, wf: &str, node: &str) -> Result<NodeInfo> {
        self.read(wf, |st, w| {
            let i = w.node_index(node)?;
            let c = w.node(i);
            Ok(NodeInfo {
                name: c.name.clone(),
                index: i,
                state: c.state,
                outcome: w.outcome(i),
                node_type: st.types.get(c.node_type as usize).map(|t| t.name.clone()),
                estimate: c.estimate,
                effective_estimate: st.effective_estimate(c),
                duration: c.duration,
                started_at: (c.started_at > 0).then_some(c.started_at),
                finished_at: (c.finished_at > 0).then_some(c.finished_at),
                artifacts: w
                    .core
                    .bindings
                    .iter()
                    .filter(|b| b.0 == i)
                    .map(|b| b.1)
                    .collect(),
            })
        })
    }

    fn named_edges(w: &Workflow, list: Vec<(u32, DepKind)>) -> Vec<(String, DepKind)> {
        list.into_iter()
            .map(|(n, k)| (w.node_name(n).to_string(), k))
            .collect()
    }

    /// The nodes `node` depends on, with the edge kinds (parallel partners included).
    pub fn dependencies(&self, wf: &str, node: &str) -> Result<Vec<(String, DepKind)>> {
        self.read(wf, |_, w| {
            Ok(Self::named_edges(w, w.dependencies(w.node_index(node)?)))
        })
    }

    /// The nodes that depend on `node`, with the edge kinds (parallel partners included).
    pub fn dependants(&self, wf: &str, node: &str) -> Result<Vec<(String, DepKind)>> {
        self.read(wf, |_, w| {
            Ok(Self::named_edges(w, w.dependants(w.node_index(node)?)))
        })
    }

    /// The alternatives after `node` in its chain, in the order they get their turn.
    pub fn alternatives(&self, wf: &str, node: &str) -> Result<Vec<String>> {
        self.read(wf, |_, w| {
            Ok(w.alternatives(w.node_index(node)?)
                .into_iter()
                .map(|n| w.node_name(n).to_string())
                .collect())
        })
    }

    /// Groups of nodes joined by parallel edges.
    pub fn parallel_groups(&self, wf: &str) -> Result<Vec<Vec<String>>> {
        self.read(wf, |_, w| {
            Ok(w.parallel_groups()
                .into_iter()
                .map(|g| g.into_iter().map(|n| w.node_name(n).to_string()).collect())
                .collect())
        })
    }

    /// The learned estimate of a node type and its number of samples.
    pub fn type_estimate(&self, node_type: &str) -> Option<(f64, u64)> {
        let st = self.state.lock();
        let t = *st.type_index.get(node_type)?;
        let ts = &st.types[t as usize];
        ts.estimate().map(|e| (e, ts.samples))
    }

    /// Critical path and slack: every node weighs its own estimate, else its type's learned
    /// estimate, else 0; alternatives weigh 0; hard and soft edges order the nodes.
    pub fn schedule(&self, wf: &str) -> Result<Schedule> {
        self.read(wf, |st, w| Ok(w.schedule(&st.type_estimates())))
    }

    /// How long `node` may be delayed without delaying the workflow (seconds).
    pub fn slack(&self, wf: &str, node: &str) -> Result<f64> {
        self.read(wf, |st, w| {
            let i = w.node_index(node)?;
            Ok(w.schedule(&st.type_estimates()).slack[i as usize])
        })
    }

    /// The critical path's length (seconds) and its nodes, first to last.
    pub fn critical_path(&self, wf: &str) -> Result<(f64, Vec<String>)> {
        self.read(wf, |st, w| {
            let (length, path) = w.critical_path(&st.type_estimates());
            Ok((
                length,
                path.iter().map(|&n| w.node_name(n).to_string()).collect(),
            ))
        })
    }

    /// [`DagTracker::critical_path`] with node indexes.
    pub fn critical_path_idx(&self, wf: &str) -> Result<(f64, Vec<u32>)> {
        self.read(wf, |st, w| Ok(w.critical_path(&st.type_estimates())))
    }

    /// [`DagTracker::critical_path_idx`] with the workflow's handle and the naming epoch, for
    /// callers that cache node ids by `(handle, index)`: such a cache stays valid while
    /// [`DagTracker::naming_epoch`] is unchanged (adding nodes only appends new indexes).
    pub fn critical_path_at(&self, wf: &str) -> Result<IndexedPath> {
        let st = self.state.lock();
        let handle = st.handle(wf)?;
        let (length, path) = st.wf(handle)?.critical_path(&st.type_estimates());
        Ok(IndexedPath {
            handle,
            epoch: st.epoch,
            length,
            path,
        })
    }

    /// The naming epoch (see [`DagTracker::critical_path_at`]).
    pub fn naming_epoch(&self) -> u64 {
        self.state.lock().epoch
    }

    /// The ids of nodes `idx` of workflow `handle`, or `None` when the naming epoch is no longer
    /// `epoch` or the workflow is gone (the caller's indexes may then name other nodes).
    pub fn node_names_at(
        &self,
        handle: u32,
        epoch: u64,
        idx: &[u32],
    ) -> Result<Option<Vec<String>>> {
        let st = self.state.lock();
        if st.epoch != epoch {
            return Ok(None);
        }
        let Ok(w) = st.wf(handle) else {
            return Ok(None);
        };
        for &i in idx {
            w.check_index(i)?;
        }
        Ok(Some(
            idx.iter().map(|&i| w.node_name(i).to_string()).collect(),
        ))
    }

    /// CONTRACT (Stale Manager): every artifact id referenced by a node of a workflow the tracker
    /// holds, sorted and deduplicated. Such artifacts are never deleted or archived away.
    ///
    /// A reference starts when `bind_artifact` returns and ends when the binding is gone from
    /// the workflow *and* from all of its checkpoints (`unbind_artifact`, `drop_checkpoint`,
    /// `rollback` to a checkpoint without it), or when the workflow is dropped.
    pub fn referenced_artifacts(&self) -> Vec<ArtifactId> {
        let st = self.state.lock();
        let mut v: Vec<ArtifactId> = Vec::new();
        for w in st.wfs.iter().flatten() {
            v.extend(w.core.bindings.iter().map(|b| b.1));
            for (_, c) in &w.checkpoints {
                v.extend(c.bindings.iter().map(|b| b.1));
            }
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Seconds as float from µs.
    pub fn seconds(t: Micros) -> f64 {
        t as f64 / SECOND as f64
    }
}

impl Persistent for DagTracker {
    fn tag(&self) -> Tag {
        Tag::Dag
    }

    fn snapshot(&self) -> Result<(Lsn, Vec<u8>)> {
        let st = self.state.lock();
        let lsn = self.ctx.journal.last_lsn();
        let snap = SnapRef {
            version: SNAPSHOT_VERSION,
            workflows: st
                .wfs
                .iter()
                .map(|w| {
                    w.as_ref().map(|w| WfSnapRef {
                        name: &w.name,
                        core: &w.core,
                        checkpoints: &w.checkpoints,
                        next_checkpoint: w.next_checkpoint,
                    })
                })
                .collect(),
            types: &st.types,
        };
        let bytes = postcard::to_stdvec(&snap)
            .map_err(|e| Error::Internal(format!("encoding the DAG snapshot: {e}")))?;
        Ok((lsn, bytes))
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let snap: Snap = postcard::from_bytes(bytes)
            .map_err(|e| Error::Internal(format!("decoding the DAG snapshot: {e}")))?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(Error::Internal(format!(
                "DAG snapshot version {} is not {SNAPSHOT_VERSION}",
                snap.version
            )));
        }
        let mut st = State::default();
        for (no, w) in snap.workflows.into_iter().enumerate() {
            st.wfs.push(w.map(|w| {
                st.by_name.insert(w.name.clone(), no as u32);
                Workflow::from_core(w.name, w.core, w.checkpoints, w.next_checkpoint)
            }));
        }
        for (i, t) in snap.types.iter().enumerate() {
            st.type_index.insert(t.name.clone(), i as u32);
        }
        st.types = snap.types;
        let mut cur = self.state.lock();
        st.epoch = cur.epoch + 1;
        *cur = st;
        Ok(())
    }

    fn replay(&self, _lsn: Lsn, payload: &[u8]) -> Result<()> {
        let rec: Rec<'static> = postcard::from_bytes(payload)
            .map_err(|e| Error::Internal(format!("decoding a DAG record: {e}")))?;
        let mut st = self.state.lock();
        st.check(&rec)
            .and_then(|()| st.exec(&rec))
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(())
    }
}
