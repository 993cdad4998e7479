//! Strategies as uploadable components: validation at upload, register → login → inspect →
//! remove, persistence across restarts, hot swap, the other strategies (apikey, totp,
//! template, Python), and the offline `sandgate strategy` commands.

mod common;

use common::{SECRET, TestServer, assert_error, component};
use serde_json::{Value, json};
use std::time::Duration;

#[test]
fn uploads_are_validated_with_messages_that_name_the_problem() {
    let s = TestServer::with_config("[server]\nmax_upload_bytes = 150000\n");
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let alice = s.token("alice", "pw");
    let apikey = component("strategy_apikey");
    // Who may upload.
    assert_error(&s.upload(None, "k", &apikey, ""), 401, "security.rights.unauthorized");
    assert_error(&s.upload(Some(&alice), "k", &apikey, ""), 403, "security.rights.forbidden");
    let refused = |name: &str, bytes: &[u8], needle: &str| {
        let got = s.upload(Some(&admin), name, bytes, "");
        assert_error(&got, 400, "plugin.sandbox.invalid_component");
        let msg = got.1["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{name}: {msg:?} should mention {needle:?}");
    };
    refused("text", b"hello world", "not a WebAssembly binary");
    refused("wat", b"(component)", "WAT");
    refused("core", b"\0asm\x01\0\0\0", "core WebAssembly module");
    refused("garbage", b"\0asm\x0d\0\x01\0\xff\xff\xff", "invalid component");
    refused("import", &component("hostile_extra_import"), "hostile:extra-import/secrets");
    refused("noexport", &component("hostile_no_export"), "sandgate:strategy/authenticator");
    refused("Bad_Name", &apikey, "1 to 64 characters");
    let got = s.upload(Some(&admin), &"a".repeat(65), &apikey, "");
    assert_error(&got, 400, "plugin.sandbox.invalid_component");
    let got = s.upload(Some(&admin), "cfg", &apikey, "?config=%5B1%5D");
    assert!(got.1["error"]["message"].as_str().unwrap().contains("JSON object"), "{}", got.1);
    let got = s.upload(Some(&admin), "lim", &apikey, "?limits=%7B%22memory_bytes%22%3A999999999999%7D");
    assert!(got.1["error"]["message"].as_str().unwrap().contains("memory_bytes"), "{}", got.1);
    // Over the upload limit: 413.
    let got = s.upload(Some(&admin), "big", &component("hostile_chaos"), "");
    assert_error(&got, 413, "network.http.request_too_large");
    // Nothing of that was registered.
    assert_eq!(s.get("/strategies", Some(&admin)).1["result"], json!(["local"]));
}

