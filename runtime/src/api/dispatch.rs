//! The one pipeline every request goes through, whatever its transport (Kuzzle's order,
//! reference §2.4): controller and action present → one token (not a token and a cookie) →
//! cookie mode → token checked → caller loaded → rights (and rate limit) → the action. Everything it knows about an action comes from its row in
//! the [`table`](super::table).

use super::table::{self, Action, Cookie};
use crate::core::errors::{KError, defs};
use crate::protocol::{Reply, Request, Response};
use crate::service::app::App;
use crate::service::context::{Access, Admitted, Caller, Ctx};
use crate::service::errors::{call_error, unexpected};
use crate::service::{authn, cookie, rights};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// A new network connection's id (one per HTTP request, one per WebSocket).
pub fn next_connection_id() -> u64 {
    CONNECTIONS.fetch_add(1, Ordering::Relaxed)
}

/// Every transport's entry, awaited on the reactor: nothing here blocks (tokens are checked
/// in memory, users come from the store's cache, strategy calls and store work are awaited).
/// The request runs to its end in a task of its own, whether its client waits or leaves: a
/// logout whose client hangs up during the fsync is still revoked in memory, an upload that
/// was stored is still installed, a strategy's permit is held until its call has really ended.
pub async fn dispatch(app: Arc<App>, req: Request) -> Response {
    let request_id = req.request_id.clone();
    match tokio::spawn(handle(app, req)).await {
        Ok(response) => response,
        Err(e) => Response::bare_error(request_id, unexpected(&format!("the request failed: {e}"))),
    }
}

/// A request whose row names a strategy (a login, a credentials action) first waits, without
/// a thread, up to `limits.queue_ms` for a permit of that strategy, then 503.
async fn handle(app: Arc<App>, req: Request) -> Response {
    let action = table::find(&req.controller, &req.action);
    let admitted = Admitted::default();
    let target = action.and_then(|a| a.admission).map(|name_of| name_of(&req));
    if let Some(Ok(name)) = &target
        && let Some(strategy) = app.sandbox.get(name)
    {
        match strategy.admit().await {
            Ok(permit) => admitted.add(strategy, permit),
            Err(e) => return Response::new(&req, Err(call_error(&strategy.name, e))),
        }
    }
    let outcome = pipeline(&app, &req, action, target, &admitted).await;
    if let Err(e) = &outcome
        && e.status >= 500
    {
        tracing::warn!(request_id = %req.request_id, controller = %req.controller, action = %req.action, id = e.id, "{}", e.message);
    }
    Response::new(&req, outcome)
}

async fn pipeline(
    app: &App,
    req: &Request,
    action: Option<&'static Action>,
    target: Option<Result<String, KError>>,
    admitted: &Admitted,
) -> Result<Reply, KError> {
    if req.controller.is_empty() {
        return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["controller"]));
    }
    if req.action.is_empty() {
        return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["action"]));
    }
    let token = token(req)?;
    let policy = action.map_or(Cookie::Ignored, |a| a.cookie);
    let cookie = policy != Cookie::Ignored && cookie::requested(req, app.config.cookie_auth)?;
    let caller = caller(app, token, policy, cookie).await?;
    // Rights first, on the names the request gave (Kuzzle's order): an action that does
    // not exist is "not found" only to a caller who may run it.
    let mut access = action.map_or(Access::Anyone, |a| a.access);
    // A cookie logout whose cookie is dead runs anonymously only to clear it: no rights needed.
    if cookie && policy == Cookie::Tolerant && caller.user.is_none() {
        access = Access::Open;
    }
    rights::check(&app.rights, &caller, &req.controller, &req.action, access)?;
    let Some(action) = action else {
        return Err(if table::ACTIONS.iter().any(|a| a.controller == req.controller) {
            KError::new(defs::API_PROCESS_ACTION_NOT_FOUND, &[&req.controller, &req.action])
        } else {
            KError::new(defs::API_PROCESS_CONTROLLER_NOT_FOUND, &[&req.controller])
        });
    };
    let ctx = Ctx { app, req, caller, cookie, target, admitted, api: &table::Api };
    (action.handler)(&ctx).await
}

/// The request's token: from the request (header, query or JSON) or from the `authToken`
/// cookie, never both.
pub fn token(req: &Request) -> Result<Option<&str>, KError> {
    match (&req.jwt, &req.cookie_token) {
        (Some(_), Some(_)) => Err(KError::new(
            defs::SECURITY_TOKEN_VERIFICATION_ERROR,
            &["Both token and cookie are present, could not decide which one to use"],
        )),
        (Some(t), None) | (None, Some(t)) => Ok(Some(t.as_str())),
        (None, None) => Ok(None),
    }
}

/// Who is calling. In cookie mode, login and checkToken run anonymously and logout
/// tolerates a dead cookie (it only has to clear it).
async fn caller(app: &App, token: Option<&str>, policy: Cookie, cookie: bool) -> Result<Caller, KError> {
    match (cookie, policy) {
        (true, Cookie::Anonymous) => Ok(Caller::anonymous()),
        (true, Cookie::Tolerant) => Ok(authn::authenticate(app, token).await.unwrap_or_default()),
        _ => authn::authenticate(app, token).await,
    }
}
