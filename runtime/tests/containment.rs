//! Containment holes found by an outside hostile corpus, one test (or more) per class, each
//! over real HTTP against the real server: time in the host, start-up, host memory, the
//! account lock, compile bombs and the compiled cache, the refresh race, undeletable users,
//! log forging, user enumeration, the anonymous kuid, WASI call counts and clocks, several
//! memories, and replacing a strategy that holds users.

mod common;

use common::{SECRET, TestServer, assert_error, component};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn enc(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// A server with `alice` (local) and the chaos component registered as `chaos`.
fn setup(limits: &str) -> (TestServer, String) {
    setup_with("", limits)
}

fn setup_with(toml: &str, limits: &str) -> (TestServer, String) {
    let s = TestServer::with_config(toml);
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let query = if limits.is_empty() { String::new() } else { format!("?limits={}", enc(limits)) };
    s.register(&admin, "chaos", "hostile_chaos", &query);
    (s, admin)
}

fn attack(s: &TestServer, creds: Value) -> (u16, Value) {
    s.post("/_login/chaos", creds, None)
}

fn message(got: &(u16, Value)) -> String {
    got.1["error"]["message"].as_str().unwrap_or_default().to_string()
}

#[track_caller]
fn limited(got: &(u16, Value), needle: &str) {
    assert_error(got, 500, "plugin.sandbox.limit_exceeded");
    assert!(message(got).contains(needle), "{:?} should mention {needle:?}", message(got));
}

fn metric(s: &TestServer, line: &str) -> bool {
    s.client.get(s.url("/metrics")).send().unwrap().text().unwrap().lines().any(|l| l == line)
}

// 1. Time spent in the host ---------------------------------------------------------------

#[test]
fn sleeping_in_the_host_is_cut_at_the_wall_clock_cap() {
    let (s, _) = setup(r#"{"wall_ms":300}"#);
    let start = Instant::now();
    let got = attack(&s, json!({ "mode": "sleep", "ms": 5000 }));
    limited(&got, "300 ms of wall-clock time (limits.wall_ms)");
    // Generous: the cap is 300 ms; before it, the call slept the full 5 s.
    assert!(start.elapsed() < Duration::from_millis(2500), "the sleep was cut ({:?})", start.elapsed());
    assert!(metric(&s, r#"sandgate_strategy_calls_total{strategy="chaos",outcome="limit_wall_clock"} 1"#));
    assert_eq!(s.login("alice", "pw").0, 200);

    // Sleeping is not CPU: a sleep ten times the CPU budget completes.
    let (s, _) = setup(r#"{"cpu_ms":100,"wall_ms":3000}"#);
    assert_eq!(message(&attack(&s, json!({ "mode": "sleep", "ms": 1000 }))), "slept");
}

/// Waiting on a hundred sleeps at once is one wait: it does not buy a hundred times its
/// length in CPU time.
#[test]
fn sleeps_waited_together_count_once() {
    let (s, _) = setup(r#"{"cpu_ms":100,"wall_ms":5000,"max_host_calls":100000}"#);
    limited(&attack(&s, json!({ "mode": "many-sleeps" })), "CPU budget of 100 ms (limits.cpu_ms)");
}

/// A component whose constructor sleeps (code in `.init_array`, run while the instance is
/// made): the upload's first instance is bounded like a call.
#[test]
fn a_sleeping_constructor_cannot_hold_an_upload() {
    let s = TestServer::start();
    let admin = s.admin();
    let config = enc(r#"{"sleep_at_start_ms":60000}"#);
    let start = Instant::now();
    let got = s.upload(Some(&admin), "ctor", &component("hostile_chaos"), &format!("?config={config}"));
    assert_error(&got, 400, "plugin.sandbox.invalid_component");
    assert!(message(&got).contains("(limits.wall_ms)"), "{}", got.1);
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    assert_eq!(s.login("admin", "admin-password").0, 200);
}

#[test]
fn the_default_wall_clock_cap_holds() {
    let (s, _) = setup("");
    let start = Instant::now();
    limited(&attack(&s, json!({ "mode": "sleep", "ms": 60_000 })), "(limits.wall_ms)");
    assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
}

// 2. Start-up does not depend on any strategy ----------------------------------------------

#[test]
fn start_up_runs_no_strategy_code_and_uploads_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[tokens]\nsecret = \"{SECRET}\"\n");
    let s = TestServer::start_in(dir.path(), &config);
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    s.register(&admin, "chaos", "hostile_chaos", "");
    // Armed through validate: from now on, its `fields` sleeps for an hour.
    s.user_with(&admin, "mallory", json!({ "chaos": { "arm": true } }));
    assert_eq!(s.app.store.blocking().kv_get("chaos", "armed").unwrap().as_deref(), Some("1"));
    // Re-uploading it runs `fields`: bounded by the wall-clock cap, refused.
    let start = Instant::now();
    let got = s.upload(Some(&admin), "chaos", &component("hostile_chaos"), "?replace");
    assert_error(&got, 400, "plugin.sandbox.invalid_component");
    assert!(message(&got).contains("limits.wall_ms"), "{}", got.1);
    assert!(start.elapsed() < Duration::from_secs(10));
    drop(s.stop());

    // A restart calls none of it: the fields recorded at upload are used.
    let path = dir.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let starter = std::thread::spawn(move || {
        let s = TestServer::start_in(&path, &config);
        let _ = tx.send(());
        s
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the server started although a strategy sleeps in fields");
    let s = starter.join().unwrap();
    s.token("alice", "pw");
    let admin = s.token("admin", "admin-password");
    assert_eq!(s.get("/strategies/chaos", Some(&admin)).1["result"]["fields"], json!(["mode"]));
}

// 4. Host memory outside the memory cap ----------------------------------------------------

#[test]
fn what_a_call_makes_the_host_hold_is_capped() {
    let (s, _) = setup("");
    let got = attack(&s, json!({ "mode": "pending" }));
    assert_error(&got, 500, "plugin.runtime.unexpected_error");
    assert!(message(&got).contains("limits.max_pending_bytes"), "{}", got.1);
    assert_eq!(s.app.store.blocking().kv_usage("chaos").unwrap().keys, 0, "nothing of a failed call is kept");
    limited(&attack(&s, json!({ "mode": "big-key" })), "(limits.max_key_bytes)");
    limited(&attack(&s, json!({ "mode": "random" })), "(limits.max_random_bytes)");
    limited(&attack(&s, json!({ "mode": "host-random" })), "(limits.max_random_bytes)");
    assert_eq!(s.login("alice", "pw").0, 200);
}

// 5. The account lock keys on what the strategy checked; addresses are limited too ----------

#[test]
fn the_lock_holds_whichever_way_the_name_comes_in() {
    let s = TestServer::with_config("[login]\nmax_failures = 5\n");
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    // `local` reads the query string when the body has no password: the decoy name in the
    // body changes nothing, the record read is alice's.
    let guess = |i: usize, password: &str| {
        s.post(
            &format!("/_login/local?username=alice&password={password}"),
            json!({ "username": format!("decoy-{i}") }),
            None,
        )
    };
    for i in 0..5 {
        assert_error(&guess(i, &format!("wrong{i}")), 401, "plugin.strategy.missing_user");
    }
    for i in 5..25 {
        assert_error(&guess(i, &format!("wrong{i}")), 429, "security.credentials.too_many_failures");
    }
    assert_error(&guess(99, "pw"), 429, "security.credentials.too_many_failures");
    assert_error(&s.login("alice", "pw"), 429, "security.credentials.too_many_failures");
    // Names that don't exist lock alike.
    for _ in 0..5 {
        assert_error(&s.login("ghost", "x"), 401, "plugin.strategy.missing_user");
    }
    assert_error(&s.login("ghost", "x"), 429, "security.credentials.too_many_failures");
    assert_eq!(s.login("admin", "admin-password").0, 200, "other accounts are not affected");
}

/// A second factor's code checked with validateMyCredentials is a credential check too: the
/// TOTP record locks after `max_failures` wrong codes.
#[test]
fn second_factor_checks_are_locked_like_logins() {
    let s = TestServer::with_config("[login]\nmax_failures = 5\n");
    let admin = s.admin();
    s.register(&admin, "totp", "strategy_totp", "");
    s.user(&admin, "alice", "alice", "pw");
    let alice = s.token("alice", "pw");
    assert_eq!(s.post("/_me/credentials/totp/_create", json!({}), Some(&alice)).0, 200);
    let guess = |code: &str| s.post("/_me/credentials/totp/_validate", json!({ "code": code }), Some(&alice));
    let mut refused = 0;
    for i in 0..12 {
        let got = guess(&format!("{:06}", 100_000 + i * 7));
        if got.1["error"]["id"] == "security.credentials.too_many_failures" {
            refused += 1;
        } else {
            assert_error(&got, 401, "plugin.strategy.missing_user");
        }
    }
    assert_eq!(refused, 7, "five guesses, then locked");
}

#[test]
fn failed_logins_per_address_are_limited() {
    let s = TestServer::with_config("[login]\nmax_failures = 1000\nmax_failures_per_address = 4\n");
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    for i in 0..4 {
        assert_error(&s.login(&format!("spray-{i}"), "x"), 401, "plugin.strategy.missing_user");
    }
    assert_error(&s.login("spray-5", "x"), 429, "api.process.too_many_logins_requests");
    assert_error(&s.login("alice", "pw"), 429, "api.process.too_many_logins_requests");
}

// 7. Compile bombs and the compiled cache --------------------------------------------------

fn leb(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn section(id: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![id];
    out.extend(leb(body.len() as u64));
    out.extend(body);
    out
}

/// Core modules defined at the top level of a component (the next one gets this index).
fn core_modules(component: &[u8]) -> u64 {
    let (mut depth, mut count) = (0, 0);
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        match payload.unwrap() {
            wasmparser::Payload::ModuleSection { .. } => {
                if depth == 0 {
                    count += 1;
                }
                depth += 1;
            }
            wasmparser::Payload::ComponentSection { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            _ => {}
        }
    }
    count
}

/// One function whose shape makes Cranelift work far longer than its size: 4,000 nested
/// loops and 10,000 branches out of them (170 KB; about 10 s to compile on a 2-core machine).
fn bomb_module() -> Vec<u8> {
    const DEPTH: u64 = 4000;
    const ROUNDS: u64 = 200;
    let mut body = leb(0); // no locals besides the i32 parameter
    for _ in 0..DEPTH {
        body.extend([0x03, 0x40]); // loop (no result)
    }
    for _ in 0..ROUNDS {
        for level in (0..DEPTH).step_by((DEPTH / 50) as usize) {
            body.extend([0x20, 0x00, 0x0d]); // local.get 0; br_if
            body.extend(leb(level));
        }
    }
    body.extend(std::iter::repeat_n(0x0b, DEPTH as usize + 1)); // the loops' ends, the function's
    let mut code = leb(1);
    code.extend(leb(body.len() as u64));
    code.extend(body);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    module.extend(section(1, &[1, 0x60, 1, 0x7f, 0])); // type: [i32] -> []
    module.extend(section(3, &[1, 0])); // one function of type 0
    module.extend(section(10, &code));
    module
}

/// A valid strategy component with `module` appended as an extra core module (and, if
/// `instantiate`, an instance of it made when the component is).
fn with_extra_module(base: &[u8], module: &[u8], instantiate: bool) -> Vec<u8> {
    let index = core_modules(base);
    let mut out = base.to_vec();
    out.extend(section(1, module));
    if instantiate {
        let mut instance = leb(1);
        instance.push(0x00); // instantiate a module
        instance.extend(leb(index));
        instance.extend(leb(0)); // no arguments
        out.extend(section(2, &instance));
    }
    out
}

/// Compiler processes writing into `dir` (their command line names the output file there).
fn compilers_into(dir: &std::path::Path) -> usize {
    let dir = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            let cmdline =
                String::from_utf8_lossy(&std::fs::read(e.path().join("cmdline")).unwrap_or_default()).to_string();
            cmdline.contains("compile-component") && cmdline.contains(&dir)
        })
        .count()
}

fn sha256(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn compile_bombs_are_stopped_and_only_accepted_code_is_cached() {
    use std::os::unix::fs::PermissionsExt as _;
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("compiled");
    // Its own cache, so what it finds there is its doing. The bundled local, the template and
    // apikey compile in ~0.2 s, the bomb in ~10 s (idle 2-core machine): 3 s is between.
    let toml = format!("[server]\ncache_dir = {:?}\n[limits]\ncompile_ms = 3000\n", cache_dir.display().to_string());
    let s = TestServer::with_config(&toml);
    let admin = s.admin();
    let cached = || -> Vec<String> {
        std::fs::read_dir(&cache_dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().to_string()).collect()
    };
    assert_eq!(std::fs::metadata(&cache_dir).unwrap().permissions().mode() & 0o777, 0o700);

    let bomb = with_extra_module(&component("strategy_template"), &bomb_module(), false);
    assert!(bomb.len() < 2 << 20, "a small upload ({} bytes)", bomb.len());
    let start = Instant::now();
    let got = s.upload(Some(&admin), "bomb", &bomb, "");
    assert_error(&got, 400, "plugin.sandbox.invalid_component");
    assert!(message(&got).contains("longer than 3000 ms (limits.compile_ms)"), "{}", got.1);
    assert!(start.elapsed() < Duration::from_secs(15), "refused at the limit ({:?})", start.elapsed());
    assert_eq!(compilers_into(&cache_dir), 0, "the compiler was killed: its CPU is free");

    // A component that could never link is refused before compiling anything.
    let extra = component("hostile_extra_import");
    assert_error(&s.upload(Some(&admin), "extra", &extra, ""), 400, "plugin.sandbox.invalid_component");
    let names = cached();
    for refused in [sha256(&bomb), sha256(&extra)] {
        assert!(!names.iter().any(|n| n.starts_with(&refused)), "a refused upload was cached: {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with(".compiling-")), "no temporary file left: {names:?}");

    // Accepted code is cached (mode 0600); replaced code leaves the cache.
    let template = component("strategy_template");
    s.register(&admin, "pin", "strategy_template", "");
    let artifact =
        cached().into_iter().find(|n| n.starts_with(&sha256(&template))).expect("the accepted one is cached");
    let mode = std::fs::metadata(cache_dir.join(&artifact)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "only the server's user may write native code it will run");
    s.register(&admin, "pin", "strategy_apikey", "");
    assert!(!cached().contains(&artifact), "no strategy uses the template any more: {:?}", cached());
    assert!(cached().iter().any(|n| n.starts_with(&sha256(&component("strategy_apikey")))));
}

// 8. Refresh race -------------------------------------------------------------------------

#[test]
fn a_token_is_refreshed_once_however_many_ask_at_once() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    for _round in 0..3 {
        let token = s.token("alice", "pw");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let answers: Vec<Value> = (0..8)
            .map(|_| {
                let (base, token, barrier) = (s.base.clone(), token.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    barrier.wait();
                    client.post(format!("{base}/_refreshToken")).bearer_auth(token).send().unwrap().json().unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let fresh: Vec<&Value> = answers.iter().filter(|a| a["status"] == 200).collect();
        assert_eq!(fresh.len(), 1, "one refresh per token: {answers:?}");
        assert!(answers.iter().filter(|a| a["status"] != 200).all(|a| a["error"]["id"] == "security.token.invalid"));
        let new = fresh[0]["result"]["jwt"].as_str().unwrap();
        assert_eq!(s.get("/users/_me", Some(new)).0, 200);
    }
}

// 9. The admin's deletion wins --------------------------------------------------------------

#[test]
fn a_strategy_that_refuses_to_delete_cannot_keep_a_user() {
    let s = TestServer::start();
    let admin = s.admin();
    s.register(&admin, "nodelete", "hostile_chaos", &format!("?config={}", enc(r#"{"fail_delete":true}"#)));
    s.user_with(&admin, "victim", json!({ "local": { "username": "victim", "password": "pw" }, "nodelete": {} }));
    // And a user who linked themselves to it.
    s.user(&admin, "alice", "alice", "pw");
    let alice = s.token("alice", "pw");
    assert_eq!(s.post("/credentials/nodelete/_me/_create", json!({}), Some(&alice)).0, 200);
    for kuid in ["victim", "alice"] {
        let got = s.call("DELETE", &format!("/users/{kuid}"), None, Some(&admin));
        assert_eq!(got.0, 200, "{}", got.1);
        assert_error(&s.get(&format!("/users/{kuid}"), Some(&admin)), 404, "security.user.not_found");
        assert_error(&s.login(kuid, "pw"), 401, "plugin.strategy.missing_user");
        assert!(s.app.store.blocking().linked_strategies(kuid).unwrap().is_empty());
    }
    assert_error(&s.get("/users/_me", Some(&alice)), 401, "security.token.invalid");
    assert!(metric(&s, r#"sandgate_strategy_forced_deletes_total{strategy="nodelete"} 2"#));
}

// 10. Log forging -------------------------------------------------------------------------

#[test]
fn nothing_from_outside_can_forge_a_log_line() {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sandgate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .env("SANDGATE_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Read as it comes: a server whose stderr pipe fills up would block.
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        log
    });
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/_healthcheck")).send().map(|r| r.status() != 200).unwrap_or(true) {
        assert!(Instant::now() < deadline, "not healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
    let post = |path: &str, body: Value, token: Option<&str>| -> Value {
        let mut req = client.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().unwrap().json().unwrap()
    };
    post(
        "/_createFirstAdmin/admin",
        json!({ "credentials": { "local": { "username": "admin", "password": "pw" } } }),
        None,
    );
    let admin = post("/_login/local", json!({ "username": "admin", "password": "pw" }), None)["result"]["jwt"]
        .as_str()
        .unwrap()
        .to_string();
    let up = client
        .put(format!("{base}/strategies/chaos"))
        .bearer_auth(&admin)
        .header("content-type", "application/wasm")
        .body(component("hostile_chaos"))
        .send()
        .unwrap();
    assert_eq!(up.status(), 200);
    // A strategy's log message, a strategy-chosen kuid, a client-chosen request id.
    post("/_login/chaos", json!({ "mode": "log-forge" }), None);
    post("/_login/chaos", json!({ "mode": "kuid", "kuid": "x\nFORGED-KUID\r" }), None);
    let q = post(
        "/_query",
        json!({ "controller": "auth", "action": "login", "strategy": "chaos", "requestId": "r\nFORGED-REQUEST-ID",
                "body": { "mode": "panic" } }),
        None,
    );
    assert_eq!(q["error"]["id"], "plugin.sandbox.crashed", "{q}");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    let log = reader.join().unwrap();
    for forged in ["FORGED-LOG-LINE", "FORGED-KUID", "FORGED-REQUEST-ID"] {
        assert!(log.contains(&format!("\\n{forged}")), "{forged} was logged, escaped:\n{log}");
        assert!(!log.lines().any(|l| l.starts_with(forged)), "{forged} forged a line:\n{log}");
    }
    assert!(!log.contains('\r') && !log.contains('\u{1b}'), "no raw control characters:\n{log:?}");
}

// 11. User enumeration --------------------------------------------------------------------

#[test]
fn a_strategy_learns_nothing_about_which_kuids_exist() {
    let (s, _) = setup("");
    let foreign = attack(&s, json!({ "mode": "kuid", "kuid": "alice" }));
    let unknown = attack(&s, json!({ "mode": "kuid", "kuid": "nobody" }));
    assert_error(&foreign, 500, "plugin.strategy.unknown_kuid");
    assert_eq!(foreign.1["error"], unknown.1["error"], "existing and unknown kuids answer alike");
}

// 12. The anonymous kuid ------------------------------------------------------------------

#[test]
fn nobody_can_take_the_anonymous_kuid() {
    let s = TestServer::start();
    let got = s.post(
        "/_createFirstAdmin/-1",
        json!({ "credentials": { "local": { "username": "a", "password": "pw" } } }),
        None,
    );
    assert_error(&got, 400, "api.assert.invalid_argument");
    assert!(s.app.store.blocking().get_user("-1").unwrap().is_none());
    let admin = s.admin();
    let got = s.post(
        "/users/-1/_create",
        json!({ "content": { "profileIds": ["default"] }, "credentials": { "local": { "username": "b", "password": "pw" } } }),
        Some(&admin),
    );
    assert_error(&got, 400, "api.assert.invalid_argument");
}

// 13. WASI calls are counted; clocks are coarse ---------------------------------------------

#[test]
fn wasi_calls_count_and_clocks_are_coarse() {
    let (s, _) = setup("");
    limited(&attack(&s, json!({ "mode": "wasi-calls" })), "(limits.max_host_calls)");
    let got = attack(&s, json!({ "mode": "clock" }));
    assert_error(&got, 401, "plugin.strategy.missing_user");
    let seen: Value = serde_json::from_str(&message(&got)).unwrap();
    assert_eq!(seen["monotonic_resolution_ns"], 1_000_000, "{seen}");
    assert_eq!(seen["wall_resolution_ns"], 1_000_000, "{seen}");
    assert!(seen["smallest_step_ns"].as_u64().unwrap() >= 1_000_000, "{seen}");
    assert_eq!(seen["wall_subsec_ns"].as_u64().unwrap() % 1_000_000, 0, "{seen}");
}

// 14. Several memories; replacing a strategy that holds users -------------------------------

#[test]
fn the_memory_cap_holds_across_several_memories() {
    let s = TestServer::start();
    let admin = s.admin();
    // A second memory of 255 pages (64 KiB short of 16 MiB) next to the strategy's own (a few
    // pages at least): each is under the 16 MiB cap, together they are not.
    let memory = [b"\0asm\x01\0\0\0".as_slice(), &section(5, &[1, 0x00, 0xff, 0x01])].concat();
    let two = with_extra_module(&component("strategy_template"), &memory, true);
    let got = s.upload(Some(&admin), "two", &two, "");
    assert_error(&got, 400, "plugin.sandbox.invalid_component");
    assert!(message(&got).contains("memory cap of 16777216 bytes"), "{}", got.1);
    // The same component is fine under a larger cap.
    let s2 = TestServer::with_config("[limits]\nmemory_bytes = 33554432\n");
    let admin2 = s2.admin();
    assert_eq!(s2.upload(Some(&admin2), "two", &two, "").0, 200);
}

#[test]
fn replacing_a_strategy_that_holds_users_needs_confirmation() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let template = component("strategy_template");
    let got = s.upload(Some(&admin), "local", &template, "");
    assert_error(&got, 412, "plugin.sandbox.replace_unconfirmed");
    assert_eq!(s.login("alice", "pw").0, 200, "local is untouched");
    // A strategy nobody uses is replaced without ceremony; with users, `replace` confirms.
    s.register(&admin, "pin", "strategy_template", "");
    s.register(&admin, "pin", "strategy_template", "");
    assert_eq!(s.upload(Some(&admin), "local", &component("strategy_local"), "?replace").0, 200);
    assert_eq!(s.login("alice", "pw").0, 200);
    // The same bytes again change nothing: no confirmation needed.
    assert_eq!(s.upload(Some(&admin), "local", &component("strategy_local"), "").0, 200);
    // Unregistering keeps the users' links: registering under that name later needs it too.
    s.user_with(&admin, "bob", json!({ "pin": { "username": "bob", "pin": "1234" } }));
    assert_eq!(s.call("DELETE", "/strategies/pin", None, Some(&admin)).0, 200);
    let got = s.upload(Some(&admin), "pin", &component("hostile_chaos"), "");
    assert_error(&got, 412, "plugin.sandbox.replace_unconfirmed");
}
