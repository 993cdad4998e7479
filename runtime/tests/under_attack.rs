//! Infinite loops hammered in parallel while good clients use the server. Alone in its test
//! binary, so no other test's server shares the machine while latencies are measured; the
//! bounds are still generous (the machine is shared) and only catch a server that stops
//! answering: speed itself is measured by `make bench`.

mod common;

use common::TestServer;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Two infinite-loop strategies, each hammered from 4 connections: every loop runs into its
/// CPU budget, yielding its thread at every epoch tick meanwhile, so apikey logins keep
/// answering and the health check stays quick.
#[test]
fn two_loop_strategies_from_8_connections_leave_the_server_responsive() {
    let s = TestServer::start();
    let admin = s.admin();
    s.register(&admin, "loop-a", "hostile_chaos", "");
    s.register(&admin, "loop-b", "hostile_chaos", "");
    s.register(&admin, "apikey", "strategy_apikey", "");
    s.user_with(&admin, "bot", json!({ "apikey": { "key": "under-attack-0123456789abcdef" } }));
    let login = |s: &TestServer| s.post("/_login/apikey", json!({ "key": "under-attack-0123456789abcdef" }), None);
    assert_eq!(login(&s).0, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let stopped_loops = Arc::new(AtomicU32::new(0));
    let attackers: Vec<_> = (0..8)
        .map(|i| {
            let (base, stop, stopped_loops) = (s.base.clone(), stop.clone(), stopped_loops.clone());
            let name = if i % 2 == 0 { "loop-a" } else { "loop-b" };
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let r: Value = client
                        .post(format!("{base}/_login/{name}"))
                        .json(&json!({ "mode": "loop" }))
                        .send()
                        .unwrap()
                        .json()
                        .unwrap();
                    assert_eq!(r["error"]["id"], "plugin.sandbox.limit_exceeded", "{r}");
                    stopped_loops.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Until every connection has had loops running.
    while stopped_loops.load(Ordering::Relaxed) < 8 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (mut logins, mut health) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let t = Instant::now();
        let (status, body) = login(&s);
        logins.push(t.elapsed());
        assert_eq!(status, 200, "{body}");
        let t = Instant::now();
        let (status, body) = s.get("/_healthcheck", None);
        health.push(t.elapsed());
        assert_eq!(status, 200, "{body}");
    }
    stop.store(true, Ordering::Relaxed);
    attackers.into_iter().for_each(|t| t.join().unwrap());
    let loops = stopped_loops.load(Ordering::Relaxed);
    let (login_max, health_max) = (*logins.iter().max().unwrap(), *health.iter().max().unwrap());
    let (login_median, health_median) = (median(logins), median(health));
    println!(
        "under attack ({loops} loops stopped): apikey login median {login_median:?} max {login_max:?}; \
         health check median {health_median:?} max {health_max:?}"
    );
    assert!(loops >= 16, "the attack ran: {loops} loops");
    // Generous: a loop yields every tick (1 ms); idle, either answers in well under 1 ms.
    assert!(health_median < Duration::from_millis(10), "health check median {health_median:?} under attack");
    assert!(health_max < Duration::from_millis(250), "health check max {health_max:?} under attack");
    assert!(login_median < Duration::from_millis(25), "apikey login median {login_median:?} under attack");
    assert!(login_max < Duration::from_millis(500), "apikey login max {login_max:?} under attack");
}
