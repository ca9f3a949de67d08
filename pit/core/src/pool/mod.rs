//! Pool Manager: models, slots, lifecycle, health, cost, memory and predictive pre-warming.
//!
//! * **Lifecycle** per model: `Idle → Loading → Warm → Active → Cooldown → Idle`, with a
//!   timestamped history. `Active` means at least one slot is leased. Acquire and release drive
//!   the automatic transitions; the extension host reports loads and unloads with
//!   [`PoolManager::transition`]; anything else is an [`PoolError::IllegalTransition`].
//! * **Slots**: [`PoolManager::try_acquire`] (never blocks) and [`PoolManager::acquire`] (waits
//!   with a timeout in a per-model waiter queue: higher priority first, FIFO within a priority).
//!   [`PoolManager::release`] reports the outcome.
//! * **Health**: outcomes drive healthy / degraded / down; a down model's requests route to its
//!   fallback chain; after `probe_after` one probe request is let through (half-open).
//! * **Cost**: spend per model and per owner; hard budgets admit a request only while
//!   `spent + in-flight estimates < budget`, so (with accurate estimates) the overspend is at
//!   most one in-flight request.
//! * **Memory**: under a memory limit, loading evicts warm idle models least recently used
//!   first, never an active (or loading) one.
//! * **Pre-warming**: see [`prewarm`]; [`sim`] compares it with a fixed keep-alive.
//!
//! Persistence: model registrations, budgets, limits, policies, spend and the predictor's
//! statistics are journaled and snapshotted. Leases, waiters, lifecycle and health are runtime
//! state: after a reopen every model is idle, healthy and has all its slots free.

pub(crate) mod fx;
pub mod health;
pub mod prewarm;
pub mod sim;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use self::fx::HashMap;
use self::health::Tracker;
pub use self::health::{Health, HealthPolicy};
use self::prewarm::{Predictor, PredictorConfig};
use crate::error::{Classify, Detail, Error, ErrorKind, Result};
use crate::{Ctx, Lsn, Micros, Persistent, Tag, SECOND};

/// Pool Manager failures.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Unknown model.
    #[error("unknown model {0:?}")]
    ModelNotFound(String),
    /// A model with this id is already registered.
    #[error("model {0:?} is already registered")]
    AlreadyExists(String),
    /// A bad argument value.
    #[error("{0}")]
    InvalidArgument(String),
    /// Unknown or already released lease.
    #[error("unknown lease {0} (never granted or already released)")]
    LeaseNotFound(u64),
    /// A lease granted by another Pit, or by this one before it was reopened.
    #[error("lease {0} was not granted by this Pit (it comes from another Pit, or from before this one was reopened)")]
    ForeignLease(u64),
    /// A lifecycle transition that is not allowed.
    #[error("illegal transition of model {model:?}: {from} → {to}{why}")]
    IllegalTransition {
        /// The model.
        model: String,
        /// Its state.
        from: &'static str,
        /// The requested state.
        to: &'static str,
        /// Extra explanation (may be empty).
        why: &'static str,
    },
    /// No slot free right now.
    #[error("no free slot for model {0:?}")]
    PoolExhausted(String),
    /// Waited for a slot until the timeout.
    #[error("timed out waiting for a slot of model {0:?}")]
    AcquireTimeout(String),
    /// The model and every fallback are down.
    #[error("model {0:?} and every fallback are down")]
    ModelUnavailable(String),
    /// The model cannot fit under the memory limit even after eviction.
    #[error("model {model:?} needs {need} bytes; the memory limit is {limit} and {pinned} bytes are held by active or loading models")]
    MemoryLimit {
        /// The model.
        model: String,
        /// Its memory cost.
        need: u64,
        /// The limit.
        limit: u64,
        /// Memory that cannot be evicted.
        pinned: u64,
    },
    /// A budget does not cover the request.
    #[error("{0}")]
    BudgetExceeded(String, String),
}

impl Classify for PoolError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::ModelNotFound(_) => ErrorKind::ModelNotFound,
            Self::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::LeaseNotFound(_) | Self::ForeignLease(_) => ErrorKind::LeaseNotFound,
            Self::IllegalTransition { .. } => ErrorKind::IllegalTransition,
            Self::PoolExhausted(_) => ErrorKind::PoolExhausted,
            Self::AcquireTimeout(_) => ErrorKind::AcquireTimeout,
            Self::ModelUnavailable(_) => ErrorKind::ModelUnavailable,
            Self::MemoryLimit { .. } => ErrorKind::MemoryLimit,
            Self::BudgetExceeded(..) => ErrorKind::BudgetExceeded,
        }
    }

    fn detail(&self) -> Detail {
        match self {
            Self::ModelNotFound(m)
            | Self::AlreadyExists(m)
            | Self::PoolExhausted(m)
            | Self::AcquireTimeout(m)
            | Self::ModelUnavailable(m)
            | Self::IllegalTransition { model: m, .. }
            | Self::MemoryLimit { model: m, .. }
            | Self::BudgetExceeded(_, m) => Detail::Subject(m.clone()),
            Self::LeaseNotFound(l) | Self::ForeignLease(l) => Detail::Subject(l.to_string()),
            Self::InvalidArgument(_) => Detail::None,
        }
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    PoolError::InvalidArgument(msg.into()).into()
}

/// Lifecycle state of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lifecycle {
    /// Not in memory.
    Idle,
    /// Being loaded.
    Loading,
    /// In memory, no slot leased.
    Warm,
    /// At least one slot leased.
    Active,
    /// Last lease released; kept warm until the keep-alive policy unloads it.
    Cooldown,
}

