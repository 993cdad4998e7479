//! Sessions: checkToken, getCurrentUser, logout, refreshToken, getMyRights, updateSelf.

use super::commit;
use crate::actions::Ctx;
use crate::api::errors::{KError, defs};
use crate::api::request::Reply;
use crate::store::{Change, User};
use crate::tokens::{Tokens, VerifyError, now_ms};
use serde_json::{Value, json};

/// Never a 401 for a bad body token: `{valid: false, state}` (reference §1.3).
pub fn check_token(ctx: &Ctx) -> Result<Reply, KError> {
    let cookie_mode = super::cookie::requested(ctx.req, ctx.app.config.cookie_auth)?;
    let token = if cookie_mode {
        ctx.req.cookie_token.as_deref()
    } else {
        ctx.req.body_object().and_then(|b| b.get("token")).and_then(Value::as_str).filter(|t| !t.is_empty())
    };
    let Some(token) = token else {
        return Ok(json!({ "valid": true, "kuid": "-1", "expiresAt": null }).into());
    };
    let checked = ctx.app.tokens.check(token).and_then(|s| {
        // A token of a deleted user is void (its revocation is recorded at deletion; this
        // also covers a store restored from an older backup).
        match ctx.app.store.get_user(&s.kuid) {
            Ok(Some(_)) => Ok(s),
            _ => Err(VerifyError::Invalid),
        }
    });
    Ok(match checked {
        Ok(s) => json!({ "valid": true, "kuid": s.kuid, "expiresAt": s.expires_at }),
        Err(e) => {
            json!({ "valid": false, "state": super::super::api::dispatch::token_error(e).message })
        }
    }
    .into())
}

pub fn anonymous() -> Value {
    json!({ "_id": "-1", "_source": { "name": "Anonymous", "profileIds": ["anonymous"] }, "strategies": [] })
}

pub fn user_json(user: &User) -> Value {
    json!({ "_id": user.kuid, "_source": Value::Object(user.content.clone()) })
}

pub fn get_current_user(ctx: &Ctx) -> Result<Reply, KError> {
    let Some(user) = &ctx.caller.user else {
        return Ok(anonymous().into());
    };
    let registered = ctx.app.sandbox.names();
    let strategies: Vec<String> = ctx
        .app
        .store
        .linked_strategies(&user.kuid)
        .map_err(|e| super::internal(&e.to_string()))?
        .into_iter()
        .filter(|s| registered.contains(s))
        .collect();
    let mut out = user_json(user);
    out["strategies"] = json!(strategies);
    Ok(out.into())
}

pub fn logout(ctx: &Ctx) -> Result<Reply, KError> {
    let cookie_mode = super::cookie::requested(ctx.req, ctx.app.config.cookie_auth)?;
    let Some(session) = ctx.caller.session.as_ref() else {
        if cookie_mode {
            return Ok(super::cookie::cleared(json!({ "acknowledged": true }).into()));
        }
        return Err(KError::new(defs::SECURITY_RIGHTS_UNAUTHORIZED, &["auth", "logout"]));
    };
    let change = if ctx.req.flag("global") {
        Tokens::revoke_user_change(&session.kuid)
    } else {
        Tokens::revoke_token_change(session, now_ms())
    };
    commit(ctx, &[change])?;
    let reply: Reply = json!({ "acknowledged": true }).into();
    Ok(if cookie_mode { super::cookie::cleared(reply) } else { reply })
}

pub fn refresh_token(ctx: &Ctx) -> Result<Reply, KError> {
    let session = ctx.caller.session.as_ref().expect("User access implies a session");
    if session.expires_at < 0 {
        return Err(KError::new(defs::SECURITY_TOKEN_REFRESH_FORBIDDEN, &["Token with infinite TTL"]));
    }
    // One refresh per token: concurrent ones lose the claim and are refused.
    let Some(_claim) = ctx.app.tokens.claim_refresh(session) else {
        return Err(KError::new(defs::SECURITY_TOKEN_INVALID, &[]));
    };
    let settings = ctx.app.tokens.settings();
    let ttl = super::login::requested_ttl(ctx, ctx.req.args.get("expiresIn"))?;
    // Every refusal before the commit: a refused refresh must not use the token up.
    let cookie_mode = super::cookie::requested(ctx.req, ctx.app.config.cookie_auth)?;
    // The old token stays valid for the grace period (requests already on their way).
    commit(ctx, &[Tokens::revoke_token_change(session, now_ms() + settings.grace_period_ms)])?;
    let issued = ctx.app.tokens.issue(&session.kuid, ttl);
    let reply: Reply =
        json!({ "_id": issued.kuid, "jwt": issued.token, "expiresAt": issued.expires_at, "ttl": issued.ttl }).into();
    Ok(if cookie_mode { super::cookie::into_cookie(reply) } else { reply })
}

pub fn get_my_rights(ctx: &Ctx) -> Result<Reply, KError> {
    let hits: Vec<Value> = if ctx.caller.is_admin() {
        vec![json!({ "controller": "*", "action": "*", "index": "*", "collection": "*", "value": "allowed" })]
    } else {
        crate::actions::ACTIONS
            .iter()
            .map(|a| {
                let allowed = a.access != crate::actions::Access::Admin;
                json!({ "controller": a.controller, "action": a.action, "index": "*", "collection": "*",
                        "value": if allowed { "allowed" } else { "denied" } })
            })
            .collect()
    };
    let total = hits.len();
    Ok(json!({ "hits": hits, "total": total }).into())
}

pub fn update_self(ctx: &Ctx) -> Result<Reply, KError> {
    let user = ctx.caller.user.as_ref().expect("User access implies a user");
    let Some(changes) = ctx.req.body_object() else {
        return Err(KError::new(defs::API_ASSERT_BODY_REQUIRED, &[]));
    };
    for forbidden in ["_id", "profileIds", "_kuzzle_info"] {
        if changes.contains_key(forbidden) {
            return Err(KError::new(defs::API_ASSERT_FORBIDDEN_ARGUMENT, &[&format!("body.{forbidden}")]));
        }
    }
    let mut updated = user.clone();
    for (k, v) in changes {
        updated.content.insert(k.clone(), v.clone());
    }
    if let Some(Value::Object(info)) = updated.content.get_mut("_kuzzle_info") {
        info.insert("updatedAt".into(), json!(now_ms()));
        info.insert("updater".into(), json!(user.kuid));
    }
    commit(ctx, &[Change::UpdateUser(updated.clone())])?;
    Ok(user_json(&updated).into())
}
