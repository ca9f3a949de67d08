//! Binding of the `PoolManager` (`pit.pool`) and the pre-warming simulation.

use std::sync::Arc;
use std::time::Duration;

use pit_core::pool::{
    self, sim, HealthPolicy, KeepAlive, Lifecycle, ModelSpec, Outcome, PoolManager, Request,
};
use pit_core::{Classify, ErrorKind, Micros, SECOND};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

use crate::errors::{
    detached, guard, int_i32, int_u32, int_u64, invalid_argument, opt_int_u64, type_error,
};

fn micros(arg: &str, seconds: f64) -> PyResult<Micros> {
    if seconds.is_finite() && seconds >= 0.0 {
        Ok((seconds * SECOND as f64) as Micros)
    } else {
        Err(invalid_argument(format!(
            "argument '{arg}': expected a non-negative number of seconds, got {seconds}"
        )))
    }
}

fn secs(us: Micros) -> f64 {
    us as f64 / SECOND as f64
}

#[allow(clippy::needless_pass_by_value)] // used with Result::map on owned vectors
fn names(v: Vec<Arc<str>>) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// A granted slot. Pass it (or its `id`) to `PoolManager.release`.
#[pyclass(frozen, module = "symphony.pit._native", name = "Lease")]
pub struct PyLease {
    /// Lease id.
    #[pyo3(get)]
    id: u64,
    model: Arc<str>,
    requested: Arc<str>,
    /// Slot index within the serving model.
    #[pyo3(get)]
    slot: u32,
    /// The acquire found the model idle or loading.
    #[pyo3(get)]
    cold_start: bool,
    /// The half-open probe of a down model.
    #[pyo3(get)]
    probe: bool,
}

impl From<pool::Lease> for PyLease {
    fn from(l: pool::Lease) -> Self {
        Self {
            id: l.id,
            model: l.model,
            requested: l.requested,
            slot: l.slot,
            cold_start: l.cold_start,
            probe: l.probe,
        }
    }
}

#[pymethods]
impl PyLease {
    /// The model serving the lease (the requested one or a fallback).
    #[getter]
    fn model(&self) -> &str {
        &self.model
    }
    /// The model requested.
    #[getter]
    fn requested(&self) -> &str {
        &self.requested
    }
    fn __int__(&self) -> u64 {
        self.id
    }
    fn __repr__(&self) -> String {
        format!(
            "Lease(id={}, model={:?}, requested={:?}, slot={}, cold_start={}, probe={})",
            self.id,
            &*self.model,
            &*self.requested,
            self.slot,
            if self.cold_start { "True" } else { "False" },
            if self.probe { "True" } else { "False" }
        )
    }
}

/// A model's state, read in one go.
#[pyclass(frozen, module = "symphony.pit._native", name = "ModelInfo", get_all)]
pub struct PyModelInfo {
    model: String,
    slots: u32,
    in_use: u32,
    memory: u64,
    price_per_call: f64,
    price_per_token: f64,
    fallbacks: Vec<String>,
    keep_alive: f64,
    state: &'static str,
    state_since: f64,
    health: &'static str,
    error_rate: f64,
    spent: f64,
    budget: Option<f64>,
    calls: u64,
    errors: u64,
    cold_starts: u64,
    waiting: usize,
    last_used: f64,
}

#[pymethods]
impl PyModelInfo {
    fn __repr__(&self) -> String {
        format!(
            "ModelInfo(model={:?}, state={:?}, health={:?}, in_use={}/{}, spent={}, calls={}, cold_starts={})",
            self.model, self.state, self.health, self.in_use, self.slots, self.spent, self.calls,
            self.cold_starts
        )
    }
}

/// One pre-warming simulation: the predictor against a fixed 5-minute keep-alive.
#[pyclass(
    frozen,
    module = "symphony.pit._native",
    name = "PrewarmSimResult",
    get_all
)]
pub struct PySimResult {
    trace: String,
    seed: u64,
    invocations: u64,
    baseline_cold_starts: u64,
    baseline_memory_minutes: f64,
    predictive_cold_starts: u64,
    predictive_memory_minutes: f64,
    cold_start_reduction: f64,
}

#[pymethods]
impl PySimResult {
    fn __repr__(&self) -> String {
        format!(
            "PrewarmSimResult(trace={:?}, seed={}, invocations={}, baseline=({} cold, {:.0} GB·min), predictive=({} cold, {:.0} GB·min), cold_start_reduction={:.3})",
            self.trace,
            self.seed,
            self.invocations,
            self.baseline_cold_starts,
            self.baseline_memory_minutes,
            self.predictive_cold_starts,
            self.predictive_memory_minutes,
            self.cold_start_reduction
        )
    }
}

