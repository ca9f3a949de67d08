//! Binding of the `StaleManager` (`pit.stale`).

use std::fmt::Write as _;
use std::sync::Arc;

use pit_core::stale::{
    self, ArtifactValue, Notification, Settings, StaleManager, SweepReport, SweepSummary, DAY,
};
use pit_core::{Micros, SECOND};
use pyo3::prelude::*;

use crate::errors::{detached, guard, int_u64, invalid_argument, opt_int_usize};

fn secs(t: Micros) -> f64 {
    t as f64 / SECOND as f64
}

fn days(t: Micros) -> f64 {
    t as f64 / DAY as f64
}

fn micros(arg: &str, seconds: Option<f64>) -> PyResult<Option<Micros>> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some((s * SECOND as f64) as Micros)),
        Some(s) => Err(invalid_argument(format!(
            "argument '{arg}': expected a non-negative time in seconds, got {s}"
        ))),
    }
}

fn unit(arg: &str, x: f64) -> PyResult<f32> {
    if x.is_finite() && (0.0..=1.0).contains(&x) {
        Ok(x as f32)
    } else {
        Err(invalid_argument(format!(
            "argument '{arg}': expected a number in 0..=1, got {x}"
        )))
    }
}

/// The Stale Manager (`pit.stale`): training-value tiers, archive and pressure-driven cleanup.
#[pyclass(frozen, module = "symphony.pit._native", name = "StaleManager")]
pub struct PyStaleManager {
    inner: Arc<StaleManager>,
}

impl PyStaleManager {
    pub fn new(inner: Arc<StaleManager>) -> Self {
        Self { inner }
    }
}

/// The manager's settings.
#[pyclass(frozen, module = "symphony.pit._native", name = "StaleSettings")]
pub struct PyStaleSettings {
    inner: Settings,
}

#[pymethods]
impl PyStaleSettings {
    /// Minimum days an artifact stays local after it was stored.
    #[getter]
    fn retention_days(&self) -> f64 {
        days(self.inner.retention)
    }
    /// Read within this many days → hot.
    #[getter]
    fn hot_days(&self) -> f64 {
        days(self.inner.hot_window)
    }
    /// High watermark in bytes, or `None` (never delete).
    #[getter]
    fn high_watermark(&self) -> Option<u64> {
        self.inner.watermarks.map(|w| w.0)
    }
    /// Low watermark in bytes, or `None`.
    #[getter]
    fn low_watermark(&self) -> Option<u64> {
        self.inner.watermarks.map(|w| w.1)
    }
    /// Value at or above which an artifact is high-value.
    #[getter]
    fn high_value(&self) -> f64 {
        f64::from(self.inner.high_value)
    }
    /// Value at or above which an artifact is medium-value.
    #[getter]
    fn medium_value(&self) -> f64 {
        f64::from(self.inner.medium_value)
    }
    /// Capacity of the notification queue.
    #[getter]
    fn notification_capacity(&self) -> u32 {
        self.inner.notification_capacity
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyStaleSettings>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }
    fn __repr__(&self) -> String {
        let s = &self.inner;
        let wm = s
            .watermarks
            .map_or_else(|| "None".to_string(), |(h, l)| format!("({h}, {l})"));
        format!(
            "StaleSettings(retention_days={}, hot_days={}, watermarks={wm}, high_value={}, medium_value={}, notification_capacity={})",
            days(s.retention),
            days(s.hot_window),
            s.high_value,
            s.medium_value,
            s.notification_capacity
        )
    }
}

/// What a sweep did (or, in a dry run, would do).
#[pyclass(frozen, module = "symphony.pit._native", name = "SweepReport")]
pub struct PySweepReport {
    inner: SweepReport,
}

