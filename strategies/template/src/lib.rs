//! A complete Sandgate strategy in one short file: log in with a username and a PIN. Copy this
//! crate, rename it, change the rules; build with `cargo build --profile strategy --target
//! wasm32-wasip2` and upload the `.wasm`.
//!
//! Credentials: `{"username": "alice", "pin": "1234"}`, a PIN of 4 to 8 digits.
//! Storage (private to this strategy, a key-value map of strings):
//! - `user:<username>` → `{"kuid": ..., "hash": ...}`, what a login needs
//! - `kuid:<kuid>`     → `"<username>"`, so the other methods, which get a kuid, find it

use sandgate_strategy::{
    Login, LoginRequest, Result, Strategy, bad_request, conflict, crypto, export_strategy, parse_credentials, rejected,
    store, to_json,
};
use serde::{Deserialize, Serialize};

const WRONG: &str = "wrong username or PIN";

/// What clients send; a missing or mistyped field is a 400 from `parse_credentials`.
#[derive(Deserialize)]
struct Creds {
    username: String,
    pin: String,
}

/// What we store per username. Never the PIN: an argon2id hash computed by the host, natively.
#[derive(Serialize, Deserialize)]
struct Account {
    kuid: String,
    hash: String,
}

/// Public information, returned by create/update/getInfo. No secrets here, ever.
#[derive(Serialize)]
struct Info<'a> {
    kuid: &'a str,
    username: &'a str,
}

fn username_of(kuid: &str) -> Result<String> {
    store::get_json(&format!("kuid:{kuid}"))?
        .ok_or_else(|| conflict(format!("No credentials found for user \"{kuid}\".")))
}

struct Pin;

impl Strategy for Pin {
    fn fields() -> Vec<String> {
        vec!["username".into(), "pin".into()]
    }

    /// Login: answer the kuid, or `rejected` (401). The host then checks that the kuid is a user
    /// linked to this strategy, so a strategy cannot log anyone else in.
    fn verify(req: LoginRequest) -> Result<Login> {
        let creds: Creds = parse_credentials(&req.credentials).map_err(|_| rejected("Missing credentials"))?;
        let Some(acc) = store::get_json::<Account>(&format!("user:{}", creds.username))? else {
            // Unknown user: pay for a hash check anyway, so response time doesn't tell who exists.
            let _ = crypto::verify_password(&creds.pin, &crypto::dummy_hash());
            return Err(rejected(WRONG));
        };
        if crypto::verify_password(&creds.pin, &acc.hash) { Ok(Login::User(acc.kuid)) } else { Err(rejected(WRONG)) }
    }

    /// Called by the host before create and update: refuse bad input with a 400 or a 412.
    fn validate(kuid: String, credentials: String, _is_update: bool) -> Result<()> {
        let creds: Creds = parse_credentials(&credentials)?;
        if creds.username.is_empty() {
            return Err(bad_request("Username required."));
        }
        if !(4..=8).contains(&creds.pin.len()) || !creds.pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_request("The PIN must be 4 to 8 digits."));
        }
        match store::get_json::<Account>(&format!("user:{}", creds.username))? {
            Some(acc) if acc.kuid != kuid => Err(conflict(format!("Login \"{}\" is already used.", creds.username))),
            _ => Ok(()),
        }
    }

    fn create(kuid: String, credentials: String) -> Result<String> {
        // Don't trust that validate ran: it is cheap to run again.
        Self::validate(kuid.clone(), credentials.clone(), false)?;
        if username_of(&kuid).is_ok() {
            return Err(conflict(format!("A strategy already exists for user \"{kuid}\".")));
        }
        let creds: Creds = parse_credentials(&credentials)?;
        let hash = crypto::hash_password(&creds.pin);
        // Writes are kept only if the whole request succeeds: no cleanup needed on errors.
        store::set_json(&format!("user:{}", creds.username), &Account { kuid: kuid.clone(), hash })?;
        store::set_json(&format!("kuid:{kuid}"), &creds.username)?;
        to_json(&Info { kuid: &kuid, username: &creds.username })
    }

    /// Both fields are required on update too, the simplest rule. Should `create` fail, the
    /// host drops the deletes with it: a request's writes are kept all together or not at all.
    fn update(kuid: String, credentials: String) -> Result<String> {
        Self::delete(kuid.clone())?;
        Self::create(kuid, credentials)
    }

    fn delete(kuid: String) -> Result<()> {
        let username = username_of(&kuid)?;
        store::delete(&format!("user:{username}"));
        store::delete(&format!("kuid:{kuid}"));
        Ok(())
    }

    fn exists(kuid: String) -> bool {
        username_of(&kuid).is_ok()
    }

    fn get_info(kuid: String) -> Result<String> {
        let username = username_of(&kuid)?;
        to_json(&Info { kuid: &kuid, username: &username })
    }

    /// The strategy's own id for a set of credentials: here, the username.
    fn get_by_id(id: String) -> Result<String> {
        let acc: Account = store::get_json(&format!("user:{id}"))?
            .ok_or_else(|| conflict(format!("No credentials found for username \"{id}\".")))?;
        to_json(&Info { kuid: &acc.kuid, username: &id })
    }
}

export_strategy!(Pin); // Generates the component's exports from the trait implementation.
