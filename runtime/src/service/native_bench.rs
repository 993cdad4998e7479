//! Benchmarks only (`--features bench-native`): `POST /_login/apikey-native` runs the `apikey`
//! strategy's logic compiled natively, over the same storage and with the same host checks,
//! and `POST /_login/local-native` the `local` one (argon2id through the same host hasher),
//! so `make bench` can compare sandboxed logins with native ones on the same server.

use super::context::Ctx;
use crate::core::errors::{KError, defs};
use serde_json::Value;

/// The kuid for `{"key": …}`, as strategies/apikey computes it.
pub async fn verify(ctx: &Ctx<'_>, body: &serde_json::Map<String, Value>) -> Result<String, KError> {
    let missing = || KError::new(defs::PLUGIN_STRATEGY_MISSING_USER, &["invalid API key"]);
    let key = body.get("key").and_then(Value::as_str).ok_or_else(missing)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let hex = crate::core::ids::hex(digest.as_ref());
    // strategies/apikey keeps raw strings: `key:<hex>` → kuid, `kuid:<kuid>` → hex.
    let kuid = read(ctx, "apikey", format!("key:{hex}")).await?.ok_or_else(missing)?;
    let stored = read(ctx, "apikey", format!("kuid:{kuid}")).await?.ok_or_else(missing)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), hex.as_bytes())) {
        return Err(missing());
    }
    Ok(kuid)
}

/// The kuid for `{"username", "password"}`, as strategies/local computes it.
pub async fn verify_local(ctx: &Ctx<'_>, body: &serde_json::Map<String, Value>) -> Result<String, KError> {
    let wrong = || KError::new(defs::PLUGIN_STRATEGY_MISSING_USER, &["wrong username or password"]);
    let (Some(user), Some(password)) =
        (body.get("username").and_then(Value::as_str), body.get("password").and_then(Value::as_str))
    else {
        return Err(wrong());
    };
    let text = read(ctx, "local", format!("user:{user}")).await?.ok_or_else(wrong)?;
    let account: Value = serde_json::from_str(&text).map_err(|_| wrong())?;
    let (Some(kuid), Some(hash)) = (account["kuid"].as_str(), account["hash"].as_str()) else { return Err(wrong()) };
    let (checked, _) = ctx.app.hasher.clone().verify_async(password.to_string(), hash.to_string()).await;
    if checked.unwrap_or(false) { Ok(kuid.to_string()) } else { Err(wrong()) }
}

/// A strategy's stored value, read as the sandbox's storage interface reads it.
async fn read(ctx: &Ctx<'_>, strategy: &'static str, key: String) -> Result<Option<String>, KError> {
    Ok(ctx.app.store.kv_get(strategy, &key).await?)
}