#[test]
fn register_login_inspect_remove_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[tokens]\nsecret = \"{SECRET}\"\n");
    let s = TestServer::start_in(dir.path(), &config);
    let admin = s.admin();
    let info = s.register(&admin, "apikey", "strategy_apikey", "?config=%7B%22note%22%3A1%7D");
    assert_eq!(info["name"], "apikey");
    assert_eq!(info["fields"], json!(["key"]));
    assert_eq!(info["size"].as_u64().unwrap() as usize, component("strategy_apikey").len());
    assert_eq!(info["hash"].as_str().unwrap().len(), 64);
    assert_eq!(info["config"], json!({ "note": 1 }));
    assert_eq!(s.get("/strategies", Some(&admin)).1["result"], json!(["apikey", "local"]));
    // A user with a generated key: the create result shows it once.
    s.user(&admin, "bot", "bot", "pw");
    let (status, created) = s.post("/credentials/apikey/bot/_create", json!({}), Some(&admin));
    assert_eq!(status, 200, "{created}");
    let key = created["result"]["key"].as_str().unwrap().to_string();
    assert!(key.len() >= 24);
    let (status, login) = s.post("/_login/apikey", json!({ "key": key }), None);
    assert_eq!((status, login["result"]["_id"].as_str()), (200, Some("bot")), "{login}");
    assert_error(
        &s.post("/_login/apikey", json!({ "key": "x".repeat(30) }), None),
        401,
        "plugin.strategy.missing_user",
    );
    let info = s.get("/strategies/apikey", Some(&admin)).1["result"].clone();
    assert!(info["counters"]["ok"].as_u64().unwrap() >= 1, "{info}");
    assert!(info["counters"]["rejected"].as_u64().unwrap() >= 1, "{info}");
    // A client-chosen key, at least 24 characters.
    let (status, _) = s.post("/credentials/apikey/admin/_create", json!({ "key": "short" }), Some(&admin));
    assert_eq!(status, 400);
    let chosen = "a-client-chosen-key-of-32-chars!";
    assert_eq!(s.post("/credentials/apikey/admin/_create", json!({ "key": chosen }), Some(&admin)).0, 200);
    assert_eq!(s.post("/_login/apikey", json!({ "key": chosen }), None).1["result"]["_id"], "admin");

    // Restart: still registered, loaded from the compiled cache, logins work.
    s.stop();
    let s = TestServer::start_in(dir.path(), &config);
    let admin = s.token("admin", "admin-password");
    assert_eq!(s.get("/strategies", Some(&admin)).1["result"], json!(["apikey", "local"]));
    assert_eq!(s.post("/_login/apikey", json!({ "key": key }), None).0, 200);

    // Remove: logins are refused; the local strategy cannot be removed.
    assert_eq!(s.call("DELETE", "/strategies/apikey", None, Some(&admin)).0, 200);
    assert_error(&s.post("/_login/apikey", json!({ "key": key }), None), 400, "security.credentials.unknown_strategy");
    assert_error(&s.call("DELETE", "/strategies/local", None, Some(&admin)), 400, "plugin.sandbox.invalid_component");
    s.stop();
    let s = TestServer::start_in(dir.path(), &config);
    let admin = s.token("admin", "admin-password");
    assert_eq!(s.get("/strategies", Some(&admin)).1["result"], json!(["local"]));
    // Registered again (its users go to whatever is uploaded: confirmed with ?replace): the
    // credentials it stored are still there.
    assert_error(
        &s.upload(Some(&admin), "apikey", &component("strategy_apikey"), ""),
        412,
        "plugin.sandbox.replace_unconfirmed",
    );
    s.register(&admin, "apikey", "strategy_apikey", "?replace");
    assert_eq!(s.post("/_login/apikey", json!({ "key": key }), None).1["result"]["_id"], "bot");
}

