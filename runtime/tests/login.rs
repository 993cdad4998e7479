//! The foundation: users created with local credentials through the sandbox, and the three
//! login forms, over real HTTP.

mod common;

use common::{SECRET, TestServer, assert_error};
use serde_json::{Value, json};

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn first_admin_once() {
    let s = TestServer::start();
    let creds = json!({ "credentials": { "local": { "username": "root", "password": "pw-root" } } });
    let (status, body) = s.post("/_createFirstAdmin", creds.clone(), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["_source"]["profileIds"], json!(["admin"]));
    assert!(body["result"]["_id"].as_str().is_some_and(|id| id.len() == 36), "generated kuid");
    assert_error(&s.post("/_createFirstAdmin", creds.clone(), None), 412, "api.process.admin_exists");
    assert_error(&s.post("/_createFirstAdmin/other", creds, None), 412, "api.process.admin_exists");
    s.token("root", "pw-root");
}

#[test]
fn first_admin_with_id_and_forbidden_profiles() {
    let s = TestServer::start();
    let bad = json!({ "content": { "profileIds": ["default"] },
                      "credentials": { "local": { "username": "a", "password": "b" } } });
    assert_error(&s.post("/_createFirstAdmin/boss", bad, None), 400, "api.assert.forbidden_argument");
    let ok = json!({ "content": { "name": "Boss" }, "credentials": { "local": { "username": "a", "password": "b" } } });
    let (status, body) = s.post("/_createFirstAdmin/boss", ok, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["_id"], "boss");
    assert_eq!(body["result"]["_source"]["name"], "Boss");
    let (_, login) = s.login("a", "b");
    assert_eq!(login["result"]["_id"], "boss");
}

#[test]
fn create_user_needs_an_admin_token() {
    let s = TestServer::start();
    let admin = s.admin();
    let body = |u: &str| json!({ "content": { "profileIds": ["default"] }, "credentials": { "local": { "username": u, "password": "pw" } } });
    assert_error(&s.post("/users/_create", body("x"), None), 401, "security.rights.unauthorized");
    let (status, created) = s.post("/users/_create?_id=carol", body("carol"), Some(&admin));
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["result"], json!({ "_id": "carol", "_source": created["result"]["_source"] }));
    assert_eq!(created["result"]["_source"]["profileIds"], json!(["default"]));
    let (status, _) = s.post("/users/dave/_create", body("dave"), Some(&admin));
    assert_eq!(status, 200);
    let carol = s.token("carol", "pw");
    assert_error(&s.post("/users/_create", body("eve"), Some(&carol)), 403, "security.rights.forbidden");
    assert_error(&s.post("/users/dave/_create", body("dave2"), Some(&admin)), 412, "security.user.already_exists");
    assert_error(&s.post("/users/_create", json!({ "content": {} }), Some(&admin)), 400, "api.assert.missing_argument");
    assert_error(&s.post("/users/_create", json!({}), Some(&admin)), 400, "api.assert.missing_argument");
}

/// On any failure nothing is left behind: no user without credentials, no orphan credentials.
#[test]
fn a_failed_creation_leaves_nothing() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw-alice");
    let create = |kuid: &str, credentials: Value| {
        s.post(
            &format!("/users/{kuid}/_create"),
            json!({ "content": { "profileIds": ["default"] }, "credentials": credentials }),
            Some(&admin),
        )
    };
    // The username is taken: the strategy's validate refuses (Kuzzle's message, 412).
    let got = create("bob", json!({ "local": { "username": "alice", "password": "x" } }));
    assert_error(&got, 412, "plugin.strategy.precondition");
    assert_eq!(got.1["error"]["message"], "Login \"alice\" is already used.");
    assert_error(&s.get("/users/bob", Some(&admin)), 404, "security.user.not_found");
    // A missing password: 400 from the strategy, no user.
    assert_error(&create("bob", json!({ "local": { "username": "bob" } })), 400, "plugin.strategy.bad_request");
    assert_error(&s.get("/users/bob", Some(&admin)), 404, "security.user.not_found");
    // Local succeeds, then an unknown strategy fails: the local credentials are not kept.
    let got = create("bob", json!({ "local": { "username": "bob", "password": "pw-bob" }, "zzz": {} }));
    assert_error(&got, 400, "security.credentials.unknown_strategy");
    assert_error(&s.get("/users/bob", Some(&admin)), 404, "security.user.not_found");
    assert_error(&s.login("bob", "pw-bob"), 401, "plugin.strategy.missing_user");
    // So the username is still free, and alice is untouched.
    assert_eq!(create("robert", json!({ "local": { "username": "bob", "password": "pw-bob" } })).0, 200);
    assert_eq!(s.login("bob", "pw-bob").1["result"]["_id"], "robert");
    assert_eq!(s.login("alice", "pw-alice").1["result"]["_id"], "alice");
}

