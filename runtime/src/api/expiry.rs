//! Kuzzle's `TokenExpired` server notification on a WebSocket: the connection is told the
//! moment the token it authenticates with expires, or is revoked elsewhere (a global logout
//! on another connection, `revokeTokens`, the user deleted), so a client learns it is logged
//! out without sending a request first. kuzzle-sdk 7 emits `tokenExpired` on it.
//!
//! The token watched is the last one the connection used successfully: a login's or a
//! refresh's new token, or the token a request carried. A logout on the connection stops the
//! watch first (its own logout is no news to it); a single-use token is never watched (its
//! use is its end).

use crate::service::app::App;
use crate::tokens::Kind;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};
use warp::ws::Message;

/// How often a watched token is checked for revocation, at most (its expiry is exact).
const CHECK_EVERY_MS: i64 = 500;

#[derive(Default)]
pub struct Watch {
    token: Mutex<Option<String>>,
    changed: Notify,
}

impl Watch {
    fn set(&self, token: Option<String>) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = token;
        self.changed.notify_one();
    }

    fn get(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Before a request runs: a logout ends the watch (it is not news to this connection).
    pub fn before(&self, request: &Value) {
        if request.get("controller").and_then(Value::as_str) == Some("auth")
            && request.get("action").and_then(Value::as_str) == Some("logout")
        {
            self.set(None);
        }
    }

    /// After a request answered: watch the token it received or used, if it is valid now.
    pub fn after(&self, app: &App, request: &Value, result: Option<&Value>) {
        let new = result.and_then(|r| r.get("jwt")).and_then(Value::as_str);
        let used = request.get("jwt").and_then(Value::as_str).filter(|t| !t.is_empty());
        let Some(token) = new.or(used) else { return };
        if app.tokens.check(token).is_ok_and(|s| s.kind != Kind::SingleUse) && self.get().as_deref() != Some(token) {
            self.set(Some(token.to_string()));
        }
    }
}

/// Watches the connection's token until the connection ends (the socket's task aborts it).
pub async fn run(app: Arc<App>, watch: Arc<Watch>, out: mpsc::Sender<Message>) {
    loop {
        let Some(token) = watch.get() else {
            tokio::select! {
                _ = watch.changed.notified() => continue,
                _ = out.closed() => return,
            }
        };
        let wait_ms = match app.tokens.check(&token) {
            Ok(session) if session.expires_at < 0 => CHECK_EVERY_MS,
            Ok(session) => (session.expires_at - crate::core::time::now_ms()).clamp(1, CHECK_EVERY_MS),
            Err(_) => {
                // Still the token watched (not replaced meanwhile): tell the client.
                if watch.get().as_deref() == Some(token.as_str()) {
                    watch.set(None);
                    let _ = out.send(Message::text(notification(&app.node))).await;
                }
                continue;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait_ms as u64)) => {}
            _ = watch.changed.notified() => {}
            _ = out.closed() => return,
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