impl Lifecycle {
    /// Every state.
    pub const ALL: [Lifecycle; 5] = [
        Self::Idle,
        Self::Loading,
        Self::Warm,
        Self::Active,
        Self::Cooldown,
    ];
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Loading => "loading",
            Self::Warm => "warm",
            Self::Active => "active",
            Self::Cooldown => "cooldown",
        }
    }
    /// Parse a lowercase name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s).ok_or_else(|| {
            invalid(format!(
                "unknown lifecycle state {s:?}; expected one of idle, loading, warm, active, cooldown"
            ))
        })
    }
    /// Whether the model holds memory.
    pub fn resident(self) -> bool {
        self != Self::Idle
    }
}

/// When warm models with no lease are unloaded by [`PoolManager::sweep`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeepAlive {
    /// After the model's fixed `keep_alive` in warm/cooldown.
    Fixed,
    /// When the predictor does not plan the model warm now.
    Predictive,
}

/// What a model is registered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Id.
    pub id: String,
    /// Concurrent slots.
    pub slots: u32,
    /// Memory cost in bytes while resident.
    pub memory: u64,
    /// Price per call.
    pub price_per_call: f64,
    /// Price per token.
    pub price_per_token: f64,
    /// Fallback chain (ids of registered models), tried in order when this model is down.
    pub fallbacks: Vec<String>,
    /// Fixed keep-alive.
    pub keep_alive: Micros,
}

/// A granted slot.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Lease id.
    pub id: u64,
    /// The model serving it (the requested one or a fallback).
    pub model: Arc<str>,
    /// The model requested.
    pub requested: Arc<str>,
    /// Slot index within the serving model, `0..slots`.
    pub slot: u32,
    /// The acquire found the model idle or loading (a cold start).
    pub cold_start: bool,
    /// This is the half-open probe of a down model.
    pub probe: bool,
}

/// What an acquire asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Model id.
    pub model: &'a str,
    /// Owner (for spend and budgets).
    pub owner: &'a str,
    /// Higher is served first among waiters.
    pub priority: i32,
    /// The most this request may cost (its estimate must fit).
    pub budget: Option<f64>,
    /// Estimated cost; the model's price per call by default.
    pub estimate: Option<f64>,
}

impl<'a> Request<'a> {
    /// A request for `model` by `owner` with defaults.
    pub fn new(model: &'a str, owner: &'a str) -> Self {
        Self {
            model,
            owner,
            priority: 0,
            budget: None,
            estimate: None,
        }
    }
}

/// How a leased call went.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Succeeded.
    pub ok: bool,
    /// Latency in seconds.
    pub latency: f64,
    /// Tokens used (priced at `price_per_token`).
    pub tokens: u64,
    /// Actual cost; by default `price_per_call + tokens × price_per_token`.
    pub cost: Option<f64>,
}

impl Default for Outcome {
    fn default() -> Self {
        Self {
            ok: true,
            latency: 0.0,
            tokens: 0,
            cost: None,
        }
    }
}

/// A model's state, read in one go.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Registration.
    pub spec: ModelSpec,
    /// Lifecycle state.
    pub state: Lifecycle,
    /// When it entered that state.
    pub since: Micros,
    /// Slots leased.
    pub in_use: u32,
    /// Health.
    pub health: Health,
    /// Error rate over the health window.
    pub error_rate: f64,
    /// Total spend.
    pub spent: f64,
    /// Hard budget.
    pub budget: Option<f64>,
    /// Released calls.
    pub calls: u64,
    /// Released calls that failed.
    pub errors: u64,
    /// Cold starts.
    pub cold_starts: u64,
    /// Waiters queued.
    pub waiting: usize,
    /// Last acquire or release.
    pub last_used: Micros,
}

/// Occupancy of one model, for the Arbitration Engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelView {
    /// Slots.
    pub slots: u32,
    /// Slots leased.
    pub in_use: u32,
    /// Lifecycle state.
    pub state: Lifecycle,
    /// Health (a down model whose probe is due reports `Degraded`: it can serve one request).
    pub health: Health,
    /// Price per call.
    pub price_per_call: f64,
}

impl ModelView {
    /// Slots free now.
    pub fn free(&self) -> u32 {
        self.slots - self.in_use
    }
}

const HISTORY: usize = 32;

#[derive(Debug)]
struct Model {
    spec: ModelSpec,
    id: Arc<str>,
    fallbacks: Vec<usize>,
    state: Lifecycle,
    since: Micros,
    history: VecDeque<(Lifecycle, Lifecycle, Micros)>,
    /// Released slot indices (reused first).
    free: Vec<u32>,
    /// Slot indices handed out so far (`free` holds the released ones among them).
    issued: u32,
    in_use: u32,
    last_used: Micros,
    health: Tracker,
    spent: f64,
    reserved: f64,
    budget: Option<f64>,
    calls: u64,
    errors: u64,
    cold_starts: u64,
    waiters: BTreeSet<(Reverse<i32>, u64)>,
}

#[derive(Debug, Default)]
struct Account {
    name: String,
    spent: f64,
    reserved: f64,
    budget: Option<f64>,
}

#[derive(Debug)]
struct LeaseRec {
    model: usize,
    owner: usize,
    slot: u32,
    estimate: f64,
    acquired_at: Micros,
    probe: bool,
}

