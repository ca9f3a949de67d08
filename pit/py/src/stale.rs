//! Binding of the `StaleManager`. SKELETON — replaced wholesale by the component implementation.

use std::sync::Arc;

use pyo3::prelude::*;

/// The `StaleManager` (`pit.stale`).
#[pyclass(frozen, module = "symphony.pit._native", name = "StaleManager")]
pub struct PyStaleManager {
    #[allow(dead_code)]
    inner: Arc<pit_core::stale::StaleManager>,
}

impl PyStaleManager {
    pub fn new(inner: Arc<pit_core::stale::StaleManager>) -> Self {
        Self { inner }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStaleManager>()
}
