//! Write a Sandgate authentication strategy in Rust.
//!
//! A strategy is a WebAssembly component that implements Kuzzle's strategy methods (the
//! `authenticator` interface of `wit/strategy.wit`). This crate gives you:
//! - the [`Strategy`] trait, with defaults for the optional methods;
//! - [`export_strategy!`], which turns your type into the component's export;
//! - typed helpers over the host's interfaces: [`store`] (your private key-value storage),
//!   [`crypto`] (argon2id, HMAC, random bytes, run natively by the host), [`log`], [`config`].
//!
//! ```ignore
//! use sandgate_strategy::{Strategy, LoginRequest, Result, export_strategy};
//! struct Mine;
//! impl Strategy for Mine { /* verify, create, update, delete, exists */ }
//! export_strategy!(Mine);
//! ```
//! Build with `cargo build --profile strategy --target wasm32-wasip2`, upload the `.wasm`.

extern crate self as sandgate_strategy;

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// The raw bindings generated from `wit/strategy.wit` (`sandgate:strategy@0.2.0`).
#[cfg(not(sandgate_wit_0_1))]
pub mod bindings {
    wit_bindgen::generate!({
        world: "strategy",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_strategy_world",
        default_bindings_module: "::sandgate_strategy::bindings",
        runtime_path: "::sandgate_strategy::__wit_bindgen::rt",
    });
}

/// The raw bindings generated from `wit/0.1.0/strategy.wit` (built with `SANDGATE_WIT=0.1.0`).
#[cfg(sandgate_wit_0_1)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "strategy",
        path: "../wit/0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_strategy_world",
        default_bindings_module: "::sandgate_strategy::bindings",
        runtime_path: "::sandgate_strategy::__wit_bindgen::rt",
    });
}

pub use bindings::sandgate::strategy::config;
pub use bindings::sandgate::strategy::crypto;
#[cfg(not(sandgate_wit_0_1))]
pub use bindings::sandgate::strategy::types::{Login, Newcomer};
pub use bindings::sandgate::strategy::types::{LoginRequest, StrategyError};

#[cfg(not(sandgate_wit_0_1))]
pub mod http;

/// What a successful `verify` answers (the 0.2.0 `login` variant, for a 0.1.0 build).
#[cfg(sandgate_wit_0_1)]
pub enum Login {
    User(String),
    Redirect(String),
    Provision(Newcomer),
}
#[cfg(sandgate_wit_0_1)]
pub struct Newcomer {
    pub credentials: String,
    pub content: String,
}

/// What the exported `verify` answers: a `login` (0.2.0), a kuid (0.1.0).
#[doc(hidden)]
#[cfg(not(sandgate_wit_0_1))]
pub type __Verified = Login;
#[doc(hidden)]
#[cfg(sandgate_wit_0_1)]
pub type __Verified = String;

/// A 0.1.0 component answers a kuid: the later outcomes are a refusal that says why.
#[doc(hidden)]
#[cfg(sandgate_wit_0_1)]
pub fn __kuid_of(login: Result<Login>) -> Result<String> {
    match login? {
        Login::User(kuid) => Ok(kuid),
        Login::Redirect(_) | Login::Provision(_) => {
            Err(internal("redirects and provisioning need the sandgate:strategy@0.2.0 contract"))
        }
    }
}

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What every strategy method returns.
pub type Result<T> = core::result::Result<T, StrategyError>;

/// Kuzzle's strategy methods. `kuid` is the user id; credentials arrive as JSON text
/// (see [`parse_credentials`]). Methods that return "public information" return a JSON
/// object (see [`to_json`]): never put secrets in it.
pub trait Strategy {
    /// Credential field names, informative.
    fn fields() -> Vec<String> {
        Vec::new()
    }
    /// Log in: `Login::User(kuid)` for the user the credentials belong to, `Login::Redirect`
    /// for the next step of a multi-step login, `Login::Provision` for someone with no account
    /// yet (if the operator allows it); or `Err(rejected(..))`.
    fn verify(req: LoginRequest) -> Result<Login>;
    /// Check credentials before `create` (`is_update == false`) or `update`.
    fn validate(_kuid: String, _credentials: String, _is_update: bool) -> Result<()> {
        Ok(())
    }
    fn create(kuid: String, credentials: String) -> Result<String>;
    fn update(kuid: String, credentials: String) -> Result<String>;
    fn delete(kuid: String) -> Result<()>;
    fn exists(kuid: String) -> bool;
    fn get_info(_kuid: String) -> Result<String> {
        Ok("{}".to_string())
    }
    fn get_by_id(id: String) -> Result<String> {
        Err(not_found(format!("No credentials found for \"{id}\".")))
    }
}

/// Exports a [`Strategy`] implementation as the component's `authenticator`.
#[cfg(not(sandgate_wit_0_1))]
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        $crate::__export_strategy_with!($strategy, |login| login);
    };
}

