//! A registered strategy: its compiled component ready to instantiate, what it was registered
//! with, and its admission: the one mechanism that caps its concurrent work.

use super::contract::{Instance, Pre};
use super::errors::CallError;
use super::host::HostState;
use super::host::http::allow::AllowList;
use super::limits::Limits;
use super::metrics::{Outcome, StrategyMetrics};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A fresh instance and its Store, ready for exactly one call (see `warm`).
pub type Ready = (wasmtime::Store<HostState>, Instance);

pub struct Strategy {
    pub name: String,
    pub(super) pre: Pre,
    pub config: Arc<str>,
    pub fields: Vec<String>,
    /// sha256 of the component, hex.
    pub hash: String,
    pub size: usize,
    pub registered_at_ms: i64,
    /// The caps this strategy runs under (global limits with its overrides applied).
    pub limits: Arc<Limits>,
    /// The overrides as the operator gave them (JSON object text).
    pub limit_overrides: String,
    /// The origins it may reach over HTTP (none: no network).
    pub outbound: Arc<AllowList>,
    /// The profiles of the users it may provision (`None`: it may not provision anyone).
    pub provision: Option<Vec<String>>,
    pub metrics: Arc<StrategyMetrics>,
    /// `limits.max_concurrent_calls` permits. A request holds one from before it takes a
    /// worker (an action whose row names its strategy: logins, credentials) or from its first
    /// call (creating or deleting a user), until its work has really ended: the response
    /// sent, its Stores dropped, the next fresh instances built.
    permits: Arc<Semaphore>,
    /// Calls running in the sandbox right now (a gauge for `info`; it refuses nothing).
    running: AtomicU32,
    /// Fresh instances built ahead of time, each for exactly one call (see `warm`).
    pub(super) warm: Mutex<Vec<Ready>>,
    /// Set at install: lets the aftercare refill this strategy while it lives.
    pub(super) me: OnceLock<Weak<Strategy>>,
}

/// Admission to call a strategy. Calls take it by reference; its owner drops it once the
/// work it covers has ended.
pub struct Permit {
    /// The address of the strategy it admits to (compared, never followed).
    strategy: usize,
    _permit: OwnedSemaphorePermit,
}

impl Strategy {
    pub(super) fn new(name: &str, pre: Pre, limits: Limits, metrics: Arc<StrategyMetrics>) -> Self {
        Strategy {
            name: name.to_string(),
            pre,
            config: Arc::from("{}"),
            fields: Vec::new(),
            hash: String::new(),
            size: 0,
            registered_at_ms: crate::core::time::now_ms(),
            permits: Arc::new(Semaphore::new(limits.max_concurrent_calls as usize)),
            limits: Arc::new(limits),
            limit_overrides: "{}".into(),
            outbound: Arc::default(),
            provision: None,
            metrics,
            running: AtomicU32::new(0),
            warm: Mutex::new(Vec::new()),
            me: OnceLock::new(),
        }
    }

    /// Waits (without a thread) up to `limits.queue_ms` for a permit.
    pub async fn admit(&self) -> Result<Permit, CallError> {
        // The usual case, a free permit, sets no timer.
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(self.permit(permit));
        }
        let wait = Duration::from_millis(self.limits.queue_ms);
        match tokio::time::timeout(wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(self.permit(permit)),
            _ => Err(self.busy(self.limits.queue_ms)),
        }
    }

    /// A free permit, or `Busy` at once: for a request already on a worker thread (one that
    /// calls a strategy it was not admitted to beforehand), which must not hold its worker
    /// waiting for a strategy.
    pub fn try_admit(&self) -> Result<Permit, CallError> {
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok(self.permit(permit)),
            Err(_) => Err(self.busy(0)),
        }
    }

    fn permit(&self, permit: OwnedSemaphorePermit) -> Permit {
        Permit { strategy: self as *const Strategy as usize, _permit: permit }
    }

    fn busy(&self, waited_ms: u64) -> CallError {
        self.metrics.record(Outcome::Busy, None, None);
        CallError::Busy { cap: self.limits.max_concurrent_calls, waited_ms }
    }

    /// Whether `permit` admits calls of this strategy (this very registration).
    pub fn admits(&self, permit: &Permit) -> bool {
        permit.strategy == self as *const Strategy as usize
    }

    /// The contract version its component was built against.
    pub fn contract(&self) -> super::contract::Contract {
        self.pre.contract()
    }

    /// Calls running in the sandbox now.
    pub fn in_flight(&self) -> u32 {
        self.running.load(Ordering::Relaxed)
    }

    pub(super) fn running(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::AcqRel);
        self.metrics.call_started();
        Running(self)
    }
}

/// One call running; counted down when it ends.
pub(super) struct Running<'a>(&'a Strategy);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.call_ended();
    }
}
