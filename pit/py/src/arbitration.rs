//! Binding of the `ArbitrationEngine` (`pit.arbitration`).

use std::sync::Arc;

use pit_core::arbitration::{
    self, ArbitrationEngine, Config, Strategy, Submit, FACTORS, FACTOR_NAMES,
};
use pit_core::{Micros, SECOND};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::PyDict;

use crate::errors::{detached, guard, int_i32, int_usize, invalid_argument};

fn secs(us: Micros) -> f64 {
    us as f64 / SECOND as f64
}

fn deadline(d: Option<f64>) -> PyResult<Option<Micros>> {
    d.map(|t| {
        if t.is_finite() && t >= 0.0 {
            Ok((t * SECOND as f64) as Micros)
        } else {
            Err(invalid_argument(format!(
                "argument 'deadline': expected a time in seconds, got {t}"
            )))
        }
    })
    .transpose()
}

/// One factor of a decision's rationale.
#[pyclass(frozen, module = "symphony.pit._native", name = "Factor", get_all)]
pub struct PyFactor {
    name: &'static str,
    weight: f64,
    value: f64,
    contribution: f64,
}

#[pymethods]
impl PyFactor {
    fn __repr__(&self) -> String {
        format!(
            "Factor({:?}, weight={:.4}, value={:.4}, contribution={:.4})",
            self.name, self.weight, self.value, self.contribution
        )
    }
}

/// A decision and its rationale (frozen).
#[pyclass(frozen, module = "symphony.pit._native", name = "Decision")]
pub struct PyDecision {
    d: arbitration::Decision,
    model: Option<Arc<str>>,
    wanted: Arc<str>,
}

fn name_of(names: &[Arc<str>], i: usize) -> Arc<str> {
    names.get(i).cloned().unwrap_or_else(|| Arc::from("?"))
}

impl PyDecision {
    fn single(d: arbitration::Decision, inner: &ArbitrationEngine) -> Self {
        let model = if d.granted {
            inner.model_id(d.model)
        } else {
            None
        };
        let wanted = inner.model_id(d.wanted).unwrap_or_else(|| Arc::from("?"));
        Self { d, model, wanted }
    }

    fn new(d: arbitration::Decision, names: &[Arc<str>]) -> Self {
        let model = d.granted.then(|| name_of(names, d.model));
        let wanted = name_of(names, d.wanted);
        Self { d, model, wanted }
    }
}

#[pymethods]
impl PyDecision {
    /// Decision id.
    #[getter]
    fn id(&self) -> u64 {
        self.d.id
    }
    /// The request decided.
    #[getter]
    fn request(&self) -> u64 {
        self.d.request
    }
    /// Further requests sharing the slot (collaborative batch).
    #[getter]
    fn batch(&self) -> Vec<u64> {
        self.d.batch.clone()
    }
    /// Owner.
    #[getter]
    fn owner(&self) -> &str {
        &self.d.owner
    }
    /// Workflow.
    #[getter]
    fn workflow(&self) -> &str {
        &self.d.workflow
    }
    /// Model granted (`None` when rejected).
    #[getter]
    fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// Model requested.
    #[getter]
    fn wanted(&self) -> &str {
        &self.wanted
    }
    /// Granted (false: rejected by budget).
    #[getter]
    fn granted(&self) -> bool {
        self.d.granted
    }
    /// Strategy in force.
    #[getter]
    fn strategy(&self) -> &'static str {
        self.d.strategy.as_str()
    }
    /// `"strategy"`, `"starvation_bound"` or `"budget"`.
    #[getter]
    fn reason(&self) -> &'static str {
        self.d.reason.as_str()
    }
    /// Σ contributions.
    #[getter]
    fn score(&self) -> f64 {
        self.d.score
    }
    /// When (seconds).
    #[getter]
    fn at(&self) -> f64 {
        secs(self.d.at)
    }
    /// Grants the request waited.
    #[getter]
    fn waited(&self) -> u64 {
        self.d.waited
    }
    /// Nanoseconds the decision took inside the engine.
    #[getter]
    fn latency_ns(&self) -> u32 {
        self.d.nanos
    }
    /// Lease taken (decide with `acquire=True`).
    #[getter]
    fn lease(&self) -> Option<u64> {
        self.d.lease
    }
    /// The factor breakdown.
    #[getter]
    fn factors(&self) -> Vec<PyFactor> {
        (0..FACTORS)
            .map(|i| PyFactor {
                name: FACTOR_NAMES[i],
                weight: self.d.weights[i],
                value: self.d.values[i],
                contribution: self.d.weights[i] * self.d.values[i],
            })
            .collect()
    }
    fn __repr__(&self) -> String {
        format!(
            "Decision(id={}, request={}, owner={:?}, model={:?}, granted={}, strategy={:?}, reason={:?}, score={:.4})",
            self.d.id,
            self.d.request,
            &*self.d.owner,
            self.model.as_deref(),
            if self.d.granted { "True" } else { "False" },
            self.d.strategy.as_str(),
            self.d.reason.as_str(),
            self.d.score
        )
    }
}