#[derive(Debug)]
struct State {
    models: Vec<Model>,
    by_id: HashMap<String, usize>,
    owners: Vec<Account>,
    by_owner: HashMap<String, usize>,
    leases: HashMap<u64, LeaseRec>,
    /// The next lease id: this pool's epoch in the high 32 bits, a counter in the low 32.
    next_lease: u64,
    next_ticket: u64,
    /// Set by [`PoolManager::close`]: acquires and releases are refused, waiters woken.
    closed: bool,
    waiting: usize,
    memory_limit: Option<u64>,
    policy: KeepAlive,
    predictor: Predictor,
    evicted: u64,
}

#[derive(Serialize, Deserialize)]
enum Rec<'a> {
    Register(ModelSpec),
    OwnerBudget(Cow<'a, str>, Option<f64>),
    ModelBudget(u32, Option<f64>),
    MemoryLimit(Option<u64>),
    HealthPolicy(u32, HealthPolicy),
    Policy(KeepAlive),
    Release {
        model: u32,
        owner: Cow<'a, str>,
        cost: f64,
        ok: bool,
        at: Micros,
    },
}

#[derive(Serialize, Deserialize)]
struct SnapModel {
    spec: ModelSpec,
    budget: Option<f64>,
    spent: f64,
    calls: u64,
    errors: u64,
    cold_starts: u64,
    health: HealthPolicy,
}

#[derive(Serialize, Deserialize)]
struct Snap {
    models: Vec<SnapModel>,
    owners: Vec<(String, f64, Option<f64>)>,
    memory_limit: Option<u64>,
    policy: KeepAlive,
    predictor: Predictor,
}

/// A per-pool lease epoch: distinct for every pool of this process (an odd multiplier is a
/// bijection modulo 2^32) and random across processes, so that a lease id from another Pit, or
/// from this data directory's earlier session, never matches a live lease here.
fn lease_epoch() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    static SEED: OnceLock<u32> = OnceLock::new();
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let seed = *SEED.get_or_init(rand::random);
    seed.wrapping_add(
        COUNT
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9),
    )
}

fn check_money(name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(format!(
            "argument '{name}': expected a finite non-negative number, got {v}"
        )))
    }
}

impl State {
    fn new() -> Self {
        Self {
            models: Vec::new(),
            by_id: HashMap::default(),
            owners: Vec::new(),
            by_owner: HashMap::default(),
            leases: HashMap::default(),
            next_lease: (u64::from(lease_epoch()) << 32) | 1,
            next_ticket: 1,
            closed: false,
            waiting: 0,
            memory_limit: None,
            policy: KeepAlive::Fixed,
            predictor: Predictor::new(PredictorConfig::default()),
            evicted: 0,
        }
    }