/// The `PoolManager` (`pit.pool`).
#[pyclass(frozen, module = "symphony.pit._native", name = "PoolManager")]
pub struct PyPoolManager {
    inner: Arc<PoolManager>,
}

impl PyPoolManager {
    pub fn new(inner: Arc<PoolManager>) -> Self {
        Self { inner }
    }
}

fn lease_id(lease: &Bound<'_, PyAny>) -> PyResult<u64> {
    if let Ok(l) = lease.cast::<PyLease>() {
        return Ok(l.get().id);
    }
    if lease.is_instance_of::<PyInt>() && !lease.is_instance_of::<PyBool>() {
        // Right type, value out of range: no lease has that id.
        return lease.extract::<u64>().map_err(|_| {
            invalid_argument(format!(
                "argument 'lease': expected a lease id (a non-negative integer below 2**64), \
                 got {lease}"
            ))
        });
    }
    Err(type_error("lease", "Lease or int", lease))
}

fn opt_money(arg: &str, v: Option<f64>) -> PyResult<Option<f64>> {
    match v {
        Some(x) if !(x.is_finite() && x >= 0.0) => Err(invalid_argument(format!(
            "argument '{arg}': expected a finite non-negative number, got {x}"
        ))),
        v => Ok(v),
    }
}

#[pymethods]
impl PyPoolManager {
    /// Run the deterministic pre-warming simulation on `trace` ("periodic", "bursty", "random" or
    /// "poisson") with `seed`.
    #[staticmethod]
    #[pyo3(signature = (trace, seed = 0))]
    fn simulate_prewarm(py: Python<'_>, trace: String, seed: u64) -> PyResult<PySimResult> {
        if !sim::TRACES.contains(&trace.as_str()) {
            return Err(invalid_argument(format!(
                "argument 'trace': unknown trace {trace:?}; expected one of {}",
                sim::TRACES.join(", ")
            )));
        }
        let r = detached(py, move || {
            sim::simulate(&trace, seed).ok_or_else(|| pit_core::Error::Internal("no trace".into()))
        })?;
        Ok(PySimResult {
            cold_start_reduction: r.cold_start_reduction(),
            trace: r.trace,
            seed: r.seed,
            invocations: r.invocations,
            baseline_cold_starts: r.baseline.cold_starts,
            baseline_memory_minutes: r.baseline.memory_minutes,
            predictive_cold_starts: r.predictive.cold_starts,
            predictive_memory_minutes: r.predictive.memory_minutes,
        })
    }

    /// Register a model.
    #[pyo3(signature = (model, *, slots = 1, memory = 0, price_per_call = 0.0, price_per_token = 0.0, fallbacks = Vec::new(), keep_alive = 300.0, durable = false))]
    #[allow(clippy::too_many_arguments)] // mirrors the keyword-only Python signature
    fn register(
        &self,
        model: String,
        #[pyo3(from_py_with = int_u32)] slots: u32,
        #[pyo3(from_py_with = int_u64)] memory: u64,
        price_per_call: f64,
        price_per_token: f64,
        fallbacks: Vec<String>,
        keep_alive: f64,
        durable: bool,
    ) -> PyResult<()> {
        let spec = ModelSpec {
            id: model,
            slots,
            memory,
            price_per_call,
            price_per_token,
            fallbacks,
            keep_alive: micros("keep_alive", keep_alive)?,
        };
        guard(|| self.inner.register(spec, durable))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, model: &str) -> bool {
        self.inner.contains(model)
    }

    /// Ids of the registered models.
    fn models(&self) -> Vec<String> {
        names(self.inner.models())
    }

    /// A model's state.
    fn info(&self, model: &str) -> PyResult<PyModelInfo> {
        let i = guard(|| self.inner.info(model))?;
        Ok(PyModelInfo {
            model: i.spec.id,
            slots: i.spec.slots,
            in_use: i.in_use,
            memory: i.spec.memory,
            price_per_call: i.spec.price_per_call,
            price_per_token: i.spec.price_per_token,
            fallbacks: i.spec.fallbacks,
            keep_alive: secs(i.spec.keep_alive),
            state: i.state.as_str(),
            state_since: secs(i.since),
            health: i.health.as_str(),
            error_rate: i.error_rate,
            spent: i.spent,
            budget: i.budget,
            calls: i.calls,
            errors: i.errors,
            cold_starts: i.cold_starts,
            waiting: i.waiting,
            last_used: secs(i.last_used),
        })
    }

