//! A hostile strategy for the isolation tests: `verify` misbehaves as `{"mode": "..."}` asks.
//! One component, registered under several names; each test picks its misbehaviour.
//!
//! Modes: `loop`, `memory`, `recursion`, `panic`, `huge` (an 8 MiB answer), `storage-keys` and
//! `storage-bytes` (fill storage until the quota refuses), `argon2` (hash forever), `admin`
//! (claims to be the admin), `kuid` and `ok` (answer the `kuid` field), `slow` (busy for `ms`
//! milliseconds, then answer `kuid`), `wasi` (probe the filesystem, environment and network),
//! `state` (a static counter: a fresh instance per call always answers "1").
//!
//! Waiting and the host's own resources: `sleep` (`std::thread::sleep` for `ms`, through WASI),
//! `pending` (64 KiB writes until the host refuses one), `big-key` (a 4 MiB storage key),
//! `random` (64 MiB from `wasi:random`), `host-random` (1 MiB from `crypto.random-bytes`),
//! `wasi-calls` (100,000 WASI clock reads), `clock` (reports the clocks' resolution and the
//! smallest step seen), `log-forge` (a log line with line breaks in it), `many-sleeps` (many
//! sleeps waited on at once, then a busy loop).
//!
//! Contract 0.2.0: `redirect` (answers a redirect to `url`), `provision` (asks the host to
//! provision a newcomer with `credentials` and `content`, JSON texts), `remember` (an expiring
//! key: `value` for `ttl_ms`, answered with a redirect so it is committed), `recall` (reports
//! it). Outbound HTTP
//! (`outbound.rs`): `fetch` (GET `url`, reports the outcome), `post` (POST `bytes` bytes to `url`), `fetch-loop` (GET `url` until
//! the host says no, reports how many got through).
//!
//! Everything else is inert: `create` stores nothing and answers `{}`, so `createUser` can link
//! a user to this strategy. Two ways to arm it, for tests of what the host does around calls:
//! `validate` with `{"arm": true}` stores a flag that makes `fields` sleep for an hour, and the
//! config `{"fail_delete": true}` makes `delete` fail. The config `{"sleep_at_start_ms": N}`
//! makes every instance sleep while it is being made (a constructor).

use core::hint::black_box;
mod outbound;