    fn model(&self, id: &str) -> Result<usize> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| PoolError::ModelNotFound(id.to_string()).into())
    }

    fn owner(&mut self, name: &str) -> usize {
        if let Some(&o) = self.by_owner.get(name) {
            return o;
        }
        let o = self.owners.len();
        self.owners.push(Account {
            name: name.to_string(),
            ..Account::default()
        });
        self.by_owner.insert(name.to_string(), o);
        o
    }

    fn validate_spec(&self, spec: &ModelSpec) -> Result<Vec<usize>> {
        if spec.id.is_empty() {
            return Err(invalid("argument 'model': the id must not be empty"));
        }
        if spec.slots == 0 {
            return Err(invalid(format!(
                "argument 'slots': model {:?} needs at least one slot",
                spec.id
            )));
        }
        check_money("price_per_call", spec.price_per_call)?;
        check_money("price_per_token", spec.price_per_token)?;
        if self.by_id.contains_key(&spec.id) {
            return Err(PoolError::AlreadyExists(spec.id.clone()).into());
        }
        spec.fallbacks
            .iter()
            .map(|f| {
                if *f == spec.id {
                    Err(invalid(format!(
                        "argument 'fallbacks': model {:?} cannot fall back to itself",
                        spec.id
                    )))
                } else {
                    self.model(f)
                }
            })
            .collect()
    }

    fn register(&mut self, spec: ModelSpec, fallbacks: Vec<usize>, now: Micros) {
        let idx = self.models.len();
        self.by_id.insert(spec.id.clone(), idx);
        self.models.push(Model {
            id: Arc::from(spec.id.as_str()),
            free: Vec::new(),
            issued: 0,
            spec,
            fallbacks,
            state: Lifecycle::Idle,
            since: now,
            history: VecDeque::new(),
            in_use: 0,
            last_used: now,
            health: Tracker::new(HealthPolicy::default()),
            spent: 0.0,
            reserved: 0.0,
            budget: None,
            calls: 0,
            errors: 0,
            cold_starts: 0,
            waiters: BTreeSet::new(),
        });
    }

    fn set_state(&mut self, m: usize, to: Lifecycle, now: Micros) {
        let model = &mut self.models[m];
        if model.state == to {
            return;
        }
        if model.history.len() == HISTORY {
            model.history.pop_front();
        }
        model.history.push_back((model.state, to, now));
        model.state = to;
        model.since = now;
        if to == Lifecycle::Warm {
            model.last_used = now;
        }
    }

    fn resident(&self) -> u64 {
        self.models
            .iter()
            .filter(|m| m.state.resident())
            .map(|m| m.spec.memory)
            .sum()
    }

    /// Models to evict so that `m` can load, least recently used first.
    fn eviction_plan(&self, m: usize) -> Result<Vec<usize>> {
        let Some(limit) = self.memory_limit else {
            return Ok(Vec::new());
        };
        let need = self.models[m].spec.memory;
        let mut used = self.resident();
        if used + need <= limit {
            return Ok(Vec::new());
        }
        let mut candidates: Vec<usize> = (0..self.models.len())
            .filter(|&i| {
                i != m
                    && matches!(self.models[i].state, Lifecycle::Warm | Lifecycle::Cooldown)
                    && self.models[i].in_use == 0
                    // Unloading a model that holds no memory frees nothing.
                    && self.models[i].spec.memory > 0
            })
            .collect();
        candidates.sort_by_key(|&i| (self.models[i].last_used, i));
        let mut plan = Vec::new();
        for i in candidates {
            if used + need <= limit {
                break;
            }
            used -= self.models[i].spec.memory;
            plan.push(i);
        }
        if used + need > limit {
            let pinned = self
                .models
                .iter()
                .filter(|x| matches!(x.state, Lifecycle::Active | Lifecycle::Loading))
                .map(|x| x.spec.memory)
                .sum();
            return Err(PoolError::MemoryLimit {
                model: self.models[m].spec.id.clone(),
                need,
                limit,
                pinned,
            }
            .into());
        }
        Ok(plan)
    }

    fn apply_evictions(&mut self, plan: &[usize], now: Micros) -> Vec<Arc<str>> {
        plan.iter()
            .map(|&i| {
                self.set_state(i, Lifecycle::Idle, now);
                self.evicted += 1;
                Arc::clone(&self.models[i].id)
            })
            .collect()
    }

    /// The model serving a request for `m`: itself or the first fallback that is not down (a
    /// down model whose probe is due serves one probe).
    fn route(&self, m: usize, now: Micros) -> Result<(usize, bool)> {
        if self.models[m].health.state != Health::Down {
            return Ok((m, false));
        }
        let mut stack = vec![m];
        let mut seen = Vec::with_capacity(4);
        while let Some(c) = stack.pop() {
            if seen.contains(&c) {
                continue;
            }
            seen.push(c);
            let h = &self.models[c].health;
            match h.state {
                Health::Healthy | Health::Degraded => return Ok((c, false)),
                Health::Down if h.probe_due(now) => return Ok((c, true)),
                Health::Down => stack.extend(self.models[c].fallbacks.iter().rev()),
            }
        }
        Err(PoolError::ModelUnavailable(self.models[m].spec.id.clone()).into())
    }

    #[allow(clippy::too_many_lines)] // every check of an acquire, in the order they apply
    fn try_grant(&mut self, req: &Request<'_>, now: Micros, ticket: Option<u64>) -> Result<Lease> {
        if self.closed {
            return Err(crate::StorageError::Closed.into());
        }
        let mi = self.model(req.model)?;
        let (target, probe) = self.route(mi, now)?;
        let model = &self.models[target];
        let estimate = req.estimate.unwrap_or(model.spec.price_per_call);
        check_money("estimate", estimate)?;
        if let Some(b) = req.budget {
            check_money("budget", b)?;
            if estimate > b {
                return Err(PoolError::BudgetExceeded(
                    format!(
                        "request for model {:?} is estimated at {estimate} but its budget is {b}",
                        model.spec.id
                    ),
                    model.spec.id.clone(),
                )
                .into());
            }
        }
        if let Some(b) = model.budget {
            if model.spent + model.reserved >= b && estimate > 0.0 {
                return Err(PoolError::BudgetExceeded(
                    format!(
                        "model {:?} has spent {:.6} (+{:.6} in flight) of its budget {b}",
                        model.spec.id, model.spent, model.reserved
                    ),
                    model.spec.id.clone(),
                )
                .into());
            }
        }
        if let Some(acct) = self.by_owner.get(req.owner).map(|&o| &self.owners[o]) {
            if let Some(b) = acct.budget {
                if acct.spent + acct.reserved >= b && estimate > 0.0 {
                    return Err(PoolError::BudgetExceeded(
                        format!(
                            "owner {:?} has spent {:.6} (+{:.6} in flight) of its budget {b}",
                            acct.name, acct.spent, acct.reserved
                        ),
                        acct.name.clone(),
                    )
                    .into());
                }
            }
        }
        if model.in_use >= model.spec.slots {
            return Err(PoolError::PoolExhausted(model.spec.id.clone()).into());
        }
        if let Some(&(Reverse(p), t)) = self.models[mi].waiters.first() {
            let ahead = match ticket {
                Some(mine) => mine != t,
                None => p >= req.priority,
            };
            if ahead {
                return Err(PoolError::PoolExhausted(self.models[mi].spec.id.clone()).into());
            }
        }
        let cold = matches!(model.state, Lifecycle::Idle | Lifecycle::Loading);
        if model.state == Lifecycle::Idle {
            let plan = self.eviction_plan(target)?;
            self.apply_evictions(&plan, now);
            self.set_state(target, Lifecycle::Loading, now);
        }
        if cold {
            self.set_state(target, Lifecycle::Warm, now);
        }
        self.set_state(target, Lifecycle::Active, now);
        let owner = self.owner(req.owner);
        self.owners[owner].reserved += estimate;
        let model = &mut self.models[target];
        model.reserved += estimate;
        model.in_use += 1;
        model.cold_starts += u64::from(cold);
        model.last_used = now;
        if probe {
            model.health.probing = true;
        }
        let slot = model.free.pop().unwrap_or_else(|| {
            model.issued += 1;
            model.issued - 1
        });
        let id = self.next_lease;
        // The counter wraps within the low 32 bits (skipping 0), never into the epoch.
        self.next_lease = (id & !0xFFFF_FFFF) | u64::from((id as u32).wrapping_add(1).max(1));
        self.leases.insert(
            id,
            LeaseRec {
                model: target,
                owner,
                slot,
                estimate,
                acquired_at: now,
                probe,
            },
        );
        self.predictor.observe(target, now);
        Ok(Lease {
            id,
            model: Arc::clone(&self.models[target].id),
            requested: Arc::clone(&self.models[mi].id),
            slot,
            cold_start: cold,
            probe,
        })
    }

    fn charge(&mut self, model: usize, owner: usize, cost: f64) {
        self.models[model].spent += cost;
        self.owners[owner].spent += cost;
    }

    fn snap(&self) -> Snap {
        Snap {
            models: self
                .models
                .iter()
                .map(|m| SnapModel {
                    spec: m.spec.clone(),
                    budget: m.budget,
                    spent: m.spent,
                    calls: m.calls,
                    errors: m.errors,
                    cold_starts: m.cold_starts,
                    health: m.health.policy,
                })
                .collect(),
            owners: self
                .owners
                .iter()
                .map(|o| (o.name.clone(), o.spent, o.budget))
                .collect(),
            memory_limit: self.memory_limit,
            policy: self.policy,
            predictor: self.predictor.clone(),
        }
    }

    fn apply(&mut self, rec: Rec<'_>, now: Micros) -> Result<()> {
        match rec {
            Rec::Register(spec) => {
                let fb = self.validate_spec(&spec)?;
                self.register(spec, fb, now);
            }
            Rec::OwnerBudget(o, b) => {
                let o = self.owner(&o);
                self.owners[o].budget = b;
            }
            Rec::ModelBudget(m, b) => {
                self.models
                    .get_mut(m as usize)
                    .ok_or_else(|| Error::Internal(format!("no model #{m}")))?
                    .budget = b;
            }
            Rec::MemoryLimit(l) => self.memory_limit = l,
            Rec::HealthPolicy(m, p) => {
                self.models
                    .get_mut(m as usize)
                    .ok_or_else(|| Error::Internal(format!("no model #{m}")))?
                    .health
                    .policy = p;
            }
            Rec::Policy(p) => self.policy = p,
            Rec::Release {
                model,
                owner,
                cost,
                ok,
                at,
            } => {
                let m = model as usize;
                if m >= self.models.len() {
                    return Err(Error::Internal(format!("no model #{m}")));
                }
                let o = self.owner(&owner);
                self.charge(m, o, cost);
                self.models[m].calls += 1;
                self.models[m].errors += u64::from(!ok);
                self.predictor.observe(m, at);
            }
        }
        Ok(())
    }
}

