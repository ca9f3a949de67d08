//! `Pit`: the five components over one shared state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pit_core::{Clock, JournalOptions, PitOptions, SECOND};
use pyo3::prelude::*;

use crate::arbitration::PyArbitrationEngine;
use crate::artifacts::PyArtifactStore;
use crate::dag::PyDagTracker;
use crate::errors::{detached, int_u64, invalid_argument};
use crate::pool::PyPoolManager;
use crate::stale::PyStaleManager;

/// The native Pit. `symphony.pit.Pit` wraps it (key resolution, context manager).
#[pyclass(frozen, module = "symphony.pit._native", name = "Pit")]
pub struct PyPit {
    inner: Arc<pit_core::Pit>,
    #[pyo3(get)]
    pool: Py<PyPoolManager>,
    #[pyo3(get)]
    dag: Py<PyDagTracker>,
    #[pyo3(get)]
    artifacts: Py<PyArtifactStore>,
    #[pyo3(get)]
    arbitration: Py<PyArbitrationEngine>,
    #[pyo3(get)]
    stale: Py<PyStaleManager>,
}

fn key_array(key: Option<&[u8]>) -> PyResult<Option<[u8; 32]>> {
    key.map(|k| {
        <[u8; 32]>::try_from(k).map_err(|_| {
            invalid_argument(format!(
                "argument 'key': expected 32 bytes, got {}",
                k.len()
            ))
        })
    })
    .transpose()
}

fn clock(manual_clock: Option<f64>) -> PyResult<Clock> {
    match manual_clock {
        None => Ok(Clock::system()),
        Some(t) if t.is_finite() && t >= 0.0 => Ok(Clock::manual((t * SECOND as f64) as u64)),
        Some(t) => Err(invalid_argument(format!(
            "argument 'manual_clock': expected a non-negative time in seconds, got {t}"
        ))),
    }
}

impl PyPit {
    fn wrap(py: Python<'_>, inner: Arc<pit_core::Pit>) -> PyResult<Self> {
        Ok(Self {
            pool: Py::new(py, PyPoolManager::new(Arc::clone(&inner.pool)))?,
            dag: Py::new(py, PyDagTracker::new(Arc::clone(&inner.dag)))?,
            artifacts: Py::new(py, PyArtifactStore::new(Arc::clone(&inner.artifacts)))?,
            arbitration: Py::new(py, PyArbitrationEngine::new(Arc::clone(&inner.arbitration)))?,
            stale: Py::new(py, PyStaleManager::new(Arc::clone(&inner.stale)))?,
            inner,
        })
    }
}

#[pymethods]
impl PyPit {
    /// Open or create a persistent Pit in `path`, encrypting artifacts with the 32-byte `key`.
    /// With `read_only`, open an existing one without writing anything to it.
    #[staticmethod]
    #[pyo3(signature = (path, key, *, archive_dir = None, manual_clock = None, flush_interval_ms = 2.0, checkpoint_mib = 128, read_only = false))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        key: &[u8],
        archive_dir: Option<PathBuf>,
        manual_clock: Option<f64>,
        flush_interval_ms: f64,
        #[pyo3(from_py_with = int_u64)] checkpoint_mib: u64,
        read_only: bool,
    ) -> PyResult<Self> {
        if !(flush_interval_ms.is_finite() && flush_interval_ms > 0.0) {
            return Err(invalid_argument(format!(
                "argument 'flush_interval_ms': expected a positive number, got {flush_interval_ms}"
            )));
        }
        let options = PitOptions {
            key: key_array(Some(key))?,
            clock: clock(manual_clock)?,
            archive_dir,
            journal: JournalOptions {
                flush_interval: Duration::from_secs_f64(flush_interval_ms / 1000.0),
                checkpoint_bytes: checkpoint_mib.max(1) << 20,
            },
        };
        let inner = detached(py, move || {
            if read_only {
                pit_core::Pit::open_read_only(&path, &options)
            } else {
                pit_core::Pit::open(&path, &options)
            }
        })?;
        Self::wrap(py, inner)
    }

    /// A Pit with no disk.
    #[staticmethod]
    #[pyo3(signature = (*, key = None, archive_dir = None, manual_clock = None))]
    fn in_memory(
        py: Python<'_>,
        key: Option<&[u8]>,
        archive_dir: Option<PathBuf>,
        manual_clock: Option<f64>,
    ) -> PyResult<Self> {
        let options = PitOptions {
            key: key_array(key)?,
            clock: clock(manual_clock)?,
            archive_dir,
            journal: JournalOptions::default(),
        };
        let inner = detached(py, move || pit_core::Pit::in_memory(&options))?;
        Self::wrap(py, inner)
    }

    /// Make every acknowledged change durable.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.sync())
    }

    /// Snapshot every component and drop the journal it covers.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.checkpoint())
    }

    /// Flush, checkpoint and close. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let inner = Arc::clone(&self.inner);
        detached(py, move || inner.close())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Whether the Pit was opened with `read_only=True`.
    #[getter]
    fn read_only(&self) -> bool {
        self.inner.is_read_only()
    }

    /// The data directory, or `None` in memory.
    #[getter]
    fn data_dir(&self) -> Option<PathBuf> {
        self.inner.data_dir().map(std::path::Path::to_path_buf)
    }

    /// The Pit clock's time, in seconds since the Unix epoch.
    fn now(&self) -> f64 {
        self.inner.clock().now() as f64 / SECOND as f64
    }

    /// Move a manual clock forward by `seconds`; returns the new time.
    fn advance_clock(&self, seconds: f64) -> PyResult<f64> {
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(invalid_argument(format!(
                "argument 'seconds': expected a non-negative number, got {seconds}"
            )));
        }
        let (t, manual) = self.inner.clock().advance((seconds * SECOND as f64) as u64);
        if !manual {
            return Err(invalid_argument(
                "advance_clock needs a Pit opened with manual_clock".to_string(),
            ));
        }
        Ok(t as f64 / SECOND as f64)
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPit>()
}
