//! The `local` strategy: a username and a password, Kuzzle's default.
//!
//! Behaviour and messages follow kuzzle-plugin-auth-passport-local 6.x, except the hash:
//! passwords are argon2id PHC strings computed by the host (`crypto::hash-password`), and
//! an unknown username costs the same hash as a wrong password, so response time does not
//! tell whether a username exists.
//!
//! Storage layout (private to this strategy):
//! - `user:<username>` → `{"kuid": ..., "hash": "<argon2id PHC>"}`
//! - `kuid:<kuid>`     → `"<username>"` (the reverse index, for update/delete/getInfo)

use sandgate_strategy::{
    Login, LoginRequest, Result, Strategy, bad_request, conflict, crypto, export_strategy, rejected, store, to_json,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const WRONG: &str = "wrong username or password";
/// Usernames longer than this are refused at creation and never found at login (their record
/// key would pass the host's `limits.max_key_bytes`, 512 by default, and stop the call).
const MAX_USERNAME_BYTES: usize = 256;

#[derive(Serialize, Deserialize)]
struct Account {
    kuid: String,
    hash: String,
}

#[derive(Serialize)]
struct PublicInfo<'a> {
    username: &'a str,
    kuid: &'a str,
}

fn user_key(username: &str) -> String {
    format!("user:{username}")
}
fn kuid_key(kuid: &str) -> String {
    format!("kuid:{kuid}")
}

/// The credentials object; anything else is a 400.
fn object(credentials: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(credentials) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad_request("Credentials must be an object.")),
        Err(e) => Err(bad_request(format!("Invalid credentials: {e}"))),
    }
}

/// A field that must be a string when present; a non-string is a 400.
fn string_field<'a>(map: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(bad_request(format!("\"{name}\" must be a string."))),
    }
}

fn username_of(kuid: &str) -> Result<Option<String>> {
    store::get_json::<String>(&kuid_key(kuid))
}

fn account(username: &str) -> Result<Option<Account>> {
    if username.len() > MAX_USERNAME_BYTES {
        return Ok(None);
    }
    store::get_json::<Account>(&user_key(username))
}

fn no_credentials(kuid: &str) -> sandgate_strategy::StrategyError {
    conflict(format!("No credentials found for user \"{kuid}\"."))
}

/// Fails when `username` already belongs to someone other than `kuid`.
fn ensure_free(username: &str, kuid: &str) -> Result<()> {
    match account(username)? {
        Some(existing) if existing.kuid != kuid => Err(conflict(format!("Login \"{username}\" is already used."))),
        _ => Ok(()),
    }
}

fn info(username: &str, kuid: &str) -> Result<String> {
    to_json(&PublicInfo { username, kuid })
}

struct Local;

impl Strategy for Local {
    fn fields() -> Vec<String> {
        vec!["username".into(), "password".into()]
    }

    fn verify(req: LoginRequest) -> Result<Login> {
        // Like passport-local: credentials from the body, else from the query arguments.
        let body = object(&req.credentials).unwrap_or_default();
        let from_body = (body.get("username").and_then(Value::as_str), body.get("password").and_then(Value::as_str));
        let (username, password) = match from_body {
            (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => (u.to_string(), p.to_string()),
            _ => {
                let arg = |k: &str| req.query.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
                match (arg("username"), arg("password")) {
                    (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => (u, p),
                    _ => return Err(rejected("Missing credentials")),
                }
            }
        };
        match account(&username)? {
            Some(acc) if crypto::verify_password(&password, &acc.hash) => Ok(Login::User(acc.kuid)),
            Some(_) => Err(rejected(WRONG)),
            None => {
                // Pay for a hash anyway: unknown users must not answer faster.
                let _ = crypto::verify_password(&password, &crypto::dummy_hash());
                Err(rejected(WRONG))
            }
        }
    }

    fn validate(kuid: String, credentials: String, is_update: bool) -> Result<()> {
        let creds = object(&credentials)?;
        if creds.contains_key("kuid") {
            return Err(bad_request("kuid cannot be specified in credentials."));
        }
        let username = string_field(&creds, "username")?;
        let password = string_field(&creds, "password")?;
        if is_update {
            if username.is_none() && password.is_none() {
                return Err(bad_request("Missing username or password."));
            }
        } else {
            if username.is_none_or(str::is_empty) {
                return Err(bad_request("Username required."));
            }
            if password.is_none() {
                return Err(bad_request("Password required."));
            }
        }
        if username == Some("") {
            return Err(bad_request("Username required."));
        }
        if username.is_some_and(|u| u.len() > MAX_USERNAME_BYTES) {
            return Err(bad_request(format!("Username too long (at most {MAX_USERNAME_BYTES} bytes).")));
        }
        if password == Some("") {
            return Err(bad_request("Password needed."));
        }
        if let Some(u) = username {
            ensure_free(u, &kuid)?;
        }
        Ok(())
    }

    fn create(kuid: String, credentials: String) -> Result<String> {
        Self::validate(kuid.clone(), credentials.clone(), false)?;
        if username_of(&kuid)?.is_some() {
            return Err(conflict(format!("A strategy already exists for user \"{kuid}\".")));
        }
        let creds = object(&credentials)?;
        let username = string_field(&creds, "username")?.unwrap_or_default();
        let password = string_field(&creds, "password")?.unwrap_or_default();
        let hash = crypto::hash_password(password);
        store::set_json(&user_key(username), &Account { kuid: kuid.clone(), hash })?;
        store::set_json(&kuid_key(&kuid), &username)?;
        info(username, &kuid)
    }

    fn update(kuid: String, credentials: String) -> Result<String> {
        Self::validate(kuid.clone(), credentials.clone(), true)?;
        let current = username_of(&kuid)?.ok_or_else(|| no_credentials(&kuid))?;
        let creds = object(&credentials)?;
        let username = string_field(&creds, "username")?.unwrap_or(&current).to_string();
        let hash = match string_field(&creds, "password")? {
            Some(password) => crypto::hash_password(password),
            None => account(&current)?.ok_or_else(|| no_credentials(&kuid))?.hash,
        };
        if username != current {
            // A new login name is a new document; the old one goes (as the Kuzzle plugin does).
            store::delete(&user_key(&current));
        }
        store::set_json(&user_key(&username), &Account { kuid: kuid.clone(), hash })?;
        store::set_json(&kuid_key(&kuid), &username)?;
        info(&username, &kuid)
    }

    fn delete(kuid: String) -> Result<()> {
        let username = username_of(&kuid)?.ok_or_else(|| no_credentials(&kuid))?;
        store::delete(&user_key(&username));
        store::delete(&kuid_key(&kuid));
        Ok(())
    }

    fn exists(kuid: String) -> bool {
        matches!(username_of(&kuid), Ok(Some(_)))
    }

    fn get_info(kuid: String) -> Result<String> {
        let username = username_of(&kuid)?.ok_or_else(|| no_credentials(&kuid))?;
        info(&username, &kuid)
    }

    fn get_by_id(id: String) -> Result<String> {
        let acc = account(&id)?.ok_or_else(|| conflict(format!("No credentials found for username \"{id}\".")))?;
        info(&id, &acc.kuid)
    }
}

export_strategy!(Local);