/// Models, slots and their lifecycle.
pub struct PoolManager {
    ctx: Ctx,
    state: Mutex<State>,
    freed: Condvar,
}

impl std::fmt::Debug for PoolManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock();
        write!(
            f,
            "PoolManager({} models, {} leases)",
            s.models.len(),
            s.leases.len()
        )
    }
}

fn secs(us: Micros) -> f64 {
    us as f64 / SECOND as f64
}

impl PoolManager {
    /// A pool with no models.
    pub fn new(ctx: &Ctx) -> Self {
        Self {
            ctx: ctx.clone(),
            state: Mutex::new(State::new()),
            freed: Condvar::new(),
        }
    }

    fn log(&self, rec: &Rec<'_>, durable: bool) -> Result<()> {
        let lsn = self.ctx.journal.append(Tag::Pool, rec)?;
        if durable {
            self.ctx.journal.sync(lsn)?;
        }
        Ok(())
    }

    /// Register a model. Acknowledged, or durable with `durable`.
    pub fn register(&self, spec: ModelSpec, durable: bool) -> Result<()> {
        let now = self.ctx.clock.now();
        let lsn = {
            let mut s = self.state.lock();
            let fb = s.validate_spec(&spec)?;
            let rec = Rec::Register(spec);
            let lsn = self.ctx.journal.append(Tag::Pool, &rec)?;
            let Rec::Register(spec) = rec else {
                unreachable!()
            };
            s.register(spec, fb, now);
            lsn
        };
        if durable {
            self.ctx.journal.sync(lsn)?;
        }
        Ok(())
    }

    /// Number of registered models.
    pub fn len(&self) -> usize {
        self.state.lock().models.len()
    }

    /// Whether no model is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of the registered models, in registration order.
    pub fn models(&self) -> Vec<Arc<str>> {
        self.state
            .lock()
            .models
            .iter()
            .map(|m| Arc::clone(&m.id))
            .collect()
    }

    /// Whether `model` is registered.
    pub fn contains(&self, model: &str) -> bool {
        self.state.lock().by_id.contains_key(model)
    }

    /// Index of `model` (stable: models are never removed).
    pub fn model_index(&self, model: &str) -> Result<usize> {
        self.state.lock().model(model)
    }

    /// Id of the model at `index`.
    pub fn model_id(&self, index: usize) -> Option<Arc<str>> {
        self.state
            .lock()
            .models
            .get(index)
            .map(|m| Arc::clone(&m.id))
    }