/// Many decisions from one `decide_batch` call (kept in Rust; items built on access).
#[pyclass(frozen, module = "symphony.pit._native", name = "DecisionBatch")]
pub struct PyDecisionBatch {
    ds: Vec<arbitration::Decision>,
    names: Vec<Arc<str>>,
}

#[pymethods]
impl PyDecisionBatch {
    fn __len__(&self) -> usize {
        self.ds.len()
    }
    fn __getitem__(&self, index: isize) -> PyResult<PyDecision> {
        let n = self.ds.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "decision index {index} out of range for a batch of {n}"
            )));
        }
        Ok(PyDecision::new(self.ds[i as usize].clone(), &self.names))
    }
    /// Decision ids.
    fn ids(&self) -> Vec<u64> {
        self.ds.iter().map(|d| d.id).collect()
    }
    /// Requests decided, in order.
    fn requests(&self) -> Vec<u64> {
        self.ds.iter().map(|d| d.request).collect()
    }
    /// Number granted.
    fn granted(&self) -> usize {
        self.ds.iter().filter(|d| d.granted).count()
    }
    /// The `q`-quantile (0–1) of the per-decision latency measured inside the engine, in ns.
    fn latency_quantile_ns(&self, q: f64) -> PyResult<u32> {
        if !(0.0..=1.0).contains(&q) {
            return Err(invalid_argument(format!(
                "argument 'q': expected a number in [0, 1], got {q}"
            )));
        }
        let mut v: Vec<u32> = self.ds.iter().map(|d| d.nanos).collect();
        if v.is_empty() {
            return Ok(0);
        }
        v.sort_unstable();
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        Ok(v[i])
    }
    fn __repr__(&self) -> String {
        format!("DecisionBatch({} decisions)", self.ds.len())
    }
}

/// Fairness and spend of one owner.
#[pyclass(frozen, module = "symphony.pit._native", name = "OwnerStats", get_all)]
pub struct PyOwnerStats {
    owner: String,
    share: f64,
    grants: u64,
    max_waited: u64,
    pending: u32,
    spent: f64,
    committed: f64,
    budget: Option<f64>,
}

#[pymethods]
impl PyOwnerStats {
    fn __repr__(&self) -> String {
        format!(
            "OwnerStats(owner={:?}, share={:.4}, grants={}, max_waited={}, pending={}, spent={}, committed={})",
            self.owner, self.share, self.grants, self.max_waited, self.pending, self.spent, self.committed
        )
    }
}

/// The `ArbitrationEngine` (`pit.arbitration`).
#[pyclass(frozen, module = "symphony.pit._native", name = "ArbitrationEngine")]
pub struct PyArbitrationEngine {
    inner: Arc<ArbitrationEngine>,
}

impl PyArbitrationEngine {
    pub fn new(inner: Arc<ArbitrationEngine>) -> Self {
        Self { inner }
    }

    fn names(&self) -> Vec<Arc<str>> {
        let mut v = Vec::new();
        let mut i = 0;
        while let Some(n) = self.inner.model_id(i) {
            v.push(n);
            i += 1;
        }
        v
    }
}

