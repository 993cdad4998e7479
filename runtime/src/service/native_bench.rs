//! Benchmarks only (`--features bench-native`): `POST /_login/apikey-native` runs the `apikey`
//! strategy's logic compiled natively, over the same storage and with the same host checks,
//! and `POST /_login/local-native` the `local` one (argon2id through the same host hasher),
//! so `make bench` can compare sandboxed logins with native ones on the same server.

use super::context::Ctx;
use crate::core::errors::{KError, defs};
use serde_json::Value;

/// The kuid for `{"key": …}`, as strategies/apikey computes it.
pub fn verify(ctx: &Ctx, body: &serde_json::Map<String, Value>) -> Result<String, KError> {
    let missing = || KError::new(defs::PLUGIN_STRATEGY_MISSING_USER, &["invalid API key"]);
    let key = body.get("key").and_then(Value::as_str).ok_or_else(missing)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex = crate::core::ids::hex(digest.as_ref());
    let store = &ctx.app.store;
    // strategies/apikey keeps raw strings: `key:<hex>` → kuid, `kuid:<kuid>` → hex.
    let read = |key: String| store.kv_get("apikey", &key).map_err(KError::from);
    let kuid = read(format!("key:{hex}"))?.ok_or_else(missing)?;
    let stored = read(format!("kuid:{kuid}"))?.ok_or_else(missing)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), hex.as_bytes())) {
        return Err(missing());
    }
    Ok(kuid)
}

/// The kuid for `{"username", "password"}`, as strategies/local computes it.
pub fn verify_local(ctx: &Ctx, body: &serde_json::Map<String, Value>) -> Result<String, KError> {
    let wrong = || KError::new(defs::PLUGIN_STRATEGY_MISSING_USER, &["wrong username or password"]);
    let (Some(user), Some(password)) =
        (body.get("username").and_then(Value::as_str), body.get("password").and_then(Value::as_str))
    else {
        return Err(wrong());
    };
    let text = ctx.app.store.kv_get("local", &format!("user:{user}"))?.ok_or_else(wrong)?;
    let account: Value = serde_json::from_str(&text).map_err(|_| wrong())?;
    let (Some(kuid), Some(hash)) = (account["kuid"].as_str(), account["hash"].as_str()) else { return Err(wrong()) };
    if ctx.app.hasher.verify(password, hash) { Ok(kuid.to_string()) } else { Err(wrong()) }
}
