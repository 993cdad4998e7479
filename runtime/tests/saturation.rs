//! Overload with the default configuration: more `local` logins at once than the machine has
//! cores (argon2id, the default cost) are queued, not refused. Alone in its test binary, so
//! no other test's server competes for the cores while the queue is measured.

mod common;

use common::TestServer;
use serde_json::Value;

/// 32 users logging in at once, three times each: every answer is a 200. (32 connections of
/// one account would trip its soft lock, which counts logins in flight as attempts.) Each strategy
/// admits 16 calls at once (`limits.max_concurrent_calls`), the others wait for a permit
/// (`queue_ms`, 5 s) without a thread; argon2 runs one hash per core, and the time a hash
/// waits for a free core is not charged to the call's wall clock.
#[test]
fn thirty_two_connections_of_local_logins_get_no_error() {
    let s = TestServer::start();
    let admin = s.admin();
    for i in 0..32 {
        s.user(&admin, &format!("u{i}"), &format!("user{i}"), "pw");
    }
    let clients: Vec<_> = (0..32)
        .map(|i| {
            let base = s.base.clone();
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                (0..3)
                    .map(|_| {
                        let resp = client
                            .post(format!("{base}/_login/local"))
                            .json(&serde_json::json!({ "username": format!("user{i}"), "password": "pw" }))
                            .send()
                            .unwrap();
                        let status = resp.status().as_u16();
                        (status, resp.json::<Value>().unwrap())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = clients.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let errors: Vec<&(u16, Value)> = answers.iter().filter(|(status, _)| *status != 200).collect();
    assert_eq!(answers.len(), 96);
    let first_kinds: Vec<String> =
        errors.iter().map(|(_, b)| format!("{} {}", b["error"]["id"], b["error"]["message"])).take(5).collect();
    assert!(errors.is_empty(), "{} of 96 logins failed: {first_kinds:#?}", errors.len());
}
