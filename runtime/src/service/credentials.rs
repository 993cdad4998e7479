//! Credentials of a user for one strategy: each operation runs the strategy's method in the
//! sandbox; the host keeps the link "kuid has credentials created through strategy X", which
//! is what allows that strategy to log the user in. `auth:*MyCredentials` run these with the
//! caller's kuid, `security:*Credentials` with the one an administrator names.

use super::context::Ctx;
use super::errors::{answer, call_error};
use super::strategy::{call, changes, commit, permit, public_info};
use crate::core::errors::KError;
use crate::sandbox::host::Overlay;
use crate::sandbox::{Permit, Strategy};
use crate::store::Change;
use serde_json::{Value, json};
use std::sync::Arc;

/// `validate`, then `create` (or `update`): the strategy's public information. Its writes go
/// to `overlay`, for the caller to commit with whatever else the request changes.
pub(super) async fn write(
    ctx: &Ctx<'_>,
    s: &Arc<Strategy>,
    p: &Arc<Permit>,
    overlay: &mut Overlay,
    kuid: &str,
    creds: &str,
    is_update: bool,
) -> Result<Value, KError> {
    let calls = ctx.app.sandbox.calls();
    answer(s, calls.validate(s, call(ctx, p, overlay, None), kuid, creds, is_update).await)?;
    let info = if is_update {
        calls.update(s, call(ctx, p, overlay, None), kuid, creds).await
    } else {
        calls.create(s, call(ctx, p, overlay, None), kuid, creds).await
    };
    public_info(s, &answer(s, info)?)
}

/// The link and the strategy's writes are committed together.
pub async fn create(ctx: &Ctx<'_>, s: &Arc<Strategy>, kuid: &str, creds: &str) -> Result<Value, KError> {
    let p = permit(ctx, s).await?;
    let mut overlay = Overlay::default();
    let info = write(ctx, s, &p, &mut overlay, kuid, creds, false).await?;
    let mut changes = changes(&overlay);
    changes.push(Change::Link { strategy: s.name.clone(), kuid: kuid.to_string() });
    commit(ctx, changes).await?;
    Ok(info)
}

pub async fn update(ctx: &Ctx<'_>, s: &Arc<Strategy>, kuid: &str, creds: &str) -> Result<Value, KError> {
    let p = permit(ctx, s).await?;
    let mut overlay = Overlay::default();
    let info = write(ctx, s, &p, &mut overlay, kuid, creds, true).await?;
    commit(ctx, changes(&overlay)).await?;
    Ok(info)
}

pub async fn delete(ctx: &Ctx<'_>, s: &Arc<Strategy>, kuid: &str) -> Result<Value, KError> {
    let p = permit(ctx, s).await?;
    let mut overlay = Overlay::default();
    answer(s, ctx.app.sandbox.calls().delete(s, call(ctx, &p, &mut overlay, None), kuid).await)?;
    let mut changes = changes(&overlay);
    changes.push(Change::Unlink { strategy: s.name.clone(), kuid: kuid.to_string() });
    commit(ctx, changes).await?;
    Ok(json!({ "acknowledged": true }))
}

/// A credential check (a second factor's code): throttled like a login, and what the check
/// records (a TOTP strategy marks the code as used) is kept.
pub async fn validate(ctx: &Ctx<'_>, s: &Arc<Strategy>, kuid: &str, creds: &str) -> Result<Value, KError> {
    let p = permit(ctx, s).await?;
    let mut overlay = Overlay::default();
    let attempt = ctx.app.throttle.attempt(ctx.req.client_ip.as_deref())?;
    let outcome = ctx
        .app
        .sandbox
        .calls()
        .validate(s, call(ctx, &p, &mut overlay, Some(attempt.guard())), kuid, creds, false)
        .await;
    attempt.finish(&outcome);
    answer(s, outcome)?;
    commit(ctx, changes(&overlay)).await?;
    Ok(json!(true))
}

pub async fn exists(ctx: &Ctx<'_>, s: &Arc<Strategy>, kuid: &str) -> Result<bool, KError> {
    let p = permit(ctx, s).await?;
    ctx.app
        .sandbox
        .calls()
        .exists(s, call(ctx, &p, &mut Overlay::default(), None), kuid)
        .await
        .map_err(|e| call_error(&s.name, e))
}

pub async fn get(ctx: &Ctx<'_>, s: &Arc<Strategy>, kuid: &str) -> Result<Value, KError> {
    let p = permit(ctx, s).await?;
    let info =
        answer(s, ctx.app.sandbox.calls().get_info(s, call(ctx, &p, &mut Overlay::default(), None), kuid).await)?;
    public_info(s, &info)
}

pub async fn get_by_id(ctx: &Ctx<'_>, s: &Arc<Strategy>, id: &str) -> Result<Value, KError> {
    let p = permit(ctx, s).await?;
    let info = answer(s, ctx.app.sandbox.calls().get_by_id(s, call(ctx, &p, &mut Overlay::default(), None), id).await)?;
    public_info(s, &info)
}