    /// Occupancy of every model, by index, into `out` (cleared first). One lock.
    pub fn views(&self, out: &mut Vec<ModelView>) {
        let now = self.ctx.clock.now();
        let s = self.state.lock();
        out.clear();
        out.extend(s.models.iter().map(|m| ModelView {
            slots: m.spec.slots,
            in_use: m.in_use,
            state: m.state,
            health: if m.health.state == Health::Down && m.health.probe_due(now) {
                Health::Degraded
            } else {
                m.health.state
            },
            price_per_call: m.spec.price_per_call,
        }));
    }

    /// A model's state.
    pub fn info(&self, model: &str) -> Result<ModelInfo> {
        let s = self.state.lock();
        let m = &s.models[s.model(model)?];
        Ok(ModelInfo {
            spec: m.spec.clone(),
            state: m.state,
            since: m.since,
            in_use: m.in_use,
            health: m.health.state,
            error_rate: m.health.error_rate(),
            spent: m.spent,
            budget: m.budget,
            calls: m.calls,
            errors: m.errors,
            cold_starts: m.cold_starts,
            waiting: m.waiters.len(),
            last_used: m.last_used,
        })
    }

    /// A model's lifecycle state and when it was entered.
    pub fn state(&self, model: &str) -> Result<(Lifecycle, Micros)> {
        let s = self.state.lock();
        let m = &s.models[s.model(model)?];
        Ok((m.state, m.since))
    }

    /// A model's health.
    pub fn health(&self, model: &str) -> Result<Health> {
        let s = self.state.lock();
        Ok(s.models[s.model(model)?].health.state)
    }

    /// The last transitions of a model (at most 32): `(from, to, at)`.
    pub fn history(&self, model: &str) -> Result<Vec<(Lifecycle, Lifecycle, Micros)>> {
        let s = self.state.lock();
        Ok(s.models[s.model(model)?].history.iter().copied().collect())
    }

    /// An explicit lifecycle transition reported by the extension host. Legal: idle → loading
    /// (may evict), loading → warm, loading → idle (load failed), warm → idle and cooldown →
    /// idle (unload). `active` and `cooldown` are entered by acquire and release only. Returns
    /// the models evicted to make room.
    pub fn transition(&self, model: &str, to: Lifecycle) -> Result<Vec<Arc<str>>> {
        let now = self.ctx.clock.now();
        let mut s = self.state.lock();
        let m = s.model(model)?;
        let from = s.models[m].state;
        let legal = matches!(
            (from, to),
            (Lifecycle::Idle, Lifecycle::Loading)
                | (Lifecycle::Loading, Lifecycle::Warm | Lifecycle::Idle)
                | (Lifecycle::Warm | Lifecycle::Cooldown, Lifecycle::Idle)
        );
        if !legal {
            let why = match (from, to) {
                (_, Lifecycle::Active) => " (active is entered by acquiring a slot)",
                (_, Lifecycle::Cooldown) => " (cooldown is entered by releasing the last slot)",
                (Lifecycle::Active, _) => " (the model has leased slots)",
                _ => "",
            };
            return Err(PoolError::IllegalTransition {
                model: model.to_string(),
                from: from.as_str(),
                to: to.as_str(),
                why,
            }
            .into());
        }
        let mut evicted = Vec::new();
        if to == Lifecycle::Loading {
            let plan = s.eviction_plan(m)?;
            evicted = s.apply_evictions(&plan, now);
        }
        s.set_state(m, to, now);
        Ok(evicted)
    }

    /// Load `model` now if it is idle (idle → loading → warm), completing a load in progress.
    /// Returns the models evicted to make room. A no-op for a resident model.
    pub fn prewarm(&self, model: &str) -> Result<Vec<Arc<str>>> {
        let now = self.ctx.clock.now();
        let mut s = self.state.lock();
        let m = s.model(model)?;
        let mut evicted = Vec::new();
        if s.models[m].state == Lifecycle::Idle {
            let plan = s.eviction_plan(m)?;
            evicted = s.apply_evictions(&plan, now);
            s.set_state(m, Lifecycle::Loading, now);
        }
        if s.models[m].state == Lifecycle::Loading {
            s.set_state(m, Lifecycle::Warm, now);
        }
        Ok(evicted)
    }

    /// Take a slot now or fail with `PoolExhausted` (never blocks).
    pub fn try_acquire(&self, req: &Request<'_>) -> Result<Lease> {
        let now = self.ctx.clock.now();
        self.state.lock().try_grant(req, now, None)
    }

    /// Take a slot, waiting up to `timeout` (forever with `None`) in the model's waiter queue:
    /// higher priority first, FIFO within a priority. Times out with `AcquireTimeout`.
    pub fn acquire(&self, req: &Request<'_>, timeout: Option<Duration>) -> Result<Lease> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut s = self.state.lock();
        match s.try_grant(req, self.ctx.clock.now(), None) {
            Err(Error::Pool(PoolError::PoolExhausted(_))) => {}
            r => return r,
        }
        let mi = s.model(req.model)?;
        let ticket = s.next_ticket;
        s.next_ticket += 1;
        s.models[mi].waiters.insert((Reverse(req.priority), ticket));
        s.waiting += 1;
        loop {
            let timed_out = if let Some(d) = deadline {
                self.freed.wait_until(&mut s, d).timed_out()
            } else {
                self.freed.wait(&mut s);
                false
            };
            let r = s.try_grant(req, self.ctx.clock.now(), Some(ticket));
            if matches!(r, Err(Error::Pool(PoolError::PoolExhausted(_)))) && !timed_out {
                continue;
            }
            s.models[mi]
                .waiters
                .remove(&(Reverse(req.priority), ticket));
            s.waiting -= 1;
            if s.waiting > 0 {
                self.freed.notify_all();
            }
            return r.map_err(|e| match e {
                Error::Pool(PoolError::PoolExhausted(m)) => PoolError::AcquireTimeout(m).into(),
                e => e,
            });
        }
    }

