//! Kuzzle's rights model against the real server, over real HTTP, `POST /_query` and a real
//! WebSocket: roles and profiles written by an admin and in force on the next request, the
//! checks that keep the server usable, users with profiles, checkRights and the rights
//! listings, API keys, single-use tokens, the per-profile rate limit, and `TokenExpired`.

mod common;

use common::{TestServer, assert_error};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A role allowing `security:getUser` and what the SDK needs to stay logged in.
fn reader_role() -> Value {
    json!({ "controllers": {
        "security": { "actions": { "getUser": true } },
        "auth": { "actions": { "checkToken": true, "getCurrentUser": true, "getMyRights": true, "logout": true,
                                "checkRights": true, "createApiKey": true, "searchApiKeys": true,
                                "deleteApiKey": true, "createToken": true, "refreshToken": true } },
    } })
}

/// An admin, a role `reader`, a profile `readers` on it, and `bob` (local bob/pw) holding it.
fn setup(s: &TestServer) -> (String, String) {
    let admin = s.admin();
    let (status, body) = s.post("/roles/reader/_create", reader_role(), Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["_id"], "reader");
    assert_eq!(body["result"]["_source"]["controllers"], reader_role()["controllers"]);
    let (status, body) =
        s.post("/profiles/readers/_create", json!({ "policies": [{ "roleId": "reader" }] }), Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["_source"]["rateLimit"], 0);
    let (status, body) = s.post(
        "/users/bob/_create",
        json!({ "content": { "profileIds": ["readers"] }, "credentials": { "local": { "username": "bob", "password": "pw" } } }),
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");
    (admin.clone(), s.token("bob", "pw"))
}

#[test]
fn a_role_allows_what_it_names_and_changes_apply_at_the_next_request() {
    let s = TestServer::start();
    let (admin, bob) = setup(&s);
    let (status, body) = s.get("/users/admin", Some(&bob));
    assert_eq!((status, body["result"]["_id"].as_str()), (200, Some("admin")), "{body}");
    let refused = s.post("/users/eve/_create", json!({ "content": { "profileIds": ["default"] } }), Some(&bob));
    assert_error(&refused, 403, "security.rights.forbidden");
    assert_eq!(
        refused.1["error"]["message"],
        r#"Insufficient permissions to execute the action "security:createUser" (User "bob")."#
    );
    let anonymous = s.post("/users/eve/_create", json!({ "content": { "profileIds": ["default"] } }), None);
    assert_error(&anonymous, 401, "security.rights.unauthorized");
    // Login is not in bob's role: the anonymous role has it, bob's does not (Kuzzle's).
    assert_error(
        &s.post("/_login/local", json!({ "username": "bob", "password": "pw" }), Some(&bob)),
        403,
        "security.rights.forbidden",
    );

    // The role changes: bob's next request, with the same token, is judged by the new one.
    let mut narrower = reader_role();
    narrower["controllers"]["security"]["actions"]["getUser"] = json!(false);
    let (status, body) = s.call("PUT", "/roles/reader/_update", Some(narrower), Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert_error(&s.get("/users/admin", Some(&bob)), 403, "security.rights.forbidden");
    // So does a profile: bob also gets `admin`'s role through it.
    let (status, body) = s.call(
        "PUT",
        "/profiles/readers",
        Some(json!({ "policies": [{ "roleId": "reader" }, { "roleId": "admin" }] })),
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.get("/users/admin", Some(&bob)).0, 200);
    // And a user's profiles (updateUser is an admin's).
    let (status, body) = s.call("PUT", "/users/bob/_update", Some(json!({ "profileIds": ["default"] })), Some(&admin));
    assert_eq!((status, body["result"]["_source"]["profileIds"].clone()), (200, json!(["default"])), "{body}");
    assert_error(&s.get("/users/admin", Some(&bob)), 403, "security.rights.forbidden");
}

#[test]
fn update_self_never_changes_ones_profiles() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "carol", "carol", "pw");
    let carol = s.token("carol", "pw");
    for body in [json!({ "profileIds": ["admin"] }), json!({ "profileIds": null, "x": 1 }), json!({ "_id": "admin" })] {
        let got = s.call("PUT", "/_me", Some(body.clone()), Some(&carol));
        assert_error(&got, 400, "api.assert.forbidden_argument");
    }
    let (_, me) = s.get("/_me", Some(&carol));
    assert_eq!(me["result"]["_source"]["profileIds"], json!(["default"]));
    assert_error(&s.get("/users/admin", Some(&carol)), 403, "security.rights.forbidden");
}

