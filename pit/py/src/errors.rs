//! The one place Rust errors become Python exceptions, and the helpers every binding uses to call
//! into pit-core (GIL release for long calls, panics turned into `PitError`).
//!
//! The exception classes live in Python (`symphony/pit/errors.py`) so the app can catch them
//! without the binary; each is constructed as `Class(message, subject)` where `subject` is `None`,
//! the id the error names, or a tuple of ids (the nodes of a cycle).

use std::panic::{catch_unwind, AssertUnwindSafe};

use pit_core::{Classify, Detail, ErrorKind};
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::PyErrArguments;

pyo3::import_exception!(symphony.pit.errors, PitError);
pyo3::import_exception!(symphony.pit.errors, PitClosedError);
pyo3::import_exception!(symphony.pit.errors, InvalidArgumentError);
pyo3::import_exception!(symphony.pit.errors, AlreadyExistsError);
pyo3::import_exception!(symphony.pit.errors, ModelNotFoundError);
pyo3::import_exception!(symphony.pit.errors, LeaseNotFoundError);
pyo3::import_exception!(symphony.pit.errors, WorkflowNotFoundError);
pyo3::import_exception!(symphony.pit.errors, NodeNotFoundError);
pyo3::import_exception!(symphony.pit.errors, ArtifactNotFoundError);
pyo3::import_exception!(symphony.pit.errors, RequestNotFoundError);
pyo3::import_exception!(symphony.pit.errors, IllegalTransitionError);
pyo3::import_exception!(symphony.pit.errors, PoolExhaustedError);
pyo3::import_exception!(symphony.pit.errors, AcquireTimeoutError);
pyo3::import_exception!(symphony.pit.errors, ModelUnavailableError);
pyo3::import_exception!(symphony.pit.errors, MemoryLimitError);
pyo3::import_exception!(symphony.pit.errors, BudgetExceededError);
pyo3::import_exception!(symphony.pit.errors, DagCycleError);
pyo3::import_exception!(symphony.pit.errors, ArtifactIntegrityError);
pyo3::import_exception!(symphony.pit.errors, AuditChainError);
pyo3::import_exception!(symphony.pit.errors, LegalHoldError);
pyo3::import_exception!(symphony.pit.errors, RetentionError);
pyo3::import_exception!(symphony.pit.errors, EncryptionKeyError);
pyo3::import_exception!(symphony.pit.errors, StorageError);
pyo3::import_exception!(symphony.pit.errors, DataDirCorruptError);
pyo3::import_exception!(symphony.pit.errors, ForeignDataDirError);
pyo3::import_exception!(symphony.pit.errors, DataDirLockedError);
pyo3::import_exception!(symphony.pit.errors, ArchiveError);
pyo3::import_exception!(symphony.pit.errors, ReadOnlyError);

/// A pit-core error on its way to Python.
pub struct PyPitErr(pub pit_core::Error);

impl From<pit_core::Error> for PyPitErr {
    fn from(e: pit_core::Error) -> Self {
        Self(e)
    }
}

fn new_err<A: PyErrArguments + Send + Sync + 'static>(kind: ErrorKind, args: A) -> PyErr {
    match kind {
        ErrorKind::Internal => PitError::new_err(args),
        ErrorKind::Closed => PitClosedError::new_err(args),
        ErrorKind::InvalidArgument => InvalidArgumentError::new_err(args),
        ErrorKind::AlreadyExists => AlreadyExistsError::new_err(args),
        ErrorKind::ModelNotFound => ModelNotFoundError::new_err(args),
        ErrorKind::LeaseNotFound => LeaseNotFoundError::new_err(args),
        ErrorKind::WorkflowNotFound => WorkflowNotFoundError::new_err(args),
        ErrorKind::NodeNotFound => NodeNotFoundError::new_err(args),
        ErrorKind::ArtifactNotFound => ArtifactNotFoundError::new_err(args),
        ErrorKind::RequestNotFound => RequestNotFoundError::new_err(args),
        ErrorKind::IllegalTransition => IllegalTransitionError::new_err(args),
        ErrorKind::PoolExhausted => PoolExhaustedError::new_err(args),
        ErrorKind::AcquireTimeout => AcquireTimeoutError::new_err(args),
        ErrorKind::ModelUnavailable => ModelUnavailableError::new_err(args),
        ErrorKind::MemoryLimit => MemoryLimitError::new_err(args),
        ErrorKind::BudgetExceeded => BudgetExceededError::new_err(args),
        ErrorKind::DagCycle => DagCycleError::new_err(args),
        ErrorKind::ArtifactIntegrity => ArtifactIntegrityError::new_err(args),
        ErrorKind::AuditChain => AuditChainError::new_err(args),
        ErrorKind::LegalHold => LegalHoldError::new_err(args),
        ErrorKind::Retention => RetentionError::new_err(args),
        ErrorKind::EncryptionKey => EncryptionKeyError::new_err(args),
        ErrorKind::Storage => StorageError::new_err(args),
        ErrorKind::DataDirCorrupt => DataDirCorruptError::new_err(args),
        ErrorKind::ForeignDataDir => ForeignDataDirError::new_err(args),
        ErrorKind::DataDirLocked => DataDirLockedError::new_err(args),
        ErrorKind::Archive => ArchiveError::new_err(args),
        ErrorKind::ReadOnly => ReadOnlyError::new_err(args),
    }
}

