//! Logging in: the strategy says who the credentials belong to, the host decides whether
//! that strategy may speak for that user, then signs a token.

use super::context::Ctx;
use super::errors::answer;
use super::strategy::{call, changes, commit, permit};
use crate::core::errors::{KError, defs};
use crate::core::time::{self as expires_in, TtlError};
use crate::protocol::{Protocol, Reply, Request};
use crate::sandbox::Strategy;
use crate::sandbox::bindings::{Login, LoginRequest, Newcomer};
use crate::sandbox::host::Overlay;
use crate::store::{Change, User};
use crate::tokens::Ttl;
use serde_json::{Value, json};
use std::sync::Arc;

/// The strategy a login names: the `strategy` argument, else `body.strategy`, else "local"
/// for the seed's `POST /_login`. The dispatcher reads it once, to admit the request to that
/// strategy before it takes a worker; the handler finds it in `Ctx::target`.
pub fn strategy_name(req: &Request) -> Result<String, KError> {
    let in_body = req.body_object().and_then(|b| b.get("strategy"));
    match (req.args.get("strategy"), in_body) {
        (Some(Value::String(s)), _) => Ok(s.clone()),
        (None | Some(Value::Null), Some(Value::String(s))) => Ok(s.clone()),
        (None, None) if req.protocol == Protocol::Http => Ok("local".into()),
        (arg, body) if [arg, body].iter().flatten().any(|v| !v.is_null()) => {
            Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["strategy", "string"]))
        }
        _ => Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["strategy"])),
    }
}

