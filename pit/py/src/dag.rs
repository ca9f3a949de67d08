//! Binding of the `DagTracker` (`pit.dag`).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use pit_core::dag::{DagError, DagTracker, DepKind, NodeInfo, NodeState};
use pit_core::SECOND;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyList, PyString};

use crate::errors::{detached, guard, int_u32, int_u64, type_error, PyPitErr};

/// Batches longer than this release the GIL while they run.
const DETACH_OVER: usize = 4096;

fn state_of(s: &str) -> pit_core::Result<NodeState> {
    Ok(NodeState::parse(s)?)
}

fn kind_of(s: &str) -> pit_core::Result<DepKind> {
    Ok(DepKind::parse(s)?)
}

/// A mutation: inline when it only has to be acknowledged, with the GIL released when it waits for
/// the disk (`durable`).
fn call<T: Send>(
    py: Python<'_>,
    durable: bool,
    f: impl FnOnce() -> pit_core::Result<T> + Send,
) -> PyResult<T> {
    if durable {
        detached(py, f)
    } else {
        guard(f)
    }
}

fn secs(t: Option<u64>) -> Option<f64> {
    t.map(|t| t as f64 / SECOND as f64)
}

/// Node indexes from a sequence of ints, a buffer of uint32 (`array('I')`, numpy) or bytes of
/// little-endian u32.
fn indexes(arg: &Bound<'_, PyAny>) -> PyResult<Vec<u32>> {
    if let Ok(b) = arg.cast::<PyBytes>() {
        let bytes = b.as_bytes();
        if bytes.len() % 4 != 0 {
            return Err(PyPitErr(
                DagError::Invalid(format!(
                    "argument 'nodes': {} bytes is not a whole number of little-endian u32",
                    bytes.len()
                ))
                .into(),
            )
            .into());
        }
        return Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect());
    }
    if let Ok(buf) = PyBuffer::<u32>::get(arg) {
        return buf.to_vec(arg.py());
    }
    arg.extract::<Vec<u32>>().map_err(|_| {
        type_error(
            "nodes",
            "a sequence of node indexes (int), a uint32 buffer or bytes",
            arg,
        )
    })
}

/// Everything about one node (a snapshot taken when `DagTracker.node()` was called).
#[pyclass(frozen, module = "symphony.pit._native", name = "NodeInfo")]
pub struct PyNodeInfo {
    /// The workflow.
    #[pyo3(get)]
    workflow: String,
    /// The node id.
    #[pyo3(get)]
    name: String,
    /// Its index in the workflow.
    #[pyo3(get)]
    index: u32,
    /// Its state.
    #[pyo3(get)]
    state: &'static str,
    /// What its dependants see (the chain's outcome for a node with alternatives).
    #[pyo3(get)]
    outcome: Option<&'static str>,
    /// Its node type.
    #[pyo3(get)]
    node_type: Option<String>,
    /// Its own duration estimate, seconds.
    #[pyo3(get)]
    estimate: Option<f64>,
    /// The estimate planning uses (its own, else its type's learned one).
    #[pyo3(get)]
    effective_estimate: Option<f64>,
    /// Duration of its successful run, seconds.
    #[pyo3(get)]
    duration: Option<f64>,
    /// When it started running (seconds since the epoch).
    #[pyo3(get)]
    started_at: Option<f64>,
    /// When it finished (seconds since the epoch).
    #[pyo3(get)]
    finished_at: Option<f64>,
    /// Artifact ids bound to it.
    #[pyo3(get)]
    artifacts: Vec<u64>,
}

impl PyNodeInfo {
    fn new(workflow: &str, n: NodeInfo) -> Self {
        Self {
            workflow: workflow.to_string(),
            name: n.name,
            index: n.index,
            state: n.state.name(),
            outcome: n.outcome.map(NodeState::name),
            node_type: n.node_type,
            estimate: n.estimate,
            effective_estimate: n.effective_estimate,
            duration: n.duration,
            started_at: secs(n.started_at),
            finished_at: secs(n.finished_at),
            artifacts: n.artifacts,
        }
    }
}

#[pymethods]
impl PyNodeInfo {
    fn __repr__(&self) -> String {
        format!(
            "NodeInfo(workflow={:?}, name={:?}, index={}, state={:?})",
            self.workflow, self.name, self.index, self.state
        )
    }
}

