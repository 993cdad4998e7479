//! Sessions over HTTP: checkToken, logout (one / global), revokeTokens, user deletion,
//! refreshToken, rights, credentials lifecycles, cookie mode, login throttling. Revocation
//! must be exact and survive a restart.

mod common;

use common::{SECRET, TestServer, assert_error};
use serde_json::{Value, json};

fn result(got: (u16, Value)) -> Value {
    assert_eq!(got.0, 200, "{}", got.1);
    got.1["result"].clone()
}

fn check(s: &TestServer, token: &str) -> Value {
    result(s.post("/_checkToken", json!({ "token": token }), None))
}

#[test]
fn check_token_states() {
    let s = TestServer::start();
    let admin = s.admin();
    assert_eq!(
        result(s.post("/_checkToken", json!({}), None)),
        json!({ "valid": true, "kuid": "-1", "expiresAt": null })
    );
    assert_eq!(
        result(s.call("POST", "/_checkToken", None, None)),
        json!({ "valid": true, "kuid": "-1", "expiresAt": null })
    );
    let ok = check(&s, &admin);
    assert_eq!((ok["valid"].as_bool(), ok["kuid"].as_str()), (Some(true), Some("admin")));
    assert!(ok["expiresAt"].as_i64().unwrap() > 0);
    assert_eq!(check(&s, "kauth-garbage"), json!({ "valid": false, "state": "Invalid token." }));
    // Expired: a 1 s token, after it lapses.
    let (_, body) =
        s.post("/_login/local?expiresIn=1s", json!({ "username": "admin", "password": "admin-password" }), None);
    let short = body["result"]["jwt"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(check(&s, &short), json!({ "valid": false, "state": "Token expired" }));
    assert_error(&s.get("/_me", Some(&short)), 401, "security.token.expired");
}

#[test]
fn logout_revokes_exactly() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let a1 = s.token("alice", "pw");
    let a2 = s.token("alice", "pw");
    assert_eq!(result(s.post("/_logout", json!({}), Some(&a1))), json!({ "acknowledged": true }));
    assert_error(&s.get("/_me", Some(&a1)), 401, "security.token.invalid");
    assert_eq!(check(&s, &a1)["valid"], false);
    assert_eq!(result(s.get("/_me", Some(&a2)))["_id"], "alice", "the other session lives on");
    assert_error(&s.post("/_logout", json!({}), None), 401, "security.rights.unauthorized");
    // Global: every session of alice, and a login right after works.
    let a3 = s.token("alice", "pw");
    result(s.post("/_logout?global", json!({}), Some(&a2)));
    assert_error(&s.get("/_me", Some(&a3)), 401, "security.token.invalid");
    let a4 = s.token("alice", "pw");
    assert_eq!(result(s.get("/_me", Some(&a4)))["_id"], "alice");
    assert_eq!(check(&s, &admin)["valid"], true, "other users are untouched");
}

#[test]
fn revoke_tokens_and_delete_user() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    s.user(&admin, "bob", "bob", "pw");
    let alice = s.token("alice", "pw");
    let bob = s.token("bob", "pw");
    assert_eq!(s.call("DELETE", "/users/alice/tokens", None, Some(&admin)).0, 200);
    assert_eq!(check(&s, &alice)["valid"], false);
    let alice = s.token("alice", "pw");
    assert_eq!(check(&s, &alice)["valid"], true);
    // Deleting bob: his token dies, his credentials go, his login fails.
    assert_error(&s.call("DELETE", "/users/bob", None, Some(&alice)), 403, "security.rights.forbidden");
    assert_eq!(s.call("DELETE", "/users/bob", None, Some(&admin)).0, 200);
    assert_eq!(check(&s, &bob)["valid"], false);
    assert_error(&s.login("bob", "pw"), 401, "plugin.strategy.missing_user");
    assert_error(&s.get("/users/bob", Some(&admin)), 404, "security.user.not_found");
    // The username is free again.
    s.user(&admin, "bob2", "bob", "pw2");
    assert_eq!(s.login("bob", "pw2").1["result"]["_id"], "bob2");
}