#[test]
fn hot_swap_keeps_calls_in_flight_on_the_old_version() {
    let s = TestServer::start();
    let admin = s.admin();
    // `slow` reads the clock in a loop: let it make that many host calls.
    s.register(
        &admin,
        "swap",
        "hostile_chaos",
        "?limits=%7B%22cpu_ms%22%3A5000%2C%22wall_ms%22%3A10000%2C%22max_host_calls%22%3A10000000%7D",
    );
    s.user_with(&admin, "mallory", json!({ "swap": {} }));
    let base = s.base.clone();
    // A login that takes ~1.5 s on the old version…
    let slow = std::thread::spawn(move || {
        let body = json!({ "mode": "slow", "ms": 1500, "kuid": "mallory" });
        let resp = reqwest::blocking::Client::new().post(format!("{base}/_login/swap")).json(&body).send().unwrap();
        resp.json::<Value>().unwrap()
    });
    // Wait until it is really running in the sandbox (not a fixed sleep: CI may be loaded)…
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.get("/strategies/swap", Some(&admin)).1["result"]["inFlight"] != 1 {
        assert!(std::time::Instant::now() < deadline, "the slow login never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    // …then replace the strategy by another component.
    let info = s.register(&admin, "swap", "strategy_apikey", "?replace");
    assert_eq!(info["fields"], json!(["key"]));
    let old = slow.join().unwrap();
    assert_eq!(old["result"]["_id"], "mallory", "the call in flight finished on the old version: {old}");
    // New calls get the new version.
    let got = s.post("/_login/swap", json!({ "mode": "ok", "kuid": "mallory" }), None);
    assert_error(&got, 401, "plugin.strategy.missing_user");
}

#[test]
fn totp_as_a_second_factor() {
    let s = TestServer::start();
    let admin = s.admin();
    s.register(&admin, "totp", "strategy_totp", "");
    s.user(&admin, "alice", "alice", "pw");
    let alice = s.token("alice", "pw");
    let (status, enrolled) = s.post("/_me/credentials/totp/_create", json!({ "algorithm": "SHA256" }), Some(&alice));
    assert_eq!(status, 200, "{enrolled}");
    let secret = enrolled["result"]["secret"].as_str().unwrap();
    assert!(enrolled["result"]["otpauth"].as_str().unwrap().starts_with("otpauth://totp/"));
    let code = totp_now(secret, "SHA256");
    let (status, login) = s.post("/_login/totp", json!({ "kuid": "alice", "code": code }), None);
    assert_eq!((status, login["result"]["_id"].as_str()), (200, Some("alice")), "{login}");
    // The same code again: replay refused.
    assert_error(
        &s.post("/_login/totp", json!({ "kuid": "alice", "code": code }), None),
        401,
        "plugin.strategy.missing_user",
    );
    assert_error(
        &s.post("/_login/totp", json!({ "kuid": "alice", "code": "000000" }), None),
        401,
        "plugin.strategy.missing_user",
    );
}

/// RFC 6238 with the host's view of time, computed independently of the strategy.
fn totp_now(secret_b32: &str, alg: &str) -> String {
    let key = base32_decode(secret_b32);
    let step =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 30).to_be_bytes();
    let algorithm = match alg {
        "SHA256" => ring::hmac::HMAC_SHA256,
        "SHA512" => ring::hmac::HMAC_SHA512,
        _ => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
    };
    let mac = ring::hmac::sign(&ring::hmac::Key::new(algorithm, &key), &step);
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    format!("{:06}", bin % 1_000_000)
}

fn base32_decode(s: &str) -> Vec<u8> {
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.trim_end_matches('=').chars() {
        let v = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".find(c.to_ascii_uppercase()).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[test]
fn the_template_and_the_python_strategy_log_users_in() {
    // CPython compiles in ~13 s on an idle 2-core machine: room for a loaded one.
    let s = TestServer::with_config("[limits]\nmemory_bytes = 33554432\ncompile_ms = 180000\n");
    let admin = s.admin();
    s.register(&admin, "pin", "strategy_template", "");
    s.user_with(&admin, "alice", json!({ "pin": { "username": "alice", "pin": "1234" } }));
    assert_eq!(s.post("/_login/pin", json!({ "username": "alice", "pin": "1234" }), None).1["result"]["_id"], "alice");
    assert_error(
        &s.post("/_login/pin", json!({ "username": "alice", "pin": "9999" }), None),
        401,
        "plugin.strategy.missing_user",
    );

    // The Python strategy (componentize-py) passes the same login checks as the Rust local.
    let info = s.register(&admin, "pylocal", "python_local", "");
    assert_eq!(info["fields"], json!(["username", "password"]));
    local_login_checks(&s, &admin, "pylocal");
}

/// What every `local` (Rust, Python, JavaScript) answers alike, for the strategy registered as
/// `name`: a login (with `expiresIn`), a wrong password and an unknown user given the same
/// error for one host hash each, a taken username refused with 412.
fn local_login_checks(s: &TestServer, admin: &str, name: &str) {
    s.user_with(admin, "bob", json!({ name: { "username": "bob", "password": "pw-bob" } }));
    let (status, login) =
        s.post(&format!("/_login/{name}?expiresIn=2h"), json!({ "username": "bob", "password": "pw-bob" }), None);
    assert_eq!(
        (status, login["result"]["_id"].as_str(), login["result"]["ttl"].as_i64()),
        (200, Some("bob"), Some(7_200_000))
    );
    let hashed = |body: Value| {
        let before = s.app.hasher.computed();
        let got = s.post(&format!("/_login/{name}"), body, None);
        (got, s.app.hasher.computed() - before)
    };
    let (wrong, wrong_hashes) = hashed(json!({ "username": "bob", "password": "nope" }));
    let (unknown, unknown_hashes) = hashed(json!({ "username": "ghost", "password": "nope" }));
    assert_error(&wrong, 401, "plugin.strategy.missing_user");
    assert_eq!(wrong.1["error"], unknown.1["error"]);
    assert_eq!(wrong.1["error"]["message"], "wrong username or password");
    assert_eq!((wrong_hashes, unknown_hashes), (1, 1));
    let taken = s.post(
        "/users/carl/_create",
        json!({ "content": { "profileIds": ["default"] }, "credentials": { name: { "username": "bob", "password": "x" } } }),
        Some(admin),
    );
    assert_error(&taken, 412, "plugin.strategy.precondition");
    assert_eq!(taken.1["error"]["message"], "Login \"bob\" is already used.");
}

#[test]
fn offline_strategy_commands() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_sandgate");
    let wasm =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/strategy/strategy_apikey.wasm");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin).args(args).arg("--data-dir").arg(dir.path()).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, _, err) = run(&["strategy", "add", "keys", wasm.to_str().unwrap(), "--config", "{\"a\":1}"]);
    assert!(ok, "{err}");
    let (ok, out, _) = run(&["strategy", "list"]);
    assert!(ok && out.contains("keys") && out.contains("local"), "{out}");
    let (ok, _, err) = run(&["strategy", "add", "bad", "/etc/hostname"]);
    assert!(!ok && err.contains("not a WebAssembly binary"), "{err}");
    // The server sees it.
    let s = TestServer::start_in(dir.path(), "");
    let admin = s.admin();
    assert_eq!(s.get("/strategies", Some(&admin)).1["result"], json!(["keys", "local"]));
    s.stop();
    let (ok, _, err) = run(&["strategy", "remove", "keys"]);
    assert!(ok, "{err}");
    let (_, out, _) = run(&["strategy", "list"]);
    assert!(!out.contains("keys"), "{out}");
}

/// The JSON query protocol: controller `strategies`, actions register / info / unregister,
/// the component as base64 in `body.wasm`.
#[test]
fn register_over_the_json_query_protocol() {
    use base64::Engine as _;
    let s = TestServer::start();
    let admin = s.admin();
    let wasm = base64::engine::general_purpose::STANDARD.encode(component("strategy_apikey"));
    let query = |action: &str, body: Option<Value>, jwt: Option<&str>| {
        let mut q = json!({ "controller": "strategies", "action": action, "name": "keys" });
        if let Some(b) = body {
            q["body"] = b;
        }
        if let Some(t) = jwt {
            q["jwt"] = json!(t);
        }
        s.post("/_query", q, None)
    };
    assert_error(&query("register", Some(json!({ "wasm": wasm })), None), 401, "security.rights.unauthorized");
    let (status, body) = query("register", Some(json!({ "wasm": wasm, "config": { "a": 1 } })), Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["config"], json!({ "a": 1 }));
    assert_eq!(query("info", None, Some(&admin)).1["result"]["fields"], json!(["key"]));
    let bad = query("register", Some(json!({ "wasm": "not base64!" })), Some(&admin));
    assert_error(&bad, 400, "plugin.sandbox.invalid_component");
    assert_eq!(query("unregister", None, Some(&admin)).0, 200);
    assert_eq!(s.get("/strategies", Some(&admin)).1["result"], json!(["local"]));
}

/// `sandgate strategy check FILE`: the upload's verdict without a server, with the upload's
/// own message when it would be refused.
#[test]
fn the_check_command_answers_what_an_upload_would() {
    let s = TestServer::start();
    let admin = s.admin();
    let (dir, cwd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let check = |name: &str, bytes: &[u8]| {
        let file = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&file, bytes).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sandgate"))
            .args(["strategy", "check"])
            .arg(&file)
            .current_dir(cwd.path())
            .env("SANDGATE_LOG", "error")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The bundled apikey, and the same built against the 0.1.0 contract (`make strategies`).
    let old_apikey = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/strategy-0-1/strategy_apikey.wasm");
    let old_apikey = std::fs::read(&old_apikey).unwrap_or_else(|e| panic!("{}: {e}", old_apikey.display()));
    for (name, bytes, contract, fields) in
        [("apikey", component("strategy_apikey"), "0.2.0", "key"), ("apikey01", old_apikey, "0.1.0", "key")]
    {
        let (code, stdout, stderr) = check(name, &bytes);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.contains(&format!("ok: a sandgate:strategy@{contract} component")), "{stdout}");
        assert!(stdout.contains(&format!("fields: {fields}")), "{stdout}");
    }
    for (name, bytes) in [
        ("core", b"\0asm\x01\0\0\0".to_vec()),
        ("import", component("hostile_extra_import")),
        ("noexport", component("hostile_no_export")),
    ] {
        let upload = s.upload(Some(&admin), name, &bytes, "");
        assert_error(&upload, 400, "plugin.sandbox.invalid_component");
        let message = upload.1["error"]["message"].as_str().unwrap();
        let (code, _, stderr) = check(name, &bytes);
        assert_eq!(code, Some(1), "{name}: {stderr}");
        assert!(stderr.contains(&format!("refused: {message}")), "{name}: {stderr:?} should carry {message:?}");
    }
    // It ran in `cwd`, where a server would keep its data: nothing was written there.
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

/// The JavaScript `local` (strategies/js-local, jco's QuickJS backend, the `sandgate-strategy`
/// SDK) passes the login checks the Rust and Python ones pass, under the default limits.
#[test]
fn the_javascript_strategy_passes_the_local_login_checks() {
    let s = TestServer::start();
    let admin = s.admin();
    let info = s.register(&admin, "jslocal", "js_local", "");
    assert_eq!(info["fields"], json!(["username", "password"]));
    assert_eq!(info["contract"], "0.2.0");
    local_login_checks(&s, &admin, "jslocal");
    // The query string works as passport-local's does.
    assert_eq!(s.post("/_login/jslocal?username=bob&password=pw-bob", json!({}), None).0, 200);
    // The credentials actions: get, update (the old password then refused), delete.
    let (status, got) = s.get("/credentials/jslocal/bob", Some(&admin));
    assert_eq!((status, &got["result"]), (200, &json!({ "kuid": "bob", "username": "bob" })), "{got}");
    let (status, _) =
        s.call("PUT", "/credentials/jslocal/bob/_update", Some(json!({ "password": "pw-new" })), Some(&admin));
    assert_eq!(status, 200);
    assert_eq!(s.post("/_login/jslocal", json!({ "username": "bob", "password": "pw-bob" }), None).0, 401);
    assert_eq!(s.post("/_login/jslocal", json!({ "username": "bob", "password": "pw-new" }), None).0, 200);
    let bad = s.post(
        "/users/dan/_create",
        json!({ "content": { "profileIds": ["default"] }, "credentials": { "jslocal": { "username": "dan", "password": 5 } } }),
        Some(&admin),
    );
    assert_error(&bad, 400, "plugin.strategy.bad_request");
    assert_eq!(s.call("DELETE", "/credentials/jslocal/bob", None, Some(&admin)).0, 200);
    assert_eq!(s.post("/_login/jslocal", json!({ "username": "bob", "password": "pw-new" }), None).0, 401);
}
