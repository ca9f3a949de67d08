//! Arbitration Engine: decides who gets scarce model slots.
//!
//! Requests carry owner, workflow, wanted model, priority, business value, user impact,
//! estimated cost and deadline. Each decision grants one pending request (a batch of requests
//! sharing one slot under the collaborative strategy) a model with a free slot, reading the Pool
//! Manager's occupancy, health and warm state directly.
//!
//! * **Strategies**: `weighted` (default multi-factor score), `prioritization`, `round_robin`,
//!   `collaborative` (batch requests for one loaded model), `specialization` (weighted choice,
//!   routed to the model best suited to the request's workflow).
//! * **Queues**: one queue per owner ordered by the strategy's static key; a decision compares
//!   the heads of the owners' queues with the full (dynamic) score. An owner whose head request
//!   cannot be served now (its model has no free slot or is down) sits this decision out.
//! * **Starvation bound**: a request that has waited `starvation_bound` grants (default 32)
//!   while its model had a free slot is granted next (oldest first), whatever the strategy.
//! * **Fairness**: each owner's usage (slots granted and estimated cost) decays with a
//!   half-life; the dominant share (max of slot share and cost share) feeds the `fairness`
//!   factor.
//! * **Budgets**: per-owner hard budget and per-request cost cap; checked at submission
//!   (`BudgetExceeded`) and again at decision (the request is rejected with a rationale).
//! * **Rationale**: every decision records its factor breakdown (name, weight, value,
//!   contribution), readable by decision id from a bounded history (default 65,536 decisions).
//! * **Feedback**: [`ArbitrationEngine::report`] settles the cost and nudges the weights of the
//!   weighted strategy towards factors that were high in decisions that went well.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::{Classify, Detail, Error, ErrorKind, Result};
use crate::pool::fx::HashMap;
use crate::pool::{Health, Lifecycle, ModelView, PoolManager};
use crate::{Ctx, Lsn, Micros, Persistent, Tag, SECOND};

/// Arbitration failures.
#[derive(Debug, thiserror::Error)]
pub enum ArbitrationError {
    /// Unknown request.
    #[error("unknown request {0} (never submitted, or already decided or cancelled)")]
    RequestNotFound(u64),
    /// Unknown decision (never made, or dropped from the bounded history).
    #[error("unknown decision {0} (never made, or older than the last {1} decisions kept)")]
    DecisionNotFound(u64, usize),
    /// A bad argument value.
    #[error("{0}")]
    InvalidArgument(String),
    /// The owner's budget or spending policy does not cover the request.
    #[error("{1}")]
    BudgetExceeded(String, String),
    /// The decision's outcome was already reported.
    #[error("the outcome of decision {0} was already reported")]
    AlreadyReported(u64),
}

impl Classify for ArbitrationError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::RequestNotFound(_) | Self::DecisionNotFound(..) => ErrorKind::RequestNotFound,
            Self::InvalidArgument(_) | Self::AlreadyReported(_) => ErrorKind::InvalidArgument,
            Self::BudgetExceeded(..) => ErrorKind::BudgetExceeded,
        }
    }

    fn detail(&self) -> Detail {
        match self {
            Self::RequestNotFound(r) | Self::DecisionNotFound(r, _) | Self::AlreadyReported(r) => {
                Detail::Subject(r.to_string())
            }
            Self::BudgetExceeded(o, _) => Detail::Subject(o.clone()),
            Self::InvalidArgument(_) => Detail::None,
        }
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    ArbitrationError::InvalidArgument(msg.into()).into()
}

/// How the engine chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Weighted multi-factor score (default).
    Weighted,
    /// Highest priority, then earliest deadline, then oldest.
    Prioritization,
    /// Owners in turn, oldest request first within an owner.
    RoundRobin,
    /// The model with the most pending requests (warm first); a batch shares one slot.
    Collaborative,
    /// Weighted choice, routed to the best-suited model for the workflow.
    Specialization,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 5] = [
        Self::Weighted,
        Self::Prioritization,
        Self::RoundRobin,
        Self::Collaborative,
        Self::Specialization,
    ];
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::Prioritization => "prioritization",
            Self::RoundRobin => "round_robin",
            Self::Collaborative => "collaborative",
            Self::Specialization => "specialization",
        }
    }
    /// Parse a lowercase name.
    pub fn parse(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            invalid(format!(
                "unknown strategy {s:?}; expected one of weighted, prioritization, round_robin, collaborative, specialization"
            ))
        })
    }
}

/// Number of factors.
pub const FACTORS: usize = 8;
/// Factor names, in rationale order.
pub const FACTOR_NAMES: [&str; FACTORS] = [
    "priority",
    "business_value",
    "user_impact",
    "urgency",
    "cost_efficiency",
    "fairness",
    "warm",
    "wait",
];
/// Default weights of the weighted strategy (sum 1).
pub const DEFAULT_WEIGHTS: [f64; FACTORS] = [0.30, 0.15, 0.15, 0.15, 0.05, 0.10, 0.05, 0.05];

/// Why a request was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// By the strategy.
    Strategy,
    /// It reached the starvation bound.
    Starvation,
    /// Rejected: the owner's budget no longer covers it.
    Budget,
}

impl Reason {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strategy => "strategy",
            Self::Starvation => "starvation_bound",
            Self::Budget => "budget",
        }
    }
}

/// One decision and its rationale.
#[derive(Debug, Clone)]
pub struct Decision {
    /// Decision id.
    pub id: u64,
    /// The request decided (the first of a collaborative batch).
    pub request: u64,
    /// Further requests sharing the slot (collaborative batches).
    pub batch: Vec<u64>,
    /// Owner of `request`.
    pub owner: Arc<str>,
    /// Workflow of `request`.
    pub workflow: Arc<str>,
    /// Model granted (pool index; `usize::MAX` when rejected).
    pub model: usize,
    /// Model requested.
    pub wanted: usize,
    /// Granted (false: rejected).
    pub granted: bool,
    /// Strategy in force.
    pub strategy: Strategy,
    /// Why.
    pub reason: Reason,
    /// Score (Σ contributions).
    pub score: f64,
    /// Weight of each factor.
    pub weights: [f64; FACTORS],
    /// Value of each factor in `[0, 1]`.
    pub values: [f64; FACTORS],
    /// When.
    pub at: Micros,
    /// Grants the request waited.
    pub waited: u64,
    /// Nanoseconds the decision took inside the engine.
    pub nanos: u32,
    /// Lease taken for it (decide with `acquire`).
    pub lease: Option<u64>,
}