#[test]
fn the_checks_that_keep_the_server_usable() {
    let s = TestServer::start();
    let (admin, _bob) = setup(&s);
    // The anonymous role must keep auth:login.
    let no_login = json!({ "controllers": { "auth": { "actions": { "checkToken": true } } } });
    let got = s.call("PUT", "/roles/anonymous", Some(no_login), Some(&admin));
    assert_error(&got, 400, "security.role.login_required");
    assert_eq!(s.login("bob", "pw").0, 200, "anonymous can still log in");
    // The anonymous profile must keep the anonymous role.
    let got = s.call("PUT", "/profiles/anonymous", Some(json!({ "policies": [{ "roleId": "reader" }] })), Some(&admin));
    assert_error(&got, 400, "security.profile.missing_anonymous_role");
    // Built-ins cannot be deleted; in use cannot be deleted.
    for id in ["admin", "default", "anonymous"] {
        assert_error(
            &s.call("DELETE", &format!("/roles/{id}"), None, Some(&admin)),
            400,
            "security.role.cannot_delete",
        );
        assert_error(
            &s.call("DELETE", &format!("/profiles/{id}"), None, Some(&admin)),
            400,
            "security.profile.cannot_delete",
        );
    }
    assert_error(&s.call("DELETE", "/roles/reader", None, Some(&admin)), 412, "security.role.in_use");
    assert_error(&s.call("DELETE", "/profiles/readers", None, Some(&admin)), 412, "security.profile.in_use");
    // Unknown names are refused unless forced; non-booleans are refused.
    let typo = json!({ "controllers": { "securty": { "actions": { "getUser": true } } } });
    assert_error(&s.post("/roles/typo/_create", typo.clone(), Some(&admin)), 400, "security.role.unknown_controller");
    let typo_action = json!({ "controllers": { "auth": { "actions": { "loginn": true } } } });
    assert_error(&s.post("/roles/typo/_create", typo_action, Some(&admin)), 400, "security.role.unknown_action");
    assert_eq!(s.post("/roles/typo/_create?force", typo, Some(&admin)).0, 200);
    let not_bool = json!({ "controllers": { "auth": { "actions": { "login": "yes" } } } });
    assert_error(&s.post("/roles/odd/_create", not_bool, Some(&admin)), 400, "api.assert.invalid_type");
    assert_error(&s.post("/roles/odd/_create", json!({}), Some(&admin)), 400, "api.assert.missing_argument");
    assert_error(
        &s.post("/profiles/odd/_create", json!({ "policies": [] }), Some(&admin)),
        400,
        "api.assert.empty_argument",
    );
    // Exists / missing.
    assert_error(
        &s.post("/roles/reader/_create", reader_role(), Some(&admin)),
        400,
        "services.storage.document_already_exists",
    );
    assert_error(&s.get("/roles/nope", Some(&admin)), 404, "security.role.not_found");
    assert_error(
        &s.post("/profiles/p/_create", json!({ "policies": [{ "roleId": "nope" }] }), Some(&admin)),
        404,
        "security.role.not_found",
    );
    let ghost = s.post("/users/g/_create", json!({ "content": { "profileIds": ["nope"] } }), Some(&admin));
    assert_error(&ghost, 404, "security.profile.not_found");
    // Once unused, they go.
    assert_eq!(s.call("DELETE", "/users/bob", None, Some(&admin)).0, 200);
    assert_eq!(s.call("DELETE", "/profiles/readers", None, Some(&admin)).0, 200);
    let (status, body) = s.post("/roles/_mDelete", json!({ "ids": ["reader", "typo"] }), Some(&admin));
    assert_eq!((status, body["result"].clone()), (200, json!(["reader", "typo"])), "{body}");
    let (_, found) = s.post("/roles/_search", json!({}), Some(&admin));
    assert_eq!(found["result"]["total"], 3, "{found}");
}

