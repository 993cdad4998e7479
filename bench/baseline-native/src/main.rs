//! The native baseline of `make bench`: a minimal warp server that does what a Sandgate login
//! does, natively and nothing more, so the benchmark can say how far Sandgate's whole request
//! path is from a native one.
//!
//! - `GET /_healthcheck`: the trivial route, a Kuzzle envelope around `{"status":"green"}`.
//! - `POST /_login/apikey {"key"}`: SHA-256 of the key, hex, looked up in a map, the stored
//!   fingerprint compared in constant time, an HS256 JWT signed with ring, the envelope.
//! - `POST /_login/local {"username","password"}`: the account looked up, argon2id verified with
//!   Sandgate's default parameters (m = 19456 KiB, t = 2, p = 1) on tokio's blocking pool, one
//!   hash per core at a time, the same JWT and envelope.
//!
//! Configured by the environment: `BASELINE_LISTEN` (127.0.0.1:7600), `BASELINE_KEY` (the API
//! key of user `bot`), `BASELINE_USER` (`name:password`, kuid `bot`).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use warp::Filter;
use warp::http::StatusCode;

struct State {
    /// sha256(key) hex → kuid, and kuid → the fingerprint (what strategies/apikey stores).
    keys: HashMap<String, String>,
    fingerprints: HashMap<String, String>,
    /// username → (kuid, PHC string).
    accounts: HashMap<String, (String, String)>,
    hmac: ring::hmac::Key,
    argon2: Argon2<'static>,
    /// One hash per core at a time, as Sandgate does: more only thrash the caches.
    hashing: tokio::sync::Semaphore,
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(19_456, 2, 1, None).expect("params"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn request_id() -> String {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).expect("random");
    hex(&b)
}

fn envelope(action: &str, status: u16, result: Value, error: Value) -> warp::reply::Response {
    let body = json!({
        "action": action, "controller": if action == "healthCheck" { "server" } else { "auth" },
        "error": error, "headers": {}, "node": "baseline-native", "requestId": request_id(),
        "result": result, "status": status, "volatile": null,
    });
    let mut out = warp::reply::Response::new(serde_json::to_vec(&body).unwrap_or_default().into());
    *out.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    out.headers_mut().insert("content-type", warp::http::HeaderValue::from_static("application/json"));
    out
}

fn refused(message: &str) -> warp::reply::Response {
    let error = json!({ "id": "plugin.strategy.missing_user", "code": 67305492, "message": message,
                        "props": [message], "status": 401 });
    envelope("login", 401, Value::Null, error)
}

/// An HS256 JWT for `kuid`, valid one hour, in Kuzzle's `kauth-` form.
fn token(state: &State, kuid: &str) -> warp::reply::Response {
    let issued = now_ms();
    let expires = issued + 3_600_000;
    let mut nonce = [0u8; 8];
    SystemRandom::new().fill(&mut nonce).expect("random");
    let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims =
        json!({ "_id": kuid, "iat": issued / 1000, "exp": expires / 1000, "jti": format!("{issued}-{}", hex(&nonce)) });
    let payload = B64.encode(claims.to_string());
    let signing = format!("{header}.{payload}");
    let signature = B64.encode(ring::hmac::sign(&state.hmac, signing.as_bytes()).as_ref());
    let jwt = format!("kauth-{signing}.{signature}");
    envelope("login", 200, json!({ "_id": kuid, "jwt": jwt, "expiresAt": expires, "ttl": 3_600_000 }), Value::Null)
}

fn apikey(state: &State, body: &Value) -> warp::reply::Response {
    let Some(key) = body.get("key").and_then(Value::as_str) else { return refused("invalid API key") };
    let fingerprint = hex(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref());
    let Some(kuid) = state.keys.get(&fingerprint) else { return refused("invalid API key") };
    let stored = state.fingerprints.get(kuid).map_or(&[][..], |s| s.as_bytes());
    if !bool::from(subtle::ConstantTimeEq::ct_eq(stored, fingerprint.as_bytes())) {
        return refused("invalid API key");
    }
    token(state, kuid)
}

async fn local(state: Arc<State>, body: Value) -> warp::reply::Response {
    let (Some(user), Some(password)) =
        (body.get("username").and_then(Value::as_str), body.get("password").and_then(Value::as_str))
    else {
        return refused("wrong username or password");
    };
    let Some((kuid, phc)) = state.accounts.get(user).cloned() else { return refused("wrong username or password") };
    let password = password.to_string();
    let checker = state.clone();
    let Ok(_turn) = state.hashing.acquire().await else { return refused("shutting down") };
    // argon2 takes tens of milliseconds: off the reactor, as any native server would do it.
    let ok = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc).is_ok_and(|h| checker.argon2.verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false);
    if ok { token(&state, &kuid) } else { refused("wrong username or password") }
}

#[tokio::main]
async fn main() {
    let listen = std::env::var("BASELINE_LISTEN").unwrap_or_else(|_| "127.0.0.1:7600".into());
    let key = std::env::var("BASELINE_KEY").unwrap_or_else(|_| "bench-key".into());
    let user = std::env::var("BASELINE_USER").unwrap_or_else(|_| "bot:pw".into());
    let (name, password) = user.split_once(':').expect("BASELINE_USER is name:password");
    let fingerprint = hex(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()).as_ref());
    let mut salt = [0u8; 16];
    SystemRandom::new().fill(&mut salt).expect("random");
    let salt = SaltString::encode_b64(&salt).expect("salt");
    let phc = argon2().hash_password(password.as_bytes(), &salt).expect("hash").to_string();
    let mut secret = [0u8; 32];
    SystemRandom::new().fill(&mut secret).expect("random");
    let state = Arc::new(State {
        keys: HashMap::from([(fingerprint.clone(), "bot".to_string())]),
        fingerprints: HashMap::from([("bot".to_string(), fingerprint)]),
        accounts: HashMap::from([(name.to_string(), ("bot".to_string(), phc))]),
        hmac: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
        argon2: argon2(),
        hashing: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
    });
    let health = warp::get()
        .and(warp::path!("_healthcheck"))
        .map(|| envelope("healthCheck", 200, json!({ "status": "green" }), Value::Null));
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let api = warp::post()
        .and(warp::path!("_login" / "apikey"))
        .and(warp::body::json())
        .and(with_state.clone())
        .map(|body: Value, state: Arc<State>| apikey(&state, &body));
    let pw = warp::post()
        .and(warp::path!("_login" / "local"))
        .and(warp::body::json())
        .and(with_state)
        .then(|body: Value, state: Arc<State>| local(state, body));
    let addr: std::net::SocketAddr = listen.parse().expect("BASELINE_LISTEN is host:port");
    warp::serve(health.or(api).unify().or(pw).unify()).run(addr).await;
}
