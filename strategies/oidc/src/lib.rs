//! The `oidc` strategy: log in with an OpenID Connect provider, authorization code flow with
//! PKCE (S256), users provisioned on their first login (if the operator allows it).
//!
//! `GET /_login/<name>` answers a redirect to the provider's authorization endpoint with a
//! fresh `state`: 16 random bytes, an expiry ten minutes away, and a MAC of both under this
//! strategy's secret. The PKCE verifier and the `nonce` are MACs of the state and of the
//! browser (the host's `client-binding`, from a cookie it sets with the redirect): nothing is
//! stored per login, so anonymous requests fill no storage, and the second step only works
//! in the browser that took the first (a callback URL replayed elsewhere derives another
//! verifier, which the provider refuses). The provider sends the browser back to
//! `redirect_uri` (`/_login/<name>?code=…&state=…`): the state's MAC and expiry are checked,
//! it must not have been used (a used state is recorded until it expires), the code is
//! exchanged at the token endpoint, the ID token's signature checked by the host against the
//! provider's JWKS, its `iss`, `aud`, `exp` and `nonce` here. The person is the ID token's
//! `identifier_claim` (`sub` by default): known, they log in as the user their credentials
//! belong to; new, the host provisions a user.
//!
//! Config: `issuer`, `client_id`, `client_secret`, `redirect_uri`, `scopes` (default
//! `"openid"`), `identifier_claim` (default `"sub"`). Register it with
//! `outbound=["<issuer's origin>"]` (and its token/JWKS origins if they differ), and
//! `provision={"profileIds":[…]}` for first logins.
//!
//! Storage: `secret` (made on first use), `used:<state>` (until the state expires),
//! `discovery` and `jwks` (1 h), `id:<identity>` → kuid, `kuid:<kuid>` → identity.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sandgate_strategy::{
    Login, LoginRequest, Newcomer, Result, Strategy, bad_request, config_json, conflict, crypto, export_strategy, http,
    internal, not_found, rejected, store, to_json,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long a started login may take to come back (the user types a password meanwhile).
const FLOW_TTL_MS: u64 = 10 * 60 * 1000;
/// How long the provider's discovery document and keys are kept.
const CACHE_TTL_MS: u64 = 60 * 60 * 1000;
/// Clock skew tolerated on `exp`.
const SKEW_SECS: i64 = 60;

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    redirect_uri: String,
    scopes: Option<String>,
    identifier_claim: Option<String>,
}

impl Config {
    fn load() -> Result<Config> {
        let c: Config = config_json()?;
        for (key, value) in [("issuer", &c.issuer), ("client_id", &c.client_id), ("redirect_uri", &c.redirect_uri)] {
            if value.is_empty() {
                return Err(internal(format!("the oidc strategy's config has no {key:?}")));
            }
        }
        Ok(c)
    }
}

/// The parts of the provider's discovery document used here.
#[derive(Deserialize, Serialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Tokens {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct Creds {
    identity: Option<String>,
}

/// This strategy's own key for its states and their derived values, made on first use.
fn secret() -> Result<Vec<u8>> {
    if let Some(hex) = store::get("secret")
        && let Some(key) = unhex(&hex)
    {
        return Ok(key);
    }
    let key = crypto::random_bytes(32);
    store::set("secret", &key.iter().map(|b| format!("{b:02x}")).collect::<String>()).map_err(internal)?;
    Ok(key)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut data = Vec::new();
    for part in parts {
        data.extend_from_slice(&(part.len() as u32).to_be_bytes());
        data.extend_from_slice(part);
    }
    crypto::hmac_sha256(key, &data)
}

/// A new state: 16 random bytes, the expiry (ms, big-endian), 16 bytes of MAC.
fn new_state(key: &[u8]) -> String {
    let mut state = crypto::random_bytes(16);
    state.extend_from_slice(&(crypto::now_ms() + FLOW_TTL_MS).to_be_bytes());
    let tag = mac(key, &[b"state", &state]);
    state.extend_from_slice(&tag[..16]);
    URL_SAFE_NO_PAD.encode(state)
}

/// The state's expiry, if it is one of ours and still valid.
fn check_state(key: &[u8], state: &str) -> Option<u64> {
    let raw = URL_SAFE_NO_PAD.decode(state).ok().filter(|r| r.len() == 40)?;
    let tag = mac(key, &[b"state", &raw[..24]]);
    if !crypto::constant_time_eq(&tag[..16], &raw[24..]) {
        return None;
    }
    let expiry = u64::from_be_bytes(raw[16..24].try_into().ok()?);
    (expiry > crypto::now_ms()).then_some(expiry)
}

/// What a login's state and browser give: the PKCE verifier (43 characters) and the nonce.
fn derived(key: &[u8], state: &str, binding: &str) -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(mac(key, &[b"pkce", state.as_bytes(), binding.as_bytes()]));
    let nonce = URL_SAFE_NO_PAD.encode(mac(key, &[b"nonce", state.as_bytes(), binding.as_bytes()]));
    (verifier, nonce)
}

