//! A hostile strategy for the isolation tests: `verify` misbehaves as `{"mode": "..."}` asks.
//! One component, registered under several names; each test picks its misbehaviour.
//!
//! Modes: `loop`, `memory`, `recursion`, `panic`, `huge` (an 8 MiB answer), `storage-keys` and
//! `storage-bytes` (fill storage until the quota refuses), `argon2` (hash forever), `admin`
//! (claims to be the admin), `kuid` and `ok` (answer the `kuid` field), `slow` (busy for `ms`
//! milliseconds, then answer `kuid`), `wasi` (probe the filesystem, environment and network),
//! `state` (a static counter: a fresh instance per call always answers "1").
//!
//! Everything else is inert: `create` stores nothing and answers `{}`, so `createUser` can link
//! a user to this strategy.

use core::hint::black_box;
use sandgate_strategy::{
    LoginRequest, Result, Strategy, bad_request, crypto, export_strategy, internal, rejected, store,
};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn field(creds: &Value, name: &str) -> Result<String> {
    creds
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad_request(format!("\"{name}\" missing")))
}

/// Recursion the optimizer can't turn into a loop: the frame is used after the call returns.
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(frame[0] + 1).wrapping_add(black_box(frame[31]))
}

/// Writes distinct keys until the host refuses one; returns its error text.
fn fill_storage(prefix: &str, value: &str) -> String {
    let mut i = 0u64;
    loop {
        if let Err(e) = store::set(&format!("{prefix}{i}"), value) {
            return e;
        }
        i += 1;
    }
}

/// The outcome of an operation, as a short text for the `wasi` report.
fn outcome<T: core::fmt::Debug>(result: std::io::Result<T>) -> Value {
    match result {
        Ok(value) => json!(format!("ok: {value:?}")),
        Err(e) => json!(format!("error: {e}")),
    }
}

fn wasi_probe() -> String {
    let read_dir =
        std::fs::read_dir("/").map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>());
    json!({
        "read_dir": outcome(read_dir),
        "passwd": outcome(std::fs::read_to_string("/etc/passwd")),
        "env": std::env::vars().count(),
        "args": std::env::args().count(),
        "tcp": outcome(std::net::TcpStream::connect("127.0.0.1:7512")),
    })
    .to_string()
}

struct Chaos;

impl Strategy for Chaos {
    fn fields() -> Vec<String> {
        vec!["mode".into()]
    }

    fn verify(req: LoginRequest) -> Result<String> {
        let creds: Value = serde_json::from_str(&req.credentials).map_err(|e| bad_request(e.to_string()))?;
        let mode = field(&creds, "mode")?;
        match mode.as_str() {
            "loop" => {
                let mut i = 0u64;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    // Filled, not just reserved: every page is touched.
                    hoard.push(vec![black_box(0xa5u8); 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recursion" => Ok(recurse(0).to_string()),
            "panic" => panic!("chaos panic"),
            "huge" => Ok("x".repeat(8 << 20)),
            "storage-keys" => Err(internal(fill_storage("k", "v"))),
            "storage-bytes" => Err(internal(fill_storage("b", &"y".repeat(60 << 10)))),
            "argon2" => loop {
                black_box(crypto::hash_password(black_box("chaos")));
            },
            "log" => {
                for i in 0..1000 {
                    sandgate_strategy::log::info(&format!("chaos line {i} {}", "z".repeat(4096)));
                }
                Err(rejected("logged"))
            }
            "admin" => Ok("admin".into()),
            "kuid" | "ok" => field(&creds, "kuid"),
            "slow" => {
                let ms = creds.get("ms").and_then(Value::as_u64).ok_or_else(|| bad_request("\"ms\" missing"))?;
                let until = crypto::now_ms().saturating_add(ms);
                while crypto::now_ms() < until {
                    // Spin between clock reads: the host counts crypto calls, and this mode is
                    // about CPU time, not about the call budget.
                    for i in 0..100_000u32 {
                        black_box(i);
                    }
                }
                field(&creds, "kuid")
            }
            // These two report what they saw through the rejection message, which the host
            // hands to the client as is (401 plugin.strategy.missing_user).
            "wasi" => Err(rejected(wasi_probe())),
            "state" => Err(rejected((COUNTER.fetch_add(1, Ordering::Relaxed) + 1).to_string())),
            other => Err(rejected(format!("unknown chaos mode {other:?}"))),
        }
    }

    fn create(_kuid: String, _credentials: String) -> Result<String> {
        Ok("{}".into())
    }

    fn update(_kuid: String, _credentials: String) -> Result<String> {
        Ok("{}".into())
    }

    fn delete(_kuid: String) -> Result<()> {
        Ok(())
    }

    fn exists(_kuid: String) -> bool {
        false
    }
}

export_strategy!(Chaos);
