//! Binding of the `DagTracker`. SKELETON — replaced wholesale by the component implementation.

use std::sync::Arc;

use pyo3::prelude::*;

/// The `DagTracker` (`pit.dag`).
#[pyclass(frozen, module = "symphony.pit._native", name = "DagTracker")]
pub struct PyDagTracker {
    #[allow(dead_code)]
    inner: Arc<pit_core::dag::DagTracker>,
}

impl PyDagTracker {
    pub fn new(inner: Arc<pit_core::dag::DagTracker>) -> Self {
        Self { inner }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDagTracker>()
}
