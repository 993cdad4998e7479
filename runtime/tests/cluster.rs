//! Several nodes on one PostgreSQL database (a real server, see `common::postgres`): what one
//! node does, the other sees; what the database goes through, the nodes survive.

mod common;

use common::postgres::Pg;
use common::{TestServer, assert_error};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Two nodes on one fresh database, with no token secret configured: the first node
/// generates it, the second reads it.
fn two_nodes(extra: &str) -> (Pg, TestServer, TestServer) {
    let pg = Pg::start();
    let toml = format!("{}{extra}", pg.toml());
    let a = TestServer::with_config(&toml);
    let b = TestServer::with_config(&toml);
    (pg, a, b)
}

/// Polls `check` until it holds, at most `within`; the time it took.
#[track_caller]
fn within(within: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn valid(s: &TestServer, token: &str) -> bool {
    let (status, body) = s.post("/_checkToken", json!({ "token": token }), None);
    assert_eq!(status, 200, "{body}");
    body["result"]["valid"] == json!(true)
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn a_token_from_one_node_works_on_the_other_until_revoked_there() {
    let (_pg, a, b) = two_nodes("");
    let admin = a.admin();
    // A user created on A logs in on B.
    a.user(&admin, "alice", "alice", "pw");
    let on_b = b.token("alice", "pw");
    let on_a = a.token("alice", "pw");
    assert!(valid(&b, &on_a) && valid(&a, &on_b), "one secret for both nodes");
    let (status, me) = b.get("/_me", Some(&on_a));
    assert_eq!((status, me["result"]["_id"].as_str()), (200, Some("alice")), "{me}");
    // Logout on A: refused on B within a second.
    assert_eq!(a.post("/_logout", json!({}), Some(&on_a)).0, 200);
    within(SECOND, "logout on A seen on B", || !valid(&b, &on_a));
    assert!(valid(&b, &on_b), "only that token");
    // Global logout on B: every token of alice's, on A too.
    let third = a.token("alice", "pw");
    assert_eq!(b.post("/_logout?global=true", json!({}), Some(&on_b)).0, 200);
    within(SECOND, "global logout on B seen on A", || !valid(&a, &third));
    // revokeTokens on A.
    let fourth = b.token("alice", "pw");
    assert!(valid(&a, &fourth), "a login after a global logout is not void at birth");
    assert_eq!(a.call("DELETE", "/users/alice/tokens", None, Some(&admin)).0, 200);
    within(SECOND, "revokeTokens on A seen on B", || !valid(&b, &fourth));
    // deleteUser on A: B refuses the token and the login.
    let fifth = b.token("alice", "pw");
    assert_eq!(a.call("DELETE", "/users/alice", None, Some(&admin)).0, 200);
    within(SECOND, "deleteUser on A seen on B", || !valid(&b, &fifth));
    within(SECOND, "the deleted user's cache entry dropped on B", || b.login("alice", "pw").0 == 401);
}

#[test]
fn a_strategy_uploaded_replaced_or_removed_on_one_node_follows_on_the_other() {
    let (_pg, a, b) = two_nodes("");
    let admin = a.admin();
    let names = |s: &TestServer| s.get("/strategies", Some(&admin)).1["result"].clone();
    a.register(&admin, "keys", "strategy_apikey", "?config=%7B%22v%22%3A1%7D");
    within(2 * SECOND, "an upload on A served on B", || names(&b) == json!(["keys", "local"]));
    a.user(&admin, "bot", "bot", "pw");
    let (status, created) = a.post("/credentials/keys/bot/_create", json!({}), Some(&admin));
    assert_eq!(status, 200, "{created}");
    let key = created["result"]["key"].as_str().unwrap().to_string();
    let (status, login) = b.post("/_login/keys", json!({ "key": key }), None);
    assert_eq!((status, login["result"]["_id"].as_str()), (200, Some("bot")), "{login}");
    // Replaced on B (new configuration): A serves the new one.
    let (status, body) =
        b.upload(Some(&admin), "keys", &common::component("strategy_apikey"), "?config=%7B%22v%22%3A2%7D&replace=true");
    assert_eq!(status, 200, "{body}");
    within(2 * SECOND, "a replacement on B served on A", || {
        a.get("/strategies/keys", Some(&admin)).1["result"]["config"] == json!({ "v": 2 })
    });
    // Removed on A: gone on B.
    assert_eq!(a.call("DELETE", "/strategies/keys", None, Some(&admin)).0, 200);
    within(2 * SECOND, "a removal on A gone on B", || names(&b) == json!(["local"]));
    assert_error(&b.post("/_login/keys", json!({ "key": key }), None), 400, "security.credentials.unknown_strategy");
}

#[test]
fn a_password_changed_on_one_node_is_the_only_one_the_other_accepts() {
    let (_pg, a, b) = two_nodes("");
    let admin = a.admin();
    a.user(&admin, "alice", "alice", "old-pw");
    // B reads (and caches) alice's credentials.
    assert_eq!(b.login("alice", "old-pw").0, 200);
    let (status, body) =
        a.call("PUT", "/credentials/local/alice/_update", Some(json!({ "password": "new-pw" })), Some(&admin));
    assert_eq!(status, 200, "{body}");
    within(SECOND, "the old password refused on B", || b.login("alice", "old-pw").0 == 401);
    assert_eq!(b.login("alice", "new-pw").0, 200);
}

#[test]
fn one_token_refreshed_on_both_nodes_at_once_yields_one_new_token() {
    let (_pg, a, b) = two_nodes("");
    let admin = a.admin();
    a.user(&admin, "alice", "alice", "pw");
    for round in 0..8 {
        let token = a.token("alice", "pw");
        assert!(valid(&b, &token), "round {round}: B knows the token");
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let tasks: Vec<_> = [&a, &b]
                .into_iter()
                .map(|s| {
                    let (barrier, token) = (&barrier, &token);
                    scope.spawn(move || {
                        barrier.wait();
                        s.post("/_refreshToken", json!({}), Some(token))
                    })
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut statuses: Vec<u16> = outcomes.iter().map(|o| o.0).collect();
        statuses.sort();
        assert_eq!(statuses, vec![200, 401], "round {round}: {outcomes:?}");
        assert_error(outcomes.iter().find(|o| o.0 == 401).unwrap(), 401, "security.token.invalid");
    }
}

#[test]
fn the_soft_lock_counts_failures_from_every_node() {
    let (_pg, a, b) = two_nodes("[login]\nmax_failures = 4\n");
    let admin = a.admin();
    a.user(&admin, "alice", "alice", "pw");
    for s in [&a, &b, &a, &b] {
        assert_error(&s.login("alice", "wrong"), 401, "plugin.strategy.missing_user");
    }
    // Neither node saw four failures itself; together they did.
    for s in [&a, &b] {
        within(2 * SECOND, "the lock reaches both nodes", || s.app.throttle.locked() == 1);
        assert_error(&s.login("alice", "pw"), 429, "security.credentials.too_many_failures");
    }
}

#[test]
fn two_nodes_creating_the_same_user_at_once_one_wins() {
    let (_pg, a, b) = two_nodes("");
    let admin = a.admin();
    for round in 0..8 {
        let kuid = format!("dup{round}");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let tasks: Vec<_> = [&a, &b]
                .into_iter()
                .map(|s| {
                    let (barrier, kuid, admin) = (barrier.clone(), kuid.clone(), admin.clone());
                    scope.spawn(move || {
                        barrier.wait();
                        s.post(
                            &format!("/users/{kuid}/_create"),
                            json!({ "content": { "profileIds": ["default"] },
                                    "credentials": { "local": { "username": kuid, "password": "pw" } } }),
                            Some(&admin),
                        )
                    })
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut statuses: Vec<u16> = outcomes.iter().map(|o| o.0).collect();
        statuses.sort();
        assert_eq!(statuses, vec![200, 412], "round {round}: {outcomes:?}");
        let lost = outcomes.iter().find(|o| o.0 == 412).unwrap();
        assert_error(lost, 412, "security.user.already_exists");
        // The winner's credentials work on both nodes.
        assert_eq!(a.login(&kuid, "pw").0, 200);
        assert_eq!(b.login(&kuid, "pw").0, 200);
    }
}

#[test]
fn a_notice_missed_is_caught_up_at_the_periodic_resync() {
    let (pg, a, b) = two_nodes("resync_interval = \"1s\"\n");
    let admin = a.admin();
    a.user(&admin, "alice", "alice", "pw");
    let token = b.token("alice", "pw");
    // A revocation written to the database behind the nodes' backs: no notice at all.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    pg.psql(&format!("INSERT INTO revoked_users (kuid, cutoff_ms) VALUES ('alice', {now_ms})"));
    within(5 * SECOND, "the periodic resync on A", || !valid(&a, &token));
    within(5 * SECOND, "the periodic resync on B", || !valid(&b, &token));
}

#[test]
fn a_database_restart_costs_a_503_and_the_nodes_resync_by_themselves() {
    // A resync falls due during the outage: it must not empty what the nodes serve from. The
    // soft lock is off: it counts logins of one account in flight as attempts, and the 16 at
    // once below are more than it lets through together.
    let (pg, a, b) = two_nodes("resync_interval = \"1s\"\n[login]\nmax_failures = 0\n");
    let admin = a.admin();
    a.user(&admin, "alice", "alice", "pw");
    let token = a.token("alice", "pw");
    assert!(valid(&b, &token), "B has read alice once");
    // Logins at once on both nodes fill their pools: after the restart, every pooled
    // connection is a dead one, and the first requests must not stumble over them.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            for s in [&a, &b] {
                scope.spawn(move || assert_eq!(s.login("alice", "pw").0, 200));
            }
        }
    });
    pg.down();
    // What needs the database: a clear 503 within the connect timeout, nothing half-done.
    let create = |s: &TestServer, kuid: &str| {
        s.post(
            &format!("/users/{kuid}/_create"),
            json!({ "content": { "profileIds": ["default"] },
                    "credentials": { "local": { "username": kuid, "password": "pw" } } }),
            Some(&admin),
        )
    };
    let started = Instant::now();
    assert_error(&create(&a, "during"), 503, "core.store.unavailable");
    assert!(started.elapsed() < Duration::from_secs(15), "answered within the timeout: {:?}", started.elapsed());
    // What needs none: token checks are answered from memory, also once resyncs have come
    // due and failed.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(valid(&b, &token));
    // A user never read is not reported invalid either: the client is told to retry.
    let never_read = b.post("/_checkToken", json!({ "token": admin }), None);
    assert_error(&never_read, 503, "core.store.unavailable");
    pg.up();
    within(Duration::from_secs(20), "A writes again", || create(&a, "after").0 == 200);
    let got = b.login("after", "pw");
    assert_eq!(got.0, 200, "B reads again: {}", got.1);
    assert_error(&b.get("/users/during", Some(&admin)), 404, "security.user.not_found");
    // B's listener reconnected (or its resync caught up): a logout on A reaches it.
    assert_eq!(a.post("/_logout", json!({}), Some(&token)).0, 200);
    within(Duration::from_secs(5), "a logout after the restart seen on B", || !valid(&b, &token));
}

#[test]
fn every_write_acknowledged_before_a_sigkill_is_there_afterwards() {
    let pg = Pg::start();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sandgate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .env("SANDGATE_DATABASE_URL", pg.url())
        .env("SANDGATE_LOG", "warn")
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    within(Duration::from_secs(60), "the node answers", || client.get(format!("{base}/_healthCheck")).send().is_ok());
    let admin_body = json!({ "credentials": { "local": { "username": "admin", "password": "admin-password" } } });
    let resp = client.post(format!("{base}/_createFirstAdmin/admin")).json(&admin_body).send().unwrap();
    assert_eq!(resp.status(), 200);
    let login = json!({ "username": "admin", "password": "admin-password" });
    let admin: Value = client.post(format!("{base}/_login/local")).json(&login).send().unwrap().json().unwrap();
    let admin = admin["result"]["jwt"].as_str().unwrap().to_string();
    // Four writers create users as fast as they are acknowledged; the node is killed mid-way.
    let acknowledged = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for w in 0..4 {
            let (client, base, admin, acknowledged) = (&client, &base, &admin, &acknowledged);
            scope.spawn(move || {
                for i in 0.. {
                    let kuid = format!("w{w}-{i}");
                    let sent = client
                        .post(format!("{base}/users/{kuid}/_create"))
                        .bearer_auth(admin)
                        .json(&json!({ "content": { "profileIds": ["default"], "n": i } }))
                        .send();
                    match sent {
                        Ok(r) if r.status() == 200 => acknowledged.lock().unwrap().push(kuid),
                        _ => return,
                    }
                }
            });
        }
        within(Duration::from_secs(30), "some writes acknowledged", || acknowledged.lock().unwrap().len() >= 40);
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    });
    let _ = child.wait();
    let acknowledged = acknowledged.into_inner().unwrap();
    let other = TestServer::with_config(&pg.toml());
    let admin = other.token("admin", "admin-password");
    for kuid in &acknowledged {
        assert_eq!(other.get(&format!("/users/{kuid}"), Some(&admin)).0, 200, "{kuid} was acknowledged");
    }
}