#[pymethods]
impl PySweepReport {
    /// The sweep's time (seconds).
    #[getter]
    fn at(&self) -> f64 {
        secs(self.inner.at)
    }
    /// Whether nothing was changed.
    #[getter]
    fn dry_run(&self) -> bool {
        self.inner.dry_run
    }
    /// Live artifacts examined.
    #[getter]
    fn examined(&self) -> u64 {
        self.inner.examined
    }
    /// Artifacts per tier: `(hot, warm, cold)`.
    #[getter]
    fn tiers(&self) -> (u64, u64, u64) {
        let t = self.inner.tiers;
        (t[0], t[1], t[2])
    }
    /// Artifacts per value class: `(low, medium, high)`.
    #[getter]
    fn classes(&self) -> (u64, u64, u64) {
        let c = self.inner.classes;
        (c[0], c[1], c[2])
    }
    /// The store's local bytes before the sweep.
    #[getter]
    fn local_bytes_before(&self) -> u64 {
        self.inner.local_bytes_before
    }
    /// After (measured; estimated from sizes in a dry run).
    #[getter]
    fn local_bytes_after(&self) -> u64 {
        self.inner.local_bytes_after
    }
    /// Whether local bytes exceeded the high watermark once archiving was done.
    #[getter]
    fn pressure(&self) -> bool {
        self.inner.pressure
    }
    /// Ids selected for archiving.
    #[getter]
    fn archive_candidates(&self) -> Vec<u64> {
        self.inner.archive_candidates.clone()
    }
    /// Ids selected for deletion.
    #[getter]
    fn delete_candidates(&self) -> Vec<u64> {
        self.inner.delete_candidates.clone()
    }
    /// Ids archived (local copy released).
    #[getter]
    fn archived(&self) -> Vec<u64> {
        self.inner.archived.clone()
    }
    /// Ids deleted.
    #[getter]
    fn deleted(&self) -> Vec<u64> {
        self.inner.deleted.clone()
    }
    /// `(id, reason)` of artifacts held back.
    #[getter]
    fn skipped(&self) -> Vec<(u64, String)> {
        self.inner
            .skipped
            .iter()
            .map(|(id, r)| (*id, r.text()))
            .collect()
    }
    /// Notifications this sweep queued.
    #[getter]
    fn notifications(&self) -> u64 {
        self.inner.notifications
    }
    /// Seconds spent classifying and selecting.
    #[getter]
    fn plan_seconds(&self) -> f64 {
        self.inner.plan_micros as f64 / 1e6
    }
    fn __repr__(&self) -> String {
        let r = &self.inner;
        format!(
            "SweepReport(dry_run={}, examined={}, archive_candidates={}, delete_candidates={}, archived={}, deleted={}, skipped={}, pressure={})",
            if r.dry_run { "True" } else { "False" },
            r.examined,
            r.archive_candidates.len(),
            r.delete_candidates.len(),
            r.archived.len(),
            r.deleted.len(),
            r.skipped.len(),
            if r.pressure { "True" } else { "False" }
        )
    }
}

/// Summary of a past (real) sweep.
#[pyclass(frozen, module = "symphony.pit._native", name = "SweepSummary")]
pub struct PySweepSummary {
    inner: SweepSummary,
}

#[pymethods]
impl PySweepSummary {
    /// When (seconds).
    #[getter]
    fn at(&self) -> f64 {
        secs(self.inner.at)
    }
    /// Artifacts examined.
    #[getter]
    fn examined(&self) -> u64 {
        self.inner.examined
    }
    /// Archived.
    #[getter]
    fn archived(&self) -> u64 {
        self.inner.archived
    }
    /// Deleted.
    #[getter]
    fn deleted(&self) -> u64 {
        self.inner.deleted
    }
    /// Skipped.
    #[getter]
    fn skipped(&self) -> u64 {
        self.inner.skipped
    }
    /// Local bytes before.
    #[getter]
    fn local_bytes_before(&self) -> u64 {
        self.inner.local_bytes_before
    }
    /// Local bytes after.
    #[getter]
    fn local_bytes_after(&self) -> u64 {
        self.inner.local_bytes_after
    }
    /// Whether there was storage pressure.
    #[getter]
    fn pressure(&self) -> bool {
        self.inner.pressure
    }
    fn __repr__(&self) -> String {
        let s = &self.inner;
        format!(
            "SweepSummary(at={}, archived={}, deleted={}, skipped={})",
            secs(s.at),
            s.archived,
            s.deleted,
            s.skipped
        )
    }
}

/// A notification for the user.
#[pyclass(frozen, module = "symphony.pit._native", name = "StaleNotification")]
pub struct PyStaleNotification {
    inner: Notification,
}

#[pymethods]
impl PyStaleNotification {
    /// `"archive-candidate"`, `"delete-candidate"`, `"archived"` or `"deleted"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }
    /// The artifact.
    #[getter]
    fn artifact_id(&self) -> u64 {
        self.inner.id
    }
    /// Its training value.
    #[getter]
    fn value(&self) -> f64 {
        f64::from(self.inner.value)
    }
    /// Why.
    #[getter]
    fn reason(&self) -> &str {
        &self.inner.reason
    }
    /// When (seconds).
    #[getter]
    fn at(&self) -> f64 {
        secs(self.inner.at)
    }
    fn __repr__(&self) -> String {
        format!(
            "StaleNotification({}, artifact_id={}, value={:.3}, reason={:?})",
            self.inner.kind.as_str(),
            self.inner.id,
            self.inner.value,
            self.inner.reason
        )
    }
}

