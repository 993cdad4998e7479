//! The strategy contract, both versions the host serves: components built against
//! `sandgate:strategy@0.1.0` keep working unchanged (the bundled strategies built again
//! against 0.1.0 by `make strategies`, uploaded), and 0.2.0's additions: a login that answers
//! a redirect, provisioning on first login (only if the operator allowed it), expiring keys.

mod common;

use common::{TestServer, assert_error};
use serde_json::{Value, json};
use std::path::Path;

/// A bundled strategy built against the 0.1.0 contract (`make strategies`).
fn component_0_1(file: &str) -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/strategy-0-1").join(format!("{file}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} — run `make strategies` first", path.display()))
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[test]
fn the_bundled_strategies_built_against_0_1_0_keep_working() {
    let s = TestServer::start();
    let admin = s.admin();
    let (_, info) = s.get("/strategies/local", Some(&admin));
    assert_eq!(info["result"]["contract"], "0.2.0", "the bundled local is built against 0.2.0: {info}");
    for (name, file) in [("local01", "strategy_local"), ("apikey01", "strategy_apikey")] {
        let (status, body) = s.upload(Some(&admin), name, &component_0_1(file), "");
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["contract"], "0.1.0", "{body}");
    }
    s.user_with(
        &admin,
        "old",
        json!({ "local01": { "username": "old", "password": "old-password" },
                "apikey01": { "key": "a-key-of-at-least-24-characters" } }),
    );
    let (status, body) = s.post("/_login/local01", json!({ "username": "old", "password": "old-password" }), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["_id"], "old");
    let token = body["result"]["jwt"].as_str().unwrap().to_string();
    let (status, body) = s.post("/_login/apikey01", json!({ "key": "a-key-of-at-least-24-characters" }), None);
    assert_eq!(status, 200, "{body}");
    assert_error(
        &s.post("/_login/local01", json!({ "username": "old", "password": "wrong" }), None),
        401,
        "plugin.strategy.missing_user",
    );
    // Credentials through every method of the contract: exists, getInfo, update, validate, delete.
    let (status, body) = s.get("/credentials/local01/_me", Some(&token));
    assert_eq!((status, &body["result"]["username"]), (200, &json!("old")), "{body}");
    let (status, body) =
        s.call("PUT", "/credentials/local01/_me/_update", Some(json!({ "password": "new-password" })), Some(&token));
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.post("/_login/local01", json!({ "username": "old", "password": "new-password" }), None).0, 200);
    let (status, body) = s.call("DELETE", "/users/old", None, Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert_error(
        &s.post("/_login/local01", json!({ "username": "old", "password": "new-password" }), None),
        401,
        "plugin.strategy.missing_user",
    );
}

fn chaos(s: &TestServer, admin: &str, query: &str) {
    let info = s.register(admin, "chaos", "hostile_chaos", query);
    assert_eq!(info["contract"], "0.2.0", "{info}");
}

#[test]
fn a_login_may_answer_a_redirect_over_http_and_websocket() {
    let s = TestServer::start();
    let admin = s.admin();
    chaos(&s, &admin, "");
    let url = "https://id.example.com/authorize?client_id=x&state=abc";
    let (status, headers, body) =
        s.send("POST", "/_login/chaos", Some(json!({ "mode": "redirect", "url": url }).to_string()), &[]);
    assert_eq!(status, 302, "{body}");
    assert_eq!(headers["location"], url);
    assert_eq!(body["status"], 302);
    assert_eq!(body["result"], json!({ "headers": { "Location": url }, "statusCode": 302 }));
    assert_eq!(body["error"], Value::Null);
    // The same over the JSON query protocol.
    let (status, body) = s.post(
        "/_query",
        json!({ "controller": "auth", "action": "login", "strategy": "chaos",
                "body": { "mode": "redirect", "url": url } }),
        None,
    );
    assert_eq!(status, 302, "{body}");
    assert_eq!(body["result"]["headers"]["Location"], url);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        use futures_util::{SinkExt, StreamExt};
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", s.addr)).await.unwrap();
        let ask = json!({ "controller": "auth", "action": "login", "strategy": "chaos", "requestId": "r",
                          "body": { "mode": "redirect", "url": url } });
        ws.send(tokio_tungstenite::tungstenite::Message::text(ask.to_string())).await.unwrap();
        let answer = loop {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = ws.next().await.unwrap().unwrap() {
                break serde_json::from_str::<Value>(t.as_str()).unwrap();
            }
        };
        assert_eq!(answer["status"], 302, "{answer}");
        assert_eq!(answer["result"], json!({ "headers": { "Location": url }, "statusCode": 302 }));
    });
    // Anything but an http(s) URL or a path is the strategy's failure, not a redirect.
    for bad in ["javascript:alert(1)", "https://a.example/\r\nSet-Cookie: x=1", "//evil.example"] {
        let got = s.post("/_login/chaos", json!({ "mode": "redirect", "url": bad }), None);
        assert_error(&got, 500, "plugin.runtime.unexpected_error");
    }
}

