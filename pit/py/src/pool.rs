//! Binding of the `PoolManager`. SKELETON — replaced wholesale by the component implementation.

use std::sync::Arc;

use pyo3::prelude::*;

/// The `PoolManager` (`pit.pool`).
#[pyclass(frozen, module = "symphony.pit._native", name = "PoolManager")]
pub struct PyPoolManager {
    #[allow(dead_code)]
    inner: Arc<pit_core::pool::PoolManager>,
}

impl PyPoolManager {
    pub fn new(inner: Arc<pit_core::pool::PoolManager>) -> Self {
        Self { inner }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPoolManager>()
}
