//! The bundled `oidc` strategy against a real OpenID provider: panva's `oidc-provider` from
//! npm (sdk-tests/oidc-provider.mjs, installed by `make test` from the committed lock file),
//! started on 127.0.0.1, its login and consent pages driven over HTTP as a browser would
//! (a cookie jar, redirects followed by hand). Sandgate reaches the provider over real HTTP
//! through the strategy's outbound allow list.

mod common;

use common::{TestServer, assert_error};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const CLIENT_ID: &str = "sandgate";
const CLIENT_SECRET: &str = "sandgate-secret";

struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sdk_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-tests")
}

/// oidc-provider, its client's redirect URI at `sandgate`'s `/_login/<strategy>`.
fn provider(redirect_uri: &str, env: &[(&str, &str)]) -> Provider {
    assert!(
        sdk_tests().join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run `npm ci` in sdk-tests/ (`make test` does)"
    );
    let mut command = Command::new("node");
    command
        .arg("oidc-provider.mjs")
        .current_dir(sdk_tests())
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", CLIENT_SECRET)
        .env("REDIRECT_URI", redirect_uri)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("node (Node.js is needed for the oidc tests)");
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let issuer = loop {
        let line = lines.next().expect("the provider printed LISTENING").unwrap();
        if let Some(issuer) = line.strip_prefix("LISTENING ") {
            break issuer.to_string();
        }
    };
    // Keep draining its stdout (notices) so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Provider { child, issuer }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Registers the bundled oidc strategy as `name` for `provider`.
fn register(s: &TestServer, admin: &str, name: &str, issuer: &str, provision: bool) -> Value {
    register_with(s, admin, name, issuer, provision, json!({}))
}

/// The same, with `more` added to its config.
fn register_with(s: &TestServer, admin: &str, name: &str, issuer: &str, provision: bool, more: Value) -> Value {
    let mut config = json!({
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": s.url(&format!("/_login/{name}")),
        "scopes": "openid profile",
    });
    config.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
    let mut query = format!(
        "?config={}&outbound={}&limits={}",
        urlencode(&config.to_string()),
        urlencode(&json!([issuer]).to_string()),
        urlencode(r#"{"wall_ms":10000}"#),
    );
    if provision {
        query.push_str(&format!("&provision={}", urlencode(r#"{"profileIds":["default"]}"#)));
    }
    s.register(admin, name, "strategy_oidc", &query)
}

/// A browser: its own cookies, redirects followed one by one.
fn browser() -> Client {
    Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of `name="<field>" value="…"` in a form, if any.
fn form_value(html: &str, field: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{field}\" value=\""))? + field.len() + 15;
    Some(html[at..].split('"').next()?.to_string())
}

/// A login's way back: the URL the provider sends the browser to (Sandgate's `redirect_uri`
/// with a code and a state), and the login cookie Sandgate set on that browser.
struct Back {
    url: String,
    cookie: String,
}

/// Step one on Sandgate, then the provider's pages as `login` would go through them.
fn through_the_provider(s: &TestServer, strategy: &str, browser: &Client, login: &str) -> Back {
    let (status, headers, body) = s.send("GET", &format!("/_login/{strategy}"), None, &[]);
    assert_eq!(status, 302, "{body}");
    let set_cookie = headers["set-cookie"].to_str().unwrap();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let mut url = reqwest::Url::parse(headers["location"].to_str().unwrap()).unwrap();
    assert!(url.as_str().contains("code_challenge_method=S256"), "{url}");
    let back = s.url(&format!("/_login/{strategy}"));
    for _ in 0..20 {
        let resp = browser.get(url.clone()).send().unwrap();
        if resp.status().is_redirection() {
            let next = url.join(resp.headers()["location"].to_str().unwrap()).unwrap();
            if next.as_str().starts_with(&back) {
                return Back { url: next.to_string(), cookie };
            }
            url = next;
            continue;
        }
        // A login or consent page: its form posts back to the same URL.
        assert_eq!(resp.status(), 200, "{url}");
        let html = resp.text().unwrap();
        let prompt = form_value(&html, "prompt").unwrap_or_else(|| panic!("no prompt in the page: {html}"));
        let mut form = vec![("prompt", prompt.clone())];
        if prompt == "login" {
            form.push(("login", login.to_string()));
            form.push(("password", "anything".to_string()));
        }
        let resp = browser.post(url.clone()).form(&form).send().unwrap();
        assert!(resp.status().is_redirection(), "posting the {prompt} form: {}", resp.status());
        url = url.join(resp.headers()["location"].to_str().unwrap()).unwrap();
    }
    panic!("the provider never sent the browser back");
}

/// The provider's answer handed to Sandgate, as the browser would (with its cookie).
fn back_at_sandgate(s: &TestServer, back: &Back) -> (u16, Value) {
    elsewhere(s, &back.url, Some(&back.cookie))
}

/// The same URL from a client with another cookie, or none.
fn elsewhere(s: &TestServer, url: &str, cookie: Option<&str>) -> (u16, Value) {
    let path = url.strip_prefix(&s.base).unwrap();
    let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", *c)).collect();
    let (status, _, body) = s.send("GET", path, None, &headers);
    (status, body)
}

#[test]
fn a_full_login_then_the_same_person_again() {
    let s = TestServer::start();
    let admin = s.admin();
    let p = provider(&s.url("/_login/oidc"), &[]);
    let info = register(&s, &admin, "oidc", &p.issuer, true);
    assert_eq!(info["contract"], "0.2.0");
    assert_eq!(info["fields"], json!(["identity"]));

    let callback = through_the_provider(&s, "oidc", &browser(), "alice");
    // The way back, taken by someone else (a leaked callback URL, a login CSRF): the state's
    // verifier is another browser's, the provider refuses the code.
    for other in [None, Some("sandgate-login=0123456789abcdef0123456789abcdef")] {
        let got = elsewhere(&s, &callback.url, other);
        assert_error(&got, 401, "plugin.strategy.missing_user");
        assert!(got.1["error"]["message"].as_str().unwrap().contains("refused the code"), "{}", got.1);
    }
    let (status, body) = back_at_sandgate(&s, &callback);
    assert_eq!(status, 200, "{body}");
    let kuid = body["result"]["_id"].as_str().unwrap().to_string();
    let token = body["result"]["jwt"].as_str().unwrap().to_string();
    let (_, me) = s.get("/_me", Some(&token));
    assert_eq!(me["result"]["_source"]["profileIds"], json!(["default"]), "{me}");
    assert_eq!(me["result"]["_source"]["name"], "Person alice");
    let (_, creds) = s.get("/credentials/oidc/_me", Some(&token));
    assert_eq!(creds["result"]["identity"], "alice", "{creds}");

    // The answer again (a replayed state): refused, the state was used.
    let replay = back_at_sandgate(&s, &callback);
    assert_error(&replay, 401, "plugin.strategy.missing_user");
    assert!(replay.1["error"]["message"].as_str().unwrap().contains("already used"), "{}", replay.1);

    // Alice again, in another browser: the same user.
    let (status, body) = back_at_sandgate(&s, &through_the_provider(&s, "oidc", &browser(), "alice"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["_id"], kuid.as_str());
    // Bob is someone else.
    let (status, body) = back_at_sandgate(&s, &through_the_provider(&s, "oidc", &browser(), "bob"));
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["result"]["_id"], kuid.as_str());
}

#[test]
fn forged_states_foreign_audiences_and_a_provider_gone_are_refused() {
    let s = TestServer::start();
    let admin = s.admin();
    let p = provider(&s.url("/_login/oidc"), &[]);
    register(&s, &admin, "oidc", &p.issuer, true);
    // A state Sandgate never issued.
    let forged = s.get("/_login/oidc?code=abc&state=forged", None);
    assert_error(&forged, 401, "plugin.strategy.missing_user");
    // A real code, but the state swapped for another login's.
    let callback = through_the_provider(&s, "oidc", &browser(), "carol");
    let (status, headers, _) = s.send("GET", "/_login/oidc", None, &[]);
    assert_eq!(status, 302);
    let other_state = reqwest::Url::parse(headers["location"].to_str().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let mut swapped = reqwest::Url::parse(&callback.url).unwrap();
    let pairs: Vec<(String, String)> = swapped
        .query_pairs()
        .map(|(k, v)| (k.to_string(), if k == "state" { other_state.clone() } else { v.to_string() }))
        .collect();
    swapped.query_pairs_mut().clear().extend_pairs(pairs);
    let got = elsewhere(&s, swapped.as_str(), Some(&callback.cookie));
    assert_error(&got, 401, "plugin.strategy.missing_user");
    // The code was issued for the other login's PKCE challenge: the provider refuses it.
    assert!(got.1["error"]["message"].as_str().unwrap().contains("refused the code"), "{}", got.1);

    // A provider that hands out ID tokens tampered with, one way per person (see HOSTILE in
    // sdk-tests/oidc-provider.mjs): each refused, and nobody provisioned.
    let hostile = provider(&s.url("/_login/hostile"), &[("HOSTILE", "1")]);
    register(&s, &admin, "hostile", &hostile.issuer, true);
    for (what, why) in [
        ("aud", "meant for another client"),
        ("iss", "comes from another issuer"),
        ("nonce", "nonce is not this login's"),
        ("exp", "has expired"),
        ("signature", "does not verify"),
        ("alg-none", "does not verify"),
        ("hs256", "does not verify"),
    ] {
        let got = back_at_sandgate(&s, &through_the_provider(&s, "hostile", &browser(), &format!("tamper-{what}")));
        assert_error(&got, 401, "plugin.strategy.missing_user");
        assert!(got.1["error"]["message"].as_str().unwrap().contains(why), "{what}: {}", got.1);
    }
    assert!(!s.app.store.blocking().has_links("hostile").unwrap(), "nobody was provisioned");
    // The same provider's untampered tokens are fine.
    let (status, body) = back_at_sandgate(&s, &through_the_provider(&s, "hostile", &browser(), "dave"));
    assert_eq!(status, 200, "{body}");

    // The provider goes away between the two steps: a clear error, the server fine.
    let callback = through_the_provider(&s, "oidc", &browser(), "erin");
    drop(p);
    let got = back_at_sandgate(&s, &callback);
    assert_error(&got, 500, "plugin.runtime.unexpected_error");
    assert!(got.1["error"]["message"].as_str().unwrap().contains("token endpoint"), "{}", got.1);
    let (status, _) = s.get("/_healthcheck", None);
    assert_eq!(status, 200);
    let (status, _) = s.login("admin", "admin-password");
    assert_eq!(status, 200);
}

#[test]
fn without_provisioning_a_newcomer_is_refused() {
    let s = TestServer::start();
    let admin = s.admin();
    let p = provider(&s.url("/_login/oidc"), &[]);
    register(&s, &admin, "oidc", &p.issuer, false);
    let got = back_at_sandgate(&s, &through_the_provider(&s, "oidc", &browser(), "frank"));
    assert_error(&got, 401, "plugin.strategy.provisioning_disabled");
    // An administrator may still give someone oidc credentials by hand; then they log in.
    s.user_with(&admin, "frank", json!({ "oidc": { "identity": "frank" } }));
    let (status, body) = back_at_sandgate(&s, &through_the_provider(&s, "oidc", &browser(), "frank"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["_id"], "frank");
}

#[test]
fn the_person_may_be_named_by_another_claim() {
    let s = TestServer::start();
    let admin = s.admin();
    let p = provider(&s.url("/_login/byname"), &[]);
    register_with(&s, &admin, "byname", &p.issuer, true, json!({ "identifier_claim": "name" }));
    let (status, body) = back_at_sandgate(&s, &through_the_provider(&s, "byname", &browser(), "gina"));
    assert_eq!(status, 200, "{body}");
    let token = body["result"]["jwt"].as_str().unwrap();
    let (_, creds) = s.get("/credentials/byname/_me", Some(token));
    assert_eq!(creds["result"]["identity"], "Person gina", "{creds}");
}