/// `expiresIn` checked against the settings (Kuzzle's order: max TTL, then zero/garbage).
pub fn requested_ttl(ctx: &Ctx, value: Option<&Value>) -> Result<Ttl, KError> {
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

/// Runs the strategy's `verify` under the login throttles, then issues the token.
/// `new_cookie`: the login cookie to set if the strategy answers a redirect (the client sent none).
pub async fn login(
    ctx: &Ctx<'_>,
    s: &Arc<Strategy>,
    login: &LoginRequest,
    ttl: Ttl,
    new_cookie: Option<String>,
) -> Result<Reply, KError> {
    let req = ctx.req;
    // Logins per second on this connection, failed logins per client address, and the soft
    // lock on the records the strategy reads (see `throttle`).
    if req.protocol == Protocol::WebSocket {
        ctx.app.throttle.connection(req.connection_id)?;
    }
    let attempt = ctx.app.throttle.attempt(req.client_ip.as_deref())?;
    let p = permit(ctx, s).await?;
    let mut overlay = Overlay::default();
    let outcome = ctx.app.sandbox.calls().verify(s, call(ctx, &p, &mut overlay, Some(attempt.guard())), login).await;
    attempt.finish(&outcome);
    // What the strategy wrote while verifying (a TOTP step, a counter, a login's state) is
    // kept on success.
    match answer(s, outcome)? {
        Login::User(kuid) => {
            let reply = issue(ctx, &s.name, kuid, ttl).await?;
            commit(ctx, changes(&overlay)).await?;
            Ok(reply)
        }
        Login::Redirect(url) => {
            let mut reply = redirect(s, url)?;
            if let Some(cookie) = new_cookie {
                super::cookie::set_login_cookie(&mut reply, &cookie);
            }
            commit(ctx, changes(&overlay)).await?;
            Ok(reply)
        }
        Login::Provision(newcomer) => {
            let kuid = provision(ctx, s, &p, overlay, newcomer).await?;
            Ok(token_reply(ctx, &kuid, ttl))
        }
    }
}

/// The next step of a multi-step login, as Kuzzle answers one: HTTP 302 with `Location`, and
/// `{"headers": {"Location": …}, "statusCode": 302}` as the result (over WebSocket too).
fn redirect(s: &Strategy, url: String) -> Result<Reply, KError> {
    // A path of this server, or an absolute http(s) URL; not `//host` (another host, said as a
    // path), nothing a browser would strip or turn around (control characters, backslashes).
    let is_path = url.starts_with('/') && !url.starts_with("//");
    let is_url = url.starts_with("https://") || url.starts_with("http://") || is_path;
    let clean = !url.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\');
    if !is_url || !clean || url.len() > 8192 || http::HeaderValue::from_str(&url).is_err() {
        return Err(KError::new(
            defs::PLUGIN_RUNTIME_UNEXPECTED_ERROR,
            &[&format!("[{}] answered a redirect to something that is not an http(s) URL or a path", s.name)],
        ));
    }
    let mut reply = Reply::new(json!({ "headers": { "Location": url }, "statusCode": 302 }));
    reply.headers.push(("Location".into(), url));
    reply.status = Some(302);
    Ok(reply)
}

/// Someone the strategy vouches for, with no account yet: if its operator allowed it, a user
/// with a kuid of the host's and the operator's profiles, its credentials made by the
/// strategy's `validate` and `create` (as `security:createUser` does), linked, and what the
/// strategy wrote while verifying, all in one transaction. Returns the new kuid.
async fn provision(
    ctx: &Ctx<'_>,
    s: &Arc<Strategy>,
    p: &Arc<crate::sandbox::Permit>,
    mut overlay: Overlay,
    newcomer: Newcomer,
) -> Result<String, KError> {
    let Some(profiles) = &s.provision else {
        tracing::warn!(strategy = %s.name, "strategy asked to provision a user; it is not allowed to");
        return Err(KError::new(defs::PLUGIN_STRATEGY_PROVISIONING_DISABLED, &[&s.name]));
    };
    let not_object = |what: &str| {
        KError::new(
            defs::PLUGIN_RUNTIME_UNEXPECTED_ERROR,
            &[&format!("[{}] asked to provision a user with {what} that is not a JSON object", s.name)],
        )
    };
    let mut content = match serde_json::from_str::<Value>(&newcomer.content) {
        Ok(Value::Object(map)) => map,
        _ => return Err(not_object("content")),
    };
    if !matches!(serde_json::from_str::<Value>(&newcomer.credentials), Ok(Value::Object(_))) {
        return Err(not_object("credentials"));
    }
    // The operator's profiles, whatever the strategy said; the host's own record of it.
    content.insert("profileIds".into(), json!(profiles));
    content.insert(
        "_kuzzle_info".into(),
        json!({ "author": null, "createdAt": crate::core::time::now_ms(), "updatedAt": null, "updater": null }),
    );
    let kuid = crate::core::ids::uuid();
    super::credentials::write(ctx, s, p, &mut overlay, &kuid, &newcomer.credentials, false).await?;
    let user = User { kuid: kuid.clone(), content };
    let mut batch = vec![
        Change::InsertUser { user, first_admin: false },
        Change::Link { strategy: s.name.clone(), kuid: kuid.clone() },
    ];
    batch.extend(changes(&overlay));
    commit(ctx, batch).await?;
    tracing::info!(strategy = %s.name, kuid = %kuid, "user provisioned on first login");
    Ok(kuid)
}

/// The host's part, whatever the strategy said: is the user real, did this strategy create
/// their credentials; then the token. Kuzzle trusts its plugins; Sandgate does not.
pub async fn issue(ctx: &Ctx<'_>, name: &str, kuid: String, ttl: Ttl) -> Result<Reply, KError> {
    // Both refusals answer the client alike (which kuids exist is no business of a client
    // or of a strategy); the log says which it was.
    let refused = || KError::new(defs::PLUGIN_STRATEGY_UNKNOWN_KUID, &[&format!("[plugin] Strategy {name}:")]);
    if ctx.app.store.get_user(&kuid).await?.is_none() {
        tracing::warn!(strategy = %name, kuid = %kuid, "strategy answered with a user that does not exist");
        return Err(refused());
    }
    if !ctx.app.store.is_linked(name, &kuid).await? {
        tracing::warn!(strategy = %name, kuid = %kuid, "strategy answered with a user it holds no credentials for");
        return Err(refused());
    }
    Ok(token_reply(ctx, &kuid, ttl))
}

/// A new token for `kuid`, in the body or, in cookie mode, in a `Set-Cookie` header.
pub fn token_reply(ctx: &Ctx, kuid: &str, ttl: Ttl) -> Reply {
    let issued = ctx.app.tokens.issue(kuid, ttl);
    let reply = Reply::new(json!({
        "_id": issued.kuid,
        "jwt": issued.token,
        "expiresAt": issued.expires_at,
        "ttl": issued.ttl,
    }));
    if ctx.cookie { super::cookie::into_cookie(reply) } else { reply }
}
