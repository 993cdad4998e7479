//! Kuzzle's JSON query protocol, spoken by a real WebSocket client (tokio-tungstenite) and
//! over `POST /_query`: `room` on every response, `{"p":1}` → `{"p":2}`, protocol pings,
//! a bad frame that does not kill the socket, the per-connection login rate.

mod common;

use common::TestServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer) -> Socket {
    tokio_tungstenite::connect_async(format!("ws://{}/", s.addr)).await.expect("websocket connect").0
}

async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next()).await.expect("timely answer");
        match msg.expect("open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn ask(ws: &mut Socket, request: Value) -> Value {
    ws.send(Message::text(request.to_string())).await.unwrap();
    next_json(ws).await
}

#[test]
fn json_queries_over_websocket() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut ws = connect(&s).await;
        // Login as the SDK sends it: unknown args (verb, cookieAuth:false) are ignored.
        let login = ask(
            &mut ws,
            json!({ "controller": "auth", "action": "login", "strategy": "local", "expiresIn": "1h",
                    "body": { "username": "alice", "password": "pw" }, "requestId": "r-1",
                    "cookieAuth": false, "verb": "POST", "volatile": { "sdkName": "test" } }),
        )
        .await;
        assert_eq!(login["room"], "r-1", "{login}");
        assert_eq!(login["requestId"], "r-1");
        assert_eq!(login["status"], 200);
        assert_eq!(login["volatile"], json!({ "sdkName": "test" }));
        assert_eq!(login["result"]["ttl"], 3_600_000);
        let jwt = login["result"]["jwt"].as_str().unwrap().to_string();

        let me =
            ask(&mut ws, json!({ "controller": "auth", "action": "getCurrentUser", "requestId": "r-2", "jwt": jwt }))
                .await;
        assert_eq!((me["room"].as_str(), me["result"]["_id"].as_str()), (Some("r-2"), Some("alice")));

        // The application-level ping.
        ws.send(Message::text(r#"{"p":1}"#)).await.unwrap();
        assert_eq!(next_json(&mut ws).await, json!({ "p": 2 }));
        // A protocol ping is answered with a pong.
        ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
        let pong = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(pong, Message::Pong(b"hi".to_vec().into()));

        // Not JSON: an error, and the socket lives on.
        ws.send(Message::text("{not json")).await.unwrap();
        let err = next_json(&mut ws).await;
        assert_eq!(err["error"]["id"], "network.websocket.unexpected_error");
        assert_eq!(err["status"], 400);
        // Errors carry room too.
        let bad = ask(
            &mut ws,
            json!({ "controller": "auth", "action": "login", "strategy": "local",
                                        "body": { "username": "alice", "password": "no" }, "requestId": "r-3" }),
        )
        .await;
        assert_eq!(
            (bad["room"].as_str(), bad["error"]["id"].as_str()),
            (Some("r-3"), Some("plugin.strategy.missing_user"))
        );
        // Kuzzle 2: a JSON login without a strategy is a missing argument.
        let none = ask(
            &mut ws,
            json!({ "controller": "auth", "action": "login", "requestId": "r-4",
                                         "body": { "username": "alice", "password": "pw" } }),
        )
        .await;
        assert_eq!(none["error"]["id"], "api.assert.missing_argument");
        let typed =
            ask(&mut ws, json!({ "controller": "auth", "action": "getCurrentUser", "requestId": "r-5", "jwt": 42 }))
                .await;
        assert_eq!(typed["error"]["id"], "api.assert.invalid_type");
        // Rights come first (Kuzzle's order): an action nobody's role names is refused, not
        // "not found", unless the caller may run anything (an admin).
        let unknown = ask(&mut ws, json!({ "controller": "auth", "action": "fly", "requestId": "r-6" })).await;
        assert_eq!(unknown["error"]["id"], "security.rights.unauthorized");
        let unknown =
            ask(&mut ws, json!({ "controller": "auth", "action": "fly", "requestId": "r-6", "jwt": admin })).await;
        assert_eq!(unknown["error"]["id"], "api.process.action_not_found");
        let unknown =
            ask(&mut ws, json!({ "controller": "nope", "action": "fly", "requestId": "r-7", "jwt": admin })).await;
        assert_eq!(unknown["error"]["id"], "api.process.controller_not_found");

        // Logout over the socket revokes the token.
        let out =
            ask(&mut ws, json!({ "controller": "auth", "action": "logout", "requestId": "r-8", "jwt": jwt })).await;
        assert_eq!(out["result"], json!({ "acknowledged": true }));
        let dead =
            ask(&mut ws, json!({ "controller": "auth", "action": "getCurrentUser", "requestId": "r-9", "jwt": jwt }))
                .await;
        assert_eq!(dead["error"]["id"], "security.token.invalid");
    });
}

#[test]
fn logins_per_second_on_one_connection() {
    let s = TestServer::with_config("[login]\nlogins_per_second = 2\n");
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut ws = connect(&s).await;
        let login = |id: &str| {
            json!({ "controller": "auth", "action": "login", "strategy": "local", "requestId": id,
                                        "body": { "username": "alice", "password": "pw" } })
        };
        let mut statuses = Vec::new();
        for i in 0..3 {
            statuses.push(ask(&mut ws, login(&format!("l{i}"))).await);
        }
        assert_eq!(statuses[0]["status"], 200);
        assert_eq!(statuses[1]["status"], 200);
        assert_eq!(statuses[2]["error"]["id"], "api.process.too_many_logins_requests", "{}", statuses[2]);
        // Another connection is not affected.
        let mut other = connect(&s).await;
        assert_eq!(ask(&mut other, login("o1")).await["status"], 200);
    });
}

#[test]
fn json_queries_over_http() {
    let s = TestServer::start();
    s.admin();
    let (status, body) = s.post(
        "/_query",
        json!({ "controller": "auth", "action": "login", "strategy": "local", "expiresIn": 60000,
                "body": { "username": "admin", "password": "admin-password" }, "requestId": "q-1" }),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["requestId"], "q-1");
    assert!(body.get("room").is_none(), "room is for WebSocket");
    assert_eq!(body["result"]["ttl"], 60000);
    let jwt = body["result"]["jwt"].as_str().unwrap();
    let (_, me) = s.post("/_query", json!({ "controller": "auth", "action": "getCurrentUser", "jwt": jwt }), None);
    assert_eq!(me["result"]["_id"], "admin");
    let (_, me) = s.post("/_query", json!({ "controller": "auth", "action": "getCurrentUser" }), Some(jwt));
    assert_eq!(me["result"]["_id"], "admin", "Authorization header works on /_query too");
    let (status, missing) = s.post("/_query", json!({ "action": "login" }), None);
    assert_eq!((status, missing["error"]["id"].as_str()), (400, Some("api.assert.missing_argument")));
    // The same flag means what JSON says here (not "present = true" as in a query string).
    let (_, out) =
        s.post("/_query", json!({ "controller": "auth", "action": "logout", "global": false, "jwt": jwt }), None);
    assert_eq!(out["result"]["acknowledged"], true);
}