/// Python `str` objects of node ids, made once per node, by workflow handle and node index; valid
/// for one naming epoch of the tracker (see `DagTracker::critical_path_at`). Handles are never
/// reused, so a dropped and recreated workflow gets a fresh entry; adding nodes only appends.
///
/// Only touched with the GIL held, and never while calling into Python (no allocation of
/// objects the garbage collector tracks, no finaliser can run under the lock): creating strings
/// and lists happens outside it.
#[derive(Default)]
struct NameCache {
    epoch: u64,
    by_wf: HashMap<u32, Vec<Option<Py<PyString>>>>,
}

/// How often `critical_path` retries when a rollback changes what node indexes name between its
/// computation and the naming; then it falls back to the uncached call.
const NAMING_RETRIES: usize = 3;

/// The `DagTracker` (`pit.dag`).
#[pyclass(frozen, module = "symphony.pit._native", name = "DagTracker")]
pub struct PyDagTracker {
    inner: Arc<DagTracker>,
    names: Mutex<NameCache>,
}

impl PyDagTracker {
    pub fn new(inner: Arc<DagTracker>) -> Self {
        Self {
            inner,
            names: Mutex::new(NameCache::default()),
        }
    }

    /// The cached id objects of `path` (nodes of workflow `handle` in naming epoch `epoch`),
    /// creating the missing ones; `None` when the epoch has passed or the workflow is gone.
    fn path_names(
        &self,
        py: Python<'_>,
        handle: u32,
        epoch: u64,
        path: &[u32],
    ) -> PyResult<Option<Vec<Py<PyString>>>> {
        if path.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let missing: Vec<u32> = {
            let mut c = self.names.lock();
            if c.epoch != epoch {
                if self.inner.naming_epoch() != epoch {
                    return Ok(None);
                }
                // The tracker moved on to `epoch` since the cache was filled: start afresh (the
                // old strings are released after the lock).
                c.epoch = epoch;
                let old = std::mem::take(&mut c.by_wf);
                drop(c);
                drop(old);
                return self.path_names(py, handle, epoch, path);
            }
            let cached = c.by_wf.get(&handle);
            let mut m: Vec<u32> = path
                .iter()
                .copied()
                .filter(|&i| {
                    cached
                        .and_then(|v| v.get(i as usize))
                        .is_none_or(Option::is_none)
                })
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            let Some(ids) = guard(|| self.inner.node_names_at(handle, epoch, &missing))? else {
                return Ok(None);
            };
            let made: Vec<Py<PyString>> =
                ids.iter().map(|s| PyString::new(py, s).unbind()).collect();
            let mut c = self.names.lock();
            if c.epoch != epoch {
                return Ok(None);
            }
            let v = c.by_wf.entry(handle).or_default();
            let top = missing.last().map_or(0, |&i| i as usize + 1);
            if v.len() < top {
                v.resize_with(top, || None);
            }
            for (&i, s) in missing.iter().zip(made) {
                v[i as usize].get_or_insert(s);
            }
        }
        let c = self.names.lock();
        if c.epoch != epoch {
            return Ok(None);
        }
        let Some(v) = c.by_wf.get(&handle) else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(path.len());
        for &i in path {
            match v.get(i as usize) {
                Some(Some(s)) => out.push(s.clone_ref(py)),
                _ => return Ok(None),
            }
        }
        Ok(Some(out))
    }
}

fn named(list: Vec<(String, DepKind)>) -> Vec<(String, &'static str)> {
    list.into_iter().map(|(n, k)| (n, k.name())).collect()
}

#[pymethods]
impl PyDagTracker {
    // ----- workflows -------------------------------------------------------------------------

    /// Create an empty workflow; returns its handle (for `transition_idx`).
    #[pyo3(signature = (workflow, *, durable = false))]
    fn create_workflow(&self, py: Python<'_>, workflow: &str, durable: bool) -> PyResult<u32> {
        let t = &self.inner;
        call(py, durable, || t.create_workflow(workflow, durable))
    }

    /// Drop a workflow and its checkpoints; its artifact references end.
    #[pyo3(signature = (workflow, *, durable = false))]
    fn drop_workflow(&self, py: Python<'_>, workflow: &str, durable: bool) -> PyResult<()> {
        let t = &self.inner;
        let handle = t.workflow_handle(workflow).ok();
        detached(py, || t.drop_workflow(workflow, durable))?;
        if let Some(h) = handle {
            // Handles are never reused: the entry could only ever waste memory. (A
            // `critical_path` racing with the drop may put a small entry back; it is never read.)
            let old = self.names.lock().by_wf.remove(&h);
            drop(old);
        }
        Ok(())
    }

    /// Every workflow id, sorted.
    fn workflows(&self) -> Vec<String> {
        self.inner.workflows()
    }