/// A request as submitted.
#[derive(Debug, Clone, Copy)]
pub struct Submit<'a> {
    /// Owner.
    pub owner: &'a str,
    /// Workflow.
    pub workflow: &'a str,
    /// Wanted model id.
    pub model: &'a str,
    /// Priority, 0 (lowest) to 10.
    pub priority: i32,
    /// Business value in `[0, 1]`.
    pub value: f64,
    /// User impact in `[0, 1]`.
    pub impact: f64,
    /// Estimated cost.
    pub cost: f64,
    /// Absolute deadline.
    pub deadline: Option<Micros>,
}

/// Tunables.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Strategy.
    pub strategy: Strategy,
    /// Weights of the weighted strategy.
    pub weights: [f64; FACTORS],
    /// Grants a request may wait (while servable) before it is served next.
    pub starvation_bound: u64,
    /// Half-life of fairness usage.
    pub half_life: Micros,
    /// Cost per half-life counted as a whole share of the cost resource.
    pub cost_scale: f64,
    /// Largest collaborative batch.
    pub batch_size: u32,
    /// Learning rate of the weight feedback (0 disables).
    pub learning_rate: f64,
    /// Decisions kept for rationale lookup.
    pub history: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            strategy: Strategy::Weighted,
            weights: DEFAULT_WEIGHTS,
            starvation_bound: 32,
            half_life: 60 * SECOND,
            cost_scale: 10.0,
            batch_size: 8,
            learning_rate: 0.05,
            history: 65_536,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Req {
    id: u64,
    owner: u32,
    workflow: u32,
    model: u32,
    priority: i32,
    value: f64,
    impact: f64,
    cost: f64,
    deadline: Option<Micros>,
    submitted: Micros,
    at_grant: u64,
}

/// A queue entry: the strategy's key, then the request id (older first on ties).
type Key = (u64, Reverse<u64>);

/// An owner's queue: a binary heap for trickling submissions plus a sorted run for bulk ones
/// (a heap of 64+ entries at least as long as the run is merged into it; the run pops from its
/// end in O(1)).
#[derive(Debug, Default)]
struct Queue {
    heap: BinaryHeap<Key>,
    /// Ascending; the best entry is last.
    sorted: Vec<Key>,
}

impl Queue {
    fn push(&mut self, k: Key) {
        self.heap.push(k);
    }

    fn settle(&mut self) {
        // Amortized: an entry is re-sorted only when the heap outgrows the run.
        if self.heap.len() >= 64 && self.heap.len() >= self.sorted.len() {
            let mut v = std::mem::take(&mut self.heap).into_vec();
            v.append(&mut self.sorted);
            v.sort_unstable();
            self.sorted = v;
        }
    }

    fn peek(&mut self) -> Option<Key> {
        self.settle();
        match (self.heap.peek(), self.sorted.last()) {
            (Some(a), Some(b)) => Some(*a.max(b)),
            (a, b) => a.or(b).copied(),
        }
    }

    fn pop(&mut self) -> Option<Key> {
        self.settle();
        let from_heap = match (self.heap.peek(), self.sorted.last()) {
            (Some(a), Some(b)) => a > b,
            (Some(_), None) => true,
            _ => false,
        };
        if from_heap {
            self.heap.pop()
        } else {
            self.sorted.pop()
        }
    }

    fn clear(&mut self) {
        self.heap.clear();
        self.sorted.clear();
    }
}

/// Pending requests by id. Ids are handed out in increasing order, so a deque indexed by
/// `id - base` (leading holes trimmed) serves them with one direct access. Requests that stay
/// pending while many later ones are decided move to an overflow map, so the deque's span stays
/// within twice its live entries (plus 1024) whatever the workload.
#[derive(Debug, Default)]
struct Slab {
    base: u64,
    items: VecDeque<Option<Req>>,
    in_items: usize,
    old: HashMap<u64, Req>,
}

impl Slab {
    fn slot(&self, id: u64) -> Option<usize> {
        let i = usize::try_from(id.checked_sub(self.base)?).ok()?;
        (i < self.items.len()).then_some(i)
    }

    fn get(&self, id: u64) -> Option<&Req> {
        match self.slot(id) {
            Some(i) => self.items[i].as_ref(),
            None => self.old.get(&id),
        }
    }

    fn contains_key(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    fn insert(&mut self, id: u64, r: Req) {
        if self.items.is_empty() {
            self.base = id;
        }
        if id < self.base {
            self.old.insert(id, r);
            return;
        }
        let i = (id - self.base) as usize;
        while self.items.len() <= i {
            self.items.push_back(None);
        }
        if self.items[i].replace(r).is_none() {
            self.in_items += 1;
        }
    }

    fn remove(&mut self, id: u64) -> Option<Req> {
        let Some(i) = self.slot(id) else {
            return self.old.remove(&id);
        };
        let r = self.items[i].take()?;
        self.in_items -= 1;
        while self.items.front().is_some_and(Option::is_none) {
            self.items.pop_front();
            self.base += 1;
        }
        while self.items.back().is_some_and(Option::is_none) {
            self.items.pop_back();
        }
        while self.items.len() > 2 * self.in_items + 1024 {
            if let Some(Some(x)) = self.items.pop_front() {
                self.in_items -= 1;
                self.old.insert(x.id, x);
            }
            self.base += 1;
        }
        Some(r)
    }

    fn len(&self) -> usize {
        self.in_items + self.old.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live ids (unordered).
    fn keys(&self) -> impl Iterator<Item = &u64> + '_ {
        self.items
            .iter()
            .filter_map(|r| r.as_ref().map(|r| &r.id))
            .chain(self.old.keys())
    }
}

impl std::ops::Index<&u64> for Slab {
    type Output = Req;
    fn index(&self, id: &u64) -> &Req {
        self.get(*id).expect("pending request")
    }
}

/// How deep a decision looks into one owner's queue past requests whose model is busy.
const LOOKAHEAD: usize = 8;

#[derive(Debug, Default)]
struct Owner {
    name: Arc<str>,
    queue: Queue,
    pending: u32,
    slots_used: f64,
    cost_used: f64,
    last: Micros,
    spent: f64,
    committed: f64,
    queued: f64,
    budget: Option<f64>,
    max_cost: Option<f64>,
    grants: u64,
    max_waited: u64,
    /// Grant count when the owner was last served or its queue became non-empty.
    since: u64,
}

#[derive(Debug)]
struct Hist {
    decision: Decision,
    cost: f64,
    reported: bool,
}

#[derive(Debug)]
struct State {
    cfg: Config,
    owners: Vec<Owner>,
    by_owner: HashMap<Arc<str>, u32>,
    workflows: Vec<Arc<str>>,
    by_workflow: HashMap<Arc<str>, u32>,
    pending: Slab,
    by_model: Vec<VecDeque<u64>>,
    skills: HashMap<u32, Vec<(u32, f64)>>,
    next_request: u64,
    next_decision: u64,
    grants: u64,
    rr_next: usize,
    history: VecDeque<Hist>,
    model_ids: Vec<Arc<str>>,
    model_idx: HashMap<Arc<str>, u32>,
    heads: Vec<Option<Head>>,
}

/// Decay multiplier over `dt` with half-life `h`.
fn decay(dt: Micros, h: Micros) -> f64 {
    if dt == 0 {
        1.0
    } else {
        (-(dt as f64) / h.max(1) as f64 * std::f64::consts::LN_2).exp()
    }
}

fn urgency(deadline: Option<Micros>, now: Micros) -> f64 {
    match deadline {
        None => 0.0,
        Some(d) if d <= now => 1.0,
        Some(d) => 1.0 / (1.0 + (d - now) as f64 / (60.0 * SECOND as f64)),
    }
}

fn warmth(v: &ModelView) -> f64 {
    match v.state {
        Lifecycle::Active | Lifecycle::Warm => 1.0,
        Lifecycle::Cooldown => 0.8,
        Lifecycle::Loading => 0.5,
        Lifecycle::Idle => 0.0,
    }
}

fn servable(v: Option<&ModelView>) -> bool {
    v.is_some_and(|v| v.in_use < v.slots && v.health != Health::Down)
}

impl Req {
    fn static_values(&self, now: Micros) -> [f64; 5] {
        [
            f64::from(self.priority.clamp(0, 10)) / 10.0,
            self.value,
            self.impact,
            urgency(self.deadline, now),
            1.0 / (1.0 + self.cost),
        ]
    }

