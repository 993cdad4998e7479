//! The `strategies` controller: register (upload or replace), inspect, unregister. Admin only.
//! Registration validates and compiles the component off the request path of other calls,
//! stores it, then swaps it in: calls in flight finish on the version they started with.

use crate::core::errors::{KError, defs};
use crate::protocol::Reply;
use crate::sandbox::{Grants, Strategy, upload};
use crate::service::context::Ctx;
use crate::service::errors::unexpected;
use crate::service::strategy::{commit, named};
use crate::store::{Change, StoredStrategy};
use base64::Engine as _;
use serde_json::{Value, json};

fn name_arg<'a>(ctx: &'a Ctx) -> Result<&'a str, KError> {
    let name = ctx.req.arg_str("name").ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["name"]))?;
    if !upload::valid_name(name) {
        return Err(invalid(&format!("invalid strategy name {name:?}: {}", upload::NAME_RULE)));
    }
    Ok(name)
}

fn invalid(msg: &str) -> KError {
    KError::new(defs::PLUGIN_SANDBOX_INVALID_COMPONENT, &[msg])
}

/// A JSON object given as an argument (query string text) or in the body.
fn json_object(ctx: &Ctx, key: &str) -> Result<String, KError> {
    let value = ctx.req.args.get(key).or_else(|| ctx.req.body_object().and_then(|b| b.get(key)));
    match value {
        None | Some(Value::Null) => Ok("{}".into()),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(v @ Value::Object(_)) => Ok(v.to_string()),
            _ => Err(invalid(&format!("{key} must be a JSON object"))),
        },
        Some(v @ Value::Object(_)) => Ok(v.to_string()),
        Some(_) => Err(invalid(&format!("{key} must be a JSON object"))),
    }
}

/// A JSON value given as an argument (query string text) or in the body, as JSON text;
/// `None` when absent.
fn json_arg(ctx: &Ctx, key: &str) -> Option<String> {
    match ctx.req.args.get(key).or_else(|| ctx.req.body_object().and_then(|b| b.get(key)))? {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// What the operator grants the strategy: as given, else what the version it replaces had
/// (grants are kept across hot swaps; `outbound=[]` and `provision={}` take them back).
fn grants(ctx: &Ctx, name: &str) -> Result<Grants, KError> {
    let current = ctx.app.sandbox.get(name);
    let outbound =
        json_arg(ctx, "outbound").or_else(|| current.as_ref().map(|s| s.outbound.to_json())).unwrap_or_default();
    let provision = json_arg(ctx, "provision")
        .or_else(|| {
            current.as_ref().map(|s| Grants { provision: s.provision.clone(), ..Grants::default() }.provision_json())
        })
        .unwrap_or_default();
    Grants::parse(&outbound, &provision).map_err(|e| invalid(&e.0))
}

pub fn info_of(s: &Strategy) -> Value {
    json!({
        "name": s.name,
        "contract": s.contract().version(),
        "outbound": serde_json::from_str::<Value>(&s.outbound.to_json()).unwrap_or(Value::Null),
        "provision": s.provision.as_ref().map(|ids| json!({ "profileIds": ids })),
        "hash": s.hash,
        "size": s.size,
        "fields": s.fields,
        "registeredAt": s.registered_at_ms,
        "limits": serde_json::to_value(&*s.limits).unwrap_or(Value::Null),
        "limitOverrides": serde_json::from_str::<Value>(&s.limit_overrides).unwrap_or(Value::Null),
        "config": serde_json::from_str::<Value>(&s.config).unwrap_or(Value::Null),
        "inFlight": s.in_flight(),
        "counters": s.metrics.counters(),
    })
}

pub async fn register(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let name = name_arg(ctx)?;
    // The component: raw bytes over HTTP (`application/wasm`), or base64 in `body.wasm`
    // for JSON queries.
    let wasm: Vec<u8> = match (&ctx.req.raw_body, ctx.req.body_object().and_then(|b| b.get("wasm"))) {
        (Some(raw), _) => raw.to_vec(),
        (None, Some(Value::String(b64))) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| invalid(&format!("body.wasm is not base64: {e}")))?,
        _ => {
            return Err(invalid(
                "no component: send the .wasm as the body (Content-Type: application/wasm), or base64 in body.wasm",
            ));
        }
    };
    if wasm.len() > ctx.app.config.max_upload_bytes {
        return Err(KError::new(defs::NETWORK_HTTP_REQUEST_TOO_LARGE, &[]));
    }
    let config = json_object(ctx, "config")?;
    let limits = json_object(ctx, "limits")?;
    let grants = grants(ctx, name)?;
    // Whoever uploads under a name that holds users hands those users to the new code (it
    // inherits their links and storage, also after an unregister): only on purpose. The same
    // bytes with the same config again change nothing (limits may change freely).
    let same_code =
        ctx.app.sandbox.get(name).is_some_and(|s| s.hash == upload::content_hash(&wasm) && *s.config == *config);
    let owned = name.to_string();
    if !same_code && !ctx.req.flag("replace") && ctx.app.store.read(move |s| s.has_links(&owned)).await? {
        return Err(KError::new(defs::PLUGIN_SANDBOX_REPLACE_UNCONFIRMED, &[name]));
    }
    // Compiling blocks for as long as it takes: this thread hands its other tasks over first.
    let strategy =
        tokio::task::block_in_place(|| ctx.app.sandbox.prepare(name, &wasm, &config, &limits, &grants, None))
            .map_err(|e| invalid(&e.0))?;
    let stored = StoredStrategy {
        name: name.to_string(),
        hash: strategy.hash.clone(),
        wasm,
        config,
        limits,
        registered_at_ms: strategy.registered_at_ms,
        fields: Some(strategy.fields.clone()),
        outbound: grants.outbound_json(),
        provision: grants.provision_json(),
    };
    commit(ctx, vec![Change::PutStrategy(stored)]).await?;
    let strategy = ctx.app.sandbox.install(strategy);
    ctx.app.sandbox.clean_cache();
    tracing::info!(strategy = %name, hash = %strategy.hash, size = strategy.size, "strategy registered");
    Ok(info_of(&strategy).into())
}

pub async fn info(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let name = name_arg(ctx)?;
    let s = named(ctx, name)?;
    Ok(info_of(&s).into())
}

pub async fn unregister(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let name = name_arg(ctx)?;
    named(ctx, name)?;
    let stored = ctx.app.store.read(|s| s.strategies()).await?;
    if name == "local" && !stored.iter().any(|s| s.name == "local") {
        return Err(invalid("the bundled local strategy cannot be removed (upload a replacement to change it)"));
    }
    commit(ctx, vec![Change::DeleteStrategy(name.to_string())]).await?;
    // If an upload replaced the bundled local, removing it brings the bundled one back.
    if name == "local" {
        tokio::task::block_in_place(|| ctx.app.install_bundled()).map_err(|e| unexpected(&format!("{e:#}")))?;
    } else {
        ctx.app.sandbox.remove(name);
    }
    ctx.app.sandbox.clean_cache();
    tracing::info!(strategy = %name, "strategy unregistered (its users' credentials stay in its storage)");
    Ok(json!({ "acknowledged": true }).into())
}
