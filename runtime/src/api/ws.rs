//! WebSocket on `/` of the same port: Kuzzle's JSON query protocol. Each text frame is one
//! request; each response is the envelope plus `room` = `requestId` (the SDK routes on it).
//! `{"p":1}` is answered `{"p":2}`; protocol pings are answered by the WebSocket layer;
//! a frame that is not JSON gets `network.websocket.unexpected_error` and the socket lives on.

use super::dispatch::{self, next_connection_id};
use super::expiry::{self, Watch};
use crate::core::errors::{KError, defs};
use crate::protocol::{Protocol, Request, Response};
use crate::service::app::App;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;
use warp::ws::{Message, WebSocket};

/// Requests a single socket may have in flight; more wait (back-pressure on the client).
const IN_FLIGHT_PER_SOCKET: usize = 64;

pub async fn serve(app: Arc<App>, socket: WebSocket, client_ip: Option<String>) {
    let connection_id = next_connection_id();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(IN_FLIGHT_PER_SOCKET);
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.send(msg).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_SOCKET));
    let watch = Arc::new(Watch::default());
    let watcher = expiry::spawn(app.clone(), watch.clone(), tx.clone());
    while let Some(Ok(msg)) = stream.next().await {
        if msg.is_close() {
            break;
        }
        let Ok(text) = std::str::from_utf8(msg.as_bytes()) else { continue };
        if !(msg.is_text() || msg.is_binary()) {
            continue; // pings/pongs: answered by the protocol layer
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let err = KError::new(defs::NETWORK_WEBSOCKET_UNEXPECTED_ERROR, &[&e.to_string()]);
                let response = Response::bare_error(String::new(), err);
                let text = serde_json::to_string(&response.envelope(&app.node, false)).unwrap_or_default();
                let _ = tx.send(Message::text(text)).await;
                continue;
            }
        };
        if value.get("p").and_then(Value::as_i64) == Some(1) && value.get("controller").is_none() {
            let _ = tx.send(Message::text(r#"{"p":2}"#)).await;
            continue;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else { break };
        let (app, tx, ip, watch) = (app.clone(), tx.clone(), client_ip.clone(), watch.clone());
        tokio::spawn(async move {
            // What the token watch needs of the request, which the request itself consumes.
            let probe: Value = ["controller", "action", "jwt"]
                .iter()
                .filter_map(|k| value.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect::<serde_json::Map<_, _>>()
                .into();
            watch.before(&probe);
            let response = match Request::from_json(value, Protocol::WebSocket, connection_id, ip) {
                Ok(req) => dispatch::dispatch(app.clone(), req).await,
                Err((rid, e)) => Response::bare_error(rid, e),
            };
            watch.after(&app, &probe, response.outcome.as_ref().ok().map(|r| &r.result));
            let text = serde_json::to_string(&response.envelope(&app.node, true)).unwrap_or_default();
            let _ = tx.send(Message::text(text)).await;
            drop(permit);
        });
    }
    // The watcher holds a sender: it must go for the writer to see the end.
    drop(watcher);
    drop(tx);
    let _ = writer.await;
    app.forget_connection(connection_id);
}
