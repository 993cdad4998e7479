//! Strategies that reach out: outbound HTTP denied by default, allowed to the origins the
//! operator listed, never to a private address by way of a name, capped per call; and the
//! hostile corpus against it (an origin not listed, names and literals that lead to loopback,
//! a server that never answers, one that streams 100 MiB, 10,000 requests in a loop, a
//! redirect to an origin not listed). Each: contained, a clear error, the server and the other
//! strategies fine. The upstream servers are real HTTP servers on 127.0.0.1.

mod common;

use common::upstream::{Behaviour, Gate, Upstream};
use common::{TestServer, assert_error};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// The chaos strategy registered with these grants and limit overrides.
fn chaos(s: &TestServer, admin: &str, outbound: &[&str], limits: &str) -> Value {
    let mut query = format!("?outbound={}", urlencode(&serde_json::to_string(outbound).unwrap()));
    if !limits.is_empty() {
        query.push_str(&format!("&limits={}", urlencode(limits)));
    }
    s.register(admin, "chaos", "hostile_chaos", &query)
}

/// What the chaos strategy reports of `GET url` (it answers as a refusal's message).
fn fetch(s: &TestServer, url: &str) -> String {
    let (status, body) = s.post("/_login/chaos", json!({ "mode": "fetch", "url": url }), None);
    assert_eq!(status, 401, "{body}");
    body["error"]["message"].as_str().unwrap().to_string()
}

