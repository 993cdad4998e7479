//! `sandgate strategy run`: each bundled strategy's example cases (`strategies/*/cases.json`,
//! the ones the README points authors to) run as the server would run them, their
//! expectations met, and what each call cost reported; the hostile component's limit hits
//! named by their `limits.*` keys.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs FILE on CASES with `--json`: the exit code, one JSON object per call, and stderr.
fn run(component: &str, cases: &Path, extra: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let wasm = root().join("target/wasm32-wasip2/strategy").join(format!("{component}.wasm"));
    assert!(wasm.exists(), "{}: run `make strategies` first", wasm.display());
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sandgate"))
        .args(["strategy", "run"])
        .arg(&wasm)
        .arg("--calls")
        .arg(cases)
        .arg("--json")
        .args(extra)
        .current_dir(cwd.path())
        .env("SANDGATE_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0, "nothing written where it ran");
    (out.status.code(), lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn cases_of(dir: &str) -> PathBuf {
    root().join("strategies").join(dir).join("cases.json")
}

#[test]
fn every_bundled_strategys_examples_run_as_expected() {
    for (dir, component) in [
        ("local", "strategy_local"),
        ("apikey", "strategy_apikey"),
        ("totp", "strategy_totp"),
        ("oidc", "strategy_oidc"),
        ("template", "strategy_template"),
        ("js-local", "js_local"),
        ("python-local", "python_local"),
    ] {
        let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(cases_of(dir)).unwrap()).unwrap();
        // CPython starts with more memory than the default cap (README: raise it to 32 MiB),
        // which a strategy's own limits cannot pass: the server's configuration raises it.
        let server = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(server.path(), "[limits]\nmemory_bytes = 33554432\ncompile_ms = 180000\n").unwrap();
        let python = ["--server-config", server.path().to_str().unwrap()];
        let extra: &[&str] = if dir == "python-local" { &python } else { &[] };
        let (code, ran, stderr) = run(component, &cases_of(dir), extra);
        assert_eq!(code, Some(0), "{dir}: {stderr}");
        assert_eq!(ran.len(), cases.len(), "{dir}: one line per call");
        for (case, one) in cases.iter().zip(&ran) {
            assert_eq!(one["call"], case["call"]);
            if case.get("expect").is_some() {
                assert_eq!(one["expected"], true, "{dir}: {one}");
            }
            // What it cost, measured by the host: every call ran in an instance of its own.
            assert!(one["wall_ms"].as_f64().unwrap() > 0.0, "{dir}: {one}");
            assert!(one["peak_memory_bytes"].as_u64().unwrap() > 0, "{dir}: {one}");
        }
    }
}

#[test]
fn the_local_examples_report_what_each_call_did() {
    let (code, ran, stderr) = run("strategy_local", &cases_of("local"), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let create = ran.iter().find(|r| r["call"] == "create").unwrap();
    assert_eq!(create["answer"]["username"], "alice", "{create}");
    assert_eq!(create["host_calls"]["crypto"], 1, "one password hash: {create}");
    assert!(create["host_calls"]["storage"].as_u64().unwrap() >= 2, "{create}");
    assert!(create["storage_bytes_written"].as_u64().unwrap() > 0, "{create}");
    // The calls after it read what it wrote: the scratch store is kept between calls.
    let logins: Vec<&Value> = ran.iter().filter(|r| r["call"] == "verify").collect();
    assert_eq!(logins[0]["answer"]["kuid"], "alice");
    assert_eq!(logins[1]["error"]["id"], "plugin.strategy.missing_user");
    assert_eq!(logins[1]["error"]["status"], 401);
    assert_eq!(logins[1]["storage_bytes_written"], 0);
}

#[test]
fn the_hostile_component_shows_which_limit_each_call_hits() {
    let (code, ran, stderr) = run("hostile_chaos", &cases_of("hostile/chaos"), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let limits: Vec<Value> = ran.iter().map(|r| r["limit"].clone()).collect();
    assert_eq!(
        limits,
        ["limits.cpu_ms", "limits.memory_bytes", "limits.max_return_bytes", "", "limits.max_host_calls", "", "", ""]
            .map(|l| if l.is_empty() { Value::Null } else { Value::from(l) })
    );
    // A create that wrote, then failed: nothing of it was kept, nothing is reported written.
    let half = &ran[6];
    assert_eq!((&half["call"], &half["error"]["id"]), (&json!("create"), &json!("plugin.runtime.unexpected_error")));
    assert_eq!(half["storage_bytes_written"], 0, "{half}");
    assert_eq!(half["host_calls"]["storage"], 1, "it did write: {half}");
    // The CPU budget given on the command line is the one it runs into.
    let cases = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cases.path(), r#"[{"call":"verify","credentials":{"mode":"loop"}}]"#).unwrap();
    let (code, ran, _) = run("hostile_chaos", cases.path(), &["--limits", r#"{"cpu_ms":20}"#]);
    assert_eq!(code, Some(0));
    assert!(ran[0]["error"]["message"].as_str().unwrap().contains("CPU budget of 20 ms"), "{}", ran[0]);
    assert!(ran[0]["cpu_ms"].as_f64().unwrap() >= 20.0, "{}", ran[0]);
}

#[test]
fn an_expectation_missed_or_a_bad_cases_file_exits_1() {
    let cases = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(cases.path(), r#"[{"call":"fields","expect":{"answer":["nope"]}}]"#).unwrap();
    let (code, ran, stderr) = run("strategy_apikey", cases.path(), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(ran[0]["expected"], false);
    assert!(stderr.contains("1 of 1 calls not as expected"), "{stderr}");
    for (text, needle) in [
        (r#"{"call":"fields"}"#, "JSON array"),
        (r#"[{"call":"fly"}]"#, "unknown call \"fly\""),
        (r#"[{"call":"create","kuid":"a"}]"#, "needs \"credentials\""),
        (r#"[{"call":"fields","expct":{}}]"#, "unknown field `expct`"),
    ] {
        std::fs::write(cases.path(), text).unwrap();
        let (code, _, stderr) = run("strategy_apikey", cases.path(), &[]);
        assert_eq!(code, Some(1), "{text}");
        assert!(stderr.contains(needle), "{text}: {stderr}");
    }
}

#[test]
fn the_text_output_shows_each_answer_and_its_cost() {
    let wasm = root().join("target/wasm32-wasip2/strategy/strategy_apikey.wasm");
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sandgate"))
        .args(["strategy", "run"])
        .arg(&wasm)
        .arg("--calls")
        .arg(cases_of("apikey"))
        .current_dir(cwd.path())
        .env("SANDGATE_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("1. fields: ok [\"key\"] (as expected)\n   cpu "), "{text}");
    assert!(text.contains("(limits.cpu_ms), wall "), "{text}");
    assert!(
        text.contains("4. verify: error 401 plugin.strategy.missing_user: invalid API key (as expected)"),
        "{text}"
    );
    assert!(text.contains("host calls: storage "), "{text}");
}
