//! Sandbox micro-benchmark (`make bench`): one `verify` of the `apikey` and `local` strategies
//! through the full per-request cycle (fresh Store, instantiate, call, drop), against the same
//! logic compiled natively here, over the same SQLite store and the same host crypto.
//! Prints medians and p99s; only ratios from one run compare (the machine is shared).

use sandgate::sandbox::bindings::LoginRequest;
use sandgate::sandbox::host::{Overlay, log::Tracing};
use sandgate::sandbox::{Argon2Config, Backends, CallCtx, Limits, PasswordHasher, Sandbox, Strategy};
use sandgate::service::app::StrategyStorage;
use sandgate::store::Store;
use sandgate::store::sqlite::Sqlite;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn component(file: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip2/strategy")
        .join(format!("{file}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run make strategies)", path.display()))
}

struct Stats {
    median: f64,
    p99: f64,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    Stats { median: us(samples[samples.len() / 2]), p99: us(samples[samples.len() * 99 / 100]) }
}

fn measure(n: usize, warmup: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..warmup {
        f();
    }
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    stats(samples)
}

fn request(credentials: &str) -> LoginRequest {
    LoginRequest { credentials: credentials.to_string(), query: Vec::new(), client_ip: Some("127.0.0.1".into()) }
}

fn create(sandbox: &Sandbox, store: &dyn Store, s: &Strategy, kuid: &str, creds: &str) -> String {
    let mut overlay = Overlay::default();
    let permit = s.try_admit().unwrap();
    let cx = CallCtx { permit: &permit, overlay: &mut overlay, request_id: "bench", guard: None };
    let info = sandbox.calls().create(s, cx, kuid, creds).unwrap().unwrap();
    store.commit(&sandgate::service::strategy::changes(&overlay)).unwrap();
    info
}

/// One login's sandbox work as the server does it: admission, then the call.
fn verify(sandbox: &Sandbox, s: &Strategy, req: &LoginRequest) -> String {
    let permit = s.try_admit().unwrap();
    let cx = CallCtx { permit: &permit, overlay: &mut Overlay::default(), request_id: "b", guard: None };
    sandbox.calls().verify(s, cx, req).unwrap().unwrap()
}