    /// A workflow's handle (valid until it is dropped; never reused).
    fn workflow_handle(&self, workflow: &str) -> PyResult<u32> {
        guard(|| self.inner.workflow_handle(workflow))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, workflow: &Bound<'_, PyAny>) -> bool {
        workflow
            .extract::<&str>()
            .is_ok_and(|w| self.inner.contains(w))
    }

    fn __repr__(&self) -> String {
        format!("DagTracker({} workflows)", self.inner.len())
    }

    // ----- building --------------------------------------------------------------------------

    /// Add one node; returns its index.
    #[pyo3(signature = (workflow, node, *, node_type = None, estimate = None, durable = false))]
    fn add_node(
        &self,
        py: Python<'_>,
        workflow: &str,
        node: &str,
        node_type: Option<&str>,
        estimate: Option<f64>,
        durable: bool,
    ) -> PyResult<u32> {
        let t = &self.inner;
        call(py, durable, || {
            t.add_nodes(workflow, &[node], node_type, estimate, durable)
        })
    }

    /// Add nodes (all or none); returns the index of the first, the others follow.
    #[pyo3(signature = (workflow, nodes, *, node_type = None, estimate = None, durable = false))]
    fn add_nodes(
        &self,
        py: Python<'_>,
        workflow: &str,
        nodes: Vec<PyBackedStr>,
        node_type: Option<&str>,
        estimate: Option<f64>,
        durable: bool,
    ) -> PyResult<u32> {
        let t = &self.inner;
        detached(py, move || {
            let names: Vec<&str> = nodes.iter().map(|n| &**n).collect();
            t.add_nodes(workflow, &names, node_type, estimate, durable)
        })
    }

    /// Add the edge `source → target` (`target` depends on `source`).
    #[pyo3(signature = (workflow, source, target, kind = "hard", *, durable = false))]
    fn add_edge(
        &self,
        py: Python<'_>,
        workflow: &str,
        source: &str,
        target: &str,
        kind: &str,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        call(py, durable, || {
            t.add_edges(workflow, &[(source, target)], kind_of(kind)?, durable)
        })
    }

    /// Add edges `(source, target)` of one kind (all or none).
    #[pyo3(signature = (workflow, edges, kind = "hard", *, durable = false))]
    fn add_edges(
        &self,
        py: Python<'_>,
        workflow: &str,
        edges: Vec<(PyBackedStr, PyBackedStr)>,
        kind: &str,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        detached(py, move || {
            let kind = kind_of(kind)?;
            let pairs: Vec<(&str, &str)> = edges.iter().map(|(s, d)| (&**s, &**d)).collect();
            t.add_edges(workflow, &pairs, kind, durable)
        })
    }

    /// Add edges `(source_index, target_index)` of one kind (all or none).
    #[pyo3(signature = (workflow, edges, kind = "hard", *, durable = false))]
    fn add_edges_idx(
        &self,
        py: Python<'_>,
        workflow: &str,
        edges: Vec<(u32, u32)>,
        kind: &str,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        detached(py, move || {
            t.add_edges_idx(workflow, &edges, kind_of(kind)?, durable)
        })
    }

    /// Append `alternative` to the chain of alternatives of `node`.
    #[pyo3(signature = (workflow, node, alternative, *, durable = false))]
    fn add_alternative(
        &self,
        py: Python<'_>,
        workflow: &str,
        node: &str,
        alternative: &str,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        detached(py, || {
            t.add_alternative(workflow, node, alternative, durable)
        })
    }

    /// The alternatives after `node` in its chain, in order.
    fn alternatives(&self, workflow: &str, node: &str) -> PyResult<Vec<String>> {
        guard(|| self.inner.alternatives(workflow, node))
    }

    /// Set (or clear with `None`) a node's own duration estimate in seconds.
    #[pyo3(signature = (workflow, node, estimate, *, durable = false))]
    fn set_estimate(
        &self,
        py: Python<'_>,
        workflow: &str,
        node: &str,
        estimate: Option<f64>,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        call(py, durable, || {
            t.set_estimate(workflow, node, estimate, durable)
        })
    }

    /// `(estimate_seconds, samples)` learned for a node type, or `None` before its first sample.
    fn type_estimate(&self, node_type: &str) -> Option<(f64, u64)> {
        self.inner.type_estimate(node_type)
    }