#[test]
fn revocation_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("[tokens]\nsecret = \"{SECRET}\"\n");
    let s = TestServer::start_in(dir.path(), &config);
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    s.user(&admin, "bob", "bob", "pw");
    let dead = s.token("alice", "pw");
    let alive = s.token("alice", "pw");
    let bob = s.token("bob", "pw");
    result(s.post("/_logout", json!({}), Some(&dead)));
    assert_eq!(s.call("DELETE", "/users/bob/tokens", None, Some(&admin)).0, 200);
    s.stop();
    let s = TestServer::start_in(dir.path(), &config);
    assert_eq!(check(&s, &dead)["valid"], false);
    assert_eq!(check(&s, &bob)["valid"], false);
    assert_eq!(check(&s, &alive)["valid"], true);
    assert_eq!(result(s.get("/_me", Some(&alive)))["_id"], "alice");
}

#[test]
fn refresh_token_with_grace_period() {
    let s = TestServer::with_config("[tokens]\ngrace_period = \"1m\"\n");
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let old = s.token("alice", "pw");
    let fresh = result(s.post("/_refreshToken?expiresIn=10m", json!({}), Some(&old)));
    assert_eq!((fresh["_id"].as_str(), fresh["ttl"].as_i64()), (Some("alice"), Some(600_000)));
    let new = fresh["jwt"].as_str().unwrap();
    assert_eq!(check(&s, new)["valid"], true);
    assert_eq!(check(&s, &old)["valid"], true, "still valid during the grace period");
    assert_error(&s.post("/_refreshToken", json!({}), Some(&old)), 401, "security.token.invalid");
    assert_error(&s.post("/_refreshToken", json!({}), None), 401, "security.rights.unauthorized");
    let (_, body) = s.post("/_login/local?expiresIn=-1", json!({ "username": "alice", "password": "pw" }), None);
    let forever = body["result"]["jwt"].as_str().unwrap();
    assert_error(&s.post("/_refreshToken", json!({}), Some(forever)), 401, "security.token.refresh_forbidden");

    let s = TestServer::with_config("[tokens]\ngrace_period = 0\n");
    let admin = s.admin();
    let new = result(s.post("/_refreshToken", json!({}), Some(&admin)))["jwt"].as_str().unwrap().to_string();
    assert_eq!(check(&s, &admin)["valid"], false, "no grace: void at once");
    assert_eq!(check(&s, &new)["valid"], true);
}

#[test]
fn rights() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let alice = s.token("alice", "pw");
    // Anonymous (the standard anonymous role): login, checkToken, getCurrentUser, getMyRights,
    // publicApi, serverInfo, healthCheck.
    assert_eq!(s.get("/_publicApi", None).0, 200);
    assert_eq!(s.get("/_serverInfo", None).0, 200);
    assert_eq!(s.get("/", None).0, 200);
    assert_error(&s.get("/strategies", None), 401, "security.rights.unauthorized");
    let anonymous = result(s.get("/_me/_rights", None));
    assert!(anonymous["hits"].as_array().unwrap().iter().all(|h| h["action"] != "logout"));
    assert_error(&s.get("/_now", None), 401, "security.rights.unauthorized");
    // A user (the standard default role): their own auth actions, nothing of security.
    assert_eq!(result(s.get("/strategies", Some(&alice))), json!(["local"]));
    assert!(result(s.get("/_now", Some(&alice)))["now"].as_i64().is_some());
    let rights = result(s.get("/_me/_rights", Some(&alice)));
    let hits = rights["hits"].as_array().unwrap();
    assert!(hits.iter().any(|h| h["action"] == "updateSelf" && h["value"] == "allowed"));
    assert!(hits.iter().all(|h| h["controller"] != "security"), "only what the role names: {rights}");
    assert_error(&s.get("/users/admin", Some(&alice)), 403, "security.rights.forbidden");
    assert_error(&s.get("/credentials/local/admin", Some(&alice)), 403, "security.rights.forbidden");
    let forbidden = s.get("/users/admin", Some(&alice));
    assert_eq!(
        forbidden.1["error"]["message"],
        r#"Insufficient permissions to execute the action "security:getUser" (User "alice")."#
    );
    // Admin: everything.
    assert_eq!(result(s.get("/_me/_rights", Some(&admin)))["hits"][0]["value"], "allowed");
    assert_eq!(result(s.get("/users/alice", Some(&admin)))["_source"]["profileIds"], json!(["default"]));
    // updateSelf: content changes, profiles can't.
    let me = result(s.call("PUT", "/_me", Some(json!({ "nickname": "Al" })), Some(&alice)));
    assert_eq!(me["_source"]["nickname"], "Al");
    assert_error(
        &s.call("PUT", "/_me", Some(json!({ "profileIds": ["admin"] })), Some(&alice)),
        400,
        "api.assert.forbidden_argument",
    );
    assert_eq!(result(s.get("/_me", Some(&alice)))["_source"]["profileIds"], json!(["default"]));
}

