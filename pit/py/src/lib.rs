//! `symphony.pit._native`: the `PyO3` binding of `pit-core`. Only `symphony/pit/` imports it.
//!
//! One file per component; errors are mapped in exactly one place (`errors.rs`).

mod arbitration;
mod artifacts;
mod dag;
mod errors;
mod pit;
mod pool;
mod stale;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    pit::register(m)?;
    pool::register(m)?;
    dag::register(m)?;
    artifacts::register(m)?;
    arbitration::register(m)?;
    stale::register(m)?;
    Ok(())
}