type BatchItem = (
    PyBackedStr,
    PyBackedStr,
    PyBackedStr,
    i32,
    f64,
    f64,
    f64,
    Option<f64>,
);

#[pymethods]
impl PyArbitrationEngine {
    /// Submit one request; returns its id.
    #[pyo3(signature = (owner, model, *, workflow = "", priority = 0, business_value = 0.5, user_impact = 0.5, cost = 0.0, deadline = None, durable = false))]
    #[allow(clippy::too_many_arguments)] // mirrors the keyword-only Python signature
    fn submit(
        &self,
        owner: &str,
        model: &str,
        workflow: &str,
        #[pyo3(from_py_with = int_i32)] priority: i32,
        business_value: f64,
        user_impact: f64,
        cost: f64,
        deadline: Option<f64>,
        durable: bool,
    ) -> PyResult<u64> {
        let r = Submit {
            owner,
            workflow,
            model,
            priority,
            value: business_value,
            impact: user_impact,
            cost,
            deadline: self::deadline(deadline)?,
        };
        guard(|| self.inner.submit(&[r], durable)).map(|v| v[0])
    }

    /// Submit many requests `(owner, workflow, model, priority, business_value, user_impact,
    /// cost, deadline)` at once; all are validated before any is queued. Returns their ids.
    #[pyo3(signature = (requests, *, durable = false))]
    fn submit_batch(
        &self,
        py: Python<'_>,
        requests: Vec<BatchItem>,
        durable: bool,
    ) -> PyResult<Vec<u64>> {
        let mut deadlines = Vec::with_capacity(requests.len());
        for r in &requests {
            deadlines.push(deadline(r.7)?);
        }
        let inner = Arc::clone(&self.inner);
        detached(py, move || {
            let subs: Vec<Submit<'_>> = requests
                .iter()
                .zip(&deadlines)
                .map(|(r, d)| Submit {
                    owner: &r.0,
                    workflow: &r.1,
                    model: &r.2,
                    priority: r.3,
                    value: r.4,
                    impact: r.5,
                    cost: r.6,
                    deadline: *d,
                })
                .collect();
            inner.submit(&subs, durable)
        })
    }

    /// Withdraw a pending request.
    fn cancel(&self, request: u64) -> PyResult<()> {
        guard(|| self.inner.cancel(request))
    }

    /// Pending requests.
    fn __len__(&self) -> usize {
        self.inner.pending()
    }

    /// Make one decision now; `None` when no pending request can be served.
    #[pyo3(signature = (*, acquire = false))]
    fn decide(&self, acquire: bool) -> PyResult<Option<PyDecision>> {
        let mut v = guard(|| self.inner.decide(1, acquire))?;
        Ok(v.pop().map(|d| PyDecision::single(d, &self.inner)))
    }

    /// Make up to `max` decisions in one call (GIL released).
    #[pyo3(signature = (max, *, acquire = false))]
    fn decide_batch(
        &self,
        py: Python<'_>,
        #[pyo3(from_py_with = int_usize)] max: usize,
        acquire: bool,
    ) -> PyResult<PyDecisionBatch> {
        let inner = Arc::clone(&self.inner);
        let ds = detached(py, move || inner.decide(max, acquire))?;
        Ok(PyDecisionBatch {
            ds,
            names: self.names(),
        })
    }

    /// The decision `decision` with its rationale (bounded history).
    fn rationale(&self, decision: u64) -> PyResult<PyDecision> {
        let d = guard(|| self.inner.rationale(decision))?;
        Ok(PyDecision::single(d, &self.inner))
    }

    /// Report how a granted decision went; returns the weights after learning.
    #[pyo3(signature = (decision, *, ok = true, cost = 0.0, durable = false))]
    fn report(&self, decision: u64, ok: bool, cost: f64, durable: bool) -> PyResult<Vec<f64>> {
        guard(|| self.inner.report(decision, ok, cost, durable)).map(|w| w.to_vec())
    }

