//! What a strategy can reach: the host interfaces of the WIT world, implemented over
//! one call's [`HostState`]. Every function counts against the call's caps; a strategy that
//! exceeds one is stopped with a [`LimitHit`] trap.

use super::bindings::Level;
use super::bindings::sandgate::strategy::{config, crypto, log, storage, types};
use super::crypto::PasswordHasher;
use super::limits::Limits;
use crate::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

/// Storage writes not yet committed: `(strategy, key) → Some(value) | None (deleted)`.
/// A request's strategy calls read through it, and the request commits it in one batch.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    pub writes: BTreeMap<(String, String), Option<String>>,
}

impl Overlay {
    pub fn changes(&self) -> Vec<crate::store::Change> {
        self.writes
            .iter()
            .map(|((strategy, key), value)| match value {
                Some(value) => {
                    crate::store::Change::KvPut { strategy: strategy.clone(), key: key.clone(), value: value.clone() }
                }
                None => crate::store::Change::KvDelete { strategy: strategy.clone(), key: key.clone() },
            })
            .collect()
    }
}

/// Why a call was stopped by the host (carried inside the trap error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitHit {
    HashCalls(u32),
    HostCalls(u32),
    StorageFailure(String),
    /// The call ran past `limits.wall_ms`.
    Wall(u64),
    /// A storage key (or prefix) longer than `limits.max_key_bytes`.
    KeyTooLong {
        len: usize,
        max: usize,
    },
    /// More random bytes than `limits.max_random_bytes` in one host call.
    Random {
        len: u64,
        max: usize,
    },
    /// The call's memories together would pass `limits.memory_bytes`.
    Memory(usize),
    /// The call's tables together would pass `limits.table_elements`.
    Table(usize),
    /// The login read the record of an account that is locked for this many seconds.
    Locked(u64),
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::HashCalls(n) => {
                write!(f, "more than {n} password hash calls in one call (limits.max_hash_calls)")
            }
            LimitHit::HostCalls(n) => write!(f, "more than {n} host calls in one call (limits.max_host_calls)"),
            LimitHit::StorageFailure(e) => write!(f, "storage failure: {e}"),
            LimitHit::Wall(ms) => write!(f, "took longer than {ms} ms of wall-clock time (limits.wall_ms)"),
            LimitHit::KeyTooLong { len, max } => {
                write!(f, "used a storage key of {len} bytes, more than {max} (limits.max_key_bytes)")
            }
            LimitHit::Random { len, max } => {
                write!(f, "asked for {len} random bytes, more than {max} (limits.max_random_bytes)")
            }
            LimitHit::Memory(cap) => write!(f, "exceeded its memory cap of {cap} bytes (limits.memory_bytes)"),
            LimitHit::Table(cap) => write!(f, "exceeded its table cap of {cap} elements (limits.table_elements)"),
            LimitHit::Locked(secs) => write!(f, "read an account locked for {secs} s"),
        }
    }
}
impl std::error::Error for LimitHit {}

/// What a login call consults on every storage read: the host locks accounts on the records
/// a failing strategy actually read, not on what the client says its name is.
pub trait ReadGuard: Send + Sync {
    /// Notes that the call read `key` of `strategy`; `Err(seconds)` while that record is locked.
    fn read(&self, strategy: &str, key: &str) -> Result<(), u64>;
}

/// Memory and tables of one call, summed over every instance in its Store: a component may
/// declare several memories, and the cap holds for the call as a whole.
pub struct CallLimiter {
    memory: Summed,
    tables: Summed,
}

/// One resource summed over a call's instances, against its cap.
struct Summed {
    cap: usize,
    used: usize,
    /// The last growth let through, undone if the engine could not perform it.
    last: usize,
}

impl Summed {
    fn new(cap: usize) -> Self {
        Summed { cap, used: 0, last: 0 }
    }

    /// One of them grows from `current` to `desired`: allowed while the sum stays in the cap.
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.cap {
            return false;
        }
        self.last = after - self.used.min(after);
        self.used = after;
        true
    }

    fn undo(&mut self) {
        self.used -= self.last.min(self.used);
    }
}

