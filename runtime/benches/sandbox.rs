//! Sandbox micro-benchmark (`make bench`): one `verify` of the `apikey` and `local` strategies
//! through the full per-request cycle (fresh Store, instantiate, call, drop), against the same
//! logic compiled natively here, over the same SQLite store and the same host crypto.
//! Prints medians and p99s; only ratios from one run compare (the machine is shared).
//! Calls are async, as in the server: this runs them on a one-thread tokio runtime, where a
//! call's aftercare (a task of its own) runs when the timed call has returned and yields.

use sandgate::sandbox::bindings::LoginRequest;
use sandgate::sandbox::host::{Overlay, log::Tracing};
use sandgate::sandbox::{Argon2Config, Backends, CallCtx, Limits, PasswordHasher, Sandbox, Strategy};
use sandgate::service::app::StrategyStorage;
use sandgate::store::front::Db;
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
    LoginRequest {
        credentials: credentials.to_string(),
        query: Vec::new(),
        client_ip: Some("127.0.0.1".into()),
        client_binding: String::new(),
    }
}

fn create(rt: &Runtime, sandbox: &Sandbox, db: &Db, s: &Strategy, kuid: &str, creds: &str) -> String {
    let mut overlay = Overlay::default();
    let permit = Arc::new(s.try_admit().unwrap());
    let cx = CallCtx { permit: &permit, overlay: &mut overlay, request_id: "bench", guard: None, report: None };
    let info = rt.block_on(sandbox.calls().create(s, cx, kuid, creds)).unwrap().unwrap();
    rt.block_on(db.commit(sandgate::service::strategy::changes(&overlay))).unwrap();
    info
}

/// One login's sandbox work as the server does it: admission, then the call.
async fn verify(sandbox: &Sandbox, s: &Strategy, req: &LoginRequest) -> String {
    let permit = Arc::new(s.admit().await.unwrap());
    let cx = CallCtx { permit: &permit, overlay: &mut Overlay::default(), request_id: "b", guard: None, report: None };
    match sandbox.calls().verify(s, cx, req).await.unwrap().unwrap() {
        sandgate::sandbox::bindings::Login::User(kuid) => kuid,
        _ => panic!("the benchmarked strategies answer a kuid"),
    }
}

type Runtime = tokio::runtime::Runtime;

/// Lets the aftercare tasks of the calls so far run.
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::new(Arc::new(Sqlite::open(dir.path()).unwrap())));
    let argon2 = Argon2Config::default();
    let mut limits = Limits::default();
    if let Some(bytes) = std::env::var("BENCH_KEEP_RESIDENT").ok().and_then(|v| v.parse().ok()) {
        limits.keep_resident_bytes = bytes;
    }
    let keep = limits.keep_resident_bytes;
    let backends = Backends {
        kv: Arc::new(StrategyStorage(db.clone())),
        network: Arc::new(sandgate::sandbox::host::http::Network::new(false)),
        hasher: Arc::new(PasswordHasher::new(&argon2).unwrap()),
        log: Arc::new(Tracing),
    };
    let sandbox = Sandbox::new(limits, backends, dir.path().join("cache")).unwrap();
    // Installed as the server installs them: their fresh instances are then built ahead.
    let apikey = sandbox.install(
        sandbox.prepare("apikey", &component("strategy_apikey"), "{}", "{}", &Default::default(), None).unwrap(),
    );
    let local = sandbox.install(
        sandbox.prepare("local", &component("strategy_local"), "{}", "{}", &Default::default(), None).unwrap(),
    );
    let key = "bench-key-0123456789-abcdefghijklmnop";
    create(&rt, &sandbox, &db, &apikey, "bot", &format!(r#"{{"key":"{key}"}}"#));
    create(&rt, &sandbox, &db, &local, "alice", r#"{"username":"alice","password":"s3cret"}"#);
    let apikey_req = request(&format!(r#"{{"key":"{key}"}}"#));
    let local_req = request(r#"{"username":"alice","password":"s3cret"}"#);
    assert_eq!(rt.block_on(verify(&sandbox, &apikey, &apikey_req)), "bot");
    assert_eq!(rt.block_on(verify(&sandbox, &local, &local_req)), "alice");

    // The same logic, natively: apikey = sha256(key) → `key:<hex>` → kuid, `kuid:<kuid>` → the
    // fingerprint, constant-time compare; local = parse, `user:<name>`, argon2id verify. Over
    // the same store front as the sandbox's storage (its value cache).
    let read = |strategy: &str, key: String| rt.block_on(db.kv_get(strategy, &key)).unwrap();
    let native_apikey = || {
        let v: serde_json::Value = serde_json::from_str(&apikey_req.credentials).unwrap();
        let key = v["key"].as_str().unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        // strategies/apikey keeps raw strings: `key:<hex>` → kuid, `kuid:<kuid>` → hex.
        let kuid = read("apikey", format!("key:{hex}")).unwrap();
        let stored = read("apikey", format!("kuid:{kuid}")).unwrap();
        assert!(bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), hex.as_bytes())));
        kuid
    };
    assert_eq!(native_apikey(), "bot");
    let hasher = PasswordHasher::new(&argon2).unwrap();
    let native_local = || {
        let v: serde_json::Value = serde_json::from_str(&local_req.credentials).unwrap();
        let user = v["username"].as_str().unwrap();
        let acc: serde_json::Value = serde_json::from_str(&read("local", format!("user:{user}")).unwrap()).unwrap();
        assert!(hasher.verify(v["password"].as_str().unwrap(), acc["hash"].as_str().unwrap()));
        acc["kuid"].as_str().unwrap().to_string()
    };
    assert_eq!(native_local(), "alice");

    println!("Sandbox micro-benchmark: {n} iterations (local: {}), medians and p99 in µs", n / 50);
    println!("machine: {} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), cpu_model());
    // Back to back: everything a call costs, the aftercare included.
    let sb_apikey = measure(n, 500, || {
        rt.block_on(async {
            verify(&sandbox, &apikey, &apikey_req).await;
            settle().await;
        })
    });
    // The request path: what a login waits for (a ready fresh instance, the call); the
    // aftercare (drop, next instance) runs after the response, outside the timed part.
    let mut path = Vec::with_capacity(n);
    for i in 0..n + 500 {
        let took = rt.block_on(async {
            let t = Instant::now();
            verify(&sandbox, &apikey, &apikey_req).await;
            let took = t.elapsed();
            settle().await;
            took
        });
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
        rt.block_on(async {
            verify(&sandbox, &local, &local_req).await;
            settle().await;
        })
    });
    let nat_local = measure(ln, 5, || {
        native_local();
    });
    let (mut inst, mut call, mut drop_) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 500 {
        let (a, b, c, ok) = rt.block_on(sandbox.calls().timed_verify(&apikey, &apikey_req));
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