    /// Bind an artifact to a node; returns whether the binding is new.
    #[pyo3(signature = (workflow, node, artifact_id, *, durable = false))]
    fn bind_artifact(
        &self,
        py: Python<'_>,
        workflow: &str,
        node: &str,
        #[pyo3(from_py_with = int_u64)] artifact_id: u64,
        durable: bool,
    ) -> PyResult<bool> {
        let t = &self.inner;
        call(py, durable, || {
            t.bind_artifact(workflow, node, artifact_id, durable)
        })
    }

    /// Unbind an artifact from a node; returns whether it was bound.
    #[pyo3(signature = (workflow, node, artifact_id, *, durable = false))]
    fn unbind_artifact(
        &self,
        py: Python<'_>,
        workflow: &str,
        node: &str,
        #[pyo3(from_py_with = int_u64)] artifact_id: u64,
        durable: bool,
    ) -> PyResult<bool> {
        let t = &self.inner;
        call(py, durable, || {
            t.unbind_artifact(workflow, node, artifact_id, durable)
        })
    }

    /// Every artifact id bound in any workflow or checkpoint, sorted.
    fn referenced_artifacts(&self) -> Vec<u64> {
        self.inner.referenced_artifacts()
    }

    // ----- transitions -----------------------------------------------------------------------

    /// Move a node to `state`.
    #[pyo3(signature = (workflow, node, state, *, duration = None, durable = false))]
    fn transition(
        &self,
        py: Python<'_>,
        workflow: &str,
        node: &str,
        state: &str,
        duration: Option<f64>,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        call(py, durable, || {
            t.transition(workflow, node, state_of(state)?, duration, durable)
        })
    }

    /// Move a node to `state`, by workflow handle and node index.
    #[pyo3(signature = (handle, node, state, *, duration = None, durable = false))]
    fn transition_idx(
        &self,
        py: Python<'_>,
        handle: u32,
        node: u32,
        state: &str,
        duration: Option<f64>,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        call(py, durable, || {
            t.transition_idx(handle, node, state_of(state)?, duration, durable)
        })
    }

    /// Move many nodes (indexes) to `state` in order; one journal record. Returns the count.
    #[pyo3(signature = (workflow, nodes, state, *, durable = false))]
    fn transition_batch(
        &self,
        py: Python<'_>,
        workflow: &str,
        nodes: &Bound<'_, PyAny>,
        state: &str,
        durable: bool,
    ) -> PyResult<usize> {
        let idx = indexes(nodes)?;
        let t = &self.inner;
        let f = || t.transition_batch(workflow, &idx, state_of(state)?, durable);
        if durable || idx.len() > DETACH_OVER {
            detached(py, f)
        } else {
            guard(f)
        }
    }

    /// Reset `node` and everything downstream to pending; returns the nodes reset.
    #[pyo3(signature = (workflow, node, *, durable = false))]
    fn reset(
        &self,
        py: Python<'_>,
        workflow: &str,
        node: &str,
        durable: bool,
    ) -> PyResult<Vec<String>> {
        let t = &self.inner;
        detached(py, || t.reset(workflow, node, durable))
    }

    // ----- checkpoints -----------------------------------------------------------------------

    /// Save the workflow; returns the checkpoint id.
    #[pyo3(signature = (workflow, *, durable = false))]
    fn checkpoint(&self, py: Python<'_>, workflow: &str, durable: bool) -> PyResult<u32> {
        let t = &self.inner;
        detached(py, || t.checkpoint(workflow, durable))
    }

    /// Return the workflow to a checkpoint.
    #[pyo3(signature = (workflow, checkpoint, *, durable = false))]
    fn rollback(
        &self,
        py: Python<'_>,
        workflow: &str,
        checkpoint: u32,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        detached(py, || t.rollback(workflow, checkpoint, durable))
    }

    /// Forget a checkpoint.
    #[pyo3(signature = (workflow, checkpoint, *, durable = false))]
    fn drop_checkpoint(
        &self,
        py: Python<'_>,
        workflow: &str,
        checkpoint: u32,
        durable: bool,
    ) -> PyResult<()> {
        let t = &self.inner;
        call(py, durable, || {
            t.drop_checkpoint(workflow, checkpoint, durable)
        })
    }

    /// The workflow's checkpoint ids, oldest first.
    fn checkpoints(&self, workflow: &str) -> PyResult<Vec<u32>> {
        guard(|| self.inner.checkpoints(workflow))
    }

    // ----- queries ---------------------------------------------------------------------------

    /// A node's index.
    fn node_index(&self, workflow: &str, node: &str) -> PyResult<u32> {
        guard(|| self.inner.node_index(workflow, node))
    }