impl CallLimiter {
    pub fn new(memory_cap: usize, table_cap: usize) -> Self {
        CallLimiter { memory: Summed::new(memory_cap), tables: Summed::new(table_cap) }
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if !self.memory.grow(current, desired) {
            return Err(LimitHit::Memory(self.memory.cap).into());
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.memory.undo();
        Err(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        if !self.tables.grow(current, desired) {
            return Err(LimitHit::Table(self.tables.cap).into());
        }
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.tables.undo();
        Err(error)
    }

    fn instances(&self) -> usize {
        64
    }
    fn tables(&self) -> usize {
        64
    }
    fn memories(&self) -> usize {
        8
    }
}

/// Everything one call owns. Dropped with the call's `Store`.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: CallLimiter,
    pub(super) strategy: Arc<str>,
    pub(super) config: Arc<str>,
    pub(super) request_id: Arc<str>,
    pub(super) store: Arc<dyn Store>,
    pub(super) hasher: Arc<PasswordHasher>,
    pub(super) limits: Arc<Limits>,
    pub(super) overlay: Overlay,
    /// Bytes (keys + values) of each write this call added to the overlay, and their sum.
    pub(super) own_writes: std::collections::HashMap<String, usize>,
    pub(super) pending_bytes: usize,
    pub(super) guard: Option<Arc<dyn ReadGuard>>,
    pub(super) stderr: MemoryOutputPipe,
    pub(super) hash_calls: u32,
    /// Every host call, WASI included (counted in `WasiView::ctx`, which each WASI function
    /// goes through, and checked at the next epoch tick).
    pub(super) host_calls: u32,
    pub(super) log_lines: u32,
    pub(super) dropped_log_lines: u32,
    /// Wall time spent hashing passwords: not charged to the strategy's CPU budget.
    pub(super) host_time: Duration,
    /// Time spent waiting on WASI clock pollables (not CPU either); see `clocks`.
    pub(super) waits: Arc<super::clocks::Waits>,
    pub(super) started: Instant,
    /// The call's wall-clock deadline (`limits.wall_ms` after it started).
    pub(super) deadline: Instant,
    /// Origin of the guest's monotonic clock.
    pub(super) clock_origin: Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.host_calls = self.host_calls.saturating_add(1);
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

type Trappable<T> = wasmtime::Result<T>;

impl HostState {
    /// Before each host call of ours: its count, and the wall-clock deadline.
    pub(super) fn count(&mut self) -> Trappable<()> {
        self.host_calls = self.host_calls.saturating_add(1);
        if self.host_calls > self.limits.max_host_calls {
            return Err(LimitHit::HostCalls(self.limits.max_host_calls).into());
        }
        if Instant::now() >= self.deadline {
            return Err(LimitHit::Wall(self.limits.wall_ms).into());
        }
        Ok(())
    }

    /// At each epoch tick while the guest runs: stop it past the wall-clock deadline, past its
    /// CPU budget, or past its host-call count (WASI calls are counted in `ctx` but cannot
    /// trap there); else look again at the next tick.
    pub(super) fn on_tick(&self) -> Trappable<wasmtime::UpdateDeadline> {
        if self.host_calls > self.limits.max_host_calls {
            return Err(LimitHit::HostCalls(self.limits.max_host_calls).into());
        }
        let now = Instant::now();
        let guest = now.saturating_duration_since(self.started).saturating_sub(self.uncharged());
        if now >= self.deadline || guest >= Duration::from_millis(self.limits.cpu_ms) {
            return Ok(wasmtime::UpdateDeadline::Interrupt);
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    }

    /// Time of this call that is not charged as CPU: hashing and waiting.
    pub(super) fn uncharged(&self) -> Duration {
        self.host_time + self.waits.total()
    }

    /// Starts the call's clocks (a warm instance was built earlier).
    pub(super) fn begin(&mut self, started: Instant) {
        self.started = started;
        self.deadline = started + Duration::from_millis(self.limits.wall_ms);
        self.host_time = Duration::ZERO;
        self.waits.reset();
    }

    fn count_hash(&mut self) -> Trappable<()> {
        self.count()?;
        // Refused before computing: `hash_calls` counts the hashes the host actually ran.
        if self.hash_calls >= self.limits.max_hash_calls {
            return Err(LimitHit::HashCalls(self.limits.max_hash_calls).into());
        }
        self.hash_calls += 1;
        Ok(())
    }

    /// Runs password hashing off the strategy's CPU budget (its count is capped instead).
    fn timed<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let start = Instant::now();
        let out = f(self);
        self.host_time += start.elapsed();
        out
    }

    fn overlay_key(&self, key: &str) -> (String, String) {
        (self.strategy.to_string(), key.to_string())
    }

    /// Every storage call checks its key before the host copies or looks anything up.
    fn check_key(&self, key: &str) -> Trappable<()> {
        if key.len() > self.limits.max_key_bytes {
            return Err(LimitHit::KeyTooLong { len: key.len(), max: self.limits.max_key_bytes }.into());
        }
        Ok(())
    }

    /// Records `key` in the overlay, keeping this call's pending bytes under their cap.
    fn pend(&mut self, key: String, value: Option<String>) -> Result<(), String> {
        let k = self.overlay_key(&key);
        let added = key.len() + value.as_ref().map_or(0, String::len);
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
        self.overlay.writes.insert(k, value);
        Ok(())
    }
}

impl types::Host for HostState {}

impl storage::Host for HostState {
    fn get(&mut self, key: String) -> Trappable<Option<String>> {
        self.count()?;
        self.check_key(&key)?;
        if let Some(guard) = &self.guard {
            guard.read(&self.strategy, &key).map_err(LimitHit::Locked)?;
        }
        if let Some(value) = self.overlay.writes.get(&self.overlay_key(&key)) {
            return Ok(value.clone());
        }
        // Storage time is charged to the CPU budget: a strategy pays for what it asks.
        self.store.kv_get(&self.strategy, &key).map_err(|e| LimitHit::StorageFailure(e.to_string()).into())
    }

    fn set(&mut self, key: String, value: String) -> Trappable<Result<(), String>> {
        self.count()?;
        if key.is_empty() || key.len() > self.limits.max_key_bytes {
            return Ok(Err(format!(
                "key length must be 1..={} bytes (limits.max_key_bytes)",
                self.limits.max_key_bytes
            )));
        }
        if value.len() > self.limits.max_value_bytes {
            return Ok(Err(format!(
                "value of {} bytes exceeds {} bytes (limits.max_value_bytes)",
                value.len(),
                self.limits.max_value_bytes
            )));
        }
        let strategy = self.strategy.clone();
        let usage = self.store.kv_usage(&strategy).map_err(|e| LimitHit::StorageFailure(e.to_string()))?;
        let pending_keys =
            self.overlay.writes.iter().filter(|((s, _), v)| **s == *strategy && v.is_some()).count() as u64;
        let pending_bytes: u64 = self
            .overlay
            .writes
            .iter()
            .filter(|((s, _), _)| **s == *strategy)
            .map(|((_, k), v)| (k.len() + v.as_ref().map_or(0, String::len)) as u64)
            .sum();
        if usage.keys + pending_keys + 1 > self.limits.max_keys {
            return Ok(Err(format!("storage is full: {} keys (limits.max_keys)", self.limits.max_keys)));
        }
        if usage.bytes + pending_bytes + (key.len() + value.len()) as u64 > self.limits.max_storage_bytes {
            return Ok(Err(format!(
                "storage is full: {} bytes (limits.max_storage_bytes)",
                self.limits.max_storage_bytes
            )));
        }
        Ok(self.pend(key, Some(value)))
    }

    fn delete(&mut self, key: String) -> Trappable<bool> {
        let existed = self.get(key.clone())?.is_some();
        // A delete that cannot be recorded (pending cap) is a delete that did not happen.
        Ok(self.pend(key, None).is_ok() && existed)
    }

    fn list_keys(&mut self, prefix: String, limit: u32) -> Trappable<Vec<String>> {
        self.count()?;
        self.check_key(&prefix)?;
        let limit = limit.min(10_000);
        let strategy = self.strategy.clone();
        let stored = self
            .store
            .kv_list(&strategy, &prefix, limit.saturating_add(self.overlay.writes.len() as u32))
            .map_err(|e| LimitHit::StorageFailure(e.to_string()))?;
        let mut keys: std::collections::BTreeSet<String> = stored.into_iter().collect();
        for ((s, k), v) in &self.overlay.writes {
            if **s == *strategy && k.starts_with(&prefix) {
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

impl crypto::Host for HostState {
    fn hash_password(&mut self, password: String) -> Trappable<String> {
        self.count_hash()?;
        let hasher = self.hasher.clone();
        Ok(self.timed(|_| hasher.hash(&password)))
    }

    fn verify_password(&mut self, password: String, phc: String) -> Trappable<bool> {
        self.count_hash()?;
        let hasher = self.hasher.clone();
        Ok(self.timed(|_| hasher.verify(&password, &phc)))
    }

    fn dummy_hash(&mut self) -> Trappable<String> {
        self.count()?;
        Ok(self.hasher.dummy().to_string())
    }

    fn hmac_sha256(&mut self, key: Vec<u8>, data: Vec<u8>) -> Trappable<Vec<u8>> {
        self.count()?;
        Ok(ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), &data).as_ref().to_vec())
    }

    fn hmac_sha1(&mut self, key: Vec<u8>, data: Vec<u8>) -> Trappable<Vec<u8>> {
        self.count()?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
        Ok(ring::hmac::sign(&key, &data).as_ref().to_vec())
    }

    fn hmac_sha512(&mut self, key: Vec<u8>, data: Vec<u8>) -> Trappable<Vec<u8>> {
        self.count()?;
        Ok(ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA512, &key), &data).as_ref().to_vec())
    }

    fn sha256(&mut self, data: Vec<u8>) -> Trappable<Vec<u8>> {
        self.count()?;
        Ok(ring::digest::digest(&ring::digest::SHA256, &data).as_ref().to_vec())
    }

    fn random_bytes(&mut self, len: u32) -> Trappable<Vec<u8>> {
        self.count()?;
        if len as usize > self.limits.max_random_bytes {
            return Err(LimitHit::Random { len: len.into(), max: self.limits.max_random_bytes }.into());
        }
        let mut out = vec![0u8; len as usize];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)
            .map_err(|_| wasmtime::Error::msg("system random failed"))?;
        Ok(out)
    }

    fn constant_time_eq(&mut self, a: Vec<u8>, b: Vec<u8>) -> Trappable<bool> {
        self.count()?;
        Ok(subtle::ConstantTimeEq::ct_eq(a.as_slice(), b.as_slice()).into())
    }

    fn now_ms(&mut self) -> Trappable<u64> {
        self.count()?;
        Ok(crate::tokens::now_ms().max(0) as u64)
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: Level, message: String) -> Trappable<()> {
        self.count()?;
        if self.log_lines >= self.limits.max_log_lines {
            self.dropped_log_lines += 1;
            return Ok(());
        }
        self.log_lines += 1;
        let mut message = message;
        if message.len() > self.limits.max_log_line_bytes {
            let mut cut = self.limits.max_log_line_bytes;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let (strategy, request_id) = (&*self.strategy, &*self.request_id);
        match level {
            Level::Trace => tracing::trace!(target: "strategy", strategy, request_id, "{message}"),
            Level::Debug => tracing::debug!(target: "strategy", strategy, request_id, "{message}"),
            Level::Info => tracing::info!(target: "strategy", strategy, request_id, "{message}"),
            Level::Warn => tracing::warn!(target: "strategy", strategy, request_id, "{message}"),
            Level::Error => tracing::error!(target: "strategy", strategy, request_id, "{message}"),
        }
        Ok(())
    }
}

impl config::Host for HostState {
    fn get(&mut self) -> Trappable<String> {
        self.count()?;
        Ok(self.config.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_are_summed_against_one_cap() {
        let mut sum = Summed::new(100);
        assert!(sum.grow(0, 60), "a first memory");
        assert!(!sum.grow(0, 50), "a second one would pass the cap together");
        assert!(sum.grow(0, 40));
        assert!(sum.grow(60, 50), "shrinking one's share is counted from its current size");
        assert_eq!(sum.used, 90);
        sum.undo();
        assert_eq!(sum.used, 90, "the last growth was a decrease: nothing to give back");
        assert!(sum.grow(40, 50));
        sum.undo();
        assert_eq!(sum.used, 90, "a growth the engine could not make is given back");
    }
}
