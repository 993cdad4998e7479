//! The `sandgate` binary as an operator runs it: configuration from the environment and a
//! TOML file, start-up errors that name the bad key, and a restart after a hard kill that
//! keeps users, the generated secret and therefore the tokens already handed out.

use serde_json::{Value, json};
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sandgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sandgate"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_healthy(child: &mut Child, base: &str) {
    let client = reqwest::blocking::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("sandgate exited ({status}) before being healthy:\n{err}");
        }
        if client.get(format!("{base}/_healthcheck")).send().is_ok_and(|r| r.status() == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("sandgate not healthy within 60 s");
}

fn post(base: &str, path: &str, body: Value, token: Option<&str>) -> Value {
    let mut req = reqwest::blocking::Client::new().post(format!("{base}{path}")).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().unwrap().json().unwrap()
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("[tokens]\nexpiress_in = \"1h\"\n", "expiress_in"),
        ("[tokens]\nexpires_in = \"one hour\"\n", "tokens.expires_in"),
        ("[limits]\nmemory_bytes = 0\n", "limits.memory_bytes"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = sandgate()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{text:?}: stderr does not name {key}:\n{stderr}");
    }
    let out = sandgate().args(["serve", "--config", "/nonexistent/sandgate.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/sandgate.toml"));
}

#[test]
fn environment_configures_and_a_hard_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("sandgate.toml");
    std::fs::write(&config, "[tokens]\nexpires_in = \"2h\"\n").unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let start = || {
        sandgate()
            .arg("serve")
            .env("SANDGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("SANDGATE_DATA_DIR", &data)
            .env("SANDGATE_CONFIG", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut child = start();
    wait_healthy(&mut child, &base);
    let admin = post(
        &base,
        "/_createFirstAdmin/admin",
        json!({ "credentials": { "local": { "username": "admin", "password": "pw" } } }),
        None,
    );
    assert_eq!(admin["status"], 200, "{admin}");
    let login = post(&base, "/_login/local", json!({ "username": "admin", "password": "pw" }), None);
    assert_eq!(login["result"]["ttl"], 7_200_000, "tokens.expires_in from SANDGATE_CONFIG");
    let token = login["result"]["jwt"].as_str().unwrap().to_string();
    assert!(data.join("sandgate.db").exists(), "SANDGATE_DATA_DIR used");

    child.kill().unwrap(); // SIGKILL: no clean shutdown
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    child.wait().unwrap();
    assert!(err.contains("generated seed"), "the generated-secret warning is printed:\n{err}");

    let mut child = start();
    wait_healthy(&mut child, &base);
    let me: Value =
        reqwest::blocking::Client::new().get(format!("{base}/_me")).bearer_auth(&token).send().unwrap().json().unwrap();
    assert_eq!(me["result"]["_id"], "admin", "the token survives a restart (secret persisted): {me}");
    let again = post(&base, "/_login/local", json!({ "username": "admin", "password": "pw" }), None);
    assert_eq!(again["status"], 200);
    child.kill().unwrap();
    child.wait().unwrap();
}
