//! The one pipeline every request goes through, whatever its transport (Kuzzle's order,
//! reference §2.4): controller and action present → token checked → caller loaded → rights →
//! the action. Runs on a blocking thread: it may touch the store and the sandbox.

use super::errors::{KError, defs};
use super::request::{Request, Response};
use crate::actions::{self, Access, Caller, Ctx};
use crate::app::App;
use crate::tokens::VerifyError;

/// Every transport's entry: wait (without a thread) for a slot of the login's strategy and a
/// worker, then run the pipeline on a blocking thread.
pub async fn dispatch(app: std::sync::Arc<App>, req: Request) -> Response {
    let _strategy_slot = if (req.controller.as_str(), req.action.as_str()) == ("auth", "login") {
        match crate::auth::login::strategy_name(&req).and_then(|name| app.sandbox.get(name)) {
            Some(s) => {
                let wait = std::time::Duration::from_millis(s.limits.queue_ms);
                match tokio::time::timeout(wait, s.gate.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => Some(permit),
                    _ => {
                        s.metrics.record(crate::sandbox::metrics::Outcome::Busy, None, None);
                        let what = format!(
                            "has {} logins in flight for {} ms (limits.max_concurrent_calls)",
                            s.limits.max_concurrent_calls, s.limits.queue_ms
                        );
                        return Response::new(&req, Err(KError::new(defs::PLUGIN_SANDBOX_BUSY, &[&s.name, &what])));
                    }
                }
            }
            None => None,
        }
    } else {
        None
    };
    let Ok(_worker) = app.admission.clone().acquire_owned().await else {
        return Response::new(&req, Err(crate::auth::internal("the server is shutting down")));
    };
    let rid = req.request_id.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The response goes back first; then the same thread tidies up after the sandbox (drops
    // the call's Store, builds the next fresh instance) while the client already has its answer.
    tokio::task::spawn_blocking(move || {
        let _ = tx.send(handle(&app, req));
        app.sandbox.after_response();
    });
    rx.await.unwrap_or_else(|_| Response::bare_error(rid, crate::auth::internal("request handler failed")))
}

pub fn handle(app: &App, req: Request) -> Response {
    let outcome = pipeline(app, &req);
    if let Err(e) = &outcome
        && e.status >= 500
    {
        tracing::warn!(request_id = %req.request_id, controller = %req.controller, action = %req.action, id = e.id, "{}", e.message);
    }
    Response::new(&req, outcome)
}

fn pipeline(app: &App, req: &Request) -> Result<super::request::Reply, KError> {
    if req.controller.is_empty() {
        return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["controller"]));
    }
    if req.action.is_empty() {
        return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["action"]));
    }
    let caller = caller(app, req)?;
    let Some(action) = actions::find(&req.controller, &req.action) else {
        return Err(if actions::ACTIONS.iter().any(|a| a.controller == req.controller) {
            KError::new(defs::API_PROCESS_ACTION_NOT_FOUND, &[&req.controller, &req.action])
        } else {
            KError::new(defs::API_PROCESS_CONTROLLER_NOT_FOUND, &[&req.controller])
        });
    };
    let allowed = match action.access {
        Access::Anyone => true,
        Access::User => caller.user.is_some(),
        Access::Admin => caller.is_admin(),
    };
    if !allowed {
        return Err(match &caller.user {
            None => KError::new(defs::SECURITY_RIGHTS_UNAUTHORIZED, &[action.controller, action.action]),
            Some(user) => KError::new(defs::SECURITY_RIGHTS_FORBIDDEN, &[action.controller, action.action, &user.kuid]),
        });
    }
    (action.handler)(&Ctx { app, req, caller })
}

/// Who is calling: the token comes from the request (header, query or JSON), or from the
/// `authToken` cookie, never both. In cookie mode, login and checkToken run anonymously and
/// logout tolerates a dead cookie (it only has to clear it).
fn caller(app: &App, req: &Request) -> Result<Caller, KError> {
    let token = match (&req.jwt, &req.cookie_token) {
        (Some(_), Some(_)) => {
            return Err(KError::new(
                defs::SECURITY_TOKEN_VERIFICATION_ERROR,
                &["Both token and cookie are present, could not decide which one to use"],
            ));
        }
        (Some(t), None) | (None, Some(t)) => Some(t.as_str()),
        (None, None) => None,
    };
    if req.controller == "auth" && crate::auth::cookie::requested(req, app.config.cookie_auth)? {
        match req.action.as_str() {
            "login" | "checkToken" => return Ok(Caller { user: None, session: None }),
            "logout" => return Ok(authenticate(app, token).unwrap_or(Caller { user: None, session: None })),
            _ => {}
        }
    }
    authenticate(app, token)
}

/// No token: anonymous. A token that fails (bad, revoked, expired, or whose user is gone)
/// fails the request, even for login and checkToken, as Kuzzle does.
pub fn authenticate(app: &App, jwt: Option<&str>) -> Result<Caller, KError> {
    let Some(token) = jwt.filter(|t| !t.is_empty()) else {
        return Ok(Caller { user: None, session: None });
    };
    let session = app.tokens.check(token).map_err(token_error)?;
    let user = app
        .store
        .get_user(&session.kuid)
        .map_err(|e| KError::new(defs::SECURITY_TOKEN_VERIFICATION_ERROR, &[&e.to_string()]))?
        .ok_or_else(|| KError::new(defs::SECURITY_TOKEN_INVALID, &[]))?;
    Ok(Caller { user: Some(user), session: Some(session) })
}

pub fn token_error(e: VerifyError) -> KError {
    match e {
        VerifyError::Invalid => KError::new(defs::SECURITY_TOKEN_INVALID, &[]),
        VerifyError::Expired => KError::new(defs::SECURITY_TOKEN_EXPIRED, &[]),
    }
}