    /// The id of the node at `index`.
    fn node_name(
        &self,
        workflow: &str,
        #[pyo3(from_py_with = int_u32)] index: u32,
    ) -> PyResult<String> {
        guard(|| self.inner.node_name(workflow, index))
    }

    /// A node's state.
    fn state(&self, workflow: &str, node: &str) -> PyResult<&'static str> {
        guard(|| Ok(self.inner.state(workflow, node)?.name()))
    }

    /// Every node's state, by index.
    fn states(&self, workflow: &str) -> PyResult<Vec<&'static str>> {
        guard(|| {
            Ok(self
                .inner
                .states(workflow)?
                .into_iter()
                .map(NodeState::name)
                .collect())
        })
    }

    /// Every node id, by index.
    fn nodes(&self, workflow: &str) -> PyResult<Vec<String>> {
        guard(|| self.inner.nodes(workflow))
    }

    /// The ready nodes, in index order.
    fn ready(&self, workflow: &str) -> PyResult<Vec<String>> {
        guard(|| self.inner.ready(workflow))
    }

    /// The ready nodes' indexes, ascending.
    fn ready_idx(&self, workflow: &str) -> PyResult<Vec<u32>> {
        guard(|| self.inner.ready_idx(workflow))
    }

    /// Number of nodes in each state (every state present, zeros included).
    fn counts(&self, workflow: &str) -> PyResult<HashMap<&'static str, u32>> {
        guard(|| {
            let c = self.inner.counts(workflow)?;
            Ok(NodeState::ALL
                .iter()
                .map(|s| (s.name(), c[*s as usize]))
                .collect())
        })
    }

    /// Whether every node has reached a terminal state.
    fn is_complete(&self, workflow: &str) -> PyResult<bool> {
        guard(|| {
            let c = self.inner.counts(workflow)?;
            Ok(c[0] + c[1] + c[2] == 0)
        })
    }

    /// Everything about a node.
    fn node(&self, workflow: &str, node: &str) -> PyResult<PyNodeInfo> {
        guard(|| {
            Ok(PyNodeInfo::new(
                workflow,
                self.inner.node_info(workflow, node)?,
            ))
        })
    }

    /// `(source, kind)` of every dependency of `node` (parallel partners included).
    fn dependencies(&self, workflow: &str, node: &str) -> PyResult<Vec<(String, &'static str)>> {
        guard(|| Ok(named(self.inner.dependencies(workflow, node)?)))
    }

    /// `(target, kind)` of every dependant of `node` (parallel partners included).
    fn dependants(&self, workflow: &str, node: &str) -> PyResult<Vec<(String, &'static str)>> {
        guard(|| Ok(named(self.inner.dependants(workflow, node)?)))
    }

    /// Groups of nodes joined by parallel edges (each sorted by index).
    fn parallel_groups(&self, workflow: &str) -> PyResult<Vec<Vec<String>>> {
        guard(|| self.inner.parallel_groups(workflow))
    }

    /// `(length_seconds, nodes)` of the critical path.
    ///
    /// The path is computed by index with the GIL released, then named under the GIL from the
    /// cached `str` of each node id (made once per node).
    fn critical_path<'py>(
        &self,
        py: Python<'py>,
        workflow: &str,
    ) -> PyResult<(f64, Bound<'py, PyList>)> {
        let t = &self.inner;
        for _ in 0..NAMING_RETRIES {
            let p = detached(py, || t.critical_path_at(workflow))?;
            if let Some(ids) = self.path_names(py, p.handle, p.epoch, &p.path)? {
                return Ok((p.length, PyList::new(py, ids)?));
            }
        }
        let (length, path) = detached(py, || t.critical_path(workflow))?;
        Ok((length, PyList::new(py, path)?))
    }

    /// `(length_seconds, node_indexes)` of the critical path.
    fn critical_path_idx(&self, py: Python<'_>, workflow: &str) -> PyResult<(f64, Vec<u32>)> {
        let t = &self.inner;
        detached(py, || t.critical_path_idx(workflow))
    }

    /// How long `node` may be delayed without delaying the workflow, seconds.
    fn slack(&self, py: Python<'_>, workflow: &str, node: &str) -> PyResult<f64> {
        let t = &self.inner;
        detached(py, || t.slack(workflow, node))
    }

    /// Slack of every node, by index.
    fn slacks(&self, py: Python<'_>, workflow: &str) -> PyResult<Vec<f64>> {
        let t = &self.inner;
        detached(py, || Ok(t.schedule(workflow)?.slack))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDagTracker>()?;
    m.add_class::<PyNodeInfo>()?;
    Ok(())
}