    fn key(&self, cfg: &Config) -> Key {
        /// Deadlines (µs since the epoch) fit in 56 bits until the year 4253.
        const LOW: u64 = (1 << 56) - 1;
        let k = match cfg.strategy {
            Strategy::Prioritization => {
                let urgency = self.deadline.map_or(0, |d| LOW - d.min(LOW));
                (u64::from(self.priority.clamp(0, 10) as u32) << 56) | urgency
            }
            Strategy::RoundRobin => 0,
            _ => {
                let v = self.static_values(self.submitted);
                let s: f64 = v.iter().zip(&cfg.weights).map(|(v, w)| v * w).sum();
                s.max(0.0).to_bits()
            }
        };
        (k, Reverse(self.id))
    }
}

/// An owner's best servable request, cached within one `decide` call.
#[derive(Debug, Clone, Copy)]
struct Head {
    id: u64,
    model: usize,
    /// Σ weight × value over the five static factors.
    stat: f64,
    values: [f64; 5],
    deadline: Option<Micros>,
    /// The owner's best entry (not a look-ahead past a busy model): only such a head stays
    /// valid while cached, since `enqueue` and `remove` reset it when the queue's top changes.
    top: bool,
}

struct Pick {
    id: u64,
    model: usize,
    reason: Reason,
    score: f64,
    weights: [f64; FACTORS],
    values: [f64; FACTORS],
}

impl State {
    fn new() -> Self {
        Self {
            cfg: Config::default(),
            owners: Vec::new(),
            by_owner: HashMap::default(),
            workflows: Vec::new(),
            by_workflow: HashMap::default(),
            pending: Slab::default(),
            by_model: Vec::new(),
            skills: HashMap::default(),
            next_request: 1,
            next_decision: 1,
            grants: 0,
            rr_next: 0,
            history: VecDeque::new(),
            model_ids: Vec::new(),
            model_idx: HashMap::default(),
            heads: Vec::new(),
        }
    }

    fn owner(&mut self, name: &str) -> u32 {
        if let Some(&o) = self.by_owner.get(name) {
            return o;
        }
        let o = self.owners.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.owners.push(Owner {
            name: Arc::clone(&name),
            ..Owner::default()
        });
        self.by_owner.insert(name, o);
        self.heads.push(None);
        o
    }

    fn workflow(&mut self, name: &str) -> u32 {
        if let Some(&w) = self.by_workflow.get(name) {
            return w;
        }
        let w = self.workflows.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.workflows.push(Arc::clone(&name));
        self.by_workflow.insert(name, w);
        w
    }

    fn enqueue(&mut self, r: Req) {
        let o = r.owner as usize;
        let key = r.key(&self.cfg);
        self.owners[o].queue.push(key);
        self.heads[o] = None;
        if self.owners[o].pending == 0 {
            self.owners[o].since = self.grants;
        }
        self.owners[o].pending += 1;
        self.owners[o].queued += r.cost;
        if self.cfg.strategy == Strategy::Collaborative {
            let m = r.model as usize;
            if self.by_model.len() <= m {
                self.by_model.resize_with(m + 1, VecDeque::new);
            }
            self.by_model[m].push_back(r.id);
        }
        self.pending.insert(r.id, r);
    }

    fn rebuild_queues(&mut self) {
        let cfg = self.cfg;
        for o in &mut self.owners {
            o.queue.clear();
        }
        self.by_model.clear();
        self.heads.iter_mut().for_each(|h| *h = None);
        let mut ids: Vec<u64> = self.pending.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let r = &self.pending[&id];
            let key = r.key(&cfg);
            self.owners[r.owner as usize].queue.push(key);
            if cfg.strategy == Strategy::Collaborative {
                let m = r.model as usize;
                if self.by_model.len() <= m {
                    self.by_model.resize_with(m + 1, VecDeque::new);
                }
                self.by_model[m].push_back(id);
            }
        }
    }

    /// Share of the dominant resource of owner `o` at `now` (decayed, not stored).
    fn share(&self, o: usize, now: Micros, total_slots: f64) -> f64 {
        let ow = &self.owners[o];
        let d = decay(now.saturating_sub(ow.last), self.cfg.half_life);
        let slots = ow.slots_used * d / total_slots.max(1.0);
        let cost = ow.cost_used * d / self.cfg.cost_scale.max(f64::MIN_POSITIVE);
        slots.max(cost)
    }

    /// The model serving request `r`: its own, or the best-suited under specialization.
    fn route(&self, r: &Req, views: &[ModelView]) -> Option<usize> {
        if self.cfg.strategy == Strategy::Specialization {
            if let Some(skills) = self.skills.get(&r.workflow) {
                let best = skills
                    .iter()
                    .filter(|(m, _)| servable(views.get(*m as usize)))
                    .max_by(|a, b| {
                        let wa = warmth(&views[a.0 as usize]);
                        let wb = warmth(&views[b.0 as usize]);
                        (a.1, wa)
                            .partial_cmp(&(b.1, wb))
                            .unwrap_or(std::cmp::Ordering::Equal)
                    });
                if let Some((m, _)) = best {
                    return Some(*m as usize);
                }
            }
        }
        let m = r.model as usize;
        servable(views.get(m)).then_some(m)
    }

