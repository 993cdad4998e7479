//! `sandgate:strategy/crypto`: password hashing through the host's [`Hashing`] backend (off
//! the CPU budget, its count capped), HMACs, digests, random bytes, a constant-time compare,
//! and JWS signature checks (`jws.rs`).
//!
//! A hash is awaited: the guest is parked while the host's argon2 pool computes it. Time
//! queued for a free hasher is the host's congestion, not the strategy's doing: it moves the
//! call's wall-clock deadline back by as much (the hash count is capped, so this is bounded).

use super::limiter::LimitHit;
use super::meter::Kind;
use super::meter::Meter;
use crate::sandbox::bindings::sandgate::strategy::crypto;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A hash being computed: its outcome, and how long it queued for a free hasher.
pub type Hashed<T> = Pin<Box<dyn Future<Output = (Result<T, String>, Duration)> + Send + 'static>>;

/// The host's password hasher, as the crypto interface sees it.
pub trait Hashing: Send + Sync {
    /// A PHC string for `password`.
    fn hash(self: Arc<Self>, password: String) -> Hashed<String>;
    fn verify(self: Arc<Self>, password: String, phc: String) -> Hashed<bool>;
    /// A valid hash of nothing in particular, for constant-time refusals.
    fn dummy(&self) -> &str;
}

/// One call's crypto: the backend and the hashes it has computed.
pub struct Crypto {
    pub(crate) hasher: Arc<dyn Hashing>,
    pub(crate) hash_calls: u32,
}

impl Crypto {
    pub fn new(hasher: Arc<dyn Hashing>) -> Self {
        Crypto { hasher, hash_calls: 0 }
    }
}

pub struct CryptoView<'a> {
    pub meter: &'a mut Meter,
    pub crypto: &'a mut Crypto,
}

impl CryptoView<'_> {
    fn count_hash(&mut self) -> wasmtime::Result<()> {
        self.meter.count(Kind::Crypto)?;
        let max = self.meter.limits.max_hash_calls;
        // Refused before computing: `hash_calls` counts the hashing calls the host granted.
        if self.crypto.hash_calls >= max {
            return Err(LimitHit::HashCalls(max).into());
        }
        self.crypto.hash_calls += 1;
        Ok(())
    }

    /// Waits for `hashed`, off the CPU budget, its queueing off the wall clock too.
    async fn wait<T>(&mut self, hashed: Hashed<T>) -> wasmtime::Result<T> {
        let (out, queued) = {
            let _waiting = self.meter.waits.enter();
            hashed.await
        };
        self.meter.postpone(queued);
        out.map_err(|e| wasmtime::Error::msg(format!("password hashing failed: {e}")))
    }
}

impl crypto::Host for CryptoView<'_> {
    async fn hash_password(&mut self, password: String) -> wasmtime::Result<String> {
        self.count_hash()?;
        let hashed = self.crypto.hasher.clone().hash(password);
        self.wait(hashed).await
    }

    async fn verify_password(&mut self, password: String, phc: String) -> wasmtime::Result<bool> {
        self.count_hash()?;
        let hashed = self.crypto.hasher.clone().verify(password, phc);
        self.wait(hashed).await
    }

    fn dummy_hash(&mut self) -> wasmtime::Result<String> {
        self.meter.count(Kind::Crypto)?;
        Ok(self.crypto.hasher.dummy().to_string())
    }

    fn hmac_sha256(&mut self, key: Vec<u8>, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        self.meter.count(Kind::Crypto)?;
        Ok(ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), &data).as_ref().to_vec())
    }

    fn hmac_sha1(&mut self, key: Vec<u8>, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        self.meter.count(Kind::Crypto)?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
        Ok(ring::hmac::sign(&key, &data).as_ref().to_vec())
    }

    fn hmac_sha512(&mut self, key: Vec<u8>, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        self.meter.count(Kind::Crypto)?;
        Ok(ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA512, &key), &data).as_ref().to_vec())
    }

    fn sha256(&mut self, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        self.meter.count(Kind::Crypto)?;
        Ok(ring::digest::digest(&ring::digest::SHA256, &data).as_ref().to_vec())
    }

    fn random_bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        self.meter.count(Kind::Crypto)?;
        let max = self.meter.limits.max_random_bytes;
        if len as usize > max {
            return Err(LimitHit::Random { len: len.into(), max }.into());
        }
        let mut out = vec![0u8; len as usize];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut out)
            .map_err(|_| wasmtime::Error::msg("system random failed"))?;
        Ok(out)
    }

    fn constant_time_eq(&mut self, a: Vec<u8>, b: Vec<u8>) -> wasmtime::Result<bool> {
        self.meter.count(Kind::Crypto)?;
        Ok(subtle::ConstantTimeEq::ct_eq(a.as_slice(), b.as_slice()).into())
    }

    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        self.meter.count(Kind::Crypto)?;
        Ok(crate::core::time::now_ms().max(0) as u64)
    }

    /// Computed on the call's own time: the signature check is charged to its CPU budget.
    fn jws_verify(&mut self, token: String, jwks: String) -> wasmtime::Result<Result<String, String>> {
        self.meter.count(Kind::Crypto)?;
        Ok(super::jws::verify(&token, &jwks))
    }
}