/// Build the exception for `kind` lazily (no GIL needed): `Class(message, subject)`.
fn to_pyerr(kind: ErrorKind, message: String, detail: Detail) -> PyErr {
    match detail {
        Detail::None => new_err(kind, (message, Option::<String>::None)),
        Detail::Subject(s) => new_err(kind, (message, s)),
        Detail::Items(items) => new_err(kind, (message, items)),
    }
}

/// An `InvalidArgumentError` (a `ValueError`) with `message`.
pub fn invalid_argument(message: impl Into<String>) -> PyErr {
    InvalidArgumentError::new_err((message.into(), Option::<String>::None))
}

impl From<PyPitErr> for PyErr {
    fn from(e: PyPitErr) -> Self {
        to_pyerr(e.0.kind(), e.0.to_string(), e.0.detail())
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Run a trivial call with the GIL held; a panic becomes `PitError`.
#[inline]
#[allow(dead_code)] // used by the component bindings
pub fn guard<T>(f: impl FnOnce() -> pit_core::Result<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| PyErr::from(PyPitErr(e))),
        Err(p) => Err(PitError::new_err(format!(
            "internal error (panic in the Pit): {}",
            panic_message(p.as_ref())
        ))),
    }
}

/// Run a long call with the GIL released; a panic becomes `PitError`.
pub fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> pit_core::Result<T> + Send,
) -> PyResult<T> {
    let r = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match r {
        Ok(r) => r.map_err(|e| PyErr::from(PyPitErr(e))),
        Err(p) => Err(PitError::new_err(format!(
            "internal error (panic in the Pit): {}",
            panic_message(p.as_ref())
        ))),
    }
}

/// A `TypeError` naming the argument, for values `PyO3`'s extraction cannot check by type alone.
#[allow(dead_code)] // used by the component bindings
/// Extract an integer of type `T`; an int out of `T`'s range (negative, too large) is a refused
/// value, `InvalidArgumentError`, not a bare `OverflowError` (pyo3 adds a note naming the
/// argument to either).
fn int_in_range<T>(
    ob: &Bound<'_, PyAny>,
    range: &str,
    extract: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<T> {
    extract(ob).map_err(|e| {
        if e.is_instance_of::<PyOverflowError>(ob.py()) {
            let mut shown = ob.to_string();
            if shown.len() > 40 {
                shown = format!("{}…", &shown[..40]);
            }
            invalid_argument(format!("expected an integer from {range}, got {shown}"))
        } else {
            e
        }
    })
}

/// `from_py_with` for a `u32` argument (see [`int_in_range`]).
pub fn int_u32(ob: &Bound<'_, PyAny>) -> PyResult<u32> {
    int_in_range(ob, "0 to 4294967295", |o| o.extract())
}

/// `from_py_with` for a `u64` argument (see [`int_in_range`]).
pub fn int_u64(ob: &Bound<'_, PyAny>) -> PyResult<u64> {
    int_in_range(ob, "0 to 2**64 - 1", |o| o.extract())
}

/// `from_py_with` for an optional `u64` argument (see [`int_in_range`]).
pub fn opt_int_u64(ob: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    if ob.is_none() {
        return Ok(None);
    }
    int_u64(ob).map(Some)
}

/// `from_py_with` for a `usize` argument (see [`int_in_range`]).
pub fn int_usize(ob: &Bound<'_, PyAny>) -> PyResult<usize> {
    int_in_range(ob, "0 to 2**64 - 1", |o| o.extract())
}

/// `from_py_with` for an optional `usize` argument (see [`int_in_range`]).
pub fn opt_int_usize(ob: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
    if ob.is_none() {
        return Ok(None);
    }
    int_usize(ob).map(Some)
}

/// `from_py_with` for an `i32` argument (see [`int_in_range`]).
pub fn int_i32(ob: &Bound<'_, PyAny>) -> PyResult<i32> {
    int_in_range(ob, "-2147483648 to 2147483647", |o| o.extract())
}

pub fn type_error(arg: &str, expected: &str, got: &Bound<'_, PyAny>) -> PyErr {
    let got = got
        .get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string());
    PyTypeError::new_err(format!("argument '{arg}': expected {expected}, got {got}"))
}

/// Raise the exception a kind maps to, with `message` (exposed for the mapping test).
#[pyfunction]
#[pyo3(signature = (class_name, message = String::new()))]
fn _raise_kind(class_name: &str, message: String) -> PyResult<()> {
    let kind = ErrorKind::ALL
        .iter()
        .copied()
        .find(|k| k.class_name() == class_name)
        .ok_or_else(|| PyTypeError::new_err(format!("no error kind maps to {class_name}")))?;
    Err(to_pyerr(kind, message, Detail::Subject("subject".into())))
}

/// The Python class name of every error kind (for the mapping test).
#[pyfunction]
fn _error_kinds() -> Vec<&'static str> {
    ErrorKind::ALL.iter().map(|k| k.class_name()).collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_raise_kind, m)?)?;
    m.add_function(wrap_pyfunction!(_error_kinds, m)?)?;
    Ok(())
}