/// Exports a [`Strategy`] implementation as the component's `authenticator` (0.1.0).
#[cfg(sandgate_wit_0_1)]
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        $crate::__export_strategy_with!($strategy, $crate::__kuid_of);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_strategy_with {
    ($strategy:ty, $answer:expr) => {
        #[doc(hidden)]
        pub struct __SandgateExport;

        impl $crate::bindings::exports::sandgate::strategy::authenticator::Guest for __SandgateExport {
            fn fields() -> ::std::vec::Vec<::std::string::String> {
                <$strategy as $crate::Strategy>::fields()
            }
            fn verify(req: $crate::LoginRequest) -> $crate::Result<$crate::__Verified> {
                ($answer)(<$strategy as $crate::Strategy>::verify(req))
            }
            fn validate(kuid: ::std::string::String, credentials: ::std::string::String, is_update: bool) -> $crate::Result<()> {
                <$strategy as $crate::Strategy>::validate(kuid, credentials, is_update)
            }
            fn create(kuid: ::std::string::String, credentials: ::std::string::String) -> $crate::Result<::std::string::String> {
                <$strategy as $crate::Strategy>::create(kuid, credentials)
            }
            fn update(kuid: ::std::string::String, credentials: ::std::string::String) -> $crate::Result<::std::string::String> {
                <$strategy as $crate::Strategy>::update(kuid, credentials)
            }
            fn delete(kuid: ::std::string::String) -> $crate::Result<()> {
                <$strategy as $crate::Strategy>::delete(kuid)
            }
            fn exists(kuid: ::std::string::String) -> bool {
                <$strategy as $crate::Strategy>::exists(kuid)
            }
            fn get_info(kuid: ::std::string::String) -> $crate::Result<::std::string::String> {
                <$strategy as $crate::Strategy>::get_info(kuid)
            }
            fn get_by_id(id: ::std::string::String) -> $crate::Result<::std::string::String> {
                <$strategy as $crate::Strategy>::get_by_id(id)
            }
        }

        $crate::bindings::__export_strategy_world!(__SandgateExport with_types_in $crate::bindings);
    };
}

/// Wrong credentials (401 `plugin.strategy.missing_user`).
pub fn rejected(msg: impl Into<String>) -> StrategyError {
    StrategyError::Rejected(msg.into())
}
/// Malformed credentials (400).
pub fn bad_request(msg: impl Into<String>) -> StrategyError {
    StrategyError::BadRequest(msg.into())
}
/// Conflicts with existing credentials (412).
pub fn conflict(msg: impl Into<String>) -> StrategyError {
    StrategyError::Conflict(msg.into())
}
/// No such credentials (404).
pub fn not_found(msg: impl Into<String>) -> StrategyError {
    StrategyError::NotFound(msg.into())
}
/// The strategy failed (500).
pub fn internal(msg: impl Into<String>) -> StrategyError {
    StrategyError::Internal(msg.into())
}

/// Parses credentials JSON into your type; malformed input is a 400 naming the problem.
pub fn parse_credentials<T: DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| bad_request(format!("Invalid credentials: {e}")))
}

/// Serializes public information for `create`, `update`, `get_info`, `get_by_id`.
pub fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| internal(e.to_string()))
}

/// This strategy's private storage, with JSON values.
pub mod store {
    use super::{Result, internal};
    use crate::bindings::sandgate::strategy::storage;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    #[cfg(not(sandgate_wit_0_1))]
    pub use storage::set_expiring;
    pub use storage::{delete, get, list_keys, set};

    /// Reads and decodes a JSON value; a value that no longer decodes is an internal error.
    pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
        match storage::get(key) {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| internal(format!("stored value {key:?} is corrupt: {e}"))),
        }
    }

    /// Encodes and writes a JSON value; a refused write (quota) is an internal error.
    pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| internal(e.to_string()))?;
        storage::set(key, &text).map_err(internal)
    }

    /// Like [`set_json`], but the key reads as absent `ttl_ms` after the request commits.
    #[cfg(not(sandgate_wit_0_1))]
    pub fn set_json_expiring<T: Serialize>(key: &str, value: &T, ttl_ms: u64) -> Result<()> {
        let text = serde_json::to_string(value).map_err(|e| internal(e.to_string()))?;
        storage::set_expiring(key, &text, ttl_ms).map_err(internal)
    }

    /// Reads and deletes a JSON value: what a single-use value (an OAuth `state`) needs.
    pub fn take_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
        let value = get_json(key)?;
        if value.is_some() {
            storage::delete(key);
        }
        Ok(value)
    }
}

/// Log lines, tagged with the strategy's name by the host.
pub mod log {
    use crate::bindings::sandgate::strategy::log::{Level, log};
    pub fn debug(msg: &str) {
        log(Level::Debug, msg)
    }
    pub fn info(msg: &str) {
        log(Level::Info, msg)
    }
    pub fn warn(msg: &str) {
        log(Level::Warn, msg)
    }
    pub fn error(msg: &str) {
        log(Level::Error, msg)
    }
}

/// The operator's configuration for this strategy, decoded; `{}` when none was given.
pub fn config_json<T: DeserializeOwned + Default>() -> Result<T> {
    let text = config::get();
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(&text).map_err(|e| internal(format!("invalid strategy config: {e}")))
}
