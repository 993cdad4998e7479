//! Limits that hold against hostile code. One hostile component (`strategies/hostile/chaos`)
//! misbehaves on demand; each test checks that the caller gets a clear Kuzzle-style error,
//! that the server stays up, and that a well-behaved strategy keeps answering meanwhile.
//! Latencies under attack are measured and bounded generously (the machine is shared).

mod common;

use common::{TestServer, assert_error};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A server with `local` users and the chaos component registered as `chaos`.
fn setup(limits: &str) -> (TestServer, String) {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let query = if limits.is_empty() { String::new() } else { format!("?limits={}", urlencode(limits)) };
    s.register(&admin, "chaos", "hostile_chaos", &query);
    (s, admin)
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

fn attack(s: &TestServer, mode: &str) -> (u16, Value) {
    s.post("/_login/chaos", json!({ "mode": mode }), None)
}

#[track_caller]
fn stopped(got: &(u16, Value), id: &str, needle: &str) {
    // Every way the sandbox stops a strategy is the strategy's failure: a 500.
    assert_error(got, 500, id);
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    assert!(msg.starts_with("Strategy \"chaos\""), "{msg}");
}

/// The well-behaved path still works and answers.
#[track_caller]
fn local_still_works(s: &TestServer) {
    let start = Instant::now();
    let (status, body) = s.login("alice", "pw");
    assert_eq!(status, 200, "{body}");
    assert!(start.elapsed() < Duration::from_secs(10), "local login took {:?}", start.elapsed());
}

#[test]
fn cpu_memory_stack_and_traps_are_contained() {
    let (s, _) = setup(r#"{"cpu_ms":50}"#);
    let start = Instant::now();
    let got = attack(&s, "loop");
    stopped(&got, "plugin.sandbox.limit_exceeded", "CPU budget of 50 ms (limits.cpu_ms)");
    assert_eq!(got.0, 500);
    assert!(start.elapsed() < Duration::from_secs(10), "the loop was stopped ({:?})", start.elapsed());
    local_still_works(&s);
    stopped(
        &attack(&s, "memory"),
        "plugin.sandbox.limit_exceeded",
        "memory cap of 16777216 bytes (limits.memory_bytes)",
    );
    local_still_works(&s);
    // Deep recursion ends on whichever stack runs out first: the wasm stack
    // (limits.stack_bytes) or the guest's own shadow stack in its linear memory.
    let got = attack(&s, "recursion");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(
        (got.1["error"]["id"] == "plugin.sandbox.limit_exceeded" && msg.contains("limits.stack_bytes"))
            || (got.1["error"]["id"] == "plugin.sandbox.crashed" && msg.contains("stack overflowing")),
        "{}",
        got.1
    );
    local_still_works(&s);
    stopped(&attack(&s, "panic"), "plugin.sandbox.crashed", "chaos panic");
    local_still_works(&s);
    stopped(&attack(&s, "huge"), "plugin.sandbox.limit_exceeded", "limits.max_return_bytes");
    local_still_works(&s);
    // The same strategy answers normally right after (a fresh instance each call).
    assert_error(&attack(&s, "nonsense"), 401, "plugin.strategy.missing_user");
    let metrics = s.client.get(s.url("/metrics")).send().unwrap().text().unwrap();
    for outcome in ["limit_cpu", "limit_memory", "limit_return_size"] {
        let line = format!("sandgate_strategy_calls_total{{strategy=\"chaos\",outcome=\"{outcome}\"}} 1");
        assert!(metrics.contains(&line), "metrics lack {line}");
    }
    assert!(metrics.contains("sandgate_strategy_call_duration_seconds_count{strategy=\"local\"}"), "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF: {metrics}");
    assert!(metrics.lines().any(|l| l.starts_with("sandgate_store_commits_total ")), "{metrics}");
    assert!(metrics.contains("sandgate_strategy_cpu_budget_used_ratio_count{strategy=\"chaos\"}"), "{metrics}");
}

#[test]
fn log_floods_are_capped() {
    let (s, _) = setup(r#"{"max_host_calls":5000}"#);
    assert_error(&attack(&s, "log"), 401, "plugin.strategy.missing_user");
    let metrics = s.client.get(s.url("/metrics")).send().unwrap().text().unwrap();
    // 20 lines kept (limits.max_log_lines), the other 980 dropped and counted.
    assert!(metrics.contains("sandgate_strategy_log_lines_dropped_total{strategy=\"chaos\"} 980"), "{metrics}");
    local_still_works(&s);
}

#[test]
fn storage_quotas_hold() {
    let (s, _) = setup(r#"{"max_keys":40,"max_storage_bytes":300000,"max_host_calls":100000}"#);
    let got = attack(&s, "storage-keys");
    assert_error(&got, 500, "plugin.runtime.unexpected_error");
    assert!(got.1["error"]["message"].as_str().unwrap().contains("limits.max_keys"), "{}", got.1);
    let got = attack(&s, "storage-bytes");
    assert!(got.1["error"]["message"].as_str().unwrap().contains("limits.max_storage_bytes"), "{}", got.1);
    // A failed call keeps nothing: the strategy's storage is still empty.
    assert_eq!(s.app.store.blocking().kv_usage("chaos").unwrap().keys, 0);
    local_still_works(&s);
}

#[test]
fn host_crypto_floods_are_capped() {
    let (s, _) = setup("");
    let before = s.app.hasher.computed();
    let got = attack(&s, "argon2");
    stopped(&got, "plugin.sandbox.limit_exceeded", "password hash calls");
    let hashes = s.app.hasher.computed() - before;
    assert!(hashes <= 4, "the host computed {hashes} hashes for one call (limits.max_hash_calls = 4)");
    local_still_works(&s);
}

#[test]
fn a_strategy_only_logs_in_users_it_holds_credentials_for() {
    let (s, admin) = setup("");
    // The admin's kuid, a user of another strategy, a kuid nobody has: refused, alike (which
    // kuids exist is no business of the strategy's; the log tells them apart).
    let got = attack(&s, "admin");
    assert_error(&got, 500, "plugin.strategy.unknown_kuid");
    let got = s.post("/_login/chaos", json!({ "mode": "kuid", "kuid": "alice" }), None);
    assert_error(&got, 500, "plugin.strategy.unknown_kuid");
    let got = s.post("/_login/chaos", json!({ "mode": "kuid", "kuid": "nobody" }), None);
    assert_error(&got, 500, "plugin.strategy.unknown_kuid");
    // A user whose credentials it created: allowed.
    s.user_with(&admin, "mallory", json!({ "chaos": {} }));
    let got = s.post("/_login/chaos", json!({ "mode": "kuid", "kuid": "mallory" }), None);
    assert_eq!((got.0, got.1["result"]["_id"].as_str()), (200, Some("mallory")), "{}", got.1);
    // And only while it holds them.
    assert_eq!(s.call("DELETE", "/credentials/chaos/mallory", None, Some(&admin)).0, 200);
    assert_error(
        &s.post("/_login/chaos", json!({ "mode": "kuid", "kuid": "mallory" }), None),
        500,
        "plugin.strategy.unknown_kuid",
    );
}

#[test]
fn wasi_gives_nothing_and_no_state_survives_a_call() {
    let (s, _) = setup("");
    let got = attack(&s, "wasi");
    assert_error(&got, 401, "plugin.strategy.missing_user");
    let seen: Value = serde_json::from_str(got.1["error"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(seen["env"], 0, "no environment: {seen}");
    assert_eq!(seen["args"], 0, "no arguments: {seen}");
    for probe in ["read_dir", "passwd", "tcp"] {
        assert!(seen[probe].as_str().unwrap().starts_with("error"), "{probe} should fail: {seen}");
    }
    for _ in 0..3 {
        let got = attack(&s, "state");
        assert_eq!(got.1["error"]["message"], "1", "a fresh instance per call: nothing carried over");
    }
}

/// One admission mechanism for every action that calls a strategy, not only logins: past its
/// `max_concurrent_calls`, a request waits for a permit (up to `queue_ms`) instead of being
/// refused at once, and no more than the cap ever run.
#[test]
fn every_action_waits_for_its_strategys_permit() {
    let (s, admin) = setup(r#"{"max_concurrent_calls":2,"queue_ms":20000}"#);
    s.user_with(&admin, "mallory", json!({ "chaos": {} }));
    let base = s.base.clone();
    let checks: Vec<_> = (0..6)
        .map(|_| {
            let (base, admin) = (base.clone(), admin.clone());
            std::thread::spawn(move || {
                let resp = reqwest::blocking::Client::new()
                    .post(format!("{base}/credentials/chaos/mallory/_validate"))
                    .bearer_auth(admin)
                    .json(&json!({ "sleep_ms": 300 }))
                    .send()
                    .unwrap();
                resp.json::<Value>().unwrap()
            })
        })
        .collect();
    let mut most = 0;
    while !checks.iter().all(|t| t.is_finished()) {
        let running = s.get("/strategies/chaos", Some(&admin)).1["result"]["inFlight"].as_u64().unwrap();
        most = most.max(running);
        std::thread::sleep(Duration::from_millis(20));
    }
    for got in checks.into_iter().map(|t| t.join().unwrap()) {
        assert_eq!((got["status"].as_u64(), &got["result"]), (Some(200), &json!(true)), "waited, then ran: {got}");
    }
    assert!(most <= 2, "{most} calls ran at once, over max_concurrent_calls");
}

/// A request that finds its strategy full only at a later call (a user created with
/// credentials) waits for a permit like a login does, holding no thread, and is refused after
/// `queue_ms` with 503 and `Retry-After`; the user it would have created is not left behind.
#[test]
fn a_later_call_waits_for_its_permit_then_is_refused() {
    let (s, admin) =
        setup(r#"{"max_concurrent_calls":1,"queue_ms":500,"cpu_ms":5000,"wall_ms":10000,"max_host_calls":10000000}"#);
    s.user_with(&admin, "mallory", json!({ "chaos": {} }));
    let slow = slow_login_running(&s);
    let start = Instant::now();
    let body = json!({ "content": { "profileIds": ["default"] }, "credentials": { "chaos": {} } });
    let bearer = format!("Bearer {admin}");
    let (status, headers, json) =
        s.send("POST", "/users/eve/_create", Some(body.to_string()), &[("authorization", bearer.as_str())]);
    assert_error(&(status, json), 503, "plugin.sandbox.busy");
    assert_eq!(headers["retry-after"], "1", "a busy answer says when to try again");
    assert!(start.elapsed() >= Duration::from_millis(500), "waited queue_ms first: {:?}", start.elapsed());
    assert_eq!(s.get("/users/eve", Some(&admin)).0, 404, "nothing was left behind");
    assert_eq!(slow.join().unwrap(), 200);
}

/// With calls running in the sandbox, requests that need none answer at once, tokens and all:
/// nothing waits for a thread.
#[test]
fn the_health_check_answers_while_a_strategy_computes() {
    let (s, admin) = setup(r#"{"cpu_ms":5000,"wall_ms":10000,"max_host_calls":10000000}"#);
    s.user_with(&admin, "mallory", json!({ "chaos": {} }));
    let slow = slow_login_running(&s);
    let (status, body) = s.get("/_healthcheck", None);
    assert_eq!((status, body["result"]["status"].as_str()), (200, Some("green")));
    let (status, body) = s.get("/users/mallory", Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert!(!slow.is_finished(), "they did not wait for the slow login");
    assert_eq!(slow.join().unwrap(), 200);
}

/// Starts a 3 s login of `mallory` on `chaos` and returns once it runs in the sandbox (seen in
/// the metrics).
fn slow_login_running(s: &TestServer) -> std::thread::JoinHandle<reqwest::StatusCode> {
    let base = s.base.clone();
    let slow = std::thread::spawn(move || {
        let body = json!({ "mode": "slow", "ms": 3000, "kuid": "mallory" });
        reqwest::blocking::Client::new().post(format!("{base}/_login/chaos")).json(&body).send().unwrap().status()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metrics_show_a_call_running(s) {
        assert!(Instant::now() < deadline, "the slow login never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    slow
}

fn metrics_show_a_call_running(s: &TestServer) -> bool {
    let text = reqwest::blocking::get(s.url("/metrics")).unwrap().text().unwrap();
    text.lines().any(|l| l == "sandgate_strategy_calls_in_flight{strategy=\"chaos\"} 1")
}

/// A slow strategy saturating its concurrency cap: the excess waits `limits.queue_ms` for a
/// slot (without holding a worker) and is then refused (503); the other strategies stay fast.
#[test]
fn a_saturated_strategy_does_not_starve_the_others() {
    let (s, admin) =
        setup(r#"{"max_concurrent_calls":2,"queue_ms":1000,"cpu_ms":5000,"wall_ms":10000,"max_host_calls":10000000}"#);
    s.user_with(&admin, "mallory", json!({ "chaos": {} }));
    let base = s.base.clone();
    let attackers: Vec<_> = (0..6)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || {
                let body = json!({ "mode": "slow", "ms": 1500, "kuid": "mallory" });
                let resp =
                    reqwest::blocking::Client::new().post(format!("{base}/_login/chaos")).json(&body).send().unwrap();
                resp.json::<Value>().unwrap()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let start = Instant::now();
        assert_eq!(s.login("alice", "pw").0, 200);
        worst = worst.max(start.elapsed());
    }
    let results: Vec<Value> = attackers.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r["status"] == 200).count();
    let busy = results.iter().filter(|r| r["error"]["id"] == "plugin.sandbox.busy").count();
    assert_eq!(ok + busy, 6, "{results:?}");
    assert!(busy >= 3, "at most 2 in flight; the rest waited 1 s and were refused: {ok} ok, {busy} busy");
    for refused in results.iter().filter(|r| r["error"]["id"] == "plugin.sandbox.busy") {
        assert_eq!(refused["status"], 503, "{refused}");
        assert_eq!(refused["error"]["status"], 503, "{refused}");
    }
    // Generous: a local login is ~50 ms of argon2; under attack it must not wait for the attack.
    assert!(worst < Duration::from_millis(1400), "local login took {worst:?} during the attack");
}

/// Infinite loops hammered in parallel: the good strategy keeps answering.
#[test]
fn loops_under_load_do_not_stop_good_logins() {
    let (s, _) = setup(r#"{"cpu_ms":100}"#);
    let base = s.base.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let (base, stop) = (base.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 200 {
                    let r: Value = client
                        .post(format!("{base}/_login/chaos"))
                        .json(&json!({ "mode": "loop" }))
                        .send()
                        .unwrap()
                        .json()
                        .unwrap();
                    assert_eq!(r["error"]["id"], "plugin.sandbox.limit_exceeded");
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let start = Instant::now();
        assert_eq!(s.login("alice", "pw").0, 200);
        worst = worst.max(start.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let attacks: i32 = attackers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(attacks >= 4, "the attack ran");
    assert!(worst < Duration::from_secs(5), "local login took {worst:?} under attack");
    println!("local login under attack: worst {worst:?} over 10 logins, {attacks} loops stopped meanwhile");
}