use sandgate_strategy::{
    Login, LoginRequest, Newcomer, Result, Strategy, bad_request, crypto, export_strategy, internal, rejected, store,
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

/// The clocks as a strategy sees them: declared resolutions, and the smallest non-zero step
/// between consecutive reads of the monotonic clock.
fn clock_report() -> String {
    let mut smallest = u64::MAX;
    let mut last = wasip2::clocks::monotonic_clock::now();
    for _ in 0..300 {
        let now = wasip2::clocks::monotonic_clock::now();
        if now > last {
            smallest = smallest.min(now - last);
        }
        last = now;
        for i in 0..20_000u32 {
            black_box(i);
        }
    }
    let wall = wasip2::clocks::wall_clock::now();
    json!({
        "monotonic_resolution_ns": wasip2::clocks::monotonic_clock::resolution(),
        "wall_resolution_ns": wasip2::clocks::wall_clock::resolution().nanoseconds,
        "smallest_step_ns": smallest,
        "wall_subsec_ns": wall.nanoseconds,
    })
    .to_string()
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Config {
    fail_delete: bool,
    /// Sleep this long while the instance is being made (a constructor), before any call.
    sleep_at_start_ms: u64,
}

/// Runs when an instance is made (`_initialize`, before any export is called).
extern "C" fn at_start() {
    let config: Config = sandgate_strategy::config_json().unwrap_or_default();
    if config.sleep_at_start_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(config.sleep_at_start_ms));
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static AT_START: extern "C" fn() = at_start;

struct Chaos;

impl Strategy for Chaos {
    fn fields() -> Vec<String> {
        if store::get("armed").is_some() {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        vec!["mode".into()]
    }

    fn validate(_kuid: String, credentials: String, _is_update: bool) -> Result<()> {
        let creds: Value = serde_json::from_str(&credentials).map_err(|e| bad_request(e.to_string()))?;
        if creds.get("arm") == Some(&Value::Bool(true)) {
            store::set("armed", "1").map_err(internal)?;
        }
        if creds.get("refuse") == Some(&Value::Bool(true)) {
            return Err(bad_request("chaos refuses these credentials"));
        }
        // A slow check (a strategy asking a remote service): waits, not CPU.
        if let Some(ms) = creds.get("sleep_ms").and_then(Value::as_u64) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        Ok(())
    }

    fn verify(req: LoginRequest) -> Result<Login> {
        let creds: Value = serde_json::from_str(&req.credentials).map_err(|e| bad_request(e.to_string()))?;
        match field(&creds, "mode")?.as_str() {
            "redirect" => Ok(Login::Redirect(field(&creds, "url")?)),
            "provision" => Ok(Login::Provision(Newcomer {
                credentials: field(&creds, "credentials")?,
                content: field(&creds, "content").unwrap_or_else(|_| "{}".into()),
            })),
            "remember" => {
                let ttl = creds.get("ttl_ms").and_then(Value::as_u64).unwrap_or(1000);
                store::set_expiring("remembered", &field(&creds, "value")?, ttl).map_err(internal)?;
                // A redirect is a success: what the call wrote is committed.
                Ok(Login::Redirect("/remembered".into()))
            }
            "recall" => Err(rejected(format!("remembered={:?}", store::get("remembered")))),
            "fetch" => Err(rejected(outbound::fetch(&field(&creds, "url")?))),
            "fetch-loop" => Err(rejected(outbound::fetch_loop(&field(&creds, "url")?))),
            "post" => {
                let bytes = creds.get("bytes").and_then(Value::as_u64).unwrap_or(0) as usize;
                Err(rejected(outbound::post(&field(&creds, "url")?, bytes)))
            }
            _ => kuid_modes(req).map(Login::User),
        }
    }

    fn create(kuid: String, credentials: String) -> Result<String> {
        // Fails after writing: what it wrote must go with the user it was creating.
        if serde_json::from_str::<Value>(&credentials).is_ok_and(|c| c.get("fail_create") == Some(&Value::Bool(true))) {
            store::set("half-made", &kuid).map_err(internal)?;
            return Err(internal("chaos fails half-way through creating"));
        }
        Ok("{}".into())
    }

    fn update(_kuid: String, _credentials: String) -> Result<String> {
        Ok("{}".into())
    }

    fn delete(_kuid: String) -> Result<()> {
        let config: Config = sandgate_strategy::config_json()?;
        if config.fail_delete { Err(internal("chaos refuses to delete anyone")) } else { Ok(()) }
    }

    fn exists(_kuid: String) -> bool {
        false
    }
}

export_strategy!(Chaos);

/// The modes that answer a kuid, or misbehave before answering anything.
fn kuid_modes(req: LoginRequest) -> Result<String> {
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
        "sleep" => {
            let ms = creds.get("ms").and_then(Value::as_u64).ok_or_else(|| bad_request("\"ms\" missing"))?;
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Err(rejected("slept"))
        }
        "pending" => Err(internal(fill_storage("p", &"y".repeat(64 << 10)))),
        "big-key" => {
            black_box(store::get(&"k".repeat(4 << 20)));
            Err(rejected("the host read a 4 MiB key"))
        }
        "random" => {
            let bytes = wasip2::random::random::get_random_bytes(64 << 20);
            Err(rejected(format!("the host gave {} random bytes", bytes.len())))
        }
        "host-random" => {
            let bytes = crypto::random_bytes(1 << 20);
            Err(rejected(format!("the host gave {} random bytes", bytes.len())))
        }
        "wasi-calls" => {
            for _ in 0..100_000 {
                black_box(std::time::SystemTime::now());
            }
            Err(rejected("100000 WASI calls went through"))
        }
        "clock" => Err(rejected(clock_report())),
        "many-sleeps" => {
            // 30 polls of 100 sleeps of 10 ms each (300 ms of waiting, 30 s if every sleep
            // were counted), then a busy loop: the CPU budget must stop it.
            for _ in 0..30 {
                let sleeps: Vec<_> =
                    (0..100).map(|_| wasip2::clocks::monotonic_clock::subscribe_duration(10_000_000)).collect();
                let all: Vec<&wasip2::io::poll::Pollable> = sleeps.iter().collect();
                black_box(wasip2::io::poll::poll(&all));
            }
            let mut i = 0u64;
            loop {
                i = black_box(i.wrapping_add(1));
            }
        }
        "log-forge" => {
            sandgate_strategy::log::info("first line\nFORGED-LOG-LINE from a strategy\r\u{1b}[2K");
            Err(rejected("logged"))
        }
        other => Err(rejected(format!("unknown chaos mode {other:?}"))),
    }
}