    /// Change the configuration; only the given settings change.
    #[pyo3(signature = (*, strategy = None, weights = None, starvation_bound = None, half_life = None, cost_scale = None, batch_size = None, learning_rate = None, history = None, durable = false))]
    #[allow(clippy::too_many_arguments)] // mirrors the keyword-only Python signature
    fn configure(
        &self,
        strategy: Option<&str>,
        weights: Option<&Bound<'_, PyDict>>,
        starvation_bound: Option<u64>,
        half_life: Option<f64>,
        cost_scale: Option<f64>,
        batch_size: Option<u32>,
        learning_rate: Option<f64>,
        history: Option<usize>,
        durable: bool,
    ) -> PyResult<()> {
        let mut cfg: Config = self.inner.config();
        if let Some(s) = strategy {
            cfg.strategy = guard(|| Strategy::parse(s))?;
        }
        if let Some(w) = weights {
            for (k, v) in w.iter() {
                let k: String = k.extract()?;
                let i = FACTOR_NAMES.iter().position(|n| *n == k).ok_or_else(|| {
                    invalid_argument(format!(
                        "argument 'weights': unknown factor {k:?}; expected one of {}",
                        FACTOR_NAMES.join(", ")
                    ))
                })?;
                cfg.weights[i] = v.extract()?;
            }
        }
        if let Some(b) = starvation_bound {
            cfg.starvation_bound = b;
        }
        if let Some(h) = half_life {
            if !(h.is_finite() && h > 0.0) {
                return Err(invalid_argument(format!(
                    "argument 'half_life': expected a positive number of seconds, got {h}"
                )));
            }
            cfg.half_life = (h * SECOND as f64) as Micros;
        }
        if let Some(c) = cost_scale {
            cfg.cost_scale = c;
        }
        if let Some(b) = batch_size {
            cfg.batch_size = b;
        }
        if let Some(l) = learning_rate {
            cfg.learning_rate = l;
        }
        if let Some(h) = history {
            cfg.history = h;
        }
        guard(|| self.inner.set_config(cfg, durable))
    }

    /// The strategy in force.
    #[getter]
    fn strategy(&self) -> &'static str {
        self.inner.config().strategy.as_str()
    }

    /// The starvation bound (grants a servable request may wait).
    #[getter]
    fn starvation_bound(&self) -> u64 {
        self.inner.config().starvation_bound
    }

    /// The weights of the weighted strategy, by factor.
    fn weights<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let w = self.inner.config().weights;
        for (n, v) in FACTOR_NAMES.iter().zip(w) {
            d.set_item(n, v)?;
        }
        Ok(d)
    }

    /// Set an owner's spending policy.
    #[pyo3(signature = (owner, *, budget = None, max_cost = None, durable = false))]
    fn set_policy(
        &self,
        owner: &str,
        budget: Option<f64>,
        max_cost: Option<f64>,
        durable: bool,
    ) -> PyResult<()> {
        guard(|| self.inner.set_policy(owner, budget, max_cost, durable))
    }

    /// Declare how well `model` suits `workflow` (specialization).
    #[pyo3(signature = (workflow, model, score, *, durable = false))]
    fn set_skill(&self, workflow: &str, model: &str, score: f64, durable: bool) -> PyResult<()> {
        guard(|| self.inner.set_skill(workflow, model, score, durable))
    }

    /// Fairness and spend per owner.
    fn owners(&self) -> Vec<PyOwnerStats> {
        self.inner
            .owners()
            .into_iter()
            .map(|o| PyOwnerStats {
                owner: o.owner.to_string(),
                share: o.share,
                grants: o.grants,
                max_waited: o.max_waited,
                pending: o.pending,
                spent: o.spent,
                committed: o.committed,
                budget: o.budget,
            })
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyArbitrationEngine>()?;
    m.add_class::<PyDecision>()?;
    m.add_class::<PyDecisionBatch>()?;
    m.add_class::<PyFactor>()?;
    m.add_class::<PyOwnerStats>()?;
    m.add("FACTOR_NAMES", FACTOR_NAMES.to_vec())?;
    Ok(())
}