/// Kuzzle's functional scenario "credentials lifecycle (self side)".
#[test]
fn my_credentials_lifecycle() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw1");
    let t = s.token("alice", "pw1");
    let creds = |p: &str| json!({ "username": "alice", "password": p });
    assert_eq!(result(s.post("/_me/credentials/local/_validate", creds("x"), Some(&t))), json!(true));
    assert_eq!(result(s.get("/_me/credentials/local", Some(&t))), json!({ "username": "alice", "kuid": "alice" }));
    assert_eq!(result(s.call("DELETE", "/_me/credentials/local", None, Some(&t))), json!({ "acknowledged": true }));
    assert_eq!(result(s.get("/_me/credentials/local/_exists", Some(&t))), json!(false));
    assert_error(&s.login("alice", "pw1"), 401, "plugin.strategy.missing_user");
    assert_eq!(
        result(s.post("/_me/credentials/local/_create", creds("pw2"), Some(&t))),
        json!({ "username": "alice", "kuid": "alice" })
    );
    assert_eq!(result(s.get("/credentials/local/_me/_exists", Some(&t))), json!(true), "deprecated route");
    let updated = result(s.call("PUT", "/_me/credentials/local/_update", Some(json!({ "password": "pw3" })), Some(&t)));
    assert_eq!(updated, json!({ "username": "alice", "kuid": "alice" }));
    assert_error(&s.login("alice", "pw2"), 401, "plugin.strategy.missing_user");
    assert_eq!(s.login("alice", "pw3").0, 200);
    assert_error(
        &s.post("/_me/credentials/nope/_create", creds("x"), Some(&t)),
        400,
        "security.credentials.unknown_strategy",
    );
    assert_error(&s.post("/_me/credentials/local/_create", json!("text"), Some(&t)), 400, "api.assert.invalid_type");
}

/// Kuzzle's functional scenario "credentials lifecycle (admin side)".
#[test]
fn admin_credentials_lifecycle() {
    let s = TestServer::start();
    let admin = s.admin();
    let (status, _) = s.post("/users/carol/_create", json!({ "content": { "profileIds": ["default"] } }), Some(&admin));
    assert_eq!(status, 200, "a user without credentials");
    let creds = json!({ "username": "carol", "password": "pw" });
    assert_eq!(result(s.post("/credentials/local/carol/_validate", creds.clone(), Some(&admin))), json!(true));
    assert_eq!(result(s.get("/credentials/local/carol/_exists", Some(&admin))), json!(false));
    assert_eq!(result(s.post("/credentials/local/carol/_create", creds.clone(), Some(&admin)))["username"], "carol");
    assert_eq!(result(s.get("/credentials/local/carol/_exists", Some(&admin))), json!(true));
    assert_eq!(
        result(s.get("/credentials/local/carol", Some(&admin))),
        json!({ "username": "carol", "kuid": "carol" })
    );
    assert_eq!(
        result(s.get("/credentials/local/carol/_byId", Some(&admin))),
        json!({ "username": "carol", "kuid": "carol" })
    );
    assert_eq!(result(s.get("/users/carol/_strategies", Some(&admin))), json!(["local"]));
    assert_eq!(result(s.get("/credentials/local/_fields", Some(&admin))), json!(["username", "password"]));
    assert_eq!(result(s.get("/credentials/_fields", Some(&admin)))["local"], json!(["username", "password"]));
    let t = s.token("carol", "pw");
    result(s.post("/_logout", json!({}), Some(&t)));
    result(s.call("PUT", "/credentials/local/carol/_update", Some(json!({ "password": "new" })), Some(&admin)));
    assert_error(&s.login("carol", "pw"), 401, "plugin.strategy.missing_user");
    s.token("carol", "new");
    result(s.call("DELETE", "/credentials/local/carol", None, Some(&admin)));
    assert_error(&s.login("carol", "new"), 401, "plugin.strategy.missing_user");
    assert_error(&s.post("/credentials/local/nobody/_create", creds, Some(&admin)), 404, "security.user.not_found");
}

