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
use wasmtime::StoreLimits;
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
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::HashCalls(n) => {
                write!(f, "more than {n} password hash calls in one call (limits.max_hash_calls)")
            }
            LimitHit::HostCalls(n) => write!(f, "more than {n} host calls in one call (limits.max_host_calls)"),
            LimitHit::StorageFailure(e) => write!(f, "storage failure: {e}"),
        }
    }
}
impl std::error::Error for LimitHit {}

/// Everything one call owns. Dropped with the call's `Store`.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limiter: StoreLimits,
    pub(super) strategy: Arc<str>,
    pub(super) config: Arc<str>,
    pub(super) request_id: Arc<str>,
    pub(super) store: Arc<dyn Store>,
    pub(super) hasher: Arc<PasswordHasher>,
    pub(super) limits: Arc<Limits>,
    pub(super) overlay: Overlay,
    pub(super) stderr: MemoryOutputPipe,
    pub(super) hash_calls: u32,
    pub(super) host_calls: u32,
    pub(super) log_lines: u32,
    pub(super) dropped_log_lines: u32,
    /// Wall time spent inside host functions: not charged to the strategy's CPU budget.
    pub(super) host_time: Duration,
    pub(super) started: Instant,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

type Trappable<T> = wasmtime::Result<T>;

impl HostState {
    fn count(&mut self) -> Trappable<()> {
        self.host_calls += 1;
        if self.host_calls > self.limits.max_host_calls {
            return Err(LimitHit::HostCalls(self.limits.max_host_calls).into());
        }
        Ok(())
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

    /// Runs host work off the strategy's CPU budget.
    fn timed<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let start = Instant::now();
        let out = f(self);
        self.host_time += start.elapsed();
        out
    }

    fn overlay_key(&self, key: &str) -> (String, String) {
        (self.strategy.to_string(), key.to_string())
    }
}

impl types::Host for HostState {}

impl storage::Host for HostState {
    fn get(&mut self, key: String) -> Trappable<Option<String>> {
        self.count()?;
        if let Some(value) = self.overlay.writes.get(&self.overlay_key(&key)) {
            return Ok(value.clone());
        }
        let strategy = self.strategy.clone();
        self.timed(|s| s.store.kv_get(&strategy, &key)).map_err(|e| LimitHit::StorageFailure(e.to_string()).into())
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
        let usage = self.timed(|s| s.store.kv_usage(&strategy)).map_err(|e| LimitHit::StorageFailure(e.to_string()))?;
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
        let k = self.overlay_key(&key);
        self.overlay.writes.insert(k, Some(value));
        Ok(Ok(()))
    }

    fn delete(&mut self, key: String) -> Trappable<bool> {
        let existed = self.get(key.clone())?.is_some();
        let k = self.overlay_key(&key);
        self.overlay.writes.insert(k, None);
        Ok(existed)
    }

    fn list_keys(&mut self, prefix: String, limit: u32) -> Trappable<Vec<String>> {
        self.count()?;
        let limit = limit.min(10_000);
        let strategy = self.strategy.clone();
        let stored = self
            .timed(|s| s.store.kv_list(&strategy, &prefix, limit.saturating_add(s.overlay.writes.len() as u32)))
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
        let len = (len as usize).min(self.limits.max_return_bytes);
        let mut out = vec![0u8; len];
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
