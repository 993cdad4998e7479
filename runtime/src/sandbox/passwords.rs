//! Password hashing for strategies, run natively by the host: argon2id, PHC strings.
//!
//! argon2id needs `memory_kib` of working memory per hash (19 MiB by default). Allocating it
//! per hash from many worker threads made the allocator keep gigabytes resident, so the
//! hasher owns one buffer per core and a hash waits for a free one: memory stays at
//! cores × memory_kib, and strategies cannot run more hashes at once than there are cores.
//!
//! Strategies' hashes go through [`PasswordHasher::hash_async`] / [`PasswordHasher::verify_async`]: queued
//! without a thread for one of the per-core slots, then computed on a blocking thread.

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// `[argon2]` in the config. Defaults: OWASP's argon2id minimum (m=19456 KiB, t=2, p=1).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

pub struct PasswordHasher {
    argon2: Argon2<'static>,
    params: Params,
    dummy: String,
    /// Work buffers not in use, and how many may still be created.
    buffers: Mutex<(Vec<Vec<Block>>, usize)>,
    returned: Condvar,
    /// Argon2 computations run so far (hashes and checks).
    computed: std::sync::atomic::AtomicU64,
    /// One per core: an async hash holds one while it computes (so it never waits for a buffer).
    slots: tokio::sync::Semaphore,
}

impl PasswordHasher {
    pub fn new(cfg: &Argon2Config) -> Result<Self, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| format!("argon2 parameters (memory_kib, iterations, parallelism): {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut hasher = PasswordHasher {
            argon2,
            params,
            dummy: String::new(),
            buffers: Mutex::new((Vec::new(), cores)),
            returned: Condvar::new(),
            computed: Default::default(),
            slots: tokio::sync::Semaphore::new(cores),
        };
        let mut random = [0u8; 32];
        SystemRandom::new().fill(&mut random).map_err(|_| "system random failed".to_string())?;
        hasher.dummy = hasher.hash(&String::from_utf8_lossy(&random));
        Ok(hasher)
    }

    /// Runs `f` with a work buffer, waiting for one when every core is hashing already.
    fn with_buffer<T>(&self, f: impl FnOnce(&mut [Block]) -> T) -> T {
        self.computed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut buffer = {
            let mut pool = self.buffers.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(buffer) = pool.0.pop() {
                    break buffer;
                }
                if pool.1 > 0 {
                    pool.1 -= 1;
                    break vec![Block::default(); self.params.block_count()];
                }
                pool = self.returned.wait(pool).unwrap_or_else(|p| p.into_inner());
            }
        };
        let out = f(&mut buffer);
        self.buffers.lock().unwrap_or_else(|p| p.into_inner()).0.push(buffer);
        self.returned.notify_one();
        out
    }

    /// Argon2 computations run so far (hashes and checks), strategies' and the host's.
    pub fn computed(&self) -> u64 {
        self.computed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A new PHC string with a fresh 16-byte salt.
    pub fn hash(&self, password: &str) -> String {
        let mut salt = [0u8; 16];
        SystemRandom::new().fill(&mut salt).expect("system random");
        let mut out = [0u8; 32];
        self.with_buffer(|blocks| {
            self.argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
        })
        .expect("argon2 with validated parameters");
        let p = &self.params;
        format!(
            "$argon2id$v=19$m={},t={},p={}${}${}",
            p.m_cost(),
            p.t_cost(),
            p.p_cost(),
            B64.encode(salt),
            B64.encode(out)
        )
    }

    /// Checks `password` against a PHC string. The PHC comes from a strategy, so it is not
    /// trusted: only argon2id, with costs no higher than the configured ones, is computed
    /// (a hostile strategy cannot make the host hash with 4 GiB and 1000 passes).
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else { return false };
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return false;
        }
        let Ok(params) = Params::try_from(&parsed) else { return false };
        if params.m_cost() > self.params.m_cost()
            || params.t_cost() > self.params.t_cost()
            || params.p_cost() > self.params.p_cost()
        {
            return false;
        }
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
        let version = parsed.version.and_then(|v| Version::try_from(v).ok()).unwrap_or(Version::V0x13);
        let argon2 = Argon2::new(Algorithm::Argon2id, version, params);
        let mut out = vec![0u8; expected.len()];
        let computed = self
            .with_buffer(|blocks| argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks));
        computed.is_ok() && bool::from(subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()))
    }

    /// The PHC of a random password, for answering "unknown user" at the cost of a real check.
    pub fn dummy(&self) -> &str {
        &self.dummy
    }
}

