//! Every failure of a lower room, mapped once to what the client is told.

use crate::core::errors::{KError, defs};
use crate::sandbox::bindings::StrategyError;
use crate::sandbox::{CallError, Strategy};
use crate::store::StoreError;
use crate::tokens::VerifyError;

impl From<StoreError> for KError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::UserExists(kuid) => KError::new(defs::SECURITY_USER_ALREADY_EXISTS, &[&kuid]),
            StoreError::AdminExists => KError::new(defs::API_PROCESS_ADMIN_EXISTS, &[]),
            // Refreshed by another node first: this token is used up.
            StoreError::Refreshed => KError::new(defs::SECURITY_TOKEN_INVALID, &[]),
            // Two requests took the same record at once (one username for two users, one
            // login state redeemed twice): the later one loses, as it would have a moment later.
            StoreError::Taken { strategy, key } => {
                tracing::info!(strategy = %strategy, key = %key, "a concurrent request stored this key first");
                KError::new(
                    defs::PLUGIN_STRATEGY_PRECONDITION,
                    &["Another request took these credentials at the same moment; try again."],
                )
            }
            StoreError::DocExists { .. } => KError::new(defs::SERVICES_STORAGE_DOCUMENT_ALREADY_EXISTS, &[]),
            StoreError::Unavailable(msg) => {
                tracing::warn!("store unavailable: {msg}");
                KError::new(defs::CORE_STORE_UNAVAILABLE, &[])
            }
            StoreError::Backend(msg) => {
                tracing::error!("store failure: {msg}");
                KError::new(defs::CORE_STORE_FAILURE, &[&msg])
            }
        }
    }
}

impl From<VerifyError> for KError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Invalid => KError::new(defs::SECURITY_TOKEN_INVALID, &[]),
            VerifyError::Expired => KError::new(defs::SECURITY_TOKEN_EXPIRED, &[]),
        }
    }
}

/// A failure that is no one's input and no store's either (a lost worker thread, a bug).
pub fn unexpected(msg: &str) -> KError {
    tracing::error!("{msg}");
    KError::new(defs::CORE_FATAL_UNEXPECTED_ERROR, &[msg])
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
        CallError::Busy { .. } | CallError::PoolFull { .. } => KError::new(defs::PLUGIN_SANDBOX_BUSY, &[name, &what]),
        CallError::Locked { secs } => KError::new(defs::SECURITY_CREDENTIALS_TOO_MANY_FAILURES, &[&secs.to_string()]),
        CallError::InputTooLarge { .. } => KError::new(defs::PLUGIN_SANDBOX_INPUT_TOO_LARGE, &[name, &what]),
        CallError::Trap(_) => KError::new(defs::PLUGIN_SANDBOX_CRASHED, &[name, &what]),
        CallError::StoreUnavailable(_) => KError::new(defs::CORE_STORE_UNAVAILABLE, &[]),
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
