//! The `auth` controller: login, the caller's session (checkToken, getCurrentUser, logout,
//! refreshToken, getMyRights, updateSelf), and the caller's own credentials.

use crate::core::errors::{KError, defs};
use crate::protocol::Reply;
use crate::sandbox::bindings::LoginRequest;
use crate::service::context::Ctx;
use crate::service::strategy::{commit, credentials_text, from_arg};
use crate::service::users::{anonymous, user_json};
use crate::service::{api_keys, authn, cookie, credentials, login as logins, rights, users};
use crate::tokens::{Kind, Tokens, VerifyError, now_ms};
use serde_json::{Map, Value, json};

pub async fn login(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let req = ctx.req;
    let mut body: Map<String, Value> = match &req.body {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["body", "object"])),
    };
    // The seed's form (`POST /_login`, and a JSON query whose body carries them): strategy
    // and expiresIn may come in the body, and are not credentials.
    body.remove("strategy");
    let body_expires = body.remove("expiresIn");
    let name = ctx.target.clone().unwrap_or_else(|| logins::strategy_name(req))?;
    let ttl = logins::requested_ttl(ctx, req.args.get("expiresIn").or(body_expires.as_ref()))?;
    #[cfg(feature = "bench-native")]
    if name == "apikey-native" {
        let kuid = crate::service::native_bench::verify(ctx, &body).await?;
        return logins::issue(ctx, "apikey", kuid, ttl).await;
    }
    #[cfg(feature = "bench-native")]
    if name == "local-native" {
        let kuid = crate::service::native_bench::verify_local(ctx, &body).await?;
        return logins::issue(ctx, "local", kuid, ttl).await;
    }
    let strategy = crate::service::strategy::named(ctx, &name)?;
    let query = req
        .args
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "strategy" | "expiresIn" | "cookieAuth" | "jwt"))
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    let (login_cookie, new_cookie) = cookie::login_cookie(req);
    let login = LoginRequest {
        credentials: Value::Object(body).to_string(),
        query,
        client_ip: req.client_ip.clone(),
        client_binding: cookie::binding(&login_cookie, &strategy.name),
    };
    logins::login(ctx, &strategy, &login, ttl, new_cookie.then_some(login_cookie)).await
}

/// Never a 401 for a bad body token: `{valid: false, state}` (reference §1.3).
pub async fn check_token(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let token = if ctx.cookie {
        ctx.req.cookie_token.as_deref()
    } else {
        ctx.req.body_object().and_then(|b| b.get("token")).and_then(Value::as_str).filter(|t| !t.is_empty())
    };
    let Some(token) = token else {
        return Ok(json!({ "valid": true, "kuid": "-1", "expiresAt": null }).into());
    };
    // A token of a deleted user is void (its revocation is recorded at deletion; this also
    // covers a store restored from an older backup).
    // The database unreachable is an error (503), not an invalid token: a client told its
    // token is invalid logs its user out.
    // A single-use token checked is a single-use token used (Kuzzle's verifyToken).
    let checked = match ctx.app.tokens.check(token) {
        Ok(s) => match ctx.app.store.get_user(&s.kuid).await? {
            Some(_) => match authn::use_once(ctx.app, &s).await {
                Ok(()) => Ok(s),
                Err(e) if e.status == 401 => Err(VerifyError::Invalid),
                Err(e) => return Err(e),
            },
            None => Err(VerifyError::Invalid),
        },
        Err(e) => Err(e),
    };
    Ok(match checked {
        Ok(s) => json!({ "valid": true, "kuid": s.kuid, "expiresAt": s.expires_at }),
        Err(e) => json!({ "valid": false, "state": KError::from(e).message }),
    }
    .into())
}

pub async fn get_current_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let Some(user) = &ctx.caller.user else {
        return Ok(anonymous().into());
    };
    let registered = ctx.app.sandbox.names();
    let strategies: Vec<String> =
        ctx.app.store.linked_strategies(&user.kuid).await?.iter().filter(|s| registered.contains(s)).cloned().collect();
    let mut out = user_json(user);
    out["strategies"] = json!(strategies);
    Ok(out.into())
}

pub async fn logout(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let Some(session) = ctx.caller.session.as_ref() else {
        if ctx.cookie {
            return Ok(cookie::cleared(json!({ "acknowledged": true }).into()));
        }
        return Err(KError::new(defs::SECURITY_RIGHTS_UNAUTHORIZED, &["auth", "logout"]));
    };
    // An API key outlives a logout made with it (it ends when deleted); a global logout
    // ends every session token and keeps the API keys.
    let change = if ctx.req.flag("global") {
        Some(Tokens::revoke_user_change(&session.kuid))
    } else if session.kind != Kind::ApiKey {
        Some(Tokens::revoke_token_change(session, now_ms()))
    } else {
        None
    };
    commit(ctx, change.into_iter().collect()).await?;
    let reply: Reply = json!({ "acknowledged": true }).into();
    Ok(if ctx.cookie { cookie::cleared(reply) } else { reply })
}