    /// Head of owner `o`'s queue (dropping dead entries).
    fn head(&mut self, o: usize) -> Option<u64> {
        let owner = &mut self.owners[o];
        while let Some((_, Reverse(id))) = owner.queue.peek() {
            if self.pending.contains_key(id) {
                return Some(id);
            }
            owner.queue.pop();
        }
        None
    }

    /// The best servable request among the first [`LOOKAHEAD`] live entries of owner `o`'s
    /// queue, with the model serving it and whether it is the queue's best entry.
    fn candidate(&mut self, o: usize, views: &[ModelView]) -> Option<(u64, usize, bool)> {
        let id = self.head(o)?;
        if let Some(m) = self.route(&self.pending[&id], views) {
            return Some((id, m, true));
        }
        let mut popped = Vec::with_capacity(LOOKAHEAD);
        let mut found = None;
        while popped.len() < LOOKAHEAD {
            let Some(e) = self.owners[o].queue.pop() else {
                break;
            };
            let Some(r) = self.pending.get(e.1 .0) else {
                continue;
            };
            let m = self.route(r, views);
            popped.push(e);
            if let Some(m) = m {
                found = Some((e.1 .0, m, false));
                break;
            }
        }
        for e in popped {
            self.owners[o].queue.push(e);
        }
        found
    }

    fn values(
        &self,
        r: &Req,
        m: usize,
        views: &[ModelView],
        fairness: f64,
        now: Micros,
    ) -> [f64; FACTORS] {
        let s = r.static_values(now);
        let since = self.owners[r.owner as usize].since;
        let waited = (self.grants - since) as f64 / self.cfg.starvation_bound.max(1) as f64;
        [
            s[0],
            s[1],
            s[2],
            s[3],
            s[4],
            fairness,
            views.get(m).map_or(0.0, warmth),
            waited.min(1.0),
        ]
    }