#[test]
fn check_rights_and_the_rights_listings() {
    let s = TestServer::start();
    let (admin, bob) = setup(&s);
    let ask = |body: Value, token: &str| s.post("/_checkRights", body, Some(token)).1["result"]["allowed"].clone();
    assert_eq!(ask(json!({ "controller": "security", "action": "getUser" }), &bob), true);
    assert_eq!(ask(json!({ "controller": "security", "action": "createUser" }), &bob), false);
    assert_eq!(ask(json!({ "controller": "anything", "action": "at-all" }), &admin), true);
    assert_error(
        &s.post("/_checkRights", json!({ "controller": "auth" }), Some(&bob)),
        400,
        "api.assert.missing_argument",
    );
    let (status, body) =
        s.post("/_checkRights/bob", json!({ "controller": "security", "action": "createUser" }), Some(&admin));
    assert_eq!((status, body["result"]["allowed"].clone()), (200, json!(false)), "{body}");
    // getMyRights / getUserRights / getProfileRights: one hit per action the roles name.
    let (_, mine) = s.get("/_me/_rights", Some(&bob));
    let hits = mine["result"]["hits"].as_array().unwrap_or_else(|| panic!("{mine}"));
    assert_eq!(mine["result"]["total"], hits.len());
    let get_user = hits.iter().find(|h| h["controller"] == "security" && h["action"] == "getUser").unwrap();
    assert_eq!(
        get_user,
        &json!({ "controller": "security", "action": "getUser", "index": "*", "collection": "*", "value": "allowed" })
    );
    assert!(!hits.iter().any(|h| h["action"] == "createUser"), "only what the roles name");
    let (_, theirs) = s.get("/users/bob/_rights", Some(&admin));
    assert_eq!(theirs["result"], mine["result"]);
    let (_, profile) = s.get("/profiles/readers/_rights", Some(&admin));
    assert_eq!(profile["result"], mine["result"]);
    let (_, admins) = s.get("/_me/_rights", Some(&admin));
    assert_eq!(
        admins["result"]["hits"],
        json!([{ "controller": "*", "action": "*", "index": "*", "collection": "*", "value": "allowed" }])
    );
    // Anonymous: the anonymous role's rights.
    let (_, anon) = s.get("/_me/_rights", None);
    assert!(anon["result"]["hits"].as_array().unwrap().iter().any(|h| h["action"] == "login"));
}