/// Value, class and tier of one artifact.
#[pyclass(frozen, module = "symphony.pit._native", name = "ArtifactValue")]
pub struct PyArtifactValue {
    inner: ArtifactValue,
}

#[pymethods]
impl PyArtifactValue {
    /// The artifact.
    #[getter]
    fn artifact_id(&self) -> u64 {
        self.inner.id
    }
    /// Training value in 0..=1.
    #[getter]
    fn value(&self) -> f64 {
        f64::from(self.inner.value)
    }
    /// `"low"`, `"medium"` or `"high"`.
    #[getter]
    fn value_class(&self) -> &'static str {
        self.inner.class.as_str()
    }
    /// `"hot"`, `"warm"` or `"cold"`.
    #[getter]
    fn tier(&self) -> &'static str {
        self.inner.tier.as_str()
    }
    /// Mean quality score.
    #[getter]
    fn quality(&self) -> f64 {
        f64::from(self.inner.quality)
    }
    /// Reuse count.
    #[getter]
    fn reuse(&self) -> u32 {
        self.inner.reuse
    }
    /// Successful runs in its lineage.
    #[getter]
    fn successes(&self) -> u32 {
        self.inner.successes
    }
    /// Diversity term.
    #[getter]
    fn diversity(&self) -> f64 {
        f64::from(self.inner.diversity)
    }
    /// Under legal hold.
    #[getter]
    fn held(&self) -> bool {
        self.inner.held
    }
    /// Blob only in the archive.
    #[getter]
    fn archived(&self) -> bool {
        self.inner.archived
    }
    /// Plaintext size.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size
    }
    /// When stored (seconds).
    #[getter]
    fn created(&self) -> f64 {
        secs(self.inner.created)
    }
    /// Last read (seconds).
    #[getter]
    fn last_access(&self) -> f64 {
        secs(self.inner.last_access)
    }
    fn __repr__(&self) -> String {
        format!(
            "ArtifactValue(artifact_id={}, value={:.3}, value_class='{}', tier='{}')",
            self.inner.id,
            self.inner.value,
            self.inner.class.as_str(),
            self.inner.tier.as_str()
        )
    }
}

#[pymethods]
impl PyStaleManager {
    /// Classify every artifact; archive and (under pressure) delete per the rules.
    #[pyo3(signature = (*, dry_run = false, now = None, durable = false))]
    fn sweep(
        &self,
        py: Python<'_>,
        dry_run: bool,
        now: Option<f64>,
        durable: bool,
    ) -> PyResult<PySweepReport> {
        let now = micros("now", now)?;
        let inner = Arc::clone(&self.inner);
        let rep = detached(py, move || inner.sweep(dry_run, now, durable))?;
        Ok(PySweepReport { inner: rep })
    }

    /// Value, class and tier of one artifact.
    #[pyo3(signature = (artifact_id, *, now = None))]
    fn classify(&self, artifact_id: u64, now: Option<f64>) -> PyResult<PyArtifactValue> {
        let now = micros("now", now)?;
        guard(|| self.inner.classify(artifact_id, now)).map(|inner| PyArtifactValue { inner })
    }

    /// The current settings.
    #[getter]
    fn settings(&self) -> PyStaleSettings {
        PyStaleSettings {
            inner: self.inner.settings(),
        }
    }

    /// Change settings (only those given); returns the new settings.
    #[pyo3(signature = (*, retention_days = None, hot_days = None, high_value = None, medium_value = None, notification_capacity = None, durable = false))]
    fn configure(
        &self,
        retention_days: Option<f64>,
        hot_days: Option<f64>,
        high_value: Option<f64>,
        medium_value: Option<f64>,
        notification_capacity: Option<u32>,
        durable: bool,
    ) -> PyResult<PyStaleSettings> {
        let retention = retention_days
            .map(|d| guard(|| stale::days_to_micros("retention_days", d)))
            .transpose()?;
        let hot = hot_days
            .map(|d| guard(|| stale::days_to_micros("hot_days", d)))
            .transpose()?;
        let high = high_value.map(|v| unit("high_value", v)).transpose()?;
        let medium = medium_value.map(|v| unit("medium_value", v)).transpose()?;
        guard(|| {
            self.inner.update_settings(durable, |s| {
                if let Some(r) = retention {
                    s.retention = r;
                }
                if let Some(h) = hot {
                    s.hot_window = h;
                }
                if let Some(h) = high {
                    s.high_value = h;
                }
                if let Some(m) = medium {
                    s.medium_value = m;
                }
                if let Some(c) = notification_capacity {
                    s.notification_capacity = c;
                }
                Ok(())
            })
        })
        .map(|inner| PyStaleSettings { inner })
    }