    #[allow(clippy::too_many_lines)] // one match over the strategies reads best in one place
    fn pick(&mut self, now: Micros, views: &[ModelView], shares: &[f64]) -> Option<Pick> {
        // Starvation bound first: the owner with pending work that has waited longest, once it
        // has gone `starvation_bound` grants without one, gets its best servable request.
        let bound = self.cfg.starvation_bound;
        let grants = self.grants;
        let any_starving = self
            .owners
            .iter()
            .any(|ow| ow.pending > 0 && grants - ow.since >= bound);
        let mut starving: Vec<(u64, usize)> = Vec::new();
        if any_starving {
            starving = self
                .owners
                .iter()
                .enumerate()
                .filter(|(_, ow)| ow.pending > 0 && grants - ow.since >= bound)
                .map(|(o, ow)| (ow.since, o))
                .collect();
            starving.sort_unstable();
        }
        for (_, o) in starving {
            if let Some((id, m, _)) = self.candidate(o, views) {
                let values = self.values(&self.pending[&id], m, views, 1.0, now);
                return Some(Pick {
                    id,
                    model: m,
                    reason: Reason::Starvation,
                    score: 0.0,
                    weights: [0.0; FACTORS],
                    values,
                });
            }
        }
        let n = self.owners.len();
        let max_share = shares.iter().copied().fold(0.0, f64::max);
        let fair = |o: usize| {
            if max_share > 0.0 {
                1.0 - shares.get(o).copied().unwrap_or(0.0) / max_share
            } else {
                1.0
            }
        };
        match self.cfg.strategy {
            Strategy::Weighted | Strategy::Specialization | Strategy::Prioritization => {
                let weights = if self.cfg.strategy == Strategy::Prioritization {
                    // Priority decides; urgency (earlier deadline) breaks ties, then age.
                    [1.0, 0.0, 0.0, 1e-3, 0.0, 0.0, 0.0, 0.0]
                } else {
                    self.cfg.weights
                };
                let bound = self.cfg.starvation_bound.max(1) as f64;
                let mut best: Option<(f64, usize, Head, [f64; 4])> = None;
                for o in 0..n {
                    if self.owners[o].pending == 0 {
                        continue;
                    }
                    // Valid while servable and still the owner's best (not a look-ahead): the
                    // `top` flag stands for peeking the queue, which `enqueue` and `remove` keep
                    // true by resetting the cached head whenever the queue's best entry changes.
                    let cached = self.heads[o].filter(|h| h.top && servable(views.get(h.model)));
                    let h = if let Some(h) = cached {
                        h
                    } else {
                        let Some((id, m, top)) = self.candidate(o, views) else {
                            self.heads[o] = None;
                            continue;
                        };
                        let r = &self.pending[&id];
                        let sv = r.static_values(now);
                        // Urgency moves with time: it is added at evaluation.
                        let stat = sv
                            .iter()
                            .zip(&weights)
                            .enumerate()
                            .filter(|(i, _)| *i != 3)
                            .map(|(_, (v, w))| v * w)
                            .sum();
                        let h = Head {
                            id,
                            model: m,
                            stat,
                            values: sv,
                            deadline: r.deadline,
                            top,
                        };
                        self.heads[o] = Some(h);
                        h
                    };
                    let dynamic = [
                        urgency(h.deadline, now),
                        fair(o),
                        views.get(h.model).map_or(0.0, warmth),
                        ((self.grants - self.owners[o].since) as f64 / bound).min(1.0),
                    ];
                    let score = h.stat
                        + weights[3] * dynamic[0]
                        + weights[5] * dynamic[1]
                        + weights[6] * dynamic[2]
                        + weights[7] * dynamic[3];
                    let better = best.as_ref().is_none_or(|(s, _, bh, _)| {
                        score > *s || (score.to_bits() == s.to_bits() && h.id < bh.id)
                    });
                    if better {
                        best = Some((score, o, h, dynamic));
                    }
                }
                best.map(|(score, _, h, d)| {
                    let v = h.values;
                    Pick {
                        id: h.id,
                        model: h.model,
                        reason: Reason::Strategy,
                        score,
                        weights,
                        values: [v[0], v[1], v[2], d[0], v[4], d[1], d[2], d[3]],
                    }
                })
            }
            Strategy::RoundRobin => {
                for k in 0..n {
                    let o = (self.rr_next + k) % n;
                    if self.owners[o].pending == 0 {
                        continue;
                    }
                    let Some((id, m, _)) = self.candidate(o, views) else {
                        continue;
                    };
                    let r = &self.pending[&id];
                    self.rr_next = (o + 1) % n;
                    let values = self.values(r, m, views, fair(o), now);
                    return Some(Pick {
                        id,
                        model: m,
                        reason: Reason::Strategy,
                        score: 0.0,
                        weights: [0.0; FACTORS],
                        values,
                    });
                }
                None
            }
            Strategy::Collaborative => {
                let mut best: Option<(f64, usize)> = None;
                for m in 0..self.by_model.len() {
                    let q = &mut self.by_model[m];
                    while q.front().is_some_and(|id| !self.pending.contains_key(*id)) {
                        q.pop_front();
                    }
                    if q.is_empty() || !servable(views.get(m)) {
                        continue;
                    }
                    let live = q
                        .iter()
                        .filter(|id| self.pending.contains_key(**id))
                        .take(self.cfg.batch_size as usize)
                        .count();
                    let score = live.min(self.cfg.batch_size as usize) as f64 + warmth(&views[m]);
                    if best.is_none_or(|(s, _)| score > s) {
                        best = Some((score, m));
                    }
                }
                let (score, m) = best?;
                let id = *self.by_model[m].front()?;
                let r = &self.pending[&id];
                let o = r.owner as usize;
                let values = self.values(r, m, views, fair(o), now);
                Some(Pick {
                    id,
                    model: m,
                    reason: Reason::Strategy,
                    score,
                    weights: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
                    values,
                })
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<Req> {
        let r = self.pending.remove(id)?;
        let o = r.owner as usize;
        if self.heads[o].is_some_and(|h| h.id == id) {
            self.heads[o] = None;
        }
        // Usually the request is its owner's best: drop its entry now rather than probing the
        // map for a dead id later.
        if self.owners[o]
            .queue
            .peek()
            .is_some_and(|(_, Reverse(top))| top == id)
        {
            self.owners[o].queue.pop();
        }
        let ow = &mut self.owners[r.owner as usize];
        ow.pending -= 1;
        ow.queued = if ow.pending == 0 {
            0.0
        } else {
            (ow.queued - r.cost).max(0.0)
        };
        Some(r)
    }

    fn push_history(&mut self, d: Decision, cost: f64) {
        if self.cfg.history == 0 {
            return;
        }
        while self.history.len() >= self.cfg.history {
            self.history.pop_front();
        }
        self.history.push_back(Hist {
            decision: d,
            cost,
            reported: false,
        });
    }

    fn find(&mut self, id: u64) -> Option<&mut Hist> {
        let first = self.history.front()?.decision.id;
        let i = id.checked_sub(first)? as usize;
        self.history.get_mut(i).filter(|h| h.decision.id == id)
    }

    /// Apply a grant's effect on the owner (shared by live decisions and replay).
    fn account(&mut self, o: usize, cost: f64, n: f64, now: Micros) {
        let h = self.cfg.half_life;
        let ow = &mut self.owners[o];
        let d = decay(now.saturating_sub(ow.last), h);
        ow.slots_used = ow.slots_used * d + n;
        ow.cost_used = ow.cost_used * d + cost;
        ow.last = ow.last.max(now);
        ow.committed += cost;
        ow.grants += 1;
        ow.since = self.grants + 1;
    }
}

#[derive(Serialize, Deserialize)]
struct ReqRec<'a> {
    id: u64,
    owner: Cow<'a, str>,
    workflow: Cow<'a, str>,
    model: u32,
    priority: i32,
    value: f64,
    impact: f64,
    cost: f64,
    deadline: Option<Micros>,
    submitted: Micros,
    at_grant: u64,
}

#[derive(Serialize, Deserialize)]
enum Rec<'a> {
    Config(Config),
    Policy(Cow<'a, str>, Option<f64>, Option<f64>),
    Skill(Cow<'a, str>, u32, f64),
    Submit(Vec<ReqRec<'a>>),
    Cancel(u64),
    /// `(request, granted, cost)` per decision, the next decision id, and when.
    Decided(Vec<(u64, u8, f64, u32)>, u64, Micros),
    Outcome(Cow<'a, str>, f64, f64, [f64; FACTORS]),
}

/// `(name, slots used, cost used, last, spent, committed, budget, max cost, grants)`.
type OwnerSnap = (
    String,
    f64,
    f64,
    Micros,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    u64,
);

#[derive(Serialize, Deserialize)]
struct Snap<'a> {
    cfg: Config,
    owners: Vec<OwnerSnap>,
    skills: Vec<(String, u32, f64)>,
    pending: Vec<ReqRec<'a>>,
    next_request: u64,
    next_decision: u64,
    grants: u64,
}

/// Decides who gets scarce slots.
pub struct ArbitrationEngine {
    ctx: Ctx,
    pool: Arc<PoolManager>,
    state: Mutex<State>,
}

impl std::fmt::Debug for ArbitrationEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ArbitrationEngine({} pending)",
            self.state.lock().pending.len()
        )
    }
}

/// Per-owner fairness figures.
#[derive(Debug, Clone)]
pub struct OwnerStats {
    /// Owner.
    pub owner: Arc<str>,
    /// Dominant share now.
    pub share: f64,
    /// Requests granted.
    pub grants: u64,
    /// Longest wait (in grants) of any of its granted requests.
    pub max_waited: u64,
    /// Pending requests.
    pub pending: u32,
    /// Spent (reported outcomes).
    pub spent: f64,
    /// Estimated cost of granted requests not yet reported.
    pub committed: f64,
    /// Hard budget.
    pub budget: Option<f64>,
}

/// Bitwise equality of weight vectors (exact, as stored).
fn same(a: &[f64; FACTORS], b: &[f64; FACTORS]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn check_unit(name: &str, v: f64) -> Result<()> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(format!(
            "argument '{name}': expected a number in [0, 1], got {v}"
        )))
    }
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

impl ArbitrationEngine {
    /// An engine reading `pool`'s occupancy.
    pub fn new(ctx: &Ctx, pool: Arc<PoolManager>) -> Self {
        Self {
            ctx: ctx.clone(),
            pool,
            state: Mutex::new(State::new()),
        }
    }

    fn log(&self, rec: &Rec<'_>, durable: bool) -> Result<()> {
        let lsn = self.ctx.journal.append(Tag::Arbitration, rec)?;
        if durable {
            self.ctx.journal.sync(lsn)?;
        }
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> Config {
        self.state.lock().cfg
    }

    /// Replace the configuration (validated). Re-orders the queues if the strategy changed.
    pub fn set_config(&self, cfg: Config, durable: bool) -> Result<()> {
        if cfg.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(invalid("weights must be finite and non-negative"));
        }
        if cfg.starvation_bound == 0 || cfg.half_life == 0 || cfg.batch_size == 0 {
            return Err(invalid(
                "starvation_bound, half_life and batch_size must be positive",
            ));
        }
        if !(cfg.cost_scale.is_finite() && cfg.cost_scale > 0.0) {
            return Err(invalid("cost_scale must be a positive number"));
        }
        if !(cfg.learning_rate.is_finite() && (0.0..=1.0).contains(&cfg.learning_rate)) {
            return Err(invalid("learning_rate must be within [0, 1]"));
        }
        let mut s = self.state.lock();
        self.log(&Rec::Config(cfg), durable)?;
        let rebuild = s.cfg.strategy != cfg.strategy || !same(&s.cfg.weights, &cfg.weights);
        s.cfg = cfg;
        if rebuild {
            s.rebuild_queues();
        }
        Ok(())
    }

