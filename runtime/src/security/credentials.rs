//! Credentials of a user for one strategy: each action runs the strategy's method in the
//! sandbox; the host keeps the link "kuid has credentials created through strategy X", which
//! is what allows that strategy to log the user in.

use crate::actions::Ctx;
use crate::api::errors::{KError, defs};
use crate::api::request::Reply;
use crate::auth::{answer, commit, credentials_text, internal, public_info, strategy_arg};
use crate::sandbox::Strategy;
use crate::sandbox::host::Overlay;
use crate::store::Change;
use serde_json::{Map, Value, json};

fn target_kuid<'a>(ctx: &'a Ctx) -> Result<&'a str, KError> {
    ctx.req.id_arg().ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["_id"]))
}

fn existing_user(ctx: &Ctx, kuid: &str) -> Result<(), KError> {
    match ctx.app.store.get_user(kuid).map_err(|e| internal(&e.to_string()))? {
        Some(_) => Ok(()),
        None => Err(KError::new(defs::SECURITY_USER_NOT_FOUND, &[kuid])),
    }
}

// The operations, for any kuid; `auth:*MyCredentials` call them with the caller's.

pub fn do_create(ctx: &Ctx, s: &Strategy, kuid: &str) -> Result<Value, KError> {
    let creds = credentials_text(ctx.req.body.as_ref(), "body")?;
    let rid = &ctx.req.request_id;
    let mut overlay = Overlay::default();
    answer(s, ctx.app.sandbox.validate(s, kuid, &creds, false, &mut overlay, rid, None))?;
    let info = answer(s, ctx.app.sandbox.create(s, kuid, &creds, &mut overlay, rid))?;
    let info = public_info(s, &info)?;
    let mut changes = overlay.changes();
    changes.push(Change::Link { strategy: s.name.clone(), kuid: kuid.to_string() });
    commit(ctx, &changes)?;
    Ok(info)
}

pub fn do_update(ctx: &Ctx, s: &Strategy, kuid: &str) -> Result<Value, KError> {
    let creds = credentials_text(ctx.req.body.as_ref(), "body")?;
    let rid = &ctx.req.request_id;
    let mut overlay = Overlay::default();
    answer(s, ctx.app.sandbox.validate(s, kuid, &creds, true, &mut overlay, rid, None))?;
    let info = answer(s, ctx.app.sandbox.update(s, kuid, &creds, &mut overlay, rid))?;
    let info = public_info(s, &info)?;
    commit(ctx, &overlay.changes())?;
    Ok(info)
}

pub fn do_delete(ctx: &Ctx, s: &Strategy, kuid: &str) -> Result<Value, KError> {
    let mut overlay = Overlay::default();
    answer(s, ctx.app.sandbox.delete(s, kuid, &mut overlay, &ctx.req.request_id))?;
    let mut changes = overlay.changes();
    changes.push(Change::Unlink { strategy: s.name.clone(), kuid: kuid.to_string() });
    commit(ctx, &changes)?;
    Ok(json!({ "acknowledged": true }))
}

pub fn do_validate(ctx: &Ctx, s: &Strategy, kuid: &str) -> Result<Value, KError> {
    let creds = credentials_text(ctx.req.body.as_ref(), "body")?;
    let mut overlay = Overlay::default();
    // A credential check (a second factor's code): throttled like a login.
    let attempt = ctx.app.throttle.attempt(ctx.req.client_ip.as_deref())?;
    let outcome =
        ctx.app.sandbox.validate(s, kuid, &creds, false, &mut overlay, &ctx.req.request_id, Some(attempt.guard()));
    attempt.finish(&outcome);
    answer(s, outcome)?;
    // A check may record state (a TOTP strategy marks the code as used): keep it.
    commit(ctx, &overlay.changes())?;
    Ok(json!(true))
}

pub fn do_exists(ctx: &Ctx, s: &Strategy, kuid: &str) -> Result<Value, KError> {
    let mut overlay = Overlay::default();
    let exists = ctx
        .app
        .sandbox
        .exists(s, kuid, &mut overlay, &ctx.req.request_id)
        .map_err(|e| crate::auth::call_error(&s.name, e))?;
    Ok(json!(exists))
}

pub fn do_get(ctx: &Ctx, s: &Strategy, kuid: &str) -> Result<Value, KError> {
    let mut overlay = Overlay::default();
    let info = answer(s, ctx.app.sandbox.get_info(s, kuid, &mut overlay, &ctx.req.request_id))?;
    public_info(s, &info)
}

// The admin actions: `/credentials/:strategy/:_id...`

pub fn create(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    let kuid = target_kuid(ctx)?;
    existing_user(ctx, kuid)?;
    do_create(ctx, &s, kuid).map(Reply::new)
}

pub fn update(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    let kuid = target_kuid(ctx)?;
    existing_user(ctx, kuid)?;
    do_update(ctx, &s, kuid).map(Reply::new)
}

pub fn delete(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    do_delete(ctx, &s, target_kuid(ctx)?).map(Reply::new)
}

pub fn get(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    do_get(ctx, &s, target_kuid(ctx)?).map(Reply::new)
}

pub fn get_by_id(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    let id = target_kuid(ctx)?;
    let mut overlay = Overlay::default();
    let info = answer(&s, ctx.app.sandbox.get_by_id(&s, id, &mut overlay, &ctx.req.request_id))?;
    public_info(&s, &info).map(Reply::new)
}

pub fn has(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    do_exists(ctx, &s, target_kuid(ctx)?).map(Reply::new)
}

pub fn validate(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    do_validate(ctx, &s, target_kuid(ctx)?).map(Reply::new)
}

pub fn fields(ctx: &Ctx) -> Result<Reply, KError> {
    let s = strategy_arg(ctx)?;
    Ok(json!(s.fields).into())
}

pub fn all_fields(ctx: &Ctx) -> Result<Reply, KError> {
    let mut out = Map::new();
    for name in ctx.app.sandbox.names() {
        if let Some(s) = ctx.app.sandbox.get(&name) {
            out.insert(name, json!(s.fields));
        }
    }
    Ok(Value::Object(out).into())
}