#[test]
fn the_three_login_forms() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw alice&co");
    let check = |(status, body): (u16, Value), ttl: i64| {
        assert_eq!(status, 200, "{body}");
        let r = &body["result"];
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["_id", "expiresAt", "jwt", "ttl"]);
        assert_eq!(r["_id"], "alice");
        assert_eq!(r["ttl"], ttl);
        let expires = r["expiresAt"].as_i64().unwrap();
        assert!((expires - (now_ms() + ttl)).abs() < 10_000, "expiresAt {expires}");
        assert!(r["jwt"].as_str().unwrap().starts_with("kauth-"));
        assert_eq!(body["controller"], "auth");
        assert_eq!(body["action"], "login");
    };
    let creds = json!({ "username": "alice", "password": "pw alice&co" });
    check(s.post("/_login/local?expiresIn=2h", creds.clone(), None), 7_200_000);
    check(s.get("/_login/local?username=alice&password=pw%20alice%26co", None), 3_600_000);
    check(
        s.post(
            "/_login",
            json!({ "strategy": "local", "expiresIn": 60000, "username": "alice", "password": "pw alice&co" }),
            None,
        ),
        60_000,
    );
    // The seed's form without a strategy: "local".
    check(
        s.post("/_login", json!({ "expiresIn": "1m", "username": "alice", "password": "pw alice&co" }), None),
        60_000,
    );
    // Falsy expiresIn means the default.
    check(s.post("/_login/local?expiresIn=", creds, None), 3_600_000);
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "right");
    let hashes = || s.app.hasher.computed();

    let before = hashes();
    let wrong = s.login("alice", "wrong");
    let wrong_cost = hashes() - before;
    let before = hashes();
    let unknown = s.login("nobody", "wrong");
    let unknown_cost = hashes() - before;

    assert_error(&wrong, 401, "plugin.strategy.missing_user");
    assert_eq!(wrong.1["error"]["message"], "wrong username or password");
    assert_eq!(wrong.1["error"], unknown.1["error"], "same error object");
    // Same work: an unknown user still pays one password hash (so the same time to answer).
    assert_eq!(wrong_cost, 1);
    assert_eq!(unknown_cost, 1);
    assert_error(&s.post("/_login/local", json!({ "username": "alice" }), None), 401, "plugin.strategy.missing_user");
}

#[test]
fn login_errors() {
    let s = TestServer::with_config("[tokens]\nmax_ttl = \"1d\"\n");
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let creds = json!({ "username": "alice", "password": "pw" });
    let got = s.post("/_login/ldap", creds.clone(), None);
    assert_error(&got, 400, "security.credentials.unknown_strategy");
    assert_eq!(got.1["error"]["code"], 117571585);
    for bad in ["abc", "0", "1.", "-5s", "1d2h"] {
        let got = s.post(&format!("/_login/local?expiresIn={bad}"), creds.clone(), None);
        assert_error(&got, 400, "api.assert.invalid_argument");
        assert_eq!(got.1["error"]["code"], 33619970);
    }
    for over in ["2d", "-1", "86400001"] {
        let got = s.post(&format!("/_login/local?expiresIn={over}"), creds.clone(), None);
        assert_error(&got, 400, "security.token.ttl_exceeded");
        assert_eq!(got.1["error"]["code"], 117506052);
    }
    assert_eq!(s.post("/_login/local?expiresIn=1d", creds, None).0, 200);
}

#[test]
fn tokens_verify_with_an_independent_jwt_library() {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    for alg in ["HS256", "HS384", "HS512"] {
        let s = TestServer::with_config(&format!("[tokens]\nsecret = \"{SECRET}\"\nalgorithm = \"{alg}\"\n"));
        let admin = s.admin();
        s.user(&admin, "alice", "alice", "pw");
        let (_, body) = s.post("/_login/local?expiresIn=10m", json!({ "username": "alice", "password": "pw" }), None);
        let token = body["result"]["jwt"].as_str().unwrap();
        let jwt = token.strip_prefix("kauth-").expect("kauth- prefix");
        let expected: Algorithm = alg.parse().unwrap();
        assert_eq!(decode_header(jwt).unwrap().alg, expected);
        let mut validation = Validation::new(expected);
        validation.required_spec_claims = ["exp".to_string()].into();
        let claims = decode::<Value>(jwt, &DecodingKey::from_secret(SECRET.as_bytes()), &validation).unwrap().claims;
        assert_eq!(claims["_id"], "alice");
        let (iat, exp) = (claims["iat"].as_i64().unwrap(), claims["exp"].as_i64().unwrap());
        assert!((exp - iat - 600).abs() <= 1, "exp - iat = {}", exp - iat);
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        // A wrong secret fails the independent check too.
        assert!(decode::<Value>(jwt, &DecodingKey::from_secret(b"another secret"), &validation).is_err());
    }
}

#[test]
fn infinite_tokens_have_no_exp() {
    let s = TestServer::with_config(&format!("[tokens]\nsecret = \"{SECRET}\"\n"));
    let admin = s.admin();
    s.user(&admin, "alice", "alice", "pw");
    let (status, body) = s.post("/_login/local?expiresIn=-1", json!({ "username": "alice", "password": "pw" }), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["result"]["ttl"].as_i64(), body["result"]["expiresAt"].as_i64()), (Some(-1), Some(-1)));
    let jwt = body["result"]["jwt"].as_str().unwrap().strip_prefix("kauth-").unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    let claims =
        jsonwebtoken::decode::<Value>(jwt, &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()), &validation)
            .unwrap()
            .claims;
    assert!(claims.get("exp").is_none(), "{claims}");
    let token = body["result"]["jwt"].as_str().unwrap();
    assert_eq!(s.get("/_me", Some(token)).1["result"]["_id"], "alice");
}