impl PasswordHasher {
    /// Runs `f` on a blocking thread once a slot is free; returns its outcome and the time
    /// spent queued for the slot.
    async fn pooled<T: Send + 'static>(
        self: Arc<Self>,
        f: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> (Result<T, String>, Duration) {
        let queued = Instant::now();
        let Ok(slot) = self.slots.acquire().await else {
            return (Err("the hasher is closed".into()), queued.elapsed());
        };
        slot.forget();
        let waited = queued.elapsed();
        // The slot is given back by the computation itself, not by this future: a hash
        // abandoned by its caller (a client that left) holds it until it has really finished.
        let out = tokio::task::spawn_blocking(move || {
            let _back = SlotBack(self.clone());
            f(&self)
        })
        .await
        .map_err(|e| e.to_string());
        (out, waited)
    }

    pub async fn hash_async(self: Arc<Self>, password: String) -> (Result<String, String>, Duration) {
        self.pooled(move |h| h.hash(&password)).await
    }

    pub async fn verify_async(self: Arc<Self>, password: String, phc: String) -> (Result<bool, String>, Duration) {
        self.pooled(move |h| h.verify(&password, &phc)).await
    }
}

/// Gives a hashing slot back when the computation ends, even by a panic.
struct SlotBack(Arc<PasswordHasher>);

impl Drop for SlotBack {
    fn drop(&mut self) {
        self.0.slots.add_permits(1);
    }
}

impl super::host::crypto::Hashing for PasswordHasher {
    fn hash(self: Arc<Self>, password: String) -> super::host::crypto::Hashed<String> {
        Box::pin(self.hash_async(password))
    }
    fn verify(self: Arc<Self>, password: String, phc: String) -> super::host::crypto::Hashed<bool> {
        Box::pin(self.verify_async(password, phc))
    }
    fn dummy(&self) -> &str {
        PasswordHasher::dummy(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(&Argon2Config { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[test]
    fn hash_and_verify() {
        let h = cheap();
        let phc = h.hash("s3cret");
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify("s3cret", &phc));
        assert!(!h.verify("nope", &phc));
        assert!(!h.verify("s3cret", "not a phc"));
        assert!(!h.verify("anything", h.dummy()));
    }

    #[test]
    fn reads_phc_strings_made_elsewhere() {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let params = Params::new(64, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"pw", &SaltString::encode_b64(b"0123456789abcdef").unwrap())
            .unwrap()
            .to_string();
        assert!(cheap().verify("pw", &theirs));
        assert!(!cheap().verify("nope", &theirs));
    }

    #[test]
    fn hashes_wait_for_a_buffer_instead_of_allocating() {
        let h = std::sync::Arc::new(cheap());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || {
                    let phc = h.hash(&format!("pw{i}"));
                    assert!(h.verify(&format!("pw{i}"), &phc));
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = h.buffers.lock().unwrap();
        assert!(pool.0.len() <= cores && pool.0.len() + pool.1 == cores, "at most one buffer per core");
    }

    #[tokio::test]
    async fn a_panicking_hash_gives_its_slot_back() {
        let h = std::sync::Arc::new(cheap());
        let cores = h.slots.available_permits();
        let (out, _) = h.clone().pooled(|_| -> bool { panic!("a hash that fails") }).await;
        assert!(out.is_err());
        assert_eq!(h.slots.available_permits(), cores, "the slot is back");
        let (ok, _) = h.clone().verify_async("pw".into(), h.hash("pw")).await;
        assert_eq!(ok, Ok(true));
    }

    #[test]
    fn refuses_costlier_phc_than_configured() {
        let strong = PasswordHasher::new(&Argon2Config { memory_kib: 128, iterations: 1, parallelism: 1 }).unwrap();
        let phc = strong.hash("pw");
        assert!(strong.verify("pw", &phc));
        assert!(!cheap().verify("pw", &phc), "m=128 exceeds the configured m=64");
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = PasswordHasher::new(&Argon2Config { memory_kib: 1, iterations: 0, parallelism: 1 }).err().unwrap();
        assert!(err.contains("argon2 parameters"), "{err}");
    }
}