fn main() {
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(Sqlite::open(dir.path()).unwrap());
    let store: Arc<dyn Store> = sqlite.clone();
    let argon2 = Argon2Config::default();
    let mut limits = Limits::default();
    if let Some(bytes) = std::env::var("BENCH_KEEP_RESIDENT").ok().and_then(|v| v.parse().ok()) {
        limits.keep_resident_bytes = bytes;
    }
    let keep = limits.keep_resident_bytes;
    let backends = Backends {
        kv: Arc::new(StrategyStorage(store.clone())),
        hasher: Arc::new(PasswordHasher::new(&argon2).unwrap()),
        log: Arc::new(Tracing),
    };
    let sandbox = Sandbox::new(limits, backends, dir.path().join("cache")).unwrap();
    let apikey = sandbox.prepare("apikey", &component("strategy_apikey"), "{}", "{}", None).unwrap();
    let local = sandbox.prepare("local", &component("strategy_local"), "{}", "{}", None).unwrap();
    let key = "bench-key-0123456789-abcdefghijklmnop";
    create(&sandbox, &*store, &apikey, "bot", &format!(r#"{{"key":"{key}"}}"#));
    create(&sandbox, &*store, &local, "alice", r#"{"username":"alice","password":"s3cret"}"#);
    let apikey_req = request(&format!(r#"{{"key":"{key}"}}"#));
    let local_req = request(r#"{"username":"alice","password":"s3cret"}"#);
    assert_eq!(verify(&sandbox, &apikey, &apikey_req), "bot");
    assert_eq!(verify(&sandbox, &local, &local_req), "alice");

    // The same logic, natively: apikey = sha256(key) → `key:<hex>` → kuid, `kuid:<kuid>` → the
    // fingerprint, constant-time compare; local = parse, `user:<name>`, argon2id verify.
    let native_apikey = || {
        let v: serde_json::Value = serde_json::from_str(&apikey_req.credentials).unwrap();
        let key = v["key"].as_str().unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        // strategies/apikey keeps raw strings: `key:<hex>` → kuid, `kuid:<kuid>` → hex.
        let kuid = store.kv_get("apikey", &format!("key:{hex}")).unwrap().unwrap();
        let stored = store.kv_get("apikey", &format!("kuid:{kuid}")).unwrap().unwrap();
        assert!(bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), hex.as_bytes())));
        kuid
    };
    assert_eq!(native_apikey(), "bot");
    let hasher = PasswordHasher::new(&argon2).unwrap();
    let native_local = || {
        let v: serde_json::Value = serde_json::from_str(&local_req.credentials).unwrap();
        let user = v["username"].as_str().unwrap();
        let acc: serde_json::Value =
            serde_json::from_str(&store.kv_get("local", &format!("user:{user}")).unwrap().unwrap()).unwrap();
        assert!(hasher.verify(v["password"].as_str().unwrap(), acc["hash"].as_str().unwrap()));
        acc["kuid"].as_str().unwrap().to_string()
    };
    assert_eq!(native_local(), "alice");

    println!("Sandbox micro-benchmark: {n} iterations (local: {}), medians and p99 in µs", n / 50);
    println!("machine: {} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), cpu_model());
    // Back to back: everything a call costs, the aftercare included.
    let sb_apikey = measure(n, 500, || {
        verify(&sandbox, &apikey, &apikey_req);
        sandbox.after_response();
    });
    // The request path: what a login waits for (a ready fresh instance, the call); the
    // aftercare (drop, next instance) runs after the response, outside the timed part.
    let mut path = Vec::with_capacity(n);
    for i in 0..n + 500 {
        let t = Instant::now();
        verify(&sandbox, &apikey, &apikey_req);
        let took = t.elapsed();
        sandbox.after_response();
        if i >= 500 {
            path.push(took);
        }
    }
    let sb_paced = stats(path);
    let nat_apikey = measure(n, 500, || {
        native_apikey();
    });
    // BENCH_SKIP_LOCAL=1 leaves argon2 out (for profiling the sandbox alone).
    let ln = if std::env::var_os("BENCH_SKIP_LOCAL").is_some() { 3 } else { (n / 50).max(20) };
    let sb_local = measure(ln, 5, || {
        verify(&sandbox, &local, &local_req);
    });
    let nat_local = measure(ln, 5, || {
        native_local();
    });
    let (mut inst, mut call, mut drop_) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 500 {
        let (a, b, c, ok) = sandbox.calls().timed_verify(&apikey, &apikey_req);
        assert!(ok);
        if i >= 500 {
            inst.push(a);
            call.push(b);
            drop_.push(c);
        }
    }
    let (inst, call, drop_) = (stats(inst), stats(call), stats(drop_));
    let row = |name: &str, s: &Stats| println!("  {name:<44} median {:>9.1}   p99 {:>9.1}", s.median, s.p99);
    println!("  (linear_memory_keep_resident = {keep} bytes, 2 fresh instances kept ready per strategy)");
    row("apikey verify, sandboxed, full cost per call", &sb_apikey);
    row("apikey verify, sandboxed, request path", &sb_paced);
    row("apikey verify, native", &nat_apikey);
    println!(
        "  {:<44} {:.1}x native (+{:.1} µs)",
        "  ratio sandboxed/native",
        sb_apikey.median / nat_apikey.median,
        sb_apikey.median - nat_apikey.median
    );
    row("local verify, sandboxed (argon2id inside)", &sb_local);
    row("local verify, native", &nat_local);
    println!("  {:<44} {:.3}x native", "  ratio sandboxed/native", sb_local.median / nat_local.median);
    row("apikey phase: new Store + instantiate", &inst);
    row("apikey phase: call verify", &call);
    row("apikey phase: drop Store", &drop_);
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
