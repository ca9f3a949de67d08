//! Binding of the `ArbitrationEngine`. SKELETON — replaced wholesale by the component implementation.

use std::sync::Arc;

use pyo3::prelude::*;

/// The `ArbitrationEngine` (`pit.arbitration`).
#[pyclass(frozen, module = "symphony.pit._native", name = "ArbitrationEngine")]
pub struct PyArbitrationEngine {
    #[allow(dead_code)]
    inner: Arc<pit_core::arbitration::ArbitrationEngine>,
}

impl PyArbitrationEngine {
    pub fn new(inner: Arc<pit_core::arbitration::ArbitrationEngine>) -> Self {
        Self { inner }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyArbitrationEngine>()
}
