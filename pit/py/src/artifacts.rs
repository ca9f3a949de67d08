//! Binding of the `ArtifactStore` (`pit.artifacts`).
//!
//! Structure scores for `kind="python"` are computed here with Python's own `compile()` (the
//! core cannot compile Python); every other kind is scored by the core, and a caller may always
//! pass `structure=` to supply its own score.

use std::path::PathBuf;
use std::sync::Arc;

use pit_core::artifacts::{
    Action, ArtifactStore, AuditEntry, Policy, Producer, PutOptions, Quality, Scope, Version,
};
use pit_core::{ArtifactId, SECOND};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

use crate::errors::{detached, guard, int_u64, invalid_argument};

const SMALL: usize = 1 << 20;

/// An artifact given by id (`int`) or by name (`str`, newest live version unless `version=`).
#[derive(FromPyObject)]
pub enum Ref {
    /// An id.
    Id(i64),
    /// A name.
    Name(String),
}

/// Quality scores of an artifact version.
#[pyclass(frozen, module = "symphony.pit._native", name = "Quality")]
pub struct PyQuality {
    /// Structure (valid for its kind), `None` when unscored.
    #[pyo3(get)]
    structure: Option<f32>,
    /// Semantics (supplied by an instrument), `None` when unscored.
    #[pyo3(get)]
    semantics: Option<f32>,
    /// Utility (reuse and downstream acceptance, or a pinned value).
    #[pyo3(get)]
    utility: f32,
}

impl From<Quality> for PyQuality {
    fn from(q: Quality) -> Self {
        Self {
            structure: q.structure,
            semantics: q.semantics,
            utility: q.utility,
        }
    }
}

#[pymethods]
impl PyQuality {
    fn __repr__(&self) -> String {
        let f = |x: Option<f32>| x.map_or_else(|| "None".to_string(), |v| format!("{v:.3}"));
        format!(
            "Quality(structure={}, semantics={}, utility={:.3})",
            f(self.structure),
            f(self.semantics),
            self.utility
        )
    }
}

/// Metadata of one artifact version.
#[pyclass(frozen, module = "symphony.pit._native", name = "ArtifactInfo")]
pub struct PyArtifactInfo {
    #[pyo3(get)]
    id: ArtifactId,
    #[pyo3(get)]
    name: String,
    #[pyo3(get)]
    version: u32,
    #[pyo3(get)]
    kind: String,
    #[pyo3(get)]
    size: u64,
    #[pyo3(get)]
    created: f64,
    #[pyo3(get)]
    actor: String,
    #[pyo3(get)]
    produced_by: Option<(String, String, String)>,
    #[pyo3(get)]
    inputs: Vec<ArtifactId>,
    #[pyo3(get)]
    content_hash: String,
    #[pyo3(get)]
    held: bool,
    #[pyo3(get)]
    archive_ref: Option<String>,
    #[pyo3(get)]
    deleted: bool,
    #[pyo3(get)]
    reuses: u32,
    #[pyo3(get)]
    successes: u32,
    #[pyo3(get)]
    failures: u32,
}

fn secs(t: u64) -> f64 {
    t as f64 / SECOND as f64
}