    /// Return a slot with the call's outcome. Returns the cost charged. Acknowledged (the spend
    /// is journaled), or durable with `durable`.
    pub fn release(&self, lease: u64, outcome: Outcome, durable: bool) -> Result<f64> {
        if !(outcome.latency.is_finite() && outcome.latency >= 0.0) {
            return Err(invalid(format!(
                "argument 'latency': expected a finite non-negative number of seconds, got {}",
                outcome.latency
            )));
        }
        if let Some(c) = outcome.cost {
            check_money("cost", c)?;
        }
        let now = self.ctx.clock.now();
        let (cost, lsn) = {
            let mut s = self.state.lock();
            if s.closed {
                return Err(crate::StorageError::Closed.into());
            }
            let Some(rec) = s.leases.remove(&lease) else {
                return Err(if lease >> 32 == s.next_lease >> 32 {
                    PoolError::LeaseNotFound(lease)
                } else {
                    PoolError::ForeignLease(lease)
                }
                .into());
            };
            let (m, owner, probe, estimate, slot) =
                (rec.model, rec.owner, rec.probe, rec.estimate, rec.slot);
            let spec = &s.models[m].spec;
            let cost = outcome
                .cost
                .unwrap_or(spec.price_per_call + outcome.tokens as f64 * spec.price_per_token);
            // Journal before changing anything else: a refused append (closed or failed
            // journal) puts the lease back and changes nothing.
            let appended = self.ctx.journal.append(
                Tag::Pool,
                &Rec::Release {
                    model: m as u32,
                    owner: Cow::Borrowed(&s.owners[owner].name),
                    cost,
                    ok: outcome.ok,
                    at: rec.acquired_at,
                },
            );
            let lsn = match appended {
                Ok(lsn) => lsn,
                Err(e) => {
                    s.leases.insert(lease, rec);
                    return Err(e);
                }
            };
            s.charge(m, owner, cost);
            let acct = &mut s.owners[owner];
            acct.reserved = (acct.reserved - estimate).max(0.0);
            let model = &mut s.models[m];
            model.reserved = (model.reserved - estimate).max(0.0);
            model.calls += 1;
            model.errors += u64::from(!outcome.ok);
            model.health.record(outcome.ok, outcome.latency, probe, now);
            model.in_use -= 1;
            model.free.push(slot);
            model.last_used = now;
            if model.in_use == 0 {
                s.set_state(m, Lifecycle::Cooldown, now);
            }
            if s.waiting > 0 {
                self.freed.notify_all();
            }
            (cost, lsn)
        };
        if durable {
            self.ctx.journal.sync(lsn)?;
        }
        Ok(cost)
    }

    /// Refuse every later acquire and release (`PitClosedError`) and wake the threads waiting
    /// in [`PoolManager::acquire`] with that error. Called by [`crate::Pit::close`].
    pub fn close(&self) {
        let mut s = self.state.lock();
        s.closed = true;
        self.freed.notify_all();
    }

    /// Number of leases held.
    pub fn leases(&self) -> usize {
        self.state.lock().leases.len()
    }

    /// Set (or clear) an owner's hard budget.
    pub fn set_owner_budget(&self, owner: &str, budget: Option<f64>, durable: bool) -> Result<()> {
        if let Some(b) = budget {
            check_money("budget", b)?;
        }
        let mut s = self.state.lock();
        let o = s.owner(owner);
        self.log(&Rec::OwnerBudget(Cow::Borrowed(owner), budget), durable)?;
        s.owners[o].budget = budget;
        Ok(())
    }

    /// Set (or clear) a model's hard budget.
    pub fn set_model_budget(&self, model: &str, budget: Option<f64>, durable: bool) -> Result<()> {
        if let Some(b) = budget {
            check_money("budget", b)?;
        }
        let mut s = self.state.lock();
        let m = s.model(model)?;
        self.log(&Rec::ModelBudget(m as u32, budget), durable)?;
        s.models[m].budget = budget;
        Ok(())
    }

    /// An owner's spend, in-flight estimate and budget (zeros for an unknown owner).
    pub fn owner_spend(&self, owner: &str) -> (f64, f64, Option<f64>) {
        let s = self.state.lock();
        s.by_owner.get(owner).map_or((0.0, 0.0, None), |&o| {
            let a = &s.owners[o];
            (a.spent, a.reserved, a.budget)
        })
    }

    /// Set (or clear) the memory limit in bytes. Lowering it does not evict at once; the next
    /// load does.
    pub fn set_memory_limit(&self, limit: Option<u64>, durable: bool) -> Result<()> {
        let mut s = self.state.lock();
        self.log(&Rec::MemoryLimit(limit), durable)?;
        s.memory_limit = limit;
        Ok(())
    }

    /// Memory held by resident models, the limit, and models evicted so far.
    pub fn memory(&self) -> (u64, Option<u64>, u64) {
        let s = self.state.lock();
        (s.resident(), s.memory_limit, s.evicted)
    }