#[test]
fn a_node_refuses_a_schema_newer_than_it_knows() {
    let pg = Pg::start();
    drop(TestServer::with_config(&pg.toml()));
    pg.psql("UPDATE sandgate_schema SET version = version + 1");
    let err = match sandgate::store::postgres::Postgres::open(&pg.url(), "test") {
        Ok(_) => panic!("opened a newer schema"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("newer than this Sandgate knows"), "{err}");
}

#[test]
fn user_ids_postgresql_cannot_hold_get_the_same_answers_as_on_sqlite() {
    let pg = Pg::start();
    let on_pg = TestServer::with_config(&pg.toml());
    let on_sqlite = TestServer::start();
    // A NUL character (PostgreSQL's text cannot hold it), and an id longer than its index
    // takes (and than Kuzzle's 512 bytes).
    let long = "x".repeat(3000);
    for s in [&on_pg, &on_sqlite] {
        let admin = s.admin();
        for (i, kuid) in ["a%00b", long.as_str()].into_iter().enumerate() {
            let name = format!("odd{i}");
            let create = s.post(
                &format!("/users/{kuid}/_create"),
                json!({ "content": { "profileIds": ["default"] },
                        "credentials": { "local": { "username": name, "password": "pw" } } }),
                Some(&admin),
            );
            assert_error(&create, 400, "api.assert.invalid_argument");
            assert_error(&s.get(&format!("/users/{kuid}"), Some(&admin)), 404, "security.user.not_found");
            assert_error(
                &s.call("DELETE", &format!("/users/{kuid}"), None, Some(&admin)),
                404,
                "security.user.not_found",
            );
            assert_error(&s.login(&name, "pw"), 401, "plugin.strategy.missing_user");
        }
        // 512 bytes is still a user id.
        let longest = "y".repeat(512);
        let (status, body) = s.post(
            &format!("/users/{longest}/_create"),
            json!({ "content": { "profileIds": ["default"] } }),
            Some(&admin),
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(s.get(&format!("/users/{longest}"), Some(&admin)).0, 200);
    }
}

#[test]
fn one_username_taken_on_both_nodes_at_once_goes_to_one_user() {
    let (_pg, a, b) = two_nodes("");
    let admin = a.admin();
    for round in 0..6 {
        let name = format!("twin{round}");
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let tasks: Vec<_> = [(&a, "a"), (&b, "b")]
                .into_iter()
                .map(|(s, side)| {
                    let (barrier, name, admin) = (&barrier, &name, &admin);
                    scope.spawn(move || {
                        barrier.wait();
                        s.post(
                            &format!("/users/{name}-{side}/_create"),
                            json!({ "content": { "profileIds": ["default"] },
                                    "credentials": { "local": { "username": name, "password": side } } }),
                            Some(admin),
                        )
                    })
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut statuses: Vec<u16> = outcomes.iter().map(|o| o.0).collect();
        statuses.sort();
        assert_eq!(statuses, vec![200, 412], "round {round}: {outcomes:?}");
        let side = if outcomes[0].0 == 200 { "a" } else { "b" };
        let winner = format!("{name}-{side}");
        for s in [&a, &b] {
            within(SECOND, "the winner logs in on both nodes", || {
                s.login(&name, side).1["result"]["_id"].as_str() == Some(winner.as_str())
            });
        }
    }
}

#[test]
fn roles_profiles_and_api_keys_follow_on_the_other_node() {
    let (_pg, a, b) = two_nodes("");
    let admin = a.admin();
    let role = json!({ "controllers": { "security": { "actions": { "getUser": true } },
                                        "auth": { "actions": { "createApiKey": true, "getCurrentUser": true } } } });
    assert_eq!(a.post("/roles/reader/_create", role, Some(&admin)).0, 200);
    assert_eq!(
        a.post("/profiles/readers/_create", json!({ "policies": [{ "roleId": "reader" }] }), Some(&admin)).0,
        200
    );
    let (status, body) = a.post(
        "/users/bob/_create",
        json!({ "content": { "profileIds": ["readers"] }, "credentials": { "local": { "username": "bob", "password": "pw" } } }),
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");
    let bob = b.token("bob", "pw");
    within(SECOND, "the role created on A allows on B", || b.get("/users/admin", Some(&bob)).0 == 200);
    // A role narrowed on B refuses on A.
    let narrower =
        json!({ "controllers": { "auth": { "actions": { "createApiKey": true, "getCurrentUser": true } } } });
    assert_eq!(b.call("PUT", "/roles/reader", Some(narrower), Some(&admin)).0, 200);
    within(SECOND, "the role changed on B refuses on A", || a.get("/users/admin", Some(&bob)).0 == 403);
    // An API key made on A works on B until deleted on A.
    let (_, created) = a.post("/api-keys/_create", json!({ "description": "k" }), Some(&bob));
    let key = created["result"]["_source"]["token"].as_str().unwrap().to_string();
    assert_eq!(b.get("/_me", Some(&key)).0, 200);
    let id = created["result"]["_id"].as_str().unwrap().to_string();
    assert_eq!(a.call("DELETE", &format!("/users/bob/api-keys/{id}"), None, Some(&admin)).0, 200);
    within(SECOND, "the key deleted on A refused on B", || b.get("/_me", Some(&key)).0 == 401);
}
