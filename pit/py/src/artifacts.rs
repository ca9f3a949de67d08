//! Binding of the `ArtifactStore`. SKELETON — replaced wholesale by the component implementation.

use std::sync::Arc;

use pyo3::prelude::*;

/// The `ArtifactStore` (`pit.artifacts`).
#[pyclass(frozen, module = "symphony.pit._native", name = "ArtifactStore")]
pub struct PyArtifactStore {
    #[allow(dead_code)]
    inner: Arc<pit_core::artifacts::ArtifactStore>,
}

impl PyArtifactStore {
    pub fn new(inner: Arc<pit_core::artifacts::ArtifactStore>) -> Self {
        Self { inner }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyArtifactStore>()
}
