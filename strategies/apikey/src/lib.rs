//! The `apikey` strategy: one long-lived secret key per user, for scripts and services.
//!
//! The key is chosen by the client (`{"key": "..."}`, at least 24 characters) or, with `{}`,
//! generated here: `sgk_` + 64 hex digits of 32 random bytes, returned once by `create` or
//! `update` and never again. Only its SHA-256 is stored. No password hash (argon2): a key is
//! meant to be random, so a slow hash would buy nothing, and a login stays one SHA-256 and
//! two reads. This is the strategy the benchmarks measure: keep it lean.
//!
//! Storage layout (private to this strategy):
//! - `key:<hex sha256(key)>` → kuid (the login index)
//! - `kuid:<kuid>`           → hex sha256(key), the key's public "fingerprint"

use sandgate_strategy::{
    Login, LoginRequest, Result, Strategy, StrategyError, bad_request, conflict, crypto, export_strategy, internal,
    rejected, store, to_json,
};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

const MIN_CHARS: usize = 24;
/// Marks generated keys, so a leaked one is recognizable (secret scanners, logs).
const PREFIX: &str = "sgk_";
const INDEX: &str = "key:";

/// `{"key": ...}`. Borrowed: a login parses without copying the key (unless it has escapes).
#[derive(Deserialize)]
struct Creds<'a> {
    #[serde(borrow, default)]
    key: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct Info<'a> {
    kuid: &'a str,
    /// Only right after the key was generated: the client's one chance to read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    fingerprint: &'a str,
}

/// Like `parse_credentials`, but borrowing from the text.
fn parse(credentials: &str) -> Result<Creds<'_>> {
    serde_json::from_str(credentials).map_err(|e| bad_request(format!("Invalid credentials: {e}")))
}

fn info(kuid: &str, key: Option<&str>, fingerprint: &str) -> Result<String> {
    to_json(&Info { kuid, key, fingerprint })
}

fn push_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

/// `key:<hex sha256(key)>`, in one allocation; `&index[INDEX.len()..]` is the fingerprint.
fn index_of(key: &str) -> String {
    let mut index = String::with_capacity(INDEX.len() + 64);
    index.push_str(INDEX);
    push_hex(&crypto::sha256(key.as_bytes()), &mut index);
    index
}

fn fingerprint(index: &str) -> &str {
    &index[INDEX.len()..]
}

fn kuid_key(kuid: &str) -> String {
    format!("kuid:{kuid}")
}

fn invalid() -> StrategyError {
    rejected("invalid API key")
}

fn no_credentials(kuid: &str) -> StrategyError {
    conflict(format!("No credentials found for user \"{kuid}\"."))
}

fn check_length(key: &str) -> Result<()> {
    if key.chars().count() < MIN_CHARS {
        return Err(bad_request(format!(
            "An API key must be at least {MIN_CHARS} characters long (send {{}} to have one generated)."
        )));
    }
    Ok(())
}

/// Fails when the key already logs in someone other than `kuid`.
fn ensure_free(index: &str, kuid: &str) -> Result<()> {
    match store::get(index) {
        Some(owner) if owner != kuid => Err(conflict("API key already in use.")),
        _ => Ok(()),
    }
}

/// The key to store for `kuid` (the client's, checked, or a new one), whether it was
/// generated, and its index entry.
fn prepare<'a>(kuid: &str, creds: Creds<'a>) -> Result<(Cow<'a, str>, bool, String)> {
    let (key, generated) = match creds.key {
        Some(key) => {
            check_length(&key)?;
            (key, false)
        }
        None => {
            let mut key = String::with_capacity(PREFIX.len() + 64);
            key.push_str(PREFIX);
            push_hex(&crypto::random_bytes(32), &mut key);
            (Cow::Owned(key), true)
        }
    };
    let index = index_of(&key);
    ensure_free(&index, kuid)?;
    Ok((key, generated, index))
}

/// Writes both entries and answers with the public information.
fn store_key(kuid: &str, key: &str, generated: bool, index: &str) -> Result<String> {
    store::set(index, kuid).map_err(internal)?;
    store::set(&kuid_key(kuid), fingerprint(index)).map_err(internal)?;
    info(kuid, generated.then_some(key), fingerprint(index))
}

struct ApiKey;

impl Strategy for ApiKey {
    fn fields() -> Vec<String> {
        vec!["key".into()]
    }

    fn verify(req: LoginRequest) -> Result<Login> {
        let key = match serde_json::from_str::<Creds>(&req.credentials) {
            Ok(Creds { key: Some(key) }) if !key.is_empty() => key,
            _ => return Err(rejected("Missing credentials")),
        };
        let index = index_of(&key);
        let kuid = store::get(&index).ok_or_else(invalid)?;
        // The index names the owner; the owner's record must name this very key too, so an
        // index entry that outlived its key (whatever the cause) never logs anyone in.
        let current = store::get(&kuid_key(&kuid)).ok_or_else(invalid)?;
        if crypto::constant_time_eq(current.as_bytes(), fingerprint(&index).as_bytes()) {
            Ok(Login::User(kuid))
        } else {
            Err(invalid())
        }
    }

    fn validate(kuid: String, credentials: String, _is_update: bool) -> Result<()> {
        // Same rules for create and update: `{}` (generate) is valid for both.
        let creds = parse(&credentials)?;
        if let Some(key) = creds.key {
            check_length(&key)?;
            ensure_free(&index_of(&key), &kuid)?;
        }
        Ok(())
    }

    fn create(kuid: String, credentials: String) -> Result<String> {
        let creds = parse(&credentials)?;
        if store::get(&kuid_key(&kuid)).is_some() {
            return Err(conflict(format!("A strategy already exists for user \"{kuid}\".")));
        }
        let (key, generated, index) = prepare(&kuid, creds)?;
        store_key(&kuid, &key, generated, &index)
    }

    fn update(kuid: String, credentials: String) -> Result<String> {
        let creds = parse(&credentials)?;
        let old = store::get(&kuid_key(&kuid)).ok_or_else(|| no_credentials(&kuid))?;
        let (key, generated, index) = prepare(&kuid, creds)?;
        if old != fingerprint(&index) {
            // The old key stops working now.
            store::delete(&format!("{INDEX}{old}"));
        }
        store_key(&kuid, &key, generated, &index)
    }

    fn delete(kuid: String) -> Result<()> {
        let old = store::get(&kuid_key(&kuid)).ok_or_else(|| no_credentials(&kuid))?;
        store::delete(&format!("{INDEX}{old}"));
        store::delete(&kuid_key(&kuid));
        Ok(())
    }

    fn exists(kuid: String) -> bool {
        store::get(&kuid_key(&kuid)).is_some()
    }

    fn get_info(kuid: String) -> Result<String> {
        let fp = store::get(&kuid_key(&kuid)).ok_or_else(|| no_credentials(&kuid))?;
        info(&kuid, None, &fp)
    }

    /// `id` is a fingerprint, as `getInfo` shows it.
    fn get_by_id(id: String) -> Result<String> {
        let kuid = store::get(&format!("{INDEX}{id}"))
            .ok_or_else(|| conflict(format!("No credentials found for fingerprint \"{id}\".")))?;
        info(&kuid, None, &id)
    }
}

export_strategy!(ApiKey);