#[test]
fn provisioning_creates_the_user_only_if_the_operator_allowed_it() {
    let s = TestServer::start();
    let admin = s.admin();
    chaos(&s, &admin, "");
    let newcomer = json!({ "mode": "provision", "credentials": "{\"sub\":\"ann\"}",
                           "content": "{\"name\":\"Ann\",\"profileIds\":[\"admin\"]}" });
    let refused = s.post("/_login/chaos", newcomer.clone(), None);
    assert_error(&refused, 401, "plugin.strategy.provisioning_disabled");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains("provision="), "{}", refused.1);
    assert!(!s.app.store.blocking().has_links("chaos").unwrap(), "nobody was created");

    // Allowed, with the operator's profiles; kept across a hot swap of the same name.
    let grant = urlencode(r#"{"profileIds":["default"]}"#);
    let info = s.register(&admin, "chaos", "hostile_chaos", &format!("?provision={grant}"));
    assert_eq!(info["provision"], json!({ "profileIds": ["default"] }));
    let (status, body) = s.post("/_login/chaos", newcomer.clone(), None);
    assert_eq!(status, 200, "{body}");
    let kuid = body["result"]["_id"].as_str().unwrap().to_string();
    assert_eq!(kuid.len(), 36, "a kuid of the host's: {kuid}");
    let token = body["result"]["jwt"].as_str().unwrap();
    let (status, me) = s.get("/_me", Some(token));
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["result"]["_source"]["profileIds"], json!(["default"]), "the strategy does not choose profiles");
    assert_eq!(me["result"]["_source"]["name"], "Ann");
    assert_eq!(me["result"]["strategies"], json!(["chaos"]), "linked to the strategy that vouched");
    // The strategy may log in the user it provisioned, by the kuid its create stored.
    let (status, _) = s.post("/_login/chaos", json!({ "mode": "kuid", "kuid": kuid }), None);
    assert_eq!(status, 200);
    // Content that is not an object: nothing is created.
    let bad = json!({ "mode": "provision", "credentials": "{}", "content": "[1]" });
    assert_error(&s.post("/_login/chaos", bad, None), 500, "plugin.runtime.unexpected_error");
    // Taken back with provision={}.
    let info = s.register(&admin, "chaos", "hostile_chaos", &format!("?provision={}&replace", urlencode("{}")));
    assert_eq!(info["provision"], Value::Null);
    assert_error(&s.post("/_login/chaos", newcomer, None), 401, "plugin.strategy.provisioning_disabled");
}

/// Users in the server's SQLite file (the API has no user listing).
fn users(s: &TestServer) -> i64 {
    let db = rusqlite::Connection::open(s.data_dir.join("sandgate.db")).unwrap();
    db.query_row("SELECT count(*) FROM users", [], |r| r.get(0)).unwrap()
}

#[test]
fn a_provisioning_that_fails_leaves_nothing_and_the_grant_outlives_a_restart() {
    let s = TestServer::start();
    let admin = s.admin();
    let grant = urlencode(r#"{"profileIds":["default"]}"#);
    s.register(&admin, "chaos", "hostile_chaos", &format!("?provision={grant}"));
    let before = users(&s);
    // Refused by the strategy's validate; failing in its create after it wrote to storage.
    for (credentials, status, id) in [
        (r#"{"sub":"a","refuse":true}"#, 400, "plugin.strategy.bad_request"),
        (r#"{"sub":"b","fail_create":true}"#, 500, "plugin.runtime.unexpected_error"),
    ] {
        let got = s.post("/_login/chaos", json!({ "mode": "provision", "credentials": credentials }), None);
        assert_error(&got, status, id);
    }
    assert_eq!(users(&s), before, "no user left behind");
    let db = s.app.store.blocking();
    assert!(!db.has_links("chaos").unwrap(), "no credentials linked");
    assert_eq!(db.kv_get("chaos", "half-made").unwrap(), None, "create's write went with it");

    // The operator's grant is stored with the strategy: a restart keeps it.
    let dir = s.stop().unwrap();
    let s = TestServer::start_in(dir.path(), "");
    let (_, info) = s.get("/strategies/chaos", Some(&s.token("admin", "admin-password")));
    assert_eq!(info["result"]["provision"], json!({ "profileIds": ["default"] }), "{info}");
    let (status, body) = s.post("/_login/chaos", json!({ "mode": "provision", "credentials": r#"{"sub":"c"}"# }), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(users(&s), before + 1);
}

#[test]
fn an_expiring_key_reads_as_absent_once_its_time_is_up() {
    let s = TestServer::start();
    let admin = s.admin();
    chaos(&s, &admin, "");
    let (status, _) = s.post("/_login/chaos", json!({ "mode": "remember", "value": "state-1", "ttl_ms": 1500 }), None);
    assert_eq!(status, 302);
    let recall = || s.post("/_login/chaos", json!({ "mode": "recall" }), None).1["error"]["message"].clone();
    assert_eq!(recall(), "remembered=Some(\"state-1\")");
    std::thread::sleep(std::time::Duration::from_millis(1700));
    assert_eq!(recall(), "remembered=None", "expired");
    // The row is still there until the sweep; the sweep deletes it and nothing else.
    let db = s.app.store.blocking();
    assert_eq!(db.kv_get("chaos", "remembered").unwrap(), None);
    let now = sandgate::core::time::now_ms();
    db.commit(&[sandgate::store::Change::KvSweep { now_ms: now }]).unwrap();
    assert_eq!(db.kv_usage("chaos").unwrap().keys, 0);
    // A ttl of 0 is refused with a message (not an instant expiry).
    let (status, body) = s.post("/_login/chaos", json!({ "mode": "remember", "value": "x", "ttl_ms": 0 }), None);
    assert_eq!(status, 500, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("ttl-ms must be"), "{body}");
}