fn metric(s: &TestServer, outcome: &str) -> u64 {
    let text = s.client.get(s.url("/metrics")).send().unwrap().text().unwrap();
    let line = format!("sandgate_strategy_http_requests_total{{strategy=\"chaos\",outcome=\"{outcome}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(line.as_str())).map_or(0, |n| n.parse().unwrap())
}

#[track_caller]
fn local_still_works(s: &TestServer) {
    let start = Instant::now();
    assert_eq!(s.login("alice", "pw").0, 200);
    assert!(start.elapsed() < Duration::from_secs(5), "local login took {:?}", start.elapsed());
}

fn setup() -> (TestServer, String) {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    (s, admin)
}

#[test]
fn only_listed_origins_are_reached() {
    let (s, admin) = setup();
    let up = Upstream::start(Behaviour::Ok("hello"));
    let other = Upstream::start(Behaviour::Ok("other"));
    // No list: no network at all.
    s.register(&admin, "chaos", "hostile_chaos", "");
    assert!(fetch(&s, &up.url("/")).starts_with("error=request denied"), "{}", fetch(&s, &up.url("/")));
    let origin = format!("http://127.0.0.1:{}", up.port);
    let info = chaos(&s, &admin, &[&origin], "");
    assert_eq!(info["outbound"], json!([origin]));
    assert_eq!(fetch(&s, &up.url("/x?y=1")), "status=200 bytes=5 location=-");
    // Another port of the same host, the other scheme, another spelling of the address.
    for url in [
        other.url("/"),
        format!("https://127.0.0.1:{}/", up.port),
        format!("http://[::ffff:127.0.0.1]:{}/", up.port),
        format!("http://localhost:{}/", up.port),
    ] {
        let got = fetch(&s, &url);
        assert!(got.contains("not in this strategy's outbound list"), "{url}: {got}");
    }
    assert_eq!(other.hits(), 0, "nothing reached the server not listed");
    assert_eq!(metric(&s, "answered"), 1);
    assert!(metric(&s, "denied") >= 5);
    local_still_works(&s);
}

#[test]
fn a_listed_name_that_resolves_to_loopback_is_refused_unless_allowed() {
    let (s, admin) = setup();
    let up = Upstream::start(Behaviour::Ok("hello"));
    chaos(&s, &admin, &[&format!("http://localhost:{}", up.port)], "");
    let got = fetch(&s, &format!("http://localhost:{}/", up.port));
    assert!(got.contains("private address"), "{got}");
    assert_eq!(up.hits(), 0);
    assert_eq!(metric(&s, "private_address"), 1);
    drop(s);
    // The operator may allow private networks for every listed origin.
    let s = TestServer::with_config("[outbound]\nallow_private_networks = true\n");
    let admin = s.admin();
    chaos(&s, &admin, &[&format!("http://localhost:{}", up.port)], "");
    assert_eq!(fetch(&s, &format!("http://localhost:{}/", up.port)), "status=200 bytes=5 location=-");
}

#[test]
fn grants_are_kept_across_restarts_and_hot_swaps() {
    let dir = tempfile::tempdir().unwrap();
    let up = Upstream::start(Behaviour::Ok("hello"));
    let origin = format!("http://127.0.0.1:{}", up.port);
    {
        let s = TestServer::start_in(dir.path(), "");
        let admin = s.admin();
        chaos(&s, &admin, &[&origin], "");
        // Registered again without `outbound`: the list stays.
        let info = s.register(&admin, "chaos", "hostile_chaos", "");
        assert_eq!(info["outbound"], json!([origin]));
        s.stop();
    }
    let s = TestServer::start_in(dir.path(), "");
    let admin = s.token("admin", "admin-password");
    let (_, info) = s.get("/strategies/chaos", Some(&admin));
    assert_eq!(info["result"]["outbound"], json!([origin]), "{info}");
    assert_eq!(fetch(&s, &up.url("/")), "status=200 bytes=5 location=-");
    // Taken back explicitly.
    let info = chaos(&s, &admin, &[], "");
    assert_eq!(info["outbound"], json!([]));
    assert!(fetch(&s, &up.url("/")).contains("not in this strategy's outbound list"));
}

#[test]
fn a_bad_outbound_list_is_refused_at_registration() {
    let (s, admin) = setup();
    let chaos_wasm = common::component("hostile_chaos");
    for bad in [r#"["*"]"#, r#"["https://*"]"#, r#"["ftp://x.example"]"#, r#"["https://x.example/path"]"#, r#"{"a":1}"#]
    {
        let got = s.upload(Some(&admin), "chaos", &chaos_wasm, &format!("?outbound={}", urlencode(bad)));
        assert_error(&got, 400, "plugin.sandbox.invalid_component");
        assert!(got.1["error"]["message"].as_str().unwrap().contains("outbound"), "{}", got.1);
    }
}

#[test]
fn a_server_that_never_answers_costs_the_call_its_timeout_not_the_server() {
    let (s, admin) = setup();
    let silent = Upstream::start(Behaviour::Silent);
    chaos(&s, &admin, &[&format!("http://127.0.0.1:{}", silent.port)], r#"{"http_timeout_ms":500,"wall_ms":5000}"#);
    let start = Instant::now();
    let got = fetch(&s, &silent.url("/"));
    assert!(got.starts_with("error=request failed"), "{got}");
    assert!(start.elapsed() < Duration::from_secs(4), "cut at http_timeout_ms: {:?}", start.elapsed());
    assert_eq!(metric(&s, "limit_time"), 1);
    // With a longer timeout, the call's wall-clock cap ends it.
    chaos(&s, &admin, &[&format!("http://127.0.0.1:{}", silent.port)], r#"{"http_timeout_ms":60000,"wall_ms":800}"#);
    let start = Instant::now();
    let (status, body) = s.post("/_login/chaos", json!({ "mode": "fetch", "url": silent.url("/") }), None);
    assert!(start.elapsed() < Duration::from_secs(4), "{:?}", start.elapsed());
    assert!(status == 500 || status == 401, "{body}");
    local_still_works(&s);
}

#[test]
fn a_response_of_100_mib_is_cut_at_the_cap() {
    let (s, admin) = setup();
    let big = Upstream::start(Behaviour::Stream(100 << 20));
    chaos(&s, &admin, &[&format!("http://127.0.0.1:{}", big.port)], r#"{"max_http_response_bytes":1048576}"#);
    let got = fetch(&s, &big.url("/"));
    assert!(got.starts_with("error=request failed: reading the response body"), "{got}");
    assert!(got.contains("size"), "{got}");
    assert_eq!(metric(&s, "limit_response_size"), 1);
    local_still_works(&s);
}

#[test]
fn a_request_body_over_the_cap_is_not_sent_whole() {
    let (s, admin) = setup();
    let up = Upstream::start(Behaviour::Ok("ok"));
    chaos(&s, &admin, &[&format!("http://127.0.0.1:{}", up.port)], r#"{"max_http_request_bytes":65536}"#);
    let post = |bytes: usize| {
        let (status, body) =
            s.post("/_login/chaos", json!({ "mode": "post", "url": up.url("/"), "bytes": bytes }), None);
        assert_eq!(status, 401, "{body}");
        body["error"]["message"].as_str().unwrap().to_string()
    };
    assert_eq!(post(1000), "status=200 bytes=2 location=-");
    let got = post(200_000);
    assert_eq!(got, "error=request failed: the request body is larger than the host allows");
    assert!(metric(&s, "limit_request_size") >= 1, "{got}");
    local_still_works(&s);
}

#[test]
fn the_json_query_protocol_registers_grants_too() {
    use base64::Engine as _;
    let (s, admin) = setup();
    let origin = "https://id.example.com";
    let wasm = base64::engine::general_purpose::STANDARD.encode(common::component("hostile_chaos"));
    let (status, body) = s.post(
        "/_query",
        json!({ "controller": "strategies", "action": "register", "name": "chaos",
                "body": { "wasm": wasm, "outbound": [origin], "provision": { "profileIds": ["default"] } } }),
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["outbound"], json!([origin]));
    assert_eq!(body["result"]["provision"], json!({ "profileIds": ["default"] }));
}

#[test]
fn a_loop_of_10000_requests_stops_at_the_per_call_cap() {
    let (s, admin) = setup();
    let up = Upstream::start(Behaviour::Ok("x"));
    chaos(&s, &admin, &[&format!("http://127.0.0.1:{}", up.port)], r#"{"max_http_requests":8}"#);
    let (status, body) = s.post("/_login/chaos", json!({ "mode": "fetch-loop", "url": up.url("/") }), None);
    assert_eq!(status, 401, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert_eq!(msg, "sent=8 then error=request denied: this call made all the requests it may", "{body}");
    assert_eq!(up.hits(), 8);
    assert_eq!(metric(&s, "limit_requests"), 1);
    // The next call has its own allowance.
    assert_eq!(fetch(&s, &up.url("/")), "status=200 bytes=1 location=-");
}

#[test]
fn a_redirect_is_handed_to_the_strategy_never_followed() {
    let (s, admin) = setup();
    let elsewhere = Upstream::start(Behaviour::Ok("elsewhere"));
    let provider = Upstream::start(Behaviour::Redirect(elsewhere.url("/stolen")));
    chaos(&s, &admin, &[&format!("http://127.0.0.1:{}", provider.port)], "");
    let got = fetch(&s, &provider.url("/"));
    assert_eq!(got, format!("status=302 bytes=0 location={}", elsewhere.url("/stolen")));
    assert_eq!(elsewhere.hits(), 0, "the host follows no redirect");
    // And if the strategy follows it itself, the list still applies.
    assert!(fetch(&s, &elsewhere.url("/stolen")).contains("not in this strategy's outbound list"));
}

#[test]
fn waiting_on_the_network_is_not_cpu_and_holds_no_thread() {
    let (s, admin) = setup();
    let gate = Arc::new(Gate::default());
    let held = Upstream::start(Behaviour::Gate(gate.clone()));
    // A CPU budget several times shorter than the calls will wait: waiting is not charged to it.
    chaos(
        &s,
        &admin,
        &[&format!("http://127.0.0.1:{}", held.port)],
        r#"{"cpu_ms":250,"wall_ms":30000,"max_concurrent_calls":32}"#,
    );
    // 24 calls waiting on the server at once.
    let waiting: Vec<_> = (0..24)
        .map(|_| {
            let (client, url, target) = (s.client.clone(), s.url("/_login/chaos"), held.url("/"));
            std::thread::spawn(move || {
                let body = json!({ "mode": "fetch", "url": target }).to_string();
                let resp = client.post(url).header("content-type", "application/json").body(body).send().unwrap();
                resp.json::<Value>().unwrap()["error"]["message"].as_str().unwrap_or("").to_string()
            })
        })
        .collect();
    let reached = Instant::now();
    while held.hits() < 24 {
        assert!(reached.elapsed() < Duration::from_secs(20), "only {} of 24 requests reached the server", held.hits());
        std::thread::sleep(Duration::from_millis(10));
    }
    // While all 24 are held, logins of another strategy are answered: no thread is held by
    // a waiting call (if one were, these would wait for the gate, and it opens only after).
    for _ in 0..10 {
        assert_eq!(s.login("alice", "pw").0, 200);
    }
    assert!(waiting.iter().all(|t| !t.is_finished()), "the gate is closed: no call can have ended");
    // And wait well past the CPU budget before letting them through.
    std::thread::sleep(Duration::from_millis(1000));
    gate.open();
    for t in waiting {
        assert_eq!(t.join().unwrap(), "status=200 bytes=4 location=-");
    }
}