#[test]
fn http_envelope_and_errors() {
    let s = TestServer::with_config("[server]\nmax_body_bytes = 2048\n");
    // Malformed JSON.
    let (status, headers, body) = s.send("POST", "/_login/local", Some("{bad".into()), &[]);
    assert_eq!((status, body["error"]["id"].as_str()), (400, Some("network.http.body_parse_failed")));
    assert_eq!(headers["content-type"], "application/json");
    // Too large: 413, whatever the route.
    let big = json!({ "username": "x".repeat(4096), "password": "p" }).to_string();
    let (status, _, body) = s.send("POST", "/_login/local", Some(big), &[]);
    assert_eq!((status, body["error"]["id"].as_str()), (413, Some("network.http.request_too_large")));
    // Unknown URL.
    let got = s.get("/no/such/route", None);
    assert_error(&got, 404, "network.http.url_not_found");
    assert_eq!(got.1["error"]["code"], 50397191);
    // Request id: echoed when sent, generated otherwise; volatile echoed.
    let (_, headers, body) = s.send(
        "GET",
        "/_me",
        None,
        &[("x-kuzzle-request-id", "my-request-42"), ("x-kuzzle-volatile", r#"{"sdk":"test"}"#)],
    );
    assert_eq!(headers["x-kuzzle-request-id"], "my-request-42");
    assert_eq!(body["requestId"], "my-request-42");
    assert_eq!(body["volatile"], json!({ "sdk": "test" }));
    assert_eq!(body["result"]["_id"], "-1");
    let (_, headers, body) = s.send("GET", "/_me", None, &[]);
    assert_eq!(headers["x-kuzzle-request-id"].to_str().unwrap(), body["requestId"].as_str().unwrap());
    let (status, _, body) = s.send("GET", "/_me", None, &[("x-kuzzle-volatile", "{nope")]);
    assert_eq!((status, body["error"]["id"].as_str()), (400, Some("network.http.volatile_parse_failed")));
    // A bad token fails the request, even an anonymous-friendly one.
    assert_error(&s.get("/_me", Some("kauth-not.a.token")), 401, "security.token.invalid");
    // Health.
    let (status, body) = s.get("/_healthcheck", None);
    assert_eq!(status, 200, "{body}");
    // The envelope.
    let (_, body) = s.get("/_publicApi", None);
    for key in ["action", "controller", "error", "headers", "node", "requestId", "result", "status", "volatile"] {
        assert!(body.get(key).is_some(), "envelope lacks {key}: {body}");
    }
}

#[test]
fn current_user_and_strategies() {
    let s = TestServer::start();
    let admin = s.admin();
    let (status, body) = s.get("/_me", Some(&admin));
    assert_eq!(status, 200);
    assert_eq!(body["result"]["_id"], "admin");
    assert_eq!(body["result"]["_source"]["profileIds"], json!(["admin"]));
    assert_eq!(body["result"]["strategies"], json!(["local"]));
    assert_eq!(s.get("/strategies", Some(&admin)).1["result"], json!(["local"]));
}

/// Two users created at the same moment with the same username: one gets it, the other the
/// 412 it would get a moment later, and the username logs in as the one who got it. (Each
/// request's `validate` saw the name free; the store decides.)
#[test]
fn one_username_taken_twice_at_once_goes_to_one_user() {
    let s = TestServer::start();
    let admin = s.admin();
    for round in 0..8 {
        let name = format!("twin{round}");
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<(String, (u16, Value))> = std::thread::scope(|scope| {
            let tasks: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|side| {
                    let (barrier, name, admin, s) = (&barrier, &name, &admin, &s);
                    scope.spawn(move || {
                        let kuid = format!("{name}-{side}");
                        barrier.wait();
                        let got = s.post(
                            &format!("/users/{kuid}/_create"),
                            json!({ "content": { "profileIds": ["default"] },
                                    "credentials": { "local": { "username": name, "password": side } } }),
                            Some(admin),
                        );
                        (kuid, got)
                    })
                })
                .collect();
            tasks.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let won: Vec<&(String, (u16, Value))> = outcomes.iter().filter(|(_, got)| got.0 == 200).collect();
        assert_eq!(won.len(), 1, "round {round}: {outcomes:?}");
        let lost = outcomes.iter().find(|(_, got)| got.0 != 200).unwrap();
        assert_error(&lost.1, 412, "plugin.strategy.precondition");
        assert_error(&s.get(&format!("/users/{}", lost.0), Some(&admin)), 404, "security.user.not_found");
        let winner = &won[0].0;
        let password = winner.rsplit('-').next().unwrap();
        let (status, body) = s.login(&name, password);
        assert_eq!((status, body["result"]["_id"].as_str()), (200, Some(winner.as_str())), "round {round}: {body}");
    }
}