    /// Set a model's health thresholds.
    pub fn set_health_policy(
        &self,
        model: &str,
        policy: HealthPolicy,
        durable: bool,
    ) -> Result<()> {
        let rates = [policy.degraded_error_rate, policy.down_error_rate];
        if rates.iter().any(|r| !(0.0..=1.0).contains(r))
            || policy.degraded_error_rate > policy.down_error_rate
        {
            return Err(invalid(
                "error rates must be within [0, 1] and degraded_error_rate <= down_error_rate",
            ));
        }
        if policy.window == 0 || policy.min_samples == 0 || policy.degraded_latency.is_nan() {
            return Err(invalid(
                "window and min_samples must be positive and degraded_latency a number",
            ));
        }
        if policy.min_samples > policy.window {
            return Err(invalid(format!(
                "argument 'min_samples': must be at most window ({}), got {}; the window never \
                 holds more outcomes, so the model would never be judged",
                policy.window, policy.min_samples
            )));
        }
        let mut s = self.state.lock();
        let m = s.model(model)?;
        self.log(&Rec::HealthPolicy(m as u32, policy), durable)?;
        s.models[m].health.policy = policy;
        Ok(())
    }

    /// Choose how [`PoolManager::sweep`] unloads.
    pub fn set_keep_alive_policy(&self, policy: KeepAlive, durable: bool) -> Result<()> {
        let mut s = self.state.lock();
        self.log(&Rec::Policy(policy), durable)?;
        s.policy = policy;
        Ok(())
    }

    /// The keep-alive policy.
    pub fn keep_alive_policy(&self) -> KeepAlive {
        self.state.lock().policy
    }

    /// Unload warm or cooling-down models with no lease whose keep-alive ran out (fixed policy)
    /// or that the predictor does not plan warm now (predictive policy). Returns them.
    pub fn sweep(&self) -> Vec<Arc<str>> {
        let now = self.ctx.clock.now();
        let mut s = self.state.lock();
        s.predictor.prune(now.saturating_sub(3600 * SECOND));
        let mut out = Vec::new();
        for m in 0..s.models.len() {
            let model = &s.models[m];
            if model.in_use > 0 || !matches!(model.state, Lifecycle::Warm | Lifecycle::Cooldown) {
                continue;
            }
            let expired = match s.policy {
                KeepAlive::Fixed => now.saturating_sub(model.since) >= model.spec.keep_alive,
                KeepAlive::Predictive => !s.predictor.warm_at(m, now),
            };
            if expired {
                s.set_state(m, Lifecycle::Idle, now);
                out.push(Arc::clone(&s.models[m].id));
            }
        }
        out
    }

    /// Idle models the predictor plans warm now: load them (e.g. [`PoolManager::prewarm`]).
    pub fn recommend_prewarm(&self) -> Vec<Arc<str>> {
        let now = self.ctx.clock.now();
        let s = self.state.lock();
        s.models
            .iter()
            .enumerate()
            .filter(|(i, m)| m.state == Lifecycle::Idle && s.predictor.warm_at(*i, now))
            .map(|(_, m)| Arc::clone(&m.id))
            .collect()
    }

    /// The predictor's plan for `model` after its next invocation: own window `(a, b)` in
    /// seconds relative to the invocation (`None`: not kept warm), and successor windows
    /// `(model, lo, hi)`.
    #[allow(clippy::type_complexity)] // a plain tuple reads better than a one-use struct here
    pub fn predicted_windows(
        &self,
        model: &str,
    ) -> Result<(Option<(f64, f64)>, Vec<(Arc<str>, f64, f64)>)> {
        let s = self.state.lock();
        let m = s.model(model)?;
        let own = s.predictor.own_window(m);
        let succ = s
            .predictor
            .successor_windows(m)
            .into_iter()
            .map(|(b, lo, hi)| (Arc::clone(&s.models[b].id), secs(lo), secs(hi)))
            .collect();
        Ok((own.map(|(a, b)| (secs(a), secs(b))), succ))
    }
}

impl Persistent for PoolManager {
    fn tag(&self) -> Tag {
        Tag::Pool
    }

    fn snapshot(&self) -> Result<(Lsn, Vec<u8>)> {
        let s = self.state.lock();
        let lsn = self.ctx.journal.last_lsn();
        let bytes = postcard::to_stdvec(&s.snap())
            .map_err(|e| Error::Internal(format!("pool snapshot: {e}")))?;
        Ok((lsn, bytes))
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let snap: Snap = postcard::from_bytes(bytes)
            .map_err(|e| Error::Internal(format!("pool snapshot: {e}")))?;
        let now = self.ctx.clock.now();
        let mut s = State::new();
        for sm in snap.models {
            let fb = s.validate_spec(&sm.spec)?;
            let idx = s.models.len();
            s.register(sm.spec, fb, now);
            let m = &mut s.models[idx];
            m.budget = sm.budget;
            m.spent = sm.spent;
            m.calls = sm.calls;
            m.errors = sm.errors;
            m.cold_starts = sm.cold_starts;
            m.health.policy = sm.health;
        }
        for (name, spent, budget) in snap.owners {
            let o = s.owner(&name);
            s.owners[o].spent = spent;
            s.owners[o].budget = budget;
        }
        s.memory_limit = snap.memory_limit;
        s.policy = snap.policy;
        s.predictor = snap.predictor;
        *self.state.lock() = s;
        Ok(())
    }

    fn replay(&self, _lsn: Lsn, payload: &[u8]) -> Result<()> {
        let rec: Rec<'_> = postcard::from_bytes(payload)
            .map_err(|e| Error::Internal(format!("pool record: {e}")))?;
        let now = self.ctx.clock.now();
        self.state.lock().apply(rec, now)
    }
}

#[cfg(test)]
mod tests;
