//! `sandgate:strategy/storage`: a key-value store per strategy. Reads go through the request's
//! [`Overlay`] (its uncommitted writes) to a [`KeyValue`] backend; writes only reach the
//! overlay, and the request commits them in one batch if it succeeds. Keys, values, counts
//! and pending bytes are capped, and a login's reads are shown to its [`ReadGuard`]. A read
//! that goes to the backend is awaited (the guest's fiber is parked, no thread is held) and
//! that wait is not charged to the strategy's CPU budget.

use super::limiter::LimitHit;
use super::meter::Kind;
use super::meter::Meter;
use crate::sandbox::bindings::sandgate::strategy::storage;
use crate::sandbox::limits::Limits;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A backend's answer, to be awaited; its failure stops the call
/// ([`LimitHit::StorageFailure`], or [`LimitHit::StorageUnavailable`] for a database that
/// cannot be reached now).
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, LimitHit>> + Send + 'static>>;

/// What the storage interface needs of the server's persistence, and nothing more.
pub trait KeyValue: Send + Sync {
    fn get(&self, strategy: &str, key: &str) -> Pending<Option<String>>;
    /// Keys of `strategy` starting with `prefix`, in order, at most `limit`.
    fn list(&self, strategy: &str, prefix: &str, limit: u32) -> Pending<Vec<String>>;
    fn usage(&self, strategy: &str) -> Pending<Usage>;
}

/// A strategy's stored keys and bytes (keys + values), for its quotas.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub keys: u64,
    pub bytes: u64,
}

/// Storage writes not yet committed: `(strategy, key) → Some(put) | None (deleted)`.
/// A request's strategy calls read through it, and the request commits it in one batch.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    pub writes: BTreeMap<(String, String), Option<Put>>,
    /// Keys the request's calls read from the store and found absent. A value written to one
    /// of them is an insert: the commit fails if another request stored it meanwhile (two
    /// users taking one username at once, one OAuth state redeemed twice at once).
    pub absent: BTreeSet<(String, String)>,
}

/// A value written, and for an expiring key (`set-expiring`) how long it lives once committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    pub value: String,
    pub ttl_ms: Option<u64>,
    /// The key was absent when this request read it: commit only if it still is.
    pub insert: bool,
}

/// The longest an expiring key may live: a year (longer is what `set` is for).
const MAX_TTL_MS: u64 = 366 * 24 * 3600 * 1000;

/// What a login call consults on every storage read: the host locks accounts on the records
/// a failing strategy actually read, not on what the client says its name is.
pub trait ReadGuard: Send + Sync {
    /// Notes that the call read `key` of `strategy`; `Err(seconds)` while that record is locked.
    fn read(&self, strategy: &str, key: &str) -> Result<(), u64>;
}

/// One call's storage: its strategy's name, the backend, and what the call wrote.
pub struct Storage {
    pub(crate) strategy: Arc<str>,
    pub(crate) backend: Arc<dyn KeyValue>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) overlay: Overlay,
    /// Bytes (keys + values) of each write this call added to the overlay, and their sum.
    own_writes: HashMap<String, usize>,
    pending_bytes: usize,
    pub(crate) guard: Option<Arc<dyn ReadGuard>>,
}

impl Storage {
    /// Bytes (keys + values) this call wrote so far.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    pub fn new(strategy: Arc<str>, backend: Arc<dyn KeyValue>, limits: Arc<Limits>) -> Self {
        Storage {
            strategy,
            backend,
            limits,
            overlay: Overlay::default(),
            own_writes: HashMap::new(),
            pending_bytes: 0,
            guard: None,
        }
    }

    fn overlay_key(&self, key: &str) -> (String, String) {
        (self.strategy.to_string(), key.to_string())
    }

    /// Every storage call checks its key before the host copies or looks anything up.
    fn check_key(&self, key: &str) -> wasmtime::Result<()> {
        if key.len() > self.limits.max_key_bytes {
            return Err(LimitHit::KeyTooLong { len: key.len(), max: self.limits.max_key_bytes }.into());
        }
        Ok(())
    }

    /// Records `key` in the overlay, keeping this call's pending bytes under their cap.
    fn pend(&mut self, key: String, value: Option<Put>) -> Result<(), String> {
        let k = self.overlay_key(&key);
        let added = key.len() + value.as_ref().map_or(0, |p| p.value.len());
        let replaced = self.own_writes.get(&key).copied().unwrap_or(0);
        let after = (self.pending_bytes + added).saturating_sub(replaced);
        if after > self.limits.max_pending_bytes {
            return Err(format!(
                "this call's pending writes would exceed {} bytes (limits.max_pending_bytes)",
                self.limits.max_pending_bytes
            ));
        }
        self.pending_bytes = after;
        self.own_writes.insert(key, added);
        let value = value.map(|put| Put { insert: self.overlay.absent.contains(&k), ..put });
        self.overlay.writes.insert(k, value);
        Ok(())
    }

    async fn read(&mut self, meter: &Meter, key: &str) -> wasmtime::Result<Option<String>> {
        self.check_key(key)?;
        if let Some(guard) = &self.guard {
            guard.read(&self.strategy, key).map_err(LimitHit::Locked)?;
        }
        if let Some(value) = self.overlay.writes.get(&self.overlay_key(key)) {
            return Ok(value.as_ref().map(|p| p.value.clone()));
        }
        let pending = self.backend.get(&self.strategy, key);
        let value = {
            let _waiting = meter.waits.enter();
            pending.await?
        };
        if value.is_none() {
            self.overlay.absent.insert(self.overlay_key(key));
        }
        Ok(value)
    }
}

