//! Kuzzle's `TokenExpired` server notification on a WebSocket: the connection is told the
//! moment the token it authenticates with expires, or is revoked elsewhere (a global logout
//! on another connection, `revokeTokens`, the user deleted), so a client learns it is logged
//! out without sending a request first. kuzzle-sdk 7 emits `tokenExpired` on it.
//!
//! The token watched is the last one the connection used successfully: a login's or a
//! refresh's new token, or the token a request carried. A logout on the connection ends the
//! watch (its own logout is no news to it); a single-use token is never watched (its use is
//! its end). The watch checks the token in memory (expiry, revocations), never its signature
//! again.

use crate::service::app::App;
use crate::tokens::{Kind, Session};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc};
use warp::ws::Message;

/// How often a watched token is checked for revocation, at most (its expiry is exact).
const CHECK_EVERY_MS: i64 = 500;

/// The token a connection is watched for, with what checking it said.
struct Watched {
    token: String,
    session: Session,
}

#[derive(Default)]
pub struct Watch {
    watched: Mutex<Option<Watched>>,
    changed: Notify,
}

impl Watch {
    fn lock(&self) -> MutexGuard<'_, Option<Watched>> {
        self.watched.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, watched: Option<Watched>) {
        *self.lock() = watched;
        self.changed.notify_one();
    }

    /// Before a request runs: a logout ends the watch (it is not news to this connection).
    pub fn before(&self, request: &Value) {
        if is_logout(request) {
            self.set(None);
        }
    }

    /// After a request answered: watch the token it received or used, if it is valid now
    /// (not after a logout: an API key stays valid after one, yet was logged out here).
    pub fn after(&self, app: &App, request: &Value, result: Option<&Value>) {
        if is_logout(request) {
            return;
        }
        let new = result.and_then(|r| r.get("jwt")).and_then(Value::as_str);
        let used = request.get("jwt").and_then(Value::as_str).filter(|t| !t.is_empty());
        let Some(token) = new.or(used) else { return };
        if self.lock().as_ref().is_some_and(|w| w.token == token) {
            return;
        }
        if let Ok(session) = app.tokens.check(token)
            && session.kind != Kind::SingleUse
        {
            self.set(Some(Watched { token: token.to_string(), session }));
        }
    }
}

fn is_logout(request: &Value) -> bool {
    request.get("controller").and_then(Value::as_str) == Some("auth")
        && request.get("action").and_then(Value::as_str) == Some("logout")
}

/// Aborts the watcher when the connection's task ends, however it ends (it holds a sender
/// of the connection's writer, which would otherwise never see its end).
pub struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts watching the connection's token.
pub fn spawn(app: Arc<App>, watch: Arc<Watch>, out: mpsc::Sender<Message>) -> Watcher {
    Watcher(tokio::spawn(run(app, watch, out)))
}

async fn run(app: Arc<App>, watch: Arc<Watch>, out: mpsc::Sender<Message>) {
    loop {
        let now = crate::core::time::now_ms();
        // Decided under the lock: a token `after` put in place meanwhile is never cleared.
        let outcome = {
            let mut watched = watch.lock();
            match watched.as_ref().map(|w| (app.tokens.still_valid(&w.session, now), w.session.expires_at)) {
                None => None,
                Some((Err(_), _)) => {
                    *watched = None;
                    Some(Err(()))
                }
                Some((Ok(()), expires_at)) if expires_at < 0 => Some(Ok(CHECK_EVERY_MS)),
                Some((Ok(()), expires_at)) => Some(Ok((expires_at - now).clamp(1, CHECK_EVERY_MS))),
            }
        };
        let wait_ms = match outcome {
            None => {
                watch.changed.notified().await;
                continue;
            }
            Some(Err(())) => {
                let _ = out.send(Message::text(notification(&app.node))).await;
                continue;
            }
            Some(Ok(ms)) => ms,
        };
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait_ms as u64)) => {}
            _ = watch.changed.notified() => {}
        }
    }
}

/// The frame, as Kuzzle's notifier sends it.
pub fn notification(node: &str) -> String {
    json!({
        "status": 200,
        "info": "This is an automated server notification",
        "message": "Authentication Token Expired",
        "type": "TokenExpired",
        "node": node,
        "room": "kuzzle:notification:server",
    })
    .to_string()
}