#[test]
fn users_search_mget_mdelete_replace_and_restricted() {
    let s = TestServer::start();
    let (admin, _bob) = setup(&s);
    s.user(&admin, "dave", "dave", "pw");
    let (status, body) = s.post("/users/_createRestricted", json!({ "content": { "name": "Rita" } }), None);
    assert_error(&(status, body), 401, "security.rights.unauthorized");
    let (status, body) =
        s.post("/users/rita/_createRestricted", json!({ "content": { "name": "Rita" } }), Some(&admin));
    assert_eq!((status, body["result"]["_source"]["profileIds"].clone()), (200, json!(["default"])), "{body}");
    let forced = s.post("/users/_createRestricted", json!({ "content": { "profileIds": ["admin"] } }), Some(&admin));
    assert_error(&forced, 400, "api.assert.forbidden_argument");
    let (_, found) =
        s.post("/users/_search", json!({ "query": { "terms": { "profileIds": ["readers"] } } }), Some(&admin));
    assert_eq!(found["result"]["total"], 1, "{found}");
    assert_eq!(found["result"]["hits"][0]["_id"], "bob");
    let (_, all) = s.post("/users/_search?from=1&size=2", json!({}), Some(&admin));
    assert_eq!((all["result"]["total"].clone(), all["result"]["hits"].as_array().unwrap().len()), (json!(4), 2));
    assert_error(
        &s.post("/users/_search", json!({ "query": { "match": { "x": 1 } } }), Some(&admin)),
        400,
        "api.assert.invalid_argument",
    );
    let (_, got) = s.post("/users/_mGet", json!({ "ids": ["bob", "nobody", "dave"] }), Some(&admin));
    let ids: Vec<&str> = got["result"]["hits"].as_array().unwrap().iter().map(|h| h["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["bob", "dave"]);
    let (status, body) =
        s.call("PUT", "/users/dave/_replace", Some(json!({ "profileIds": ["readers"], "x": 1 })), Some(&admin));
    assert_eq!((status, body["result"]["_source"]["x"].clone()), (200, json!(1)), "{body}");
    assert_error(
        &s.call("PUT", "/users/dave/_replace", Some(json!({ "x": 1 })), Some(&admin)),
        400,
        "api.assert.missing_argument",
    );
    // All or nothing: one missing id deletes nobody.
    assert_error(
        &s.post("/users/_mDelete", json!({ "ids": ["dave", "nobody"] }), Some(&admin)),
        404,
        "security.user.not_found",
    );
    assert_eq!(s.get("/users/dave", Some(&admin)).0, 200);
    let (status, body) = s.post("/users/_mDelete", json!({ "ids": ["dave", "rita"] }), Some(&admin));
    assert_eq!((status, body["result"].clone()), (200, json!(["dave", "rita"])));
    assert_error(&s.get("/users/dave", Some(&admin)), 404, "security.user.not_found");
}

#[test]
fn rights_are_the_same_over_http_query_and_websocket_whatever_the_spelling() {
    let s = TestServer::start();
    let (_admin, bob) = setup(&s);
    let requests = [
        ("security", "createUser"),
        ("Security", "createUser"),
        ("security", "CreateUser"),
        ("security ", "createUser"),
        ("strategies", "register"),
        ("nope", "nope"),
    ];
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut ws = rt.block_on(async { tokio_tungstenite::connect_async(format!("ws://{}/", s.addr)).await.unwrap().0 });
    for (controller, action) in requests {
        let body = json!({ "controller": controller, "action": action, "jwt": bob, "requestId": "x",
                           "_id": "eve", "body": { "content": { "profileIds": ["admin"] } } });
        let (status, over_query) = s.post("/_query", body.clone(), None);
        let over_ws: Value = rt.block_on(async {
            ws.send(Message::text(body.to_string())).await.unwrap();
            loop {
                if let Some(Ok(Message::Text(t))) = ws.next().await {
                    break serde_json::from_str(t.as_str()).unwrap();
                }
            }
        });
        assert_eq!(
            (status, over_query["error"]["id"].as_str()),
            (403, Some("security.rights.forbidden")),
            "{controller}:{action}"
        );
        assert_eq!(over_ws["error"], over_query["error"], "{controller}:{action}");
        let anonymous = s.post("/_query", json!({ "controller": controller, "action": action }), None);
        assert_error(&anonymous, 401, "security.rights.unauthorized");
    }
    assert_error(
        &s.post("/users/eve/_create", json!({ "content": { "profileIds": ["admin"] } }), Some(&bob)),
        403,
        "security.rights.forbidden",
    );
    // The upload is refused before its body is read, by the same rights.
    assert_error(&s.call("PUT", "/strategies/x", None, Some(&bob)), 403, "security.rights.forbidden");
}

fn sha256_hex(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn api_keys_live_until_deleted() {
    let s = TestServer::start();
    let (admin, bob) = setup(&s);
    let (status, created) = s.post("/api-keys/_create", json!({ "description": "ci" }), Some(&bob));
    assert_eq!(status, 200, "{created}");
    let source = &created["result"]["_source"];
    let key = source["token"].as_str().unwrap().to_string();
    assert!(key.starts_with("kapikey-"), "{key}");
    assert_eq!(
        (source["userId"].as_str(), source["expiresAt"].as_i64(), source["ttl"].as_i64()),
        (Some("bob"), Some(-1), Some(-1))
    );
    assert_eq!(source["fingerprint"], sha256_hex(&key));
    assert_eq!(created["result"]["_id"], source["fingerprint"], "the fingerprint is the default id");
    let id = created["result"]["_id"].as_str().unwrap().to_string();
    // Usable; checkToken says valid forever.
    assert_eq!(s.get("/_me", Some(&key)).1["result"]["_id"], "bob");
    let (_, checked) = s.post("/_checkToken", json!({ "token": key }), None);
    assert_eq!(checked["result"], json!({ "valid": true, "kuid": "bob", "expiresAt": -1 }));
    // A logout with it, a global logout and revokeTokens keep it; refreshing it is refused.
    assert_eq!(s.post("/_logout", json!({}), Some(&key)).0, 200);
    assert_eq!(s.post("/_logout?global", json!({}), Some(&bob)).0, 200);
    assert_eq!(s.call("DELETE", "/users/bob/tokens", None, Some(&admin)).0, 200);
    assert_eq!(s.get("/_me", Some(&key)).0, 200, "the key survives");
    let refresh = s.post("/_refreshToken", json!({}), Some(&key));
    assert_error(&refresh, 401, "security.token.refresh_forbidden");
    assert_eq!(refresh.1["error"]["message"], "API Key cannot be refreshed.");
    // Search shows it without its token.
    let (_, found) = s.post("/api-keys/_search", json!({}), Some(&key));
    assert_eq!(found["result"]["total"], 1);
    assert_eq!(found["result"]["hits"][0]["_id"], id.as_str());
    assert!(
        found["result"]["hits"][0]["_source"].get("token").is_none()
            && found["result"]["hits"][0]["_source"].get("jti").is_none()
    );
    let (_, theirs) = s.post("/users/bob/api-keys/_search", json!({}), Some(&admin));
    assert_eq!(theirs["result"]["hits"], found["result"]["hits"]);
    // Deleted: dead at once. Another user's key is not found for them.
    let (status, other) = s.post("/users/admin/api-keys/_create?_id=mine", json!({ "description": "x" }), Some(&admin));
    assert_eq!(status, 200, "{other}");
    assert_error(&s.call("DELETE", "/api-keys/mine", None, Some(&key)), 404, "services.storage.not_found");
    assert_eq!(s.call("DELETE", &format!("/api-keys/{id}"), None, Some(&key)).0, 200);
    assert_error(&s.get("/_me", Some(&key)), 401, "security.token.invalid");
    // Deleting a user deletes its keys: a user created again under its kuid finds none.
    let admin_key = other["result"]["_source"]["token"].as_str().unwrap().to_string();
    let (_, b2) = s.post("/users/bob/api-keys/_create", json!({ "description": "y" }), Some(&admin));
    let bob_key = b2["result"]["_source"]["token"].as_str().unwrap().to_string();
    assert_eq!(s.call("DELETE", "/users/bob", None, Some(&admin)).0, 200);
    s.user(&admin, "bob", "bob2", "pw");
    assert_error(&s.get("/_me", Some(&bob_key)), 401, "security.token.invalid");
    assert_eq!(s.post("/users/bob/api-keys/_search", json!({}), Some(&admin)).1["result"]["total"], 0);
    assert_eq!(s.get("/_me", Some(&admin_key)).0, 200);
    // A session token relabelled as a key is no key.
    let forged = format!("kapikey-{}", &admin["kauth-".len()..]);
    assert_error(&s.get("/_me", Some(&forged)), 401, "security.token.invalid");
}

#[test]
fn api_key_lifetime_is_capped_by_config_for_users_only() {
    let s = TestServer::with_config("[tokens]\napi_key_max_ttl = \"1d\"\n");
    let (admin, bob) = setup(&s);
    assert_error(
        &s.post("/api-keys/_create", json!({ "description": "x" }), Some(&bob)),
        400,
        "security.token.ttl_exceeded",
    );
    let (status, body) = s.post("/api-keys/_create?expiresIn=1h", json!({ "description": "x" }), Some(&bob));
    assert_eq!((status, body["result"]["_source"]["ttl"].clone()), (200, json!(3_600_000)), "{body}");
    assert_eq!(
        s.post("/users/bob/api-keys/_create", json!({ "description": "x" }), Some(&admin)).0,
        200,
        "an admin's is not capped"
    );
    assert_error(&s.post("/api-keys/_create", json!({}), Some(&bob)), 400, "api.assert.missing_argument");
}

#[test]
fn a_single_use_token_works_once() {
    let s = TestServer::start();
    let (_admin, bob) = setup(&s);
    let (status, body) = s.post("/_createToken?singleUse", json!({}), Some(&bob));
    assert_eq!(status, 200, "{body}");
    let r = &body["result"];
    assert_eq!((r["singleUse"].clone(), r["ttl"].clone()), (json!(true), json!(3_600_000)));
    assert!(r["expiresAt"].as_i64().unwrap() > 0);
    let once = r["token"].as_str().unwrap().to_string();
    assert_eq!(s.get("/_me", Some(&once)).1["result"]["_id"], "bob");
    assert_error(&s.get("/_me", Some(&once)), 401, "security.token.invalid");
    // checkToken uses one up too.
    let other =
        s.post("/_createToken?singleUse", json!({}), Some(&bob)).1["result"]["token"].as_str().unwrap().to_string();
    assert_eq!(s.post("/_checkToken", json!({ "token": other }), None).1["result"]["valid"], true);
    assert_eq!(s.post("/_checkToken", json!({ "token": other }), None).1["result"]["valid"], false);
    // An ordinary one works as often as wanted; an infinite one is refused.
    let many = s.post("/_createToken", json!({}), Some(&bob)).1["result"]["token"].as_str().unwrap().to_string();
    assert!((0..3).all(|_| s.get("/_me", Some(&many)).0 == 200));
    let infinite = s.post("/_createToken?expiresIn=-1", json!({}), Some(&bob));
    assert_error(&infinite, 400, "security.token.invalid_expiration");
    assert_eq!(
        infinite.1["error"]["message"],
        "Token can not be created with this expiration time: expiresIn cannot be infinite"
    );
    assert_error(&s.post("/_createToken", json!({}), None), 401, "security.rights.unauthorized");
}

#[test]
fn a_profile_rate_limit_refuses_past_its_requests_per_second() {
    let s = TestServer::start();
    let (admin, bob) = setup(&s);
    let (status, body) = s.call("PUT", "/profiles/readers/_update", Some(json!({ "rateLimit": 2 })), Some(&admin));
    assert_eq!((status, body["result"]["_source"]["rateLimit"].clone()), (200, json!(2)), "{body}");
    let outcomes: Vec<(u16, Value)> = (0..12).map(|_| s.get("/_me", Some(&bob))).collect();
    let refused: Vec<&(u16, Value)> = outcomes.iter().filter(|(status, _)| *status == 429).collect();
    assert!(!refused.is_empty(), "12 requests at 2 per second");
    assert_error(refused[0], 429, "api.process.too_many_requests");
    // Logging out is never refused for it; the admin (rateLimit 0) is not limited.
    assert_eq!(s.post("/_logout", json!({}), Some(&bob)).0, 200);
    assert!((0..12).all(|_| s.get("/_me", Some(&admin)).0 == 200));
}

#[test]
fn rights_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path(), "");
    let (_admin, bob) = setup(&s);
    drop(s);
    let s = TestServer::start_in(dir.path(), "");
    assert_eq!(s.get("/users/admin", Some(&bob)).0, 200, "bob's role is still his");
    let admin = s.token("admin", "admin-password");
    assert_eq!(
        s.get("/roles/reader", Some(&admin)).1["result"]["_source"]["controllers"],
        reader_role()["controllers"]
    );
}

#[test]
fn create_first_admin_with_reset_restores_the_standard_set() {
    let s = TestServer::start();
    // The default role as a former administrator left it in the store (everything allowed).
    let open = json!({ "controllers": { "*": { "actions": { "*": true } } } });
    let change = sandgate::store::Change::PutDoc {
        kind: sandgate::store::Doc::Role,
        id: "default".into(),
        body: open.to_string(),
        owner: None,
        insert: false,
    };
    s.app.store.blocking().commit(&[change]).unwrap();
    s.app.rights.reload_blocking(&**s.app.store.blocking()).unwrap();
    assert!(s.app.rights.current().allows(&["default"], "security", "createUser"));
    let (status, body) = s.post(
        "/_createFirstAdmin/admin?reset",
        json!({ "credentials": { "local": { "username": "admin", "password": "admin-password" } } }),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let admin = s.token("admin", "admin-password");
    let (_, role) = s.get("/roles/default", Some(&admin));
    assert_eq!(role["result"]["_source"]["controllers"]["auth"]["actions"]["updateSelf"], true, "{role}");
    assert!(role["result"]["_source"]["controllers"].get("*").is_none(), "{role}");
    s.user(&admin, "u", "u", "pw");
    assert_error(
        &s.post("/users/x/_create", json!({ "content": { "profileIds": ["default"] } }), Some(&s.token("u", "pw"))),
        403,
        "security.rights.forbidden",
    );
}

#[test]
fn create_first_admin_stays_closed_once_used_even_without_admins() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "bob", "bob", "pw");
    // The only admin demotes itself: nobody holds the admin profile any more.
    let (status, body) =
        s.call("PUT", "/users/admin/_update", Some(json!({ "profileIds": ["default"] })), Some(&admin));
    assert_eq!(status, 200, "{body}");
    let again = s.post(
        "/_createFirstAdmin/mallory",
        json!({ "credentials": { "local": { "username": "mallory", "password": "pw" } } }),
        None,
    );
    assert_error(&again, 412, "api.process.admin_exists");
    // And after a restart (the record is the store's).
    let dir = s.stop().unwrap();
    let s = TestServer::start_in(dir.path(), "");
    let again = s.post("/_createFirstAdmin/mallory", json!({}), None);
    assert_error(&again, 412, "api.process.admin_exists");
}