/// The storage interface's view of a call: the shared meter, and its storage.
pub struct StorageView<'a> {
    pub meter: &'a mut Meter,
    pub storage: &'a mut Storage,
}

impl StorageView<'_> {
    /// `set` and `set-expiring`: checked against the quotas, recorded in the overlay.
    async fn put(&mut self, key: String, value: String, ttl_ms: Option<u64>) -> wasmtime::Result<Result<(), String>> {
        self.meter.count(Kind::Storage)?;
        let s = &mut *self.storage;
        let limits = s.limits.clone();
        if key.is_empty() || key.len() > limits.max_key_bytes {
            return Ok(Err(format!("key length must be 1..={} bytes (limits.max_key_bytes)", limits.max_key_bytes)));
        }
        if value.len() > limits.max_value_bytes {
            return Ok(Err(format!(
                "value of {} bytes exceeds {} bytes (limits.max_value_bytes)",
                value.len(),
                limits.max_value_bytes
            )));
        }
        let strategy = s.strategy.clone();
        let usage = {
            let pending = s.backend.usage(&strategy);
            let _waiting = self.meter.waits.enter();
            pending.await?
        };
        let mine = || s.overlay.writes.iter().filter(|((name, _), _)| **name == *strategy);
        let pending_keys = mine().filter(|(_, v)| v.is_some()).count() as u64;
        let pending_bytes: u64 =
            mine().map(|((_, k), v)| (k.len() + v.as_ref().map_or(0, |p| p.value.len())) as u64).sum();
        if usage.keys + pending_keys + 1 > limits.max_keys {
            return Ok(Err(format!("storage is full: {} keys (limits.max_keys)", limits.max_keys)));
        }
        if usage.bytes + pending_bytes + (key.len() + value.len()) as u64 > limits.max_storage_bytes {
            return Ok(Err(format!("storage is full: {} bytes (limits.max_storage_bytes)", limits.max_storage_bytes)));
        }
        Ok(s.pend(key, Some(Put { value, ttl_ms, insert: false })))
    }
}

impl storage::Host for StorageView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.meter.count(Kind::Storage)?;
        self.storage.read(self.meter, &key).await
    }

    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), String>> {
        self.put(key, value, None).await
    }

    async fn set_expiring(&mut self, key: String, value: String, ttl_ms: u64) -> wasmtime::Result<Result<(), String>> {
        if !(1..=MAX_TTL_MS).contains(&ttl_ms) {
            self.meter.count(Kind::Storage)?;
            return Ok(Err(format!("ttl-ms must be 1..={MAX_TTL_MS} (a year); use `set` for a key that stays")));
        }
        self.put(key, value, Some(ttl_ms)).await
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        let existed = storage::Host::get(self, key.clone()).await?.is_some();
        // A delete that cannot be recorded (pending cap) is a delete that did not happen.
        Ok(self.storage.pend(key, None).is_ok() && existed)
    }

    async fn list_keys(&mut self, prefix: String, limit: u32) -> wasmtime::Result<Vec<String>> {
        self.meter.count(Kind::Storage)?;
        let s = &*self.storage;
        s.check_key(&prefix)?;
        let limit = limit.min(10_000);
        let pending = s.backend.list(&s.strategy, &prefix, limit.saturating_add(s.overlay.writes.len() as u32));
        let stored = {
            let _waiting = self.meter.waits.enter();
            pending.await?
        };
        let mut keys: BTreeSet<String> = stored.into_iter().collect();
        for ((name, k), v) in &s.overlay.writes {
            if **name == *s.strategy && k.starts_with(&prefix) {
                if v.is_some() {
                    keys.insert(k.clone());
                } else {
                    keys.remove(k);
                }
            }
        }
        Ok(keys.into_iter().take(limit as usize).collect())
    }
}
