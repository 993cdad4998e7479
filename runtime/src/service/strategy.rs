//! The glue every strategy-calling action shares: finding the strategy, admitting the
//! request to it, the call's context, reading what it answered, and committing what the
//! request changed.

use super::context::Ctx;
use crate::core::errors::{KError, defs};
use crate::protocol::Request;
use crate::sandbox::host::Overlay;
use crate::sandbox::{CallCtx, Permit, ReadGuardArc, Strategy};
use crate::store::Change;
use serde_json::Value;
use std::sync::Arc;

/// The strategy registered as `name` now, or 400 `security.credentials.unknown_strategy`.
/// Looked up when the handler runs, not when the request was admitted: a strategy removed or
/// replaced meanwhile is gone, or the new version, as for a request that arrives now.
pub fn named(ctx: &Ctx, name: &str) -> Result<Arc<Strategy>, KError> {
    ctx.app.sandbox.get(name).ok_or_else(|| KError::new(defs::SECURITY_CREDENTIALS_UNKNOWN_STRATEGY, &[name]))
}

/// The `strategy` argument, required (the credentials actions' admission reads it).
pub fn arg_name(req: &Request) -> Result<String, KError> {
    match req.args.get("strategy") {
        None | Some(Value::Null) => Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["strategy"])),
        Some(Value::String(name)) => Ok(name.clone()),
        Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["strategy", "string"])),
    }
}

/// The strategy the `strategy` argument names, as the dispatcher read it if it did.
pub fn from_arg(ctx: &Ctx) -> Result<Arc<Strategy>, KError> {
    let name = ctx.target.clone().unwrap_or_else(|| arg_name(ctx.req))?;
    named(ctx, &name)
}

/// This request's admission to `s` (taken on its first call of `s`).
pub async fn permit(ctx: &Ctx<'_>, s: &Arc<Strategy>) -> Result<Arc<Permit>, KError> {
    ctx.admitted.permit(s).await.map_err(|e| super::errors::call_error(&s.name, e))
}

/// The context of one call of this request.
pub fn call<'a>(
    ctx: &'a Ctx,
    permit: &'a Arc<Permit>,
    overlay: &'a mut Overlay,
    guard: Option<ReadGuardArc>,
) -> CallCtx<'a> {
    CallCtx { permit, overlay, request_id: &ctx.req.request_id, guard, report: None }
}

/// Parses the JSON object a strategy returned as public information.
pub fn public_info(strategy: &Strategy, text: &str) -> Result<Value, KError> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(KError::new(
            defs::PLUGIN_RUNTIME_UNEXPECTED_ERROR,
            &[&format!("[{}] returned public information that is not a JSON object", strategy.name)],
        )),
    }
}

/// Credentials sent by the client, as the JSON text a strategy receives: must be an object.
pub fn credentials_text(value: Option<&Value>, what: &str) -> Result<String, KError> {
    match value {
        Some(v @ Value::Object(_)) => Ok(v.to_string()),
        None | Some(Value::Null) => Err(KError::new(defs::API_ASSERT_BODY_REQUIRED, &[])),
        Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[what, "object"])),
    }
}

/// The store changes that make an overlay's writes durable. An expiring key's life starts now.
pub fn changes(overlay: &Overlay) -> Vec<Change> {
    let now = crate::core::time::now_ms();
    overlay
        .writes
        .iter()
        .map(|((strategy, key), value)| match value {
            Some(put) => Change::KvPut {
                strategy: strategy.clone(),
                key: key.clone(),
                value: put.value.clone(),
                expires_ms: put.ttl_ms.map(|ttl| now.saturating_add(ttl as i64)),
                insert: put.insert,
            },
            None => Change::KvDelete { strategy: strategy.clone(), key: key.clone() },
        })
        .collect()
}

/// Commits a request's changes, and mirrors revocations in memory once they are durable.
pub async fn commit(ctx: &Ctx<'_>, changes: Vec<Change>) -> Result<(), KError> {
    let revocations: Vec<Change> = changes
        .iter()
        .filter(|c| matches!(c, Change::RevokeToken { .. } | Change::RevokeUser { .. }))
        .cloned()
        .collect();
    ctx.app.store.commit(changes).await?;
    ctx.app.tokens.apply(&revocations);
    Ok(())
}