#[test]
fn cookie_mode() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let body = json!({ "username": "alice", "password": "pw" }).to_string();
    let (status, headers, login) = s.send("POST", "/_login/local?cookieAuth", Some(body), &[]);
    assert_eq!(status, 200, "{login}");
    assert!(login["result"].get("jwt").is_none(), "no jwt in cookie mode: {login}");
    assert!(login["result"]["expiresAt"].as_i64().is_some() && login["result"]["ttl"].as_i64().is_some());
    let set_cookie = headers["set-cookie"].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("authToken=kauth-"), "{set_cookie}");
    assert!(
        set_cookie.contains("; Path=/; Expires=") && set_cookie.ends_with("; HttpOnly; SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(login["headers"].get("set-cookie").is_none(), "never echoed in JSON");
    let token = set_cookie.trim_start_matches("authToken=").split(';').next().unwrap().to_string();
    let cookie = format!("authToken={token}");
    let (_, _, me) = s.send("GET", "/_me", None, &[("cookie", &cookie)]);
    assert_eq!(me["result"]["_id"], "alice");
    let (_, _, checked) = s.send("POST", "/_checkToken?cookieAuth", None, &[("cookie", &cookie)]);
    assert_eq!(checked["result"]["valid"], true, "{checked}");
    let (_, _, both) =
        s.send("GET", "/_me", None, &[("cookie", &cookie), ("authorization", &format!("Bearer {admin}"))]);
    assert_eq!(both["error"]["id"], "security.token.verification_error");
    let (status, headers, _) = s.send("POST", "/_logout?cookieAuth", None, &[("cookie", &cookie)]);
    assert_eq!(status, 200);
    assert_eq!(headers["set-cookie"], "authToken=null; Path=/; HttpOnly; SameSite=Strict");
    assert_eq!(check(&s, &token)["valid"], false, "cookie logout revokes the token");
    // A dead cookie: the logout still clears it (its caller is anonymous, whose role has no
    // logout: that one runs outside the rights).
    let (status, headers, body) = s.send("POST", "/_logout?cookieAuth", None, &[("cookie", &cookie)]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["set-cookie"], "authToken=null; Path=/; HttpOnly; SameSite=Strict");
    let (_, _, checked) = s.send("POST", "/_checkToken?cookieAuth", None, &[("cookie", "authToken=wrongtoken")]);
    assert_eq!(checked["result"]["valid"], false);
    assert!(checked["result"]["state"].is_string());

    let s = TestServer::with_config("[server]\ncookie_auth = false\n");
    let (status, _, body) = s.send("POST", "/_login/local?cookieAuth", Some("{}".into()), &[]);
    assert_eq!((status, body["error"]["id"].as_str()), (500, Some("security.cookie.unsupported")));
}

#[test]
fn failed_logins_lock_an_account_name_without_enumeration() {
    let s = TestServer::with_config("[login]\nmax_failures = 3\nlockout = \"1m\"\n");
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    for name in ["alice", "ghost"] {
        for _ in 0..3 {
            assert_error(&s.login(name, "wrong"), 401, "plugin.strategy.missing_user");
        }
    }
    let locked = s.login("alice", "pw");
    assert_error(&locked, 429, "security.credentials.too_many_failures");
    let ghost = s.login("ghost", "pw");
    assert_error(&ghost, 429, "security.credentials.too_many_failures");
    assert_eq!(
        locked.1["error"]["message"].as_str().unwrap().split(':').next(),
        ghost.1["error"]["message"].as_str().unwrap().split(':').next(),
        "same answer whether the account exists or not"
    );
    assert_eq!(s.login("admin", "admin-password").0, 200, "other accounts unaffected");
}

#[test]
fn paseto_tokens() {
    for (format, header) in [("paseto-v4-local", "kauth-v4.local."), ("paseto-v4-public", "kauth-v4.public.")] {
        let s = TestServer::with_config(&format!("[tokens]\nformat = \"{format}\"\n"));
        let admin = s.admin();
        assert!(admin.starts_with(header), "{admin}");
        assert_eq!(result(s.get("/_me", Some(&admin)))["_id"], "admin");
        let ok = check(&s, &admin);
        assert_eq!((ok["valid"].as_bool(), ok["kuid"].as_str()), (Some(true), Some("admin")));
        result(s.post("/_logout", json!({}), Some(&admin)));
        assert_error(&s.get("/_me", Some(&admin)), 401, "security.token.invalid");
        let mut forged = admin.clone().into_bytes();
        let at = forged.len() - 3;
        forged[at] = if forged[at] == b'x' { b'y' } else { b'x' };
        assert_eq!(check(&s, &String::from_utf8(forged).unwrap())["valid"], false);
    }
}