/// A WebSocket whose token expires, or is revoked elsewhere, is told so at that moment.
#[test]
fn token_expired_is_notified_on_the_websocket() {
    let s = TestServer::start();
    let admin = s.admin();
    s.user(&admin, "erin", "erin", "pw");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", s.addr)).await.unwrap();
        let login = json!({ "controller": "auth", "action": "login", "strategy": "local", "expiresIn": "2s",
                            "body": { "username": "erin", "password": "pw" }, "requestId": "l" });
        ws.send(Message::text(login.to_string())).await.unwrap();
        let started = std::time::Instant::now();
        let mut frames = Vec::new();
        let notice = loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next()).await.expect("a notice");
            if let Some(Ok(Message::Text(t))) = msg {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "TokenExpired" {
                    break v;
                }
                frames.push(v);
            }
        };
        assert!(started.elapsed() >= std::time::Duration::from_millis(1000), "not before it expired");
        assert_eq!(frames.len(), 1, "the login's answer, then the notice");
        assert_eq!(notice["message"], "Authentication Token Expired");
        assert_eq!(notice["room"], "kuzzle:notification:server");
        assert_eq!(
            (notice["status"].clone(), notice["info"].clone()),
            (json!(200), json!("This is an automated server notification"))
        );

        // Revoked from elsewhere (revokeTokens by the admin, over HTTP): told too.
        let token = tokio::task::block_in_place(|| s.token("erin", "pw"));
        let me = json!({ "controller": "auth", "action": "getCurrentUser", "jwt": token, "requestId": "m" });
        ws.send(Message::text(me.to_string())).await.unwrap();
        loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await
                && serde_json::from_str::<Value>(t.as_str()).unwrap()["requestId"] == "m"
            {
                break;
            }
        }
        assert_eq!(tokio::task::block_in_place(|| s.call("DELETE", "/users/erin/tokens", None, Some(&admin))).0, 200);
        let notice = loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next()).await.expect("a notice");
            if let Some(Ok(Message::Text(t))) = msg {
                break serde_json::from_str::<Value>(t.as_str()).unwrap();
            }
        };
        assert_eq!(notice["type"], "TokenExpired");

        // Its own logout is no news: nothing comes.
        let token = tokio::task::block_in_place(|| s.token("erin", "pw"));
        let logout = json!({ "controller": "auth", "action": "logout", "jwt": token, "requestId": "o" });
        ws.send(Message::text(
            json!({ "controller": "auth", "action": "getCurrentUser", "jwt": token, "requestId": "m2" }).to_string(),
        ))
        .await
        .unwrap();
        ws.send(Message::text(logout.to_string())).await.unwrap();
        let mut seen = Vec::new();
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(std::time::Duration::from_secs(2), ws.next()).await {
            if let Message::Text(t) = msg {
                seen.push(serde_json::from_str::<Value>(t.as_str()).unwrap());
            }
        }
        assert!(seen.iter().all(|v| v["type"] != "TokenExpired"), "{seen:?}");
    });
}
