//! The 0.1.0 contract, served by the 0.2.0 implementations: every 0.1.0 function is its 0.2.0
//! namesake (0.2.0 only added functions), so a component built against 0.1.0 runs under the
//! same caps and rules as any other, with nothing of its own on the host side.

use super::config::ConfigView;
use super::crypto::CryptoView;
use super::log::LogView;
use super::storage::StorageView;
use crate::sandbox::bindings::sandgate::strategy as now;
use crate::sandbox::bindings::v0_1::sandgate::strategy as old;
use crate::sandbox::bindings::{Level, LoginRequest, StrategyError};

impl old::storage::Host for StorageView<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        now::storage::Host::get(self, key).await
    }
    async fn set(&mut self, key: String, value: String) -> wasmtime::Result<Result<(), String>> {
        now::storage::Host::set(self, key, value).await
    }
    async fn delete(&mut self, key: String) -> wasmtime::Result<bool> {
        now::storage::Host::delete(self, key).await
    }
    async fn list_keys(&mut self, prefix: String, limit: u32) -> wasmtime::Result<Vec<String>> {
        now::storage::Host::list_keys(self, prefix, limit).await
    }
}

impl old::crypto::Host for CryptoView<'_> {
    async fn hash_password(&mut self, password: String) -> wasmtime::Result<String> {
        now::crypto::Host::hash_password(self, password).await
    }
    async fn verify_password(&mut self, password: String, phc: String) -> wasmtime::Result<bool> {
        now::crypto::Host::verify_password(self, password, phc).await
    }
    fn dummy_hash(&mut self) -> wasmtime::Result<String> {
        now::crypto::Host::dummy_hash(self)
    }
    fn hmac_sha256(&mut self, key: Vec<u8>, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        now::crypto::Host::hmac_sha256(self, key, data)
    }
    fn hmac_sha1(&mut self, key: Vec<u8>, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        now::crypto::Host::hmac_sha1(self, key, data)
    }
    fn hmac_sha512(&mut self, key: Vec<u8>, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        now::crypto::Host::hmac_sha512(self, key, data)
    }
    fn sha256(&mut self, data: Vec<u8>) -> wasmtime::Result<Vec<u8>> {
        now::crypto::Host::sha256(self, data)
    }
    fn random_bytes(&mut self, len: u32) -> wasmtime::Result<Vec<u8>> {
        now::crypto::Host::random_bytes(self, len)
    }
    fn constant_time_eq(&mut self, a: Vec<u8>, b: Vec<u8>) -> wasmtime::Result<bool> {
        now::crypto::Host::constant_time_eq(self, a, b)
    }
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        now::crypto::Host::now_ms(self)
    }
}

impl old::log::Host for LogView<'_> {
    fn log(&mut self, level: old::log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            old::log::Level::Trace => Level::Trace,
            old::log::Level::Debug => Level::Debug,
            old::log::Level::Info => Level::Info,
            old::log::Level::Warn => Level::Warn,
            old::log::Level::Error => Level::Error,
        };
        now::log::Host::log(self, level, message)
    }
}

impl old::config::Host for ConfigView<'_> {
    fn get(&mut self) -> wasmtime::Result<String> {
        now::config::Host::get(self)
    }
}

impl old::types::Host for super::HostState {}

/// A login request as a 0.1.0 component takes it (the same record).
pub fn request(req: &LoginRequest) -> old::types::LoginRequest {
    old::types::LoginRequest {
        credentials: req.credentials.clone(),
        query: req.query.clone(),
        client_ip: req.client_ip.clone(),
    }
}

/// A 0.1.0 refusal as the host handles it (the same variant).
pub fn error(e: old::types::StrategyError) -> StrategyError {
    match e {
        old::types::StrategyError::Rejected(m) => StrategyError::Rejected(m),
        old::types::StrategyError::BadRequest(m) => StrategyError::BadRequest(m),
        old::types::StrategyError::Conflict(m) => StrategyError::Conflict(m),
        old::types::StrategyError::NotFound(m) => StrategyError::NotFound(m),
        old::types::StrategyError::Internal(m) => StrategyError::Internal(m),
    }
}
