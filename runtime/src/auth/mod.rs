//! The `auth` controller: login, sessions, and the caller's own credentials.
//! Also the glue every action uses to call a strategy and report what went wrong.

pub mod cookie;
pub mod credentials;
pub mod login;
#[cfg(feature = "bench-native")]
pub mod native_bench;
pub mod session;
pub mod throttle;

use crate::actions::Ctx;
use crate::api::errors::{KError, defs};
use crate::sandbox::bindings::StrategyError;
use crate::sandbox::{CallError, Strategy};
use crate::store::{Change, StoreError};
use std::sync::Arc;

/// The registered strategy named `name`, or 400 `security.credentials.unknown_strategy`.
pub fn strategy(ctx: &Ctx, name: &str) -> Result<Arc<Strategy>, KError> {
    ctx.app.sandbox.get(name).ok_or_else(|| KError::new(defs::SECURITY_CREDENTIALS_UNKNOWN_STRATEGY, &[name]))
}

/// The `strategy` argument, required.
pub fn strategy_arg(ctx: &Ctx) -> Result<Arc<Strategy>, KError> {
    match ctx.req.args.get("strategy") {
        None | Some(serde_json::Value::Null) => Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["strategy"])),
        Some(serde_json::Value::String(name)) => strategy(ctx, name),
        Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["strategy", "string"])),
    }
}

/// What a strategy's `strategy-error` becomes for the client.
pub fn strategy_error(name: &str, e: StrategyError) -> KError {
    match e {
        StrategyError::Rejected(msg) => {
            let msg = if msg.is_empty() { format!("Unable to log in using the strategy \"{name}\"") } else { msg };
            KError::new(defs::PLUGIN_STRATEGY_MISSING_USER, &[&msg])
        }
        StrategyError::BadRequest(msg) => KError::new(defs::PLUGIN_STRATEGY_BAD_REQUEST, &[&msg]),
        StrategyError::Conflict(msg) => KError::new(defs::PLUGIN_STRATEGY_PRECONDITION, &[&msg]),
        StrategyError::NotFound(msg) => KError::new(defs::PLUGIN_STRATEGY_NOT_FOUND, &[&msg]),
        StrategyError::Internal(msg) => {
            KError::new(defs::PLUGIN_RUNTIME_UNEXPECTED_ERROR, &[&format!("[{name}] {msg}")])
        }
    }
}

/// What a sandbox failure becomes for the client.
pub fn call_error(name: &str, e: CallError) -> KError {
    let what = e.to_string();
    match e {
        CallError::Busy { .. } => KError::new(defs::PLUGIN_SANDBOX_BUSY, &[name, &what]),
        CallError::Locked { secs } => KError::new(defs::SECURITY_CREDENTIALS_TOO_MANY_FAILURES, &[&secs.to_string()]),
        CallError::InputTooLarge { .. } => KError::new(defs::PLUGIN_SANDBOX_INPUT_TOO_LARGE, &[name, &what]),
        CallError::Trap(_) => KError::new(defs::PLUGIN_SANDBOX_CRASHED, &[name, &what]),
        _ => KError::new(defs::PLUGIN_SANDBOX_LIMIT_EXCEEDED, &[name, &what]),
    }
}

/// Flattens a sandbox call's two layers of failure into one Kuzzle error.
pub fn answer<T>(strategy: &Strategy, outcome: Result<Result<T, StrategyError>, CallError>) -> Result<T, KError> {
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(strategy_error(&strategy.name, e)),
        Err(e) => {
            tracing::warn!(strategy = %strategy.name, "strategy call failed: {e}");
            Err(call_error(&strategy.name, e))
        }
    }
}

/// Parses the JSON object a strategy returned as public information.
pub fn public_info(strategy: &Strategy, text: &str) -> Result<serde_json::Value, KError> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        _ => Err(KError::new(
            defs::PLUGIN_RUNTIME_UNEXPECTED_ERROR,
            &[&format!("[{}] returned public information that is not a JSON object", strategy.name)],
        )),
    }
}

/// Commits a request's changes, and mirrors revocations in memory once they are durable.
pub fn commit(ctx: &Ctx, changes: &[Change]) -> Result<(), KError> {
    ctx.app.store.commit(changes).map_err(|e| match e {
        StoreError::UserExists(kuid) => KError::new(defs::SECURITY_USER_ALREADY_EXISTS, &[&kuid]),
        StoreError::AdminExists => KError::new(defs::API_PROCESS_ADMIN_EXISTS, &[]),
        StoreError::Backend(msg) => internal(&msg),
    })?;
    ctx.app.tokens.apply(changes);
    Ok(())
}

pub fn internal(msg: &str) -> KError {
    tracing::error!("{msg}");
    KError::new(defs::CORE_STORE_FAILURE, &[msg])
}

/// Credentials sent by the client, as the JSON text a strategy receives: must be an object.
pub fn credentials_text(value: Option<&serde_json::Value>, what: &str) -> Result<String, KError> {
    match value {
        Some(v @ serde_json::Value::Object(_)) => Ok(v.to_string()),
        None | Some(serde_json::Value::Null) => Err(KError::new(defs::API_ASSERT_BODY_REQUIRED, &[])),
        Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[what, "object"])),
    }
}
