//! Credentials of a user for one strategy: each operation runs the strategy's method in the
//! sandbox; the host keeps the link "kuid has credentials created through strategy X", which
//! is what allows that strategy to log the user in. `auth:*MyCredentials` run these with the
//! caller's kuid, `security:*Credentials` with the one an administrator names.

use super::context::Ctx;
use super::errors::{answer, call_error};
use super::strategy::{call, changes, commit, permit, public_info};
use crate::core::errors::KError;
use crate::sandbox::Strategy;
use crate::sandbox::host::Overlay;
use crate::store::Change;
use serde_json::{Value, json};
use std::sync::Arc;

/// `validate` then `create`; the link and the strategy's writes are committed together.
pub fn create(ctx: &Ctx, s: &Arc<Strategy>, kuid: &str, creds: &str) -> Result<Value, KError> {
    let p = permit(ctx, s)?;
    let calls = ctx.app.sandbox.calls();
    let mut overlay = Overlay::default();
    answer(s, calls.validate(s, call(ctx, &p, &mut overlay, None), kuid, creds, false))?;
    let info = answer(s, calls.create(s, call(ctx, &p, &mut overlay, None), kuid, creds))?;
    let info = public_info(s, &info)?;
    let mut changes = changes(&overlay);
    changes.push(Change::Link { strategy: s.name.clone(), kuid: kuid.to_string() });
    commit(ctx, &changes)?;
    Ok(info)
}

pub fn update(ctx: &Ctx, s: &Arc<Strategy>, kuid: &str, creds: &str) -> Result<Value, KError> {
    let p = permit(ctx, s)?;
    let calls = ctx.app.sandbox.calls();
    let mut overlay = Overlay::default();
    answer(s, calls.validate(s, call(ctx, &p, &mut overlay, None), kuid, creds, true))?;
    let info = answer(s, calls.update(s, call(ctx, &p, &mut overlay, None), kuid, creds))?;
    let info = public_info(s, &info)?;
    commit(ctx, &changes(&overlay))?;
    Ok(info)
}

pub fn delete(ctx: &Ctx, s: &Arc<Strategy>, kuid: &str) -> Result<Value, KError> {
    let p = permit(ctx, s)?;
    let mut overlay = Overlay::default();
    answer(s, ctx.app.sandbox.calls().delete(s, call(ctx, &p, &mut overlay, None), kuid))?;
    let mut changes = changes(&overlay);
    changes.push(Change::Unlink { strategy: s.name.clone(), kuid: kuid.to_string() });
    commit(ctx, &changes)?;
    Ok(json!({ "acknowledged": true }))
}

/// A credential check (a second factor's code): throttled like a login, and what the check
/// records (a TOTP strategy marks the code as used) is kept.
pub fn validate(ctx: &Ctx, s: &Arc<Strategy>, kuid: &str, creds: &str) -> Result<Value, KError> {
    let p = permit(ctx, s)?;
    let mut overlay = Overlay::default();
    let attempt = ctx.app.throttle.attempt(ctx.req.client_ip.as_deref())?;
    let outcome =
        ctx.app.sandbox.calls().validate(s, call(ctx, &p, &mut overlay, Some(attempt.guard())), kuid, creds, false);
    attempt.finish(&outcome);
    answer(s, outcome)?;
    commit(ctx, &changes(&overlay))?;
    Ok(json!(true))
}

pub fn exists(ctx: &Ctx, s: &Arc<Strategy>, kuid: &str) -> Result<bool, KError> {
    let p = permit(ctx, s)?;
    ctx.app
        .sandbox
        .calls()
        .exists(s, call(ctx, &p, &mut Overlay::default(), None), kuid)
        .map_err(|e| call_error(&s.name, e))
}

pub fn get(ctx: &Ctx, s: &Arc<Strategy>, kuid: &str) -> Result<Value, KError> {
    let p = permit(ctx, s)?;
    let info = answer(s, ctx.app.sandbox.calls().get_info(s, call(ctx, &p, &mut Overlay::default(), None), kuid))?;
    public_info(s, &info)
}

pub fn get_by_id(ctx: &Ctx, s: &Arc<Strategy>, id: &str) -> Result<Value, KError> {
    let p = permit(ctx, s)?;
    let info = answer(s, ctx.app.sandbox.calls().get_by_id(s, call(ctx, &p, &mut Overlay::default(), None), id))?;
    public_info(s, &info)
}
