//! One action table drives every transport: `GET /_publicApi` answers, byte for byte, the
//! recorded API (`fixtures/public_api.json`: first taken from the server before the table was
//! merged, then extended with each action added on purpose, so a route never changes by
//! accident), and HTTP, `POST /_query`, the WebSocket and `serverInfo` all give the same.

mod common;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const BEFORE: &str = include_str!("fixtures/public_api.json");

/// The `result` of an envelope, as the server wrote it (its keys are sorted, so `result` is
/// followed by `status`).
fn raw_result(text: &str) -> &str {
    let start = text.find(r#""result":"#).expect("a result") + r#""result":"#.len();
    let end = text.rfind(r#","status":"#).expect("a status");
    &text[start..end]
}

#[test]
fn public_api_is_byte_identical_to_the_recorded_one() {
    let s = TestServer::start();
    let text = reqwest::blocking::get(s.url("/_publicApi")).unwrap().text().unwrap();
    assert_eq!(raw_result(&text), BEFORE, "GET /_publicApi changed");
}

#[test]
fn every_transport_reads_the_same_table() {
    let s = TestServer::start();
    let before: Value = serde_json::from_str(BEFORE).unwrap();
    // POST /_query
    let query = json!({ "controller": "server", "action": "publicApi" }).to_string();
    let text = reqwest::blocking::Client::new()
        .post(s.url("/_query"))
        .header("content-type", "application/json")
        .body(query.clone())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(raw_result(&text), BEFORE, "/_query");
    // serverInfo lists the same routes.
    let (_, info) = s.get("/_serverInfo", None);
    assert_eq!(info["result"]["serverInfo"]["kuzzle"]["api"]["routes"], before);
    // The WebSocket.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let answer = runtime.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", s.addr)).await.unwrap();
        ws.send(Message::text(query)).await.unwrap();
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next()).await.unwrap();
            if let Some(Ok(Message::Text(text))) = msg {
                break text.to_string();
            }
        }
    });
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["result"], before, "WebSocket");
    // Each route of the table answers over HTTP as the action it names (spot checks of the
    // policies the rows carry: the login admission, the upload pre-check).
    let (status, body) = s.call("PUT", "/strategies/x", None, None);
    assert_eq!((status, body["error"]["id"].as_str()), (401, Some("security.rights.unauthorized")));
    assert_eq!(body["action"], Value::Null, "refused before the body was read");
    let (status, body) = s.post("/_login/nope", json!({}), None);
    assert_eq!((status, body["error"]["id"].as_str()), (400, Some("security.credentials.unknown_strategy")));
}