fn discovery(config: &Config) -> Result<Discovery> {
    if let Some(cached) = store::get_json::<Discovery>("discovery")? {
        return Ok(cached);
    }
    let url = format!("{}/.well-known/openid-configuration", config.issuer.trim_end_matches('/'));
    let response = http::get(&url).map_err(|e| internal(format!("the provider's discovery document: {e}")))?;
    if !response.is_success() {
        return Err(internal(format!("the provider's discovery document: HTTP {}", response.status)));
    }
    let found: Discovery = response.json()?;
    if found.issuer != config.issuer {
        return Err(internal(format!(
            "the discovery document names issuer {:?}, not {:?}",
            found.issuer, config.issuer
        )));
    }
    store::set_json_expiring("discovery", &found, CACHE_TTL_MS)?;
    Ok(found)
}

fn jwks(found: &Discovery, fresh: bool) -> Result<String> {
    if !fresh && let Some(cached) = store::get("jwks") {
        return Ok(cached);
    }
    let response = http::get(&found.jwks_uri).map_err(|e| internal(format!("the provider's keys: {e}")))?;
    if !response.is_success() {
        return Err(internal(format!("the provider's keys: HTTP {}", response.status)));
    }
    let text = String::from_utf8(response.body).map_err(|_| internal("the provider's keys are not text"))?;
    store::set_expiring("jwks", &text, CACHE_TTL_MS).map_err(internal)?;
    Ok(text)
}

fn query<'a>(req: &'a LoginRequest, name: &str) -> Option<&'a str> {
    req.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Step one: off to the provider.
fn start(config: &Config, req: &LoginRequest) -> Result<Login> {
    let found = discovery(config)?;
    let key = secret()?;
    let state = new_state(&key);
    let (verifier, nonce) = derived(&key, &state, &req.client_binding);
    let challenge = URL_SAFE_NO_PAD.encode(crypto::sha256(verifier.as_bytes()));
    let scopes = config.scopes.as_deref().unwrap_or("openid");
    let params = http::form(&[
        ("response_type", "code"),
        ("client_id", &config.client_id),
        ("redirect_uri", &config.redirect_uri),
        ("scope", scopes),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let sep = if found.authorization_endpoint.contains('?') { '&' } else { '?' };
    Ok(Login::Redirect(format!("{}{sep}{params}", found.authorization_endpoint)))
}

/// Step two: the provider sent the browser back with a code.
fn finish(config: &Config, req: &LoginRequest, code: &str) -> Result<Login> {
    let state = query(req, "state").ok_or_else(|| rejected("The provider's answer has no state"))?;
    let key = secret()?;
    let expiry = check_state(&key, state).ok_or_else(|| rejected("Unknown or expired login state"))?;
    let used = format!("used:{state}");
    if store::get(&used).is_some() {
        return Err(rejected("This login was already used"));
    }
    // Single use: recorded with the login (if it succeeds), until the state would expire anyway.
    store::set_expiring(&used, "1", expiry.saturating_sub(crypto::now_ms()) + 1000).map_err(internal)?;
    let (verifier, nonce) = derived(&key, state, &req.client_binding);
    // RFC 9207: a provider that names itself must be ours (mix-up attacks).
    if let Some(iss) = query(req, "iss")
        && iss != config.issuer
    {
        return Err(rejected("The answer comes from another issuer"));
    }
    let found = discovery(config)?;
    let basic = format!("{}:{}", form_part(&config.client_id), form_part(&config.client_secret));
    let auth = format!("Basic {}", STANDARD.encode(basic));
    let response = http::post_form(
        &found.token_endpoint,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &config.redirect_uri),
            ("code_verifier", &verifier),
        ],
        &[("authorization", &auth), ("accept", "application/json")],
    )
    .map_err(|e| internal(format!("the provider's token endpoint: {e}")))?;
    if !response.is_success() {
        let said: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let why = said["error_description"].as_str().or(said["error"].as_str()).unwrap_or("no reason given");
        return Err(rejected(format!("The provider refused the code: {why}")));
    }
    let id_token = response.json::<Tokens>()?.id_token.ok_or_else(|| internal("the provider sent no ID token"))?;
    let claims = verified_claims(config, &found, &id_token, &nonce)?;
    let claim = config.identifier_claim.as_deref().unwrap_or("sub");
    let identity = match &claims[claim] {
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => return Err(rejected(format!("The ID token has no {claim:?} claim"))),
    };
    if let Some(kuid) = store::get(&format!("id:{identity}")) {
        return Ok(Login::User(kuid));
    }
    let name = claims["name"].as_str().map(|n| json!({ "name": n })).unwrap_or_else(|| json!({}));
    Ok(Login::Provision(Newcomer {
        credentials: json!({ "identity": identity }).to_string(),
        content: name.to_string(),
    }))
}

/// `a:b` in HTTP Basic is form-encoded first (RFC 6749 §2.3.1).
fn form_part(s: &str) -> String {
    let encoded = http::form(&[("", s)]);
    encoded.trim_start_matches('=').to_string()
}