    /// Set an owner's spending policy: hard budget and per-request cost cap.
    pub fn set_policy(
        &self,
        owner: &str,
        budget: Option<f64>,
        max_cost: Option<f64>,
        durable: bool,
    ) -> Result<()> {
        for (n, v) in [("budget", budget), ("max_cost", max_cost)] {
            if let Some(v) = v {
                check_money(n, v)?;
            }
        }
        let mut s = self.state.lock();
        self.log(
            &Rec::Policy(Cow::Borrowed(owner), budget, max_cost),
            durable,
        )?;
        let o = s.owner(owner) as usize;
        s.owners[o].budget = budget;
        s.owners[o].max_cost = max_cost;
        Ok(())
    }

    /// Declare how well `model` suits `workflow` (higher is better), for specialization.
    pub fn set_skill(&self, workflow: &str, model: &str, score: f64, durable: bool) -> Result<()> {
        if !score.is_finite() {
            return Err(invalid(format!(
                "argument 'score': expected a finite number, got {score}"
            )));
        }
        let m = self.pool.model_index(model)? as u32;
        let mut s = self.state.lock();
        self.log(&Rec::Skill(Cow::Borrowed(workflow), m, score), durable)?;
        let w = s.workflow(workflow);
        let e = s.skills.entry(w).or_default();
        e.retain(|(x, _)| *x != m);
        e.push((m, score));
        Ok(())
    }