fn hex(h: &[u8]) -> String {
    use std::fmt::Write;
    h.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl PyArtifactInfo {
    fn new(v: Version, kind: String) -> Self {
        Self {
            id: v.id,
            name: v.name,
            version: v.number,
            kind,
            size: v.size,
            created: secs(v.created),
            actor: v.actor,
            produced_by: v.producer.map(|p| (p.run, p.node, p.model)),
            inputs: v.inputs,
            content_hash: hex(&v.blob),
            held: v.held,
            archive_ref: v.archive,
            deleted: v.deleted.is_some(),
            reuses: v.reuses,
            successes: v.successes,
            failures: v.failures,
        }
    }
}

#[pymethods]
impl PyArtifactInfo {
    /// Whether the blob is only in the archive.
    #[getter]
    fn archived(&self) -> bool {
        self.archive_ref.is_some()
    }

    fn __repr__(&self) -> String {
        format!(
            "ArtifactInfo(id={}, name={:?}, version={}, kind={:?}, size={}{}{})",
            self.id,
            self.name,
            self.version,
            self.kind,
            self.size,
            if self.held { ", held" } else { "" },
            if self.deleted { ", deleted" } else { "" },
        )
    }
}

/// One record of the audit trail.
#[pyclass(frozen, module = "symphony.pit._native", name = "AuditRecord")]
pub struct PyAuditRecord {
    #[pyo3(get)]
    seq: u64,
    #[pyo3(get)]
    at: f64,
    #[pyo3(get)]
    actor: String,
    #[pyo3(get)]
    action: &'static str,
    #[pyo3(get)]
    artifact: Option<ArtifactId>,
    #[pyo3(get)]
    detail: String,
    #[pyo3(get)]
    hash: String,
}

impl From<AuditEntry> for PyAuditRecord {
    fn from(a: AuditEntry) -> Self {
        Self {
            seq: a.seq,
            at: secs(a.at),
            actor: a.actor,
            action: Action::name(a.action),
            artifact: a.artifact,
            detail: a.detail,
            hash: hex(&a.hash),
        }
    }
}

#[pymethods]
impl PyAuditRecord {
    fn __repr__(&self) -> String {
        format!(
            "AuditRecord(seq={}, at={:.6}, actor={:?}, action={:?}, artifact={})",
            self.seq,
            self.at,
            self.actor,
            self.action,
            self.artifact
                .map_or_else(|| "None".to_string(), |a| a.to_string())
        )
    }
}

/// A retention policy.
#[pyclass(frozen, module = "symphony.pit._native", name = "RetentionPolicy")]
pub struct PyRetentionPolicy {
    /// `"name"` or `"kind"`.
    #[pyo3(get)]
    scope: &'static str,
    /// The name or kind it applies to.
    #[pyo3(get)]
    value: String,
    #[pyo3(get)]
    keep_days: f64,
    #[pyo3(get)]
    expire: bool,
}

impl From<Policy> for PyRetentionPolicy {
    fn from(p: Policy) -> Self {
        let (scope, value) = match p.scope {
            Scope::Name(n) => ("name", n),
            Scope::Kind(k) => ("kind", k),
        };
        Self {
            scope,
            value,
            keep_days: p.keep as f64 / (86_400.0 * SECOND as f64),
            expire: p.expire,
        }
    }
}

#[pymethods]
impl PyRetentionPolicy {
    fn __repr__(&self) -> String {
        format!(
            "RetentionPolicy({}={:?}, keep_days={}, expire={})",
            self.scope,
            self.value,
            self.keep_days,
            if self.expire { "True" } else { "False" }
        )
    }
}

/// The `ArtifactStore` (`pit.artifacts`).
#[pyclass(frozen, module = "symphony.pit._native", name = "ArtifactStore")]
pub struct PyArtifactStore {
    inner: Arc<ArtifactStore>,
}

impl PyArtifactStore {
    pub fn new(inner: Arc<ArtifactStore>) -> Self {
        Self { inner }
    }

    fn id(&self, r: Ref, version: Option<u32>) -> PyResult<ArtifactId> {
        match r {
            Ref::Id(i) => {
                if version.is_some() {
                    return Err(invalid_argument(
                        "argument 'version': only valid with an artifact name",
                    ));
                }
                u64::try_from(i).map_err(|_| {
                    invalid_argument(format!(
                        "argument 'artifact': ids are non-negative, got {i}"
                    ))
                })
            }
            Ref::Name(n) => guard(|| self.inner.resolve(&n, version)),
        }
    }
}

/// Structure score of Python source: 1.0 if `compile()` accepts it, else 0.0.
fn python_structure(py: Python<'_>, data: &[u8]) -> PyResult<f32> {
    let compile = py.import("builtins")?.getattr("compile")?;
    let kw = PyDict::new(py);
    kw.set_item("dont_inherit", true)?;
    let warnings = py.import("warnings")?;
    let ctx = warnings.call_method0("catch_warnings")?;
    ctx.call_method0("__enter__")?;
    warnings.call_method1("simplefilter", ("ignore",))?;
    let ok = compile
        .call((PyBytes::new(py, data), "<artifact>", "exec"), Some(&kw))
        .is_ok();
    ctx.call_method1("__exit__", (py.None(), py.None(), py.None()))?;
    Ok(if ok { 1.0 } else { 0.0 })
}

/// `kind` and `actor` must be non-empty (the core reads empty as its defaults).
fn check_kind_actor(kind: &str, actor: &str) -> PyResult<()> {
    if kind.is_empty() {
        return Err(invalid_argument(
            "argument 'kind': expected a non-empty string",
        ));
    }
    if actor.is_empty() {
        return Err(invalid_argument(
            "argument 'actor': expected a non-empty string",
        ));
    }
    Ok(())
}

fn producer(p: Option<(String, String, String)>) -> Option<Producer> {
    p.map(|(run, node, model)| Producer { run, node, model })
}

fn score(py: Python<'_>, kind: &str, data: &[u8], given: Option<f32>) -> PyResult<Option<f32>> {
    if given.is_none() && kind == "python" {
        return python_structure(py, data).map(Some);
    }
    Ok(given)
}

#[pymethods]
impl PyArtifactStore {
    /// Store `data` as a new version of `name`; returns its id.
    #[pyo3(signature = (name, data, *, kind = "binary", produced_by = None, inputs = Vec::new(), actor = "system", structure = None, durable = false))]
    #[allow(clippy::too_many_arguments)] // why: mirrors the documented keyword-only Python API
    fn put(
        &self,
        py: Python<'_>,
        name: &str,
        data: &[u8],
        kind: &str,
        produced_by: Option<(String, String, String)>,
        inputs: Vec<ArtifactId>,
        actor: &str,
        structure: Option<f32>,
        durable: bool,
    ) -> PyResult<ArtifactId> {
        check_kind_actor(kind, actor)?;
        let opts = PutOptions {
            kind: kind.to_string(),
            produced_by: producer(produced_by),
            inputs,
            actor: actor.to_string(),
            structure: score(py, kind, data, structure)?,
        };
        if durable || data.len() >= SMALL {
            let inner = Arc::clone(&self.inner);
            detached(py, move || inner.put(name, data, &opts, durable))
        } else {
            guard(|| self.inner.put(name, data, &opts, false))
        }
    }

    /// Store many small artifacts `(name, data)` in one call (one `fdatasync` when durable).
    ///
    /// The CPU part runs with the GIL held, borrowing the names and bytes in place (no copies);
    /// the GIL is released only for the final sync.
    #[pyo3(signature = (items, *, kind = "binary", actor = "system", durable = false))]
    fn put_many(
        &self,
        py: Python<'_>,
        items: &Bound<'_, PyAny>,
        kind: &str,
        actor: &str,
        durable: bool,
    ) -> PyResult<Vec<ArtifactId>> {
        check_kind_actor(kind, actor)?;
        let opts = PutOptions {
            kind: kind.to_string(),
            actor: actor.to_string(),
            ..PutOptions::default()
        };
        let mut tuples: Vec<Bound<'_, PyTuple>> = Vec::new();
        for item in items.try_iter().map_err(|_| {
            PyTypeError::new_err("argument 'items': expected a sequence of (str, bytes) pairs")
        })? {
            let item = item?;
            let t = item.cast_into::<PyTuple>().map_err(|e| {
                PyTypeError::new_err(format!(
                    "argument 'items': expected (str, bytes) pairs, got {}",
                    e.into_inner()
                        .get_type()
                        .name()
                        .map_or_else(|_| "?".to_string(), |n| n.to_string())
                ))
            })?;
            if t.len() != 2 {
                return Err(PyTypeError::new_err(
                    "argument 'items': expected (str, bytes) pairs",
                ));
            }
            tuples.push(t);
        }
        let mut names = Vec::with_capacity(tuples.len());
        let mut datas = Vec::with_capacity(tuples.len());
        for t in &tuples {
            names.push(
                t.get_item(0)?.cast_into::<PyString>().map_err(|_| {
                    PyTypeError::new_err("argument 'items': each name must be a str")
                })?,
            );
            datas.push(
                t.get_item(1)?.cast_into::<PyBytes>().map_err(|_| {
                    PyTypeError::new_err("argument 'items': each data must be bytes")
                })?,
            );
        }
        let mut refs: Vec<(&str, &[u8])> = Vec::with_capacity(tuples.len());
        for (n, d) in names.iter().zip(&datas) {
            refs.push((n.to_str()?, d.as_bytes()));
        }
        if kind == "python" {
            // Scores differ per item: store one by one.
            let mut ids = Vec::with_capacity(refs.len());
            for (n, d) in &refs {
                let o = PutOptions {
                    structure: Some(python_structure(py, d)?),
                    ..opts.clone()
                };
                ids.push(guard(|| self.inner.put(n, d, &o, false))?);
            }
            if durable {
                let inner = Arc::clone(&self.inner);
                detached(py, move || inner.sync_to(inner.last_lsn()))?;
            }
            return Ok(ids);
        }
        let (ids, lsn) = guard(|| self.inner.put_many_unsynced(&refs, &opts, durable))?;
        if durable {
            let inner = Arc::clone(&self.inner);
            detached(py, move || inner.sync_to(lsn))?;
        }
        Ok(ids)
    }

    /// Ingest a file by path (whole-file hash over a memory map first; known content is not
    /// read again).
    #[pyo3(signature = (name, path, *, kind = "binary", produced_by = None, inputs = Vec::new(), actor = "system", structure = None, durable = false))]
    #[allow(clippy::too_many_arguments)] // why: mirrors the documented keyword-only Python API
    fn ingest_file(
        &self,
        py: Python<'_>,
        name: &str,
        path: PathBuf,
        kind: &str,
        produced_by: Option<(String, String, String)>,
        inputs: Vec<ArtifactId>,
        actor: &str,
        structure: Option<f32>,
        durable: bool,
    ) -> PyResult<ArtifactId> {
        check_kind_actor(kind, actor)?;
        let structure = if structure.is_none() && kind == "python" {
            let src = std::fs::read(&path).map_err(|e| {
                PyErr::from(crate::errors::PyPitErr(
                    pit_core::StorageError::io(format!("reading {}", path.display()), e).into(),
                ))
            })?;
            Some(python_structure(py, &src)?)
        } else {
            structure
        };
        let opts = PutOptions {
            kind: kind.to_string(),
            produced_by: producer(produced_by),
            inputs,
            actor: actor.to_string(),
            structure,
        };
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.ingest_file(name, &path, &opts, durable))
    }

    /// The bytes of an artifact (audited as read by `actor`).
    #[pyo3(signature = (artifact, *, version = None, actor = "system"))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        artifact: Ref,
        version: Option<u32>,
        actor: &str,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let id = self.id(artifact, version)?;
        let small = guard(|| self.inner.size_of(id))? < SMALL as u64;
        let data = if small {
            guard(|| self.inner.get(id, actor))?
        } else {
            let inner = Arc::clone(&self.inner);
            detached(py, move || inner.get(id, actor))?
        };
        Ok(PyBytes::new(py, &data))
    }

    /// The id of `name` (newest live version, or version number `version`).
    #[pyo3(signature = (name, version = None))]
    fn resolve(&self, name: &str, version: Option<u32>) -> PyResult<ArtifactId> {
        guard(|| self.inner.resolve(name, version))
    }

    /// Metadata of an artifact version.
    #[pyo3(signature = (artifact, *, version = None))]
    fn info(&self, artifact: Ref, version: Option<u32>) -> PyResult<PyArtifactInfo> {
        let id = self.id(artifact, version)?;
        let (v, kind) = guard(|| self.inner.info(id))?;
        Ok(PyArtifactInfo::new(v, kind))
    }

    /// Ids of the live versions of `name`, oldest first.
    fn versions(&self, name: &str) -> PyResult<Vec<ArtifactId>> {
        guard(|| self.inner.versions(name))
    }

    /// Ids of the live versions stored after version `after`, oldest first.
    fn ids_after(&self, #[pyo3(from_py_with = int_u64)] after: ArtifactId) -> Vec<ArtifactId> {
        self.inner.ids_after(after)
    }

    /// Every name with a live version, sorted; with `prefix`, only the names starting with it,
    /// and with `exclude`, none starting with one of those.
    #[pyo3(signature = (prefix = "", exclude = Vec::new()))]
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts a Python sequence into an owned Vec
    fn names(&self, prefix: &str, exclude: Vec<String>) -> Vec<String> {
        self.inner.names_with_prefix(prefix, &exclude)
    }

    /// Ids everything `artifact` was derived from (transitively), ascending.
    fn ancestors(&self, artifact: Ref) -> PyResult<Vec<ArtifactId>> {
        let id = self.id(artifact, None)?;
        guard(|| self.inner.ancestors(id))
    }

    /// Ids of everything derived from `artifact` (transitively), ascending.
    fn descendants(&self, artifact: Ref) -> PyResult<Vec<ArtifactId>> {
        let id = self.id(artifact, None)?;
        guard(|| self.inner.descendants(id))
    }

    /// Quality scores.
    fn quality(&self, artifact: Ref) -> PyResult<PyQuality> {
        let id = self.id(artifact, None)?;
        guard(|| self.inner.quality(id)).map(PyQuality::from)
    }

    /// Set quality scores (omitted ones unchanged; a utility given pins it).
    #[pyo3(signature = (artifact, *, structure = None, semantics = None, utility = None, durable = false))]
    fn set_quality(
        &self,
        artifact: Ref,
        structure: Option<f32>,
        semantics: Option<f32>,
        utility: Option<f32>,
        durable: bool,
    ) -> PyResult<PyQuality> {
        let id = self.id(artifact, None)?;
        guard(|| {
            self.inner
                .set_quality(id, structure, semantics, utility, durable)
        })
        .map(PyQuality::from)
    }

    /// Credit the lineage of run `run`'s outputs with its outcome; returns how many artifacts.
    #[pyo3(signature = (run, success, *, durable = false))]
    fn record_run_outcome(&self, run: &str, success: bool, durable: bool) -> PyResult<usize> {
        guard(|| self.inner.record_run_outcome(run, success, durable))
    }

    /// Place a legal hold (durable, audited).
    #[pyo3(signature = (artifact, *, actor, reason = ""))]
    fn hold(&self, py: Python<'_>, artifact: Ref, actor: &str, reason: &str) -> PyResult<()> {
        let id = self.id(artifact, None)?;
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.hold(id, actor, reason))
    }

    /// Lift a legal hold (durable, audited).
    #[pyo3(signature = (artifact, *, actor))]
    fn release_hold(&self, py: Python<'_>, artifact: Ref, actor: &str) -> PyResult<()> {
        let id = self.id(artifact, None)?;
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.release_hold(id, actor))
    }

    /// Whether the artifact is under legal hold.
    fn is_held(&self, artifact: Ref) -> PyResult<bool> {
        let id = self.id(artifact, None)?;
        guard(|| self.inner.is_held(id))
    }

    /// Set the retention policy of one name or one kind (exactly one); `keep_days=None` removes
    /// it. Durable, audited.
    #[pyo3(signature = (*, name = None, kind = None, keep_days, expire = false, actor = "system"))]
    fn set_retention(
        &self,
        py: Python<'_>,
        name: Option<String>,
        kind: Option<String>,
        keep_days: Option<f64>,
        expire: bool,
        actor: &str,
    ) -> PyResult<()> {
        let scope = match (name, kind) {
            (Some(n), None) => Scope::Name(n),
            (None, Some(k)) => Scope::Kind(k),
            _ => {
                return Err(invalid_argument(
                    "set_retention takes exactly one of 'name' and 'kind'",
                ))
            }
        };
        let inner = Arc::clone(&self.inner);
        detached(py, move || {
            inner.set_retention(scope, keep_days, expire, actor)
        })
    }

    /// The retention policies.
    fn retention_policies(&self) -> Vec<PyRetentionPolicy> {
        self.inner
            .retention_policies()
            .into_iter()
            .map(PyRetentionPolicy::from)
            .collect()
    }

    /// Delete every unheld version whose expiring retention has run out; returns their ids.
    #[pyo3(signature = (*, actor = "retention"))]
    fn sweep_retention(&self, py: Python<'_>, actor: &str) -> PyResult<Vec<ArtifactId>> {
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.sweep_retention(actor))
    }

    /// Delete a version (durable, audited). Refused while held or retained.
    #[pyo3(signature = (artifact, *, actor))]
    fn delete(&self, py: Python<'_>, artifact: Ref, actor: &str) -> PyResult<()> {
        let id = self.id(artifact, None)?;
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.delete(id, actor))
    }

    /// The audit trail, optionally of one artifact id, oldest first (older records are read
    /// back from the trail's file).
    #[pyo3(signature = (artifact = None))]
    fn audit(&self, py: Python<'_>, artifact: Option<ArtifactId>) -> PyResult<Vec<PyAuditRecord>> {
        let inner = Arc::clone(&self.inner);
        let trail = detached(py, move || inner.audit(artifact))?;
        Ok(trail.into_iter().map(PyAuditRecord::from).collect())
    }

    /// Re-hash every local blob and check the audit chain; returns the versions verified.
    fn verify(&self, py: Python<'_>) -> PyResult<usize> {
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.verify())
    }

    /// The stored (encrypted, self-describing) bytes of an artifact's blob.
    fn export_stored<'py>(&self, py: Python<'py>, artifact: Ref) -> PyResult<Bound<'py, PyBytes>> {
        let id = self.id(artifact, None)?;
        let inner = Arc::clone(&self.inner);
        let b = detached(py, move || inner.export_stored(id))?;
        Ok(PyBytes::new(py, &b))
    }

    /// Check that `stored` decrypts with this store's key and hashes to the artifact's content.
    fn verify_stored(&self, py: Python<'_>, artifact: Ref, stored: &[u8]) -> PyResult<()> {
        let id = self.id(artifact, None)?;
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.verify_stored(id, stored))
    }

    /// The blob is kept in the archive under `archive_ref`: drop the local copy (durable).
    fn release_local(&self, py: Python<'_>, artifact: Ref, archive_ref: &str) -> PyResult<()> {
        let id = self.id(artifact, None)?;
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.release_local(id, archive_ref))
    }

    /// Bring an archived blob back from its stored copy (verified, durable).
    fn restore_local(&self, py: Python<'_>, artifact: Ref, stored: &[u8]) -> PyResult<()> {
        let id = self.id(artifact, None)?;
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.restore_local(id, stored))
    }

    /// Copy the live objects out of mostly-dead segments and remove them; returns bytes freed.
    fn compact(&self, py: Python<'_>) -> PyResult<u64> {
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.compact())
    }

    /// Bytes of the segment files.
    fn local_bytes(&self) -> u64 {
        self.inner.local_bytes()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("ArtifactStore({} live versions)", self.inner.len())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyArtifactStore>()?;
    m.add_class::<PyArtifactInfo>()?;
    m.add_class::<PyQuality>()?;
    m.add_class::<PyAuditRecord>()?;
    m.add_class::<PyRetentionPolicy>()?;
    Ok(())
}