    /// A model's lifecycle state.
    fn state(&self, model: &str) -> PyResult<&'static str> {
        guard(|| self.inner.state(model)).map(|s| s.0.as_str())
    }

    /// A model's health: "healthy", "degraded" or "down".
    fn health(&self, model: &str) -> PyResult<&'static str> {
        guard(|| self.inner.health(model)).map(pool::Health::as_str)
    }

    /// The last transitions of a model: `(from, to, at)`.
    fn history(&self, model: &str) -> PyResult<Vec<(&'static str, &'static str, f64)>> {
        let h = guard(|| self.inner.history(model))?;
        Ok(h.into_iter()
            .map(|(a, b, t)| (a.as_str(), b.as_str(), secs(t)))
            .collect())
    }

    /// Report a lifecycle transition (the extension host loading or unloading a model).
    /// Returns the models evicted to make room.
    fn transition(&self, model: &str, to: &str) -> PyResult<Vec<String>> {
        let to = guard(|| Lifecycle::parse(to))?;
        guard(|| self.inner.transition(model, to)).map(names)
    }

    /// Load an idle model now (idle → loading → warm). Returns the models evicted.
    fn prewarm(&self, model: &str) -> PyResult<Vec<String>> {
        guard(|| self.inner.prewarm(model)).map(names)
    }

    /// Take a slot now, or raise `PoolExhaustedError`.
    #[pyo3(signature = (model, *, owner = "", priority = 0, budget = None, estimate = None))]
    fn try_acquire(
        &self,
        model: &str,
        owner: &str,
        #[pyo3(from_py_with = int_i32)] priority: i32,
        budget: Option<f64>,
        estimate: Option<f64>,
    ) -> PyResult<PyLease> {
        let req = Request {
            model,
            owner,
            priority,
            budget,
            estimate,
        };
        guard(|| self.inner.try_acquire(&req)).map(PyLease::from)
    }

    /// Take a slot, waiting up to `timeout` seconds (forever with `None`) with the GIL
    /// released; raises `AcquireTimeoutError`.
    #[pyo3(signature = (model, *, owner = "", priority = 0, budget = None, estimate = None, timeout = None))]
    #[allow(clippy::too_many_arguments)] // mirrors the keyword-only Python signature
    fn acquire(
        &self,
        py: Python<'_>,
        model: &str,
        owner: &str,
        #[pyo3(from_py_with = int_i32)] priority: i32,
        budget: Option<f64>,
        estimate: Option<f64>,
        timeout: Option<f64>,
    ) -> PyResult<PyLease> {
        // Checked before the fast path, so that a bad timeout is refused whether or not a slot
        // happens to be free.
        let timeout = timeout
            .map(|t| micros("timeout", t).map(Duration::from_micros))
            .transpose()?;
        let req = Request {
            model,
            owner,
            priority,
            budget,
            estimate,
        };
        // The fast path needs no GIL release.
        let fast = guard(|| match self.inner.try_acquire(&req) {
            Ok(l) => Ok(Some(l)),
            Err(e) if e.kind() == ErrorKind::PoolExhausted => Ok(None),
            Err(e) => Err(e),
        })?;
        if let Some(l) = fast {
            return Ok(l.into());
        }
        let inner = Arc::clone(&self.inner);
        let (model, owner) = (model.to_string(), owner.to_string());
        detached(py, move || {
            let req = Request {
                model: &model,
                owner: &owner,
                priority,
                budget,
                estimate,
            };
            inner.acquire(&req, timeout)
        })
        .map(PyLease::from)
    }

    /// Return a slot with the outcome; returns the cost charged.
    #[pyo3(signature = (lease, *, ok = true, latency = 0.0, tokens = 0, cost = None, durable = false))]
    fn release(
        &self,
        lease: &Bound<'_, PyAny>,
        ok: bool,
        latency: f64,
        #[pyo3(from_py_with = int_u64)] tokens: u64,
        cost: Option<f64>,
        durable: bool,
    ) -> PyResult<f64> {
        let id = lease_id(lease)?;
        let outcome = Outcome {
            ok,
            latency,
            tokens,
            cost,
        };
        guard(|| self.inner.release(id, outcome, durable))
    }

    /// Number of leases held.
    fn leased(&self) -> usize {
        self.inner.leases()
    }

    /// Set (or clear with `None`) an owner's hard budget.
    #[pyo3(signature = (owner, budget, *, durable = false))]
    fn set_owner_budget(&self, owner: &str, budget: Option<f64>, durable: bool) -> PyResult<()> {
        let budget = opt_money("budget", budget)?;
        guard(|| self.inner.set_owner_budget(owner, budget, durable))
    }

    /// Set (or clear with `None`) a model's hard budget.
    #[pyo3(signature = (model, budget, *, durable = false))]
    fn set_model_budget(&self, model: &str, budget: Option<f64>, durable: bool) -> PyResult<()> {
        let budget = opt_money("budget", budget)?;
        guard(|| self.inner.set_model_budget(model, budget, durable))
    }

    /// An owner's `(spent, in-flight estimate, budget)`.
    fn owner_spend(&self, owner: &str) -> (f64, f64, Option<f64>) {
        self.inner.owner_spend(owner)
    }

    /// Set (or clear with `None`) the memory limit in bytes.
    #[pyo3(signature = (limit, *, durable = false))]
    fn set_memory_limit(
        &self,
        #[pyo3(from_py_with = opt_int_u64)] limit: Option<u64>,
        durable: bool,
    ) -> PyResult<()> {
        guard(|| self.inner.set_memory_limit(limit, durable))
    }

    /// `(resident bytes, limit, evictions so far)`.
    fn memory(&self) -> (u64, Option<u64>, u64) {
        self.inner.memory()
    }

    /// Set a model's health thresholds.
    #[pyo3(signature = (model, *, window = 20, min_samples = 5, degraded_error_rate = 0.2, down_error_rate = 0.5, degraded_latency = None, probe_after = 30.0, durable = false))]
    #[allow(clippy::too_many_arguments)] // mirrors the keyword-only Python signature
    fn set_health_policy(
        &self,
        model: &str,
        window: u32,
        min_samples: u32,
        degraded_error_rate: f64,
        down_error_rate: f64,
        degraded_latency: Option<f64>,
        probe_after: f64,
        durable: bool,
    ) -> PyResult<()> {
        let policy = HealthPolicy {
            window,
            min_samples,
            degraded_error_rate,
            down_error_rate,
            degraded_latency: degraded_latency.unwrap_or(f64::INFINITY),
            probe_after: micros("probe_after", probe_after)?,
        };
        guard(|| self.inner.set_health_policy(model, policy, durable))
    }

    /// Choose how `sweep` unloads: "fixed" (per-model keep-alive) or "predictive".
    #[pyo3(signature = (policy, *, durable = false))]
    fn set_keep_alive_policy(&self, policy: &str, durable: bool) -> PyResult<()> {
        let p = match policy {
            "fixed" => KeepAlive::Fixed,
            "predictive" => KeepAlive::Predictive,
            other => {
                return Err(invalid_argument(format!(
                    "argument 'policy': unknown keep-alive policy {other:?}; expected one of fixed, predictive"
                )))
            }
        };
        guard(|| self.inner.set_keep_alive_policy(p, durable))
    }

    /// The keep-alive policy.
    fn keep_alive_policy(&self) -> &'static str {
        match self.inner.keep_alive_policy() {
            KeepAlive::Fixed => "fixed",
            KeepAlive::Predictive => "predictive",
        }
    }

    /// Unload warm models with no lease whose keep-alive ran out; returns them.
    fn sweep(&self) -> Vec<String> {
        names(self.inner.sweep())
    }

    /// Idle models the predictor plans warm now.
    fn recommend_prewarm(&self) -> Vec<String> {
        names(self.inner.recommend_prewarm())
    }

    /// The predictor's plan after the model's next invocation: own window `(a, b)` in seconds
    /// (`None`: not kept warm) and successor windows `(model, lo, hi)`.
    #[allow(clippy::type_complexity)] // the Python return type spelled out
    fn predicted_windows(
        &self,
        model: &str,
    ) -> PyResult<(Option<(f64, f64)>, Vec<(String, f64, f64)>)> {
        let (own, succ) = guard(|| self.inner.predicted_windows(model))?;
        Ok((
            own,
            succ.into_iter()
                .map(|(m, a, b)| (m.to_string(), a, b))
                .collect(),
        ))
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyPoolManager>()?;
    m.add_class::<PyLease>()?;
    m.add_class::<PyModelInfo>()?;
    m.add_class::<PySimResult>()?;
    Ok(())
}