    /// Submit requests; returns their ids. All are validated before any is queued.
    /// Acknowledged, or durable with `durable`.
    pub fn submit(&self, reqs: &[Submit<'_>], durable: bool) -> Result<Vec<u64>> {
        // In memory nothing is appended below, so a closed Pit is refused here.
        self.ctx.journal.check_open()?;
        let now = self.ctx.clock.now();
        let mut s = self.state.lock();
        let mut models = Vec::with_capacity(reqs.len());
        for r in reqs {
            check_unit("business_value", r.value)?;
            check_unit("user_impact", r.impact)?;
            check_money("cost", r.cost)?;
            let m = if let Some(&m) = s.model_idx.get(r.model) {
                m
            } else {
                let m = self.pool.model_index(r.model)? as u32;
                s.model_idx.insert(Arc::from(r.model), m);
                m
            };
            models.push(m);
        }
        // Spending policies, checked for the whole batch first.
        let mut extra: HashMap<&str, f64> = HashMap::default();
        for r in reqs {
            if let Some(&o) = s.by_owner.get(r.owner) {
                let ow = &s.owners[o as usize];
                if let Some(mc) = ow.max_cost {
                    if r.cost > mc {
                        return Err(ArbitrationError::BudgetExceeded(
                            r.owner.to_string(),
                            format!(
                                "owner {:?} caps a request at {mc}; this one is estimated at {}",
                                r.owner, r.cost
                            ),
                        )
                        .into());
                    }
                }
                if let Some(b) = ow.budget {
                    let e = extra.entry(r.owner).or_insert(0.0);
                    *e += r.cost;
                    if ow.spent + ow.committed + ow.queued + *e > b {
                        return Err(ArbitrationError::BudgetExceeded(
                            r.owner.to_string(),
                            format!(
                                "owner {:?} has spent {:.6}, committed {:.6} and queued {:.6} of its budget {b}; requests of {:.6} do not fit",
                                r.owner, ow.spent, ow.committed, ow.queued, *e
                            ),
                        )
                        .into());
                    }
                }
            }
        }
        let first = s.next_request;
        let persistent = self.ctx.journal.is_persistent();
        let mut recs = Vec::new();
        for (i, (r, &m)) in reqs.iter().zip(&models).enumerate() {
            let id = first + i as u64;
            if persistent {
                recs.push(ReqRec {
                    id,
                    owner: Cow::Borrowed(r.owner),
                    workflow: Cow::Borrowed(r.workflow),
                    model: m,
                    priority: r.priority,
                    value: r.value,
                    impact: r.impact,
                    cost: r.cost,
                    deadline: r.deadline,
                    submitted: now,
                    at_grant: s.grants,
                });
            }
        }
        if persistent {
            self.log(&Rec::Submit(recs), durable)?;
        }
        let grants = s.grants;
        for (i, (r, m)) in reqs.iter().zip(models).enumerate() {
            let owner = s.owner(r.owner);
            let workflow = s.workflow(r.workflow);
            s.enqueue(Req {
                id: first + i as u64,
                owner,
                workflow,
                model: m,
                priority: r.priority,
                value: r.value,
                impact: r.impact,
                cost: r.cost,
                deadline: r.deadline,
                submitted: now,
                at_grant: grants,
            });
        }
        s.next_request += reqs.len() as u64;
        Ok((first..first + reqs.len() as u64).collect())
    }

    /// Withdraw a pending request.
    pub fn cancel(&self, request: u64) -> Result<()> {
        let mut s = self.state.lock();
        if !s.pending.contains_key(request) {
            return Err(ArbitrationError::RequestNotFound(request).into());
        }
        self.log(&Rec::Cancel(request), false)?;
        s.remove(request);
        Ok(())
    }

    /// Pending requests.
    pub fn pending(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Make up to `max` decisions now. Stops early when no pending request can be served (its
    /// model has no free slot). With `acquire`, each grant takes its pool lease at once
    /// (returned in [`Decision::lease`]); without, the caller acquires.
    #[allow(clippy::too_many_lines, clippy::many_single_char_names)] // the hot loop, kept whole
    pub fn decide(&self, max: usize, acquire: bool) -> Result<Vec<Decision>> {
        self.ctx.journal.check_open()?;
        let now = self.ctx.clock.now();
        let mut views = Vec::new();
        self.pool.views(&mut views);
        let total_slots: f64 = views.iter().map(|v| f64::from(v.slots)).sum();
        let mut s = self.state.lock();
        if s.model_ids.len() < views.len() {
            s.model_ids = self.pool.models();
        }
        // Cached heads stay valid across calls (servability and the time-dependent factors are
        // re-read at every evaluation) except under specialization, whose routing depends on
        // which models are free.
        if s.cfg.strategy == Strategy::Specialization {
            s.heads.iter_mut().for_each(|h| *h = None);
        }
        let mut shares: Vec<f64> = (0..s.owners.len())
            .map(|o| s.share(o, now, total_slots))
            .collect();
        let mut out = Vec::with_capacity(max.min(s.pending.len()));
        let mut log = Vec::new();
        let persistent = self.ctx.journal.is_persistent();
        let mut t0 = Instant::now();
        let mut refused = None;
        while out.len() < max && !s.pending.is_empty() {
            // One clock read per decision: each decision's latency runs from the end of the
            // previous one (so it includes recording the previous rationale).
            let Some(p) = s.pick(now, &views, &shares) else {
                break;
            };
            let r = s
                .remove(p.id)
                .ok_or_else(|| Error::Internal("picked a dead request".into()))?;
            let o = r.owner as usize;
            let id = s.next_decision;
            let ow = &s.owners[o];
            let over = ow
                .budget
                .is_some_and(|b| ow.spent + ow.committed + r.cost > b);
            let mut batch = Vec::new();
            let mut lease = None;
            if !over {
                if acquire {
                    let model_id = Arc::clone(&s.model_ids[p.model]);
                    let owner_name = Arc::clone(&s.owners[o].name);
                    let mut req = crate::pool::Request::new(&model_id, &owner_name);
                    req.priority = r.priority;
                    req.estimate = Some(r.cost);
                    match self.pool.try_acquire(&req) {
                        Ok(l) => lease = Some(l.id),
                        Err(e) => {
                            // Put the request back: the caller sees the error, nothing is lost.
                            // The decisions made so far are still journaled below.
                            s.enqueue(r);
                            refused = Some(e);
                            break;
                        }
                    }
                }
                if s.cfg.strategy == Strategy::Collaborative && p.reason == Reason::Strategy {
                    let cap = s.cfg.batch_size as usize - 1;
                    while batch.len() < cap {
                        let Some(&next) = s.by_model.get(p.model).and_then(VecDeque::front) else {
                            break;
                        };
                        s.by_model[p.model].pop_front();
                        let fits = s.pending.get(next).is_some_and(|x| {
                            let ox = &s.owners[x.owner as usize];
                            !ox.budget
                                .is_some_and(|b| ox.spent + ox.committed + x.cost > b)
                        });
                        if fits {
                            if let Some(x) = s.remove(next) {
                                let (xo, xc) = (x.owner as usize, x.cost);
                                let share = 1.0 / f64::from(s.cfg.batch_size);
                                s.account(xo, xc, share, now);
                                batch.push(next);
                                if persistent {
                                    log.push((next, 2, xc, xo as u32));
                                }
                            }
                        }
                    }
                }
                s.account(o, r.cost, 1.0, now);
                shares[o] = s.share(o, now, total_slots);
                if let Some(v) = views.get_mut(p.model) {
                    v.in_use += 1;
                }
            }
            let waited = s.grants - r.at_grant;
            if !over {
                s.grants += 1;
                let ow = &mut s.owners[o];
                ow.max_waited = ow.max_waited.max(waited);
            }
            if persistent {
                log.push((r.id, u8::from(!over), r.cost, o as u32));
            }
            s.next_decision += 1;
            let d = Decision {
                id,
                request: r.id,
                batch,
                owner: Arc::clone(&s.owners[o].name),
                workflow: Arc::clone(&s.workflows[r.workflow as usize]),
                model: if over { usize::MAX } else { p.model },
                wanted: r.model as usize,
                granted: !over,
                strategy: s.cfg.strategy,
                reason: if over { Reason::Budget } else { p.reason },
                score: p.score,
                weights: p.weights,
                values: p.values,
                at: now,
                waited,
                nanos: {
                    let t1 = Instant::now();
                    let ns = t1.duration_since(t0).as_nanos().min(u128::from(u32::MAX)) as u32;
                    t0 = t1;
                    ns
                },
                lease,
            };
            s.push_history(d.clone(), if over { 0.0 } else { r.cost });
            out.push(d);
        }
        if persistent && !log.is_empty() {
            let next = s.next_decision;
            let rec = Rec::Decided(log, next, now);
            self.ctx.journal.append(Tag::Arbitration, &rec)?;
        }
        match refused {
            Some(e) if out.is_empty() => Err(e),
            _ => Ok(out),
        }
    }

    /// The decision `id` with its rationale, from the bounded history.
    pub fn rationale(&self, id: u64) -> Result<Decision> {
        let mut s = self.state.lock();
        let cap = s.cfg.history;
        s.find(id)
            .map(|h| h.decision.clone())
            .ok_or_else(|| ArbitrationError::DecisionNotFound(id, cap).into())
    }

    /// Report how a granted decision went: settles its cost against the owner's budget and,
    /// for weighted decisions, moves weight towards the factors that were high when it went
    /// well (away when it failed or missed its deadline). Returns the new weights.
    #[allow(clippy::many_single_char_names)] // s(tate), h(istory), d(ecision), w(eights), o(wner)
    pub fn report(
        &self,
        decision: u64,
        ok: bool,
        cost: f64,
        durable: bool,
    ) -> Result<[f64; FACTORS]> {
        check_money("cost", cost)?;
        let now = self.ctx.clock.now();
        let mut s = self.state.lock();
        let cap = s.cfg.history;
        let lr = s.cfg.learning_rate;
        let h = s
            .find(decision)
            .ok_or(ArbitrationError::DecisionNotFound(decision, cap))?;
        if h.reported {
            return Err(ArbitrationError::AlreadyReported(decision).into());
        }
        if !h.decision.granted {
            return Err(invalid(format!(
                "decision {decision} rejected its request; nothing to report"
            )));
        }
        h.reported = true;
        let committed = h.cost;
        let d = h.decision.clone();
        let mut w = s.cfg.weights;
        if lr > 0.0
            && matches!(d.strategy, Strategy::Weighted | Strategy::Specialization)
            && d.reason == Reason::Strategy
        {
            let late = d.values[3] >= 1.0 && now > d.at;
            let reward = if ok && !late { 1.0 } else { -1.0 };
            let mean = d.values.iter().sum::<f64>() / FACTORS as f64;
            let total: f64 = w.iter().sum();
            for (wi, v) in w.iter_mut().zip(&d.values) {
                *wi = (*wi * (lr * reward * (v - mean)).exp()).max(1e-3);
            }
            let norm: f64 = w.iter().sum();
            for wi in &mut w {
                *wi *= total / norm;
            }
        }
        self.log(
            &Rec::Outcome(Cow::Borrowed(&d.owner), committed, cost, w),
            durable,
        )?;
        let o = s.owner(&d.owner) as usize;
        s.owners[o].committed = (s.owners[o].committed - committed).max(0.0);
        s.owners[o].spent += cost;
        s.cfg.weights = w;
        s.heads.iter_mut().for_each(|h| *h = None);
        Ok(w)
    }

    /// Fairness and spend per owner.
    pub fn owners(&self) -> Vec<OwnerStats> {
        let now = self.ctx.clock.now();
        let mut views = Vec::new();
        self.pool.views(&mut views);
        let total: f64 = views.iter().map(|v| f64::from(v.slots)).sum();
        let s = self.state.lock();
        (0..s.owners.len())
            .map(|o| {
                let ow = &s.owners[o];
                OwnerStats {
                    owner: Arc::clone(&ow.name),
                    share: s.share(o, now, total),
                    grants: ow.grants,
                    max_waited: ow.max_waited,
                    pending: ow.pending,
                    spent: ow.spent,
                    committed: ow.committed,
                    budget: ow.budget,
                }
            })
            .collect()
    }

    /// Id of the pool model at `index`.
    pub fn model_id(&self, index: usize) -> Option<Arc<str>> {
        let s = self.state.lock();
        if let Some(m) = s.model_ids.get(index) {
            return Some(Arc::clone(m));
        }
        drop(s);
        self.pool.model_id(index)
    }
}

impl Persistent for ArbitrationEngine {
    fn tag(&self) -> Tag {
        Tag::Arbitration
    }

    fn snapshot(&self) -> Result<(Lsn, Vec<u8>)> {
        let s = self.state.lock();
        let lsn = self.ctx.journal.last_lsn();
        let mut ids: Vec<u64> = s.pending.keys().copied().collect();
        ids.sort_unstable();
        let snap = Snap {
            cfg: s.cfg,
            owners: s
                .owners
                .iter()
                .map(|o| {
                    (
                        o.name.to_string(),
                        o.slots_used,
                        o.cost_used,
                        o.last,
                        o.spent,
                        o.committed,
                        o.budget,
                        o.max_cost,
                        o.grants,
                    )
                })
                .collect(),
            skills: s
                .skills
                .iter()
                .flat_map(|(w, v)| {
                    v.iter()
                        .map(|(m, sc)| (s.workflows[*w as usize].to_string(), *m, *sc))
                })
                .collect(),
            pending: ids
                .iter()
                .map(|id| {
                    let r = &s.pending[id];
                    ReqRec {
                        id: r.id,
                        owner: Cow::Owned(s.owners[r.owner as usize].name.to_string()),
                        workflow: Cow::Owned(s.workflows[r.workflow as usize].to_string()),
                        model: r.model,
                        priority: r.priority,
                        value: r.value,
                        impact: r.impact,
                        cost: r.cost,
                        deadline: r.deadline,
                        submitted: r.submitted,
                        at_grant: r.at_grant,
                    }
                })
                .collect(),
            next_request: s.next_request,
            next_decision: s.next_decision,
            grants: s.grants,
        };
        let bytes = postcard::to_stdvec(&snap)
            .map_err(|e| Error::Internal(format!("arbitration snapshot: {e}")))?;
        Ok((lsn, bytes))
    }

    fn restore(&self, bytes: &[u8]) -> Result<()> {
        let snap: Snap<'_> = postcard::from_bytes(bytes)
            .map_err(|e| Error::Internal(format!("arbitration snapshot: {e}")))?;
        let mut s = State::new();
        s.cfg = snap.cfg;
        for (name, su, cu, last, spent, committed, budget, max_cost, grants) in snap.owners {
            let o = s.owner(&name) as usize;
            let ow = &mut s.owners[o];
            (ow.slots_used, ow.cost_used, ow.last) = (su, cu, last);
            (ow.spent, ow.committed, ow.budget, ow.max_cost, ow.grants) =
                (spent, committed, budget, max_cost, grants);
        }
        for (w, m, sc) in snap.skills {
            let w = s.workflow(&w);
            s.skills.entry(w).or_default().push((m, sc));
        }
        s.grants = snap.grants;
        for r in snap.pending {
            apply_req(&mut s, &r);
        }
        s.next_request = snap.next_request;
        s.next_decision = snap.next_decision;
        *self.state.lock() = s;
        Ok(())
    }

    fn replay(&self, _lsn: Lsn, payload: &[u8]) -> Result<()> {
        let rec: Rec<'_> = postcard::from_bytes(payload)
            .map_err(|e| Error::Internal(format!("arbitration record: {e}")))?;
        let mut s = self.state.lock();
        match rec {
            Rec::Config(c) => {
                s.cfg = c;
                s.rebuild_queues();
            }
            Rec::Policy(o, b, mc) => {
                let o = s.owner(&o) as usize;
                s.owners[o].budget = b;
                s.owners[o].max_cost = mc;
            }
            Rec::Skill(w, m, sc) => {
                let w = s.workflow(&w);
                let e = s.skills.entry(w).or_default();
                e.retain(|(x, _)| *x != m);
                e.push((m, sc));
            }
            Rec::Submit(v) => {
                for r in v {
                    s.next_request = s.next_request.max(r.id + 1);
                    apply_req(&mut s, &r);
                }
            }
            Rec::Cancel(id) => {
                s.remove(id);
            }
            Rec::Decided(v, next, at) => {
                for (id, verdict, cost, o) in v {
                    s.remove(id);
                    if verdict > 0 && (o as usize) < s.owners.len() {
                        let share = if verdict == 2 {
                            1.0 / f64::from(s.cfg.batch_size)
                        } else {
                            1.0
                        };
                        s.account(o as usize, cost, share, at);
                        if verdict == 1 {
                            s.grants += 1;
                        }
                    }
                }
                s.next_decision = next;
            }
            Rec::Outcome(o, committed, cost, w) => {
                let o = s.owner(&o) as usize;
                s.owners[o].committed = (s.owners[o].committed - committed).max(0.0);
                s.owners[o].spent += cost;
                s.cfg.weights = w;
                s.heads.iter_mut().for_each(|h| *h = None);
            }
        }
        Ok(())
    }
}

fn apply_req(s: &mut State, r: &ReqRec<'_>) {
    let owner = s.owner(&r.owner);
    let workflow = s.workflow(&r.workflow);
    s.enqueue(Req {
        id: r.id,
        owner,
        workflow,
        model: r.model,
        priority: r.priority,
        value: r.value,
        impact: r.impact,
        cost: r.cost,
        deadline: r.deadline,
        submitted: r.submitted,
        at_grant: r.at_grant,
    });
}

#[cfg(test)]
mod tests;
