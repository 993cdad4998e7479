//! `auth:login`: the strategy says who the credentials belong to, the host decides whether
//! that strategy may speak for that user, then signs a token.

use super::{answer, strategy};
use crate::actions::Ctx;
use crate::api::errors::{KError, defs};
use crate::api::request::{Protocol, Reply};
use crate::sandbox::bindings::LoginRequest;
use crate::sandbox::host::Overlay;
use crate::tokens::expires_in::{self, TtlError};
use serde_json::{Map, Value, json};

/// The strategy a login request names: the `strategy` argument, else `body.strategy`, else
/// "local" for the seed's `POST /_login`. (The transports use it to wait for a slot first.)
pub fn strategy_name(req: &crate::api::request::Request) -> Option<&str> {
    match (req.args.get("strategy"), req.body_object().and_then(|b| b.get("strategy"))) {
        (Some(Value::String(s)), _) => Some(s),
        (None | Some(Value::Null), Some(Value::String(s))) => Some(s),
        (None, None) if req.protocol == Protocol::Http => Some("local"),
        _ => None,
    }
}

pub fn login(ctx: &Ctx) -> Result<Reply, KError> {
    let req = ctx.req;
    let mut body: Map<String, Value> = match &req.body {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["body", "object"]));
        }
    };
    // The seed's form (`POST /_login`, and a JSON query whose body carries them): strategy
    // and expiresIn may come in the body, and are not credentials.
    let body_strategy = body.remove("strategy");
    let body_expires = body.remove("expiresIn");
    let name = match strategy_name(req) {
        Some(name) => name.to_string(),
        None if [req.args.get("strategy"), body_strategy.as_ref()].iter().flatten().any(|v| !v.is_null()) => {
            return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["strategy", "string"]));
        }
        None => return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["strategy"])),
    };
    let cookie_mode = super::cookie::requested(req, ctx.app.config.cookie_auth)?;
    let ttl = requested_ttl(ctx, req.args.get("expiresIn").or(body_expires.as_ref()))?;
    #[cfg(feature = "bench-native")]
    if name == "apikey-native" {
        let kuid = super::native_bench::verify(ctx, &body)?;
        return issue(ctx, "apikey", kuid, ttl, cookie_mode);
    }
    #[cfg(feature = "bench-native")]
    if name == "local-native" {
        let kuid = super::native_bench::verify_local(ctx, &body)?;
        return issue(ctx, "local", kuid, ttl, cookie_mode);
    }
    let strategy = strategy(ctx, &name)?;

    // Throttling: logins per second on this connection, failed logins per client address,
    // and the soft lock on the records the strategy reads (see `throttle`).
    if req.protocol == Protocol::WebSocket {
        ctx.app.throttle.connection(req.connection_id)?;
    }
    let attempt = ctx.app.throttle.attempt(req.client_ip.as_deref())?;

    let query = req
        .args
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "strategy" | "expiresIn" | "cookieAuth" | "jwt"))
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    let login = LoginRequest { credentials: Value::Object(body).to_string(), query, client_ip: req.client_ip.clone() };
    let mut overlay = Overlay::default();
    let outcome = ctx.app.sandbox.verify(&strategy, &login, &mut overlay, &req.request_id, Some(attempt.guard()));
    attempt.finish(&outcome);
    let kuid = answer(&strategy, outcome)?;
    let reply = issue(ctx, &name, kuid, ttl, cookie_mode)?;
    // What the strategy wrote while verifying (a TOTP step, a counter) is kept on success.
    super::commit(ctx, &overlay.changes())?;
    Ok(reply)
}

/// `expiresIn` checked against the settings (Kuzzle's order: max TTL, then zero/garbage).
pub fn requested_ttl(ctx: &Ctx, value: Option<&Value>) -> Result<crate::tokens::Ttl, KError> {
    let settings = ctx.app.tokens.settings();
    expires_in::resolve(expires_in::requested(value), settings.default_ttl_ms as f64, settings.max_ttl_ms).map_err(
        |e| match e {
            TtlError::Invalid => KError::new(
                defs::API_ASSERT_INVALID_ARGUMENT,
                &["expiresIn", "a number of milliseconds, or a parsable timespan string"],
            ),
            TtlError::Exceeded => KError::new(defs::SECURITY_TOKEN_TTL_EXCEEDED, &[]),
        },
    )
}

/// The host's part, whatever the strategy said: is the user real, did this strategy create
/// their credentials; then the token. Kuzzle trusts its plugins; Sandgate does not.
fn issue(ctx: &Ctx, name: &str, kuid: String, ttl: crate::tokens::Ttl, cookie_mode: bool) -> Result<Reply, KError> {
    let store_err = |e: crate::store::StoreError| super::internal(&e.to_string());
    // Both refusals answer the client alike (which kuids exist is no business of a client
    // or of a strategy); the log says which it was.
    let refused = || KError::new(defs::PLUGIN_STRATEGY_UNKNOWN_KUID, &[&format!("[plugin] Strategy {name}:")]);
    if ctx.app.store.get_user(&kuid).map_err(store_err)?.is_none() {
        tracing::warn!(strategy = %name, kuid = %kuid, "strategy answered with a user that does not exist");
        return Err(refused());
    }
    if !ctx.app.store.is_linked(name, &kuid).map_err(store_err)? {
        tracing::warn!(strategy = %name, kuid = %kuid, "strategy answered with a user it holds no credentials for");
        return Err(refused());
    }
    let issued = ctx.app.tokens.issue(&kuid, ttl);
    let reply = Reply::new(json!({
        "_id": issued.kuid,
        "jwt": issued.token,
        "expiresAt": issued.expires_at,
        "ttl": issued.ttl,
    }));
    Ok(if cookie_mode { super::cookie::into_cookie(reply) } else { reply })
}