pub async fn refresh_token(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let Some(session) = ctx.caller.session.as_ref() else {
        return Err(KError::new(defs::SECURITY_RIGHTS_UNAUTHORIZED, &["auth", "refreshToken"]));
    };
    if session.kind == Kind::ApiKey {
        return Err(KError::new(defs::SECURITY_TOKEN_REFRESH_FORBIDDEN, &["API Key"]));
    }
    if session.expires_at < 0 {
        return Err(KError::new(defs::SECURITY_TOKEN_REFRESH_FORBIDDEN, &["Token with infinite TTL"]));
    }
    // One refresh per token: concurrent ones lose the claim and are refused.
    let Some(_claim) = ctx.app.tokens.claim_refresh(session) else {
        return Err(KError::new(defs::SECURITY_TOKEN_INVALID, &[]));
    };
    // Every refusal before the commit: a refused refresh must not use the token up.
    let ttl = logins::requested_ttl(ctx, ctx.req.args.get("expiresIn"))?;
    // The old token stays valid for the grace period (requests already on their way).
    let grace = ctx.app.tokens.settings().grace_period_ms;
    // Another node may have refreshed it meanwhile: the store keeps one refresh per token.
    commit(ctx, vec![Tokens::refresh_change(session, now_ms() + grace)]).await?;
    Ok(logins::token_reply(ctx, &session.kuid, ttl))
}

/// `{hits, total}`: every action the caller's roles name, allowed or denied.
pub async fn get_my_rights(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(rights::rights_reply(ctx.app.rights.current().list(&rights::profiles_of(&ctx.caller))))
}

/// `{allowed}`: whether the caller may run the action the body names.
pub async fn check_rights(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let (controller, action) = rights::asked_action(ctx)?;
    let allowed = ctx.app.rights.current().allows(&rights::profiles_of(&ctx.caller), &controller, &action);
    Ok(json!({ "allowed": allowed }).into())
}

/// A token for the caller, not tied to a login: `{expiresAt, singleUse, token, ttl}`. A
/// single-use one is used up by its first request. It cannot be infinite.
pub async fn create_token(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = ctx.user()?;
    let requested = ctx.req.args.get("expiresIn");
    let text = requested.map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string));
    if text.as_deref() == Some("-1") {
        return Err(KError::new(defs::SECURITY_TOKEN_INVALID_EXPIRATION, &["expiresIn cannot be infinite"]));
    }
    let ttl = logins::requested_ttl(ctx, requested)?;
    let single = ctx.req.flag("singleUse");
    let issued = ctx.app.tokens.issue_kind(&user.kuid, ttl, if single { Kind::SingleUse } else { Kind::Session });
    Ok(json!({ "expiresAt": issued.expires_at, "singleUse": single, "token": issued.token, "ttl": issued.ttl }).into())
}

/// The caller's own API key; `[tokens] api_key_max_ttl` applies.
pub async fn create_api_key(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    api_keys::create(ctx, &ctx.user()?.kuid, true).await.map(Reply::new)
}

pub async fn search_api_keys(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    api_keys::search(ctx, &ctx.user()?.kuid).await.map(Reply::new)
}

pub async fn delete_api_key(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let id = ctx.req.id_arg().ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["_id"]))?;
    api_keys::delete(ctx, &ctx.user()?.kuid, id).await.map(Reply::new)
}

pub async fn update_self(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = ctx.user()?;
    let changes = ctx.req.required_body()?;
    for forbidden in ["_id", "profileIds", "_kuzzle_info"] {
        if changes.contains_key(forbidden) {
            return Err(KError::new(defs::API_ASSERT_FORBIDDEN_ARGUMENT, &[&format!("body.{forbidden}")]));
        }
    }
    let mut content = user.content.clone();
    content.extend(changes.iter().map(|(k, v)| (k.clone(), v.clone())));
    users::write(ctx, user, content).await.map(Reply::new)
}

// The caller's own credentials (`/_me/credentials/:strategy/...`), and getStrategies.

pub async fn get_strategies(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(json!(ctx.app.sandbox.names()).into())
}

fn body_credentials(ctx: &Ctx) -> Result<String, KError> {
    credentials_text(ctx.req.body.as_ref(), "body")
}

pub async fn get_mine(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::get(ctx, &s, ctx.caller.kuid()).await.map(Reply::new)
}

pub async fn exist_mine(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::exists(ctx, &s, ctx.caller.kuid()).await.map(|b| Reply::new(json!(b)))
}

pub async fn create_mine(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::create(ctx, &s, ctx.caller.kuid(), &body_credentials(ctx)?).await.map(Reply::new)
}

pub async fn update_mine(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::update(ctx, &s, ctx.caller.kuid(), &body_credentials(ctx)?).await.map(Reply::new)
}

pub async fn validate_mine(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::validate(ctx, &s, ctx.caller.kuid(), &body_credentials(ctx)?).await.map(Reply::new)
}

pub async fn delete_mine(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::delete(ctx, &s, ctx.caller.kuid()).await.map(Reply::new)
}