/// The ID token's claims, once its signature (by the host) and its claims (here) hold.
fn verified_claims(config: &Config, found: &Discovery, id_token: &str, nonce: &str) -> Result<Value> {
    let payload = match crypto::jws_verify(id_token, &jwks(found, false)?) {
        // The provider may have rotated its keys since they were cached: once more, fresh.
        Err(e) if e.starts_with("no key") => crypto::jws_verify(id_token, &jwks(found, true)?),
        checked => checked,
    }
    .map_err(|e| rejected(format!("The ID token does not verify: {e}")))?;
    let claims: Value = serde_json::from_str(&payload).map_err(|_| rejected("The ID token's claims are not JSON"))?;
    if claims["iss"].as_str() != Some(config.issuer.as_str()) {
        return Err(rejected("The ID token comes from another issuer"));
    }
    let for_us = match &claims["aud"] {
        Value::String(aud) => *aud == config.client_id,
        Value::Array(auds) => {
            auds.iter().any(|a| a.as_str() == Some(config.client_id.as_str()))
                && (auds.len() == 1 || claims["azp"].as_str() == Some(config.client_id.as_str()))
        }
        _ => false,
    };
    if !for_us {
        return Err(rejected("The ID token is meant for another client"));
    }
    let now = (crypto::now_ms() / 1000) as i64;
    match claims["exp"].as_i64() {
        Some(exp) if exp + SKEW_SECS > now => {}
        _ => return Err(rejected("The ID token has expired")),
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return Err(rejected("The ID token's nonce is not this login's"));
    }
    Ok(claims)
}

fn identity_of(credentials: &str) -> Result<String> {
    let creds: Creds =
        serde_json::from_str(credentials).map_err(|e| bad_request(format!("Invalid credentials: {e}")))?;
    match creds.identity {
        Some(id) if !id.is_empty() && id.len() <= 256 => Ok(id),
        _ => Err(bad_request("Credentials need an \"identity\": the provider's identifier for the person")),
    }
}

struct Oidc;

impl Strategy for Oidc {
    fn fields() -> Vec<String> {
        vec!["identity".into()]
    }

    fn verify(req: LoginRequest) -> Result<Login> {
        let config = Config::load()?;
        if let Some(error) = query(&req, "error") {
            let why = query(&req, "error_description").unwrap_or(error);
            return Err(rejected(format!("The provider did not log you in: {why}")));
        }
        match query(&req, "code") {
            Some(code) => finish(&config, &req, code),
            None => start(&config, &req),
        }
    }

    fn validate(kuid: String, credentials: String, _is_update: bool) -> Result<()> {
        let identity = identity_of(&credentials)?;
        match store::get(&format!("id:{identity}")) {
            Some(owner) if owner != kuid => Err(conflict(format!("Identity {identity:?} belongs to another user"))),
            _ => Ok(()),
        }
    }

    fn create(kuid: String, credentials: String) -> Result<String> {
        if store::get(&format!("kuid:{kuid}")).is_some() {
            return Err(conflict(format!("User {kuid} already has oidc credentials")));
        }
        let identity = identity_of(&credentials)?;
        Self::validate(kuid.clone(), credentials, false)?;
        store::set(&format!("id:{identity}"), &kuid).map_err(internal)?;
        store::set(&format!("kuid:{kuid}"), &identity).map_err(internal)?;
        to_json(&json!({ "identity": identity }))
    }

    fn update(kuid: String, credentials: String) -> Result<String> {
        let old = store::get(&format!("kuid:{kuid}"))
            .ok_or_else(|| not_found(format!("User {kuid} has no oidc credentials")))?;
        let identity = identity_of(&credentials)?;
        Self::validate(kuid.clone(), credentials, true)?;
        store::delete(&format!("id:{old}"));
        store::set(&format!("id:{identity}"), &kuid).map_err(internal)?;
        store::set(&format!("kuid:{kuid}"), &identity).map_err(internal)?;
        to_json(&json!({ "identity": identity }))
    }

    fn delete(kuid: String) -> Result<()> {
        let identity = store::get(&format!("kuid:{kuid}"))
            .ok_or_else(|| not_found(format!("User {kuid} has no oidc credentials")))?;
        store::delete(&format!("id:{identity}"));
        store::delete(&format!("kuid:{kuid}"));
        Ok(())
    }

    fn exists(kuid: String) -> bool {
        store::get(&format!("kuid:{kuid}")).is_some()
    }

    fn get_info(kuid: String) -> Result<String> {
        let identity = store::get(&format!("kuid:{kuid}"))
            .ok_or_else(|| not_found(format!("User {kuid} has no oidc credentials")))?;
        to_json(&json!({ "identity": identity }))
    }

    fn get_by_id(id: String) -> Result<String> {
        let kuid =
            store::get(&format!("id:{id}")).ok_or_else(|| not_found(format!("No credentials found for {id:?}")))?;
        to_json(&json!({ "kuid": kuid, "identity": id }))
    }
}

export_strategy!(Oidc);