    /// Set the storage-pressure watermarks (bytes of the store's local size; `low < high`).
    #[pyo3(signature = (high, low, *, durable = false))]
    fn set_watermarks(
        &self,
        #[pyo3(from_py_with = int_u64)] high: u64,
        #[pyo3(from_py_with = int_u64)] low: u64,
        durable: bool,
    ) -> PyResult<PyStaleSettings> {
        guard(|| {
            self.inner.update_settings(durable, |s| {
                s.watermarks = Some((high, low));
                Ok(())
            })
        })
        .map(|inner| PyStaleSettings { inner })
    }

    /// Remove the watermarks: nothing is deleted any more.
    #[pyo3(signature = (*, durable = false))]
    fn clear_watermarks(&self, durable: bool) -> PyResult<PyStaleSettings> {
        guard(|| {
            self.inner.update_settings(durable, |s| {
                s.watermarks = None;
                Ok(())
            })
        })
        .map(|inner| PyStaleSettings { inner })
    }

    /// Take queued notifications (up to `max`, all by default), oldest first.
    #[pyo3(signature = (max = None))]
    fn notifications(
        &self,
        #[pyo3(from_py_with = opt_int_usize)] max: Option<usize>,
    ) -> Vec<PyStaleNotification> {
        self.inner
            .take_notifications(max)
            .into_iter()
            .map(|inner| PyStaleNotification { inner })
            .collect()
    }

    /// Notifications waiting in the queue.
    #[getter]
    fn pending_notifications(&self) -> usize {
        self.inner.notification_counts().0
    }

    /// Notifications dropped because the queue was full.
    #[getter]
    fn dropped_notifications(&self) -> u64 {
        self.inner.notification_counts().1
    }

    /// The archive key of an archived artifact, or `None`.
    fn archive_key(&self, artifact_id: u64) -> Option<String> {
        self.inner.archive_record(artifact_id).map(|r| r.key)
    }

    /// `(artifact_id, key)` of every recorded archive copy.
    fn archived(&self) -> Vec<(u64, String)> {
        self.inner
            .archive_records()
            .into_iter()
            .map(|r| (r.id, r.key))
            .collect()
    }

    /// `(key, size)` of the backend's objects whose key starts with `prefix`.
    #[pyo3(signature = (prefix = ""))]
    fn archive_objects(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<(String, u64)>> {
        let inner = Arc::clone(&self.inner);
        let prefix = prefix.to_string();
        let objs = detached(py, move || inner.archive().list(&prefix))?;
        Ok(objs.into_iter().map(|o| (o.key, o.size)).collect())
    }

    /// Re-read the archive object `key` and check its checksum; returns `(size, blake3 hex)`.
    fn verify_archive_object(&self, py: Python<'_>, key: &str) -> PyResult<(u64, String)> {
        let inner = Arc::clone(&self.inner);
        let key = key.to_string();
        let o = detached(py, move || inner.archive().verify(&key))?;
        let hex = o
            .checksum
            .iter()
            .fold(String::with_capacity(64), |mut h, b| {
                let _ = write!(h, "{b:02x}");
                h
            });
        Ok((o.size, hex))
    }

    /// The archive backend (`"memory"`, `"dir:/path"`).
    #[getter]
    fn archive_backend(&self) -> String {
        self.inner.archive().describe()
    }

    /// Bring an archived artifact's blob back locally from its verified archive copy.
    fn restore(&self, py: Python<'_>, artifact_id: u64) -> PyResult<()> {
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.restore_from_archive(artifact_id))
    }

    /// Summaries of the last real sweeps, oldest first.
    fn history(&self) -> Vec<PySweepSummary> {
        self.inner
            .history()
            .into_iter()
            .map(|inner| PySweepSummary { inner })
            .collect()
    }

    /// FOR BENCHMARKS AND TESTS ONLY: feed `count` seeded synthetic artifacts through the event
    /// path (they do not exist in the store). Returns the first id.
    #[pyo3(signature = (count, seed = 0))]
    fn _load_synthetic_for_benchmark(
        &self,
        py: Python<'_>,
        count: usize,
        seed: u64,
    ) -> PyResult<u64> {
        let inner = Arc::clone(&self.inner);
        detached(py, move || {
            Ok(inner.load_synthetic_for_benchmark(count, seed))
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStaleManager>()?;
    m.add_class::<PyStaleSettings>()?;
    m.add_class::<PySweepReport>()?;
    m.add_class::<PySweepSummary>()?;
    m.add_class::<PyStaleNotification>()?;
    m.add_class::<PyArtifactValue>()
}
