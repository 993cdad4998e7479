//! Turning uploaded bytes into a registered strategy: validation with messages that name the
//! problem, compilation once, and a compiled-artifact cache keyed by content hash and engine.

use super::{Sandbox, Strategy, bindings::StrategyPre};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use wasmtime::component::Component;

/// Why bytes were refused as a strategy (400, the message is shown to the uploader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadError(pub String);

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn refuse(msg: impl Into<String>) -> UploadError {
    UploadError(msg.into())
}

pub const NAME_RULE: &str = "a strategy name is 1 to 64 characters among a-z, 0-9, '_' and '-'";

pub fn sha256(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks what the bytes are before handing them to the compiler.
fn check_header(wasm: &[u8]) -> Result<(), UploadError> {
    const COMPONENT: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];
    const CORE: [u8; 4] = [0x01, 0x00, 0x00, 0x00];
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        let text = String::from_utf8_lossy(&wasm[..wasm.len().min(64)]);
        if text.trim_start().starts_with('(') {
            return Err(refuse(
                "this is WebAssembly text (WAT), not a binary: compile it to a component (.wasm) first",
            ));
        }
        return Err(refuse("not a WebAssembly binary (it does not start with \"\\0asm\")"));
    }
    match <[u8; 4]>::try_from(&wasm[4..8]).unwrap() {
        COMPONENT => Ok(()),
        CORE => Err(refuse(
            "this is a core WebAssembly module, not a component: build with `--target wasm32-wasip2`, \
             or wrap it with `wasm-tools component new`",
        )),
        other => Err(refuse(format!("unknown WebAssembly version/layer {other:02x?}"))),
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::ids::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Where the compiled artifact of `hash` lives for this engine. Artifacts are only valid
/// for the engine settings and wasmtime version that made them.
fn artifact_path(sandbox: &Sandbox, hash: &str) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sandbox.engine().precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    sandbox.cache_dir().join(format!("{hash}-{:016x}.cwasm", h.finish()))
}

/// Compiles `wasm`, or loads its cached artifact. Only files this server wrote are loaded
/// (the cache directory is the server's own): `deserialize_file` trusts its input.
fn load(sandbox: &Sandbox, wasm: &[u8], hash: &str) -> Result<Component, UploadError> {
    let path = artifact_path(sandbox, hash);
    if path.exists() {
        // SAFETY: the file was produced by `Component::serialize` of this engine configuration
        // (the file name carries the engine's compatibility hash) in a directory we own.
        match unsafe { Component::deserialize_file(sandbox.engine(), &path) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compiled artifact: {e:#}")
            }
        }
    }
    let component = sandbox.compile(wasm).map_err(|e| refuse(format!("invalid component: {}", root_cause(&e))))?;
    if let Ok(bytes) = component.serialize() {
        // Write then rename, so a concurrent reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, &path)).is_err() {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(path = %path.display(), "could not cache the compiled strategy");
        }
    }
    Ok(component)
}

fn root_cause(e: &wasmtime::Error) -> String {
    e.chain().last().map(|c| c.to_string()).unwrap_or_else(|| e.to_string())
}

/// The global limits with a strategy's overrides (a JSON object of `[limits]` keys) applied.
/// A strategy cannot have more memory than the pool gives any instance, nor change the pool.
pub fn merge_limits(global: &super::Limits, overrides: &str) -> Result<super::Limits, UploadError> {
    let overrides: serde_json::Value = serde_json::from_str(if overrides.trim().is_empty() { "{}" } else { overrides })
        .map_err(|e| refuse(format!("invalid limits: {e}")))?;
    let Some(map) = overrides.as_object() else { return Err(refuse("invalid limits: it must be a JSON object")) };
    let mut merged = serde_json::to_value(global).expect("limits serialize");
    for (key, value) in map {
        if key == "pool_instances" || key == "keep_resident_bytes" {
            return Err(refuse(format!("limits.{key} is global; it cannot be set per strategy")));
        }
        merged[key] = value.clone();
    }
    let limits: super::Limits = serde_json::from_value(merged).map_err(|e| refuse(format!("invalid limits: {e}")))?;
    limits.validate().map_err(|e| refuse(format!("invalid limits: {e}")))?;
    if limits.memory_bytes > global.memory_bytes {
        return Err(refuse(format!(
            "invalid limits: memory_bytes {} exceeds the server's limits.memory_bytes ({}), the most any instance can have",
            limits.memory_bytes, global.memory_bytes
        )));
    }
    Ok(limits)
}

pub(super) fn prepare(
    sandbox: &Sandbox,
    name: &str,
    wasm: &[u8],
    config: &str,
    limits: &str,
) -> Result<Strategy, UploadError> {
    if !valid_name(name) {
        return Err(refuse(format!("invalid strategy name {name:?}: {NAME_RULE}")));
    }
    let config_value: serde_json::Value = serde_json::from_str(if config.trim().is_empty() { "{}" } else { config })
        .map_err(|e| refuse(format!("invalid strategy config: {e}")))?;
    if !config_value.is_object() {
        return Err(refuse("invalid strategy config: it must be a JSON object"));
    }
    let merged = merge_limits(&sandbox.limits, limits)?;
    let merged_cap = merged.max_concurrent_calls as usize;
    let limit_overrides =
        serde_json::from_str::<serde_json::Value>(if limits.trim().is_empty() { "{}" } else { limits })
            .map(|v| v.to_string())
            .unwrap_or_else(|_| "{}".into());
    check_header(wasm)?;
    let hash = sha256_hex(wasm);
    let component = load(sandbox, wasm, &hash)?;
    let instance_pre = sandbox.linker().instantiate_pre(&component).map_err(|e| {
        let msg = format!("{e:#}");
        // wasmtime says: component imports instance `x:y/z@1.0`, but a matching implementation…
        match msg.split('`').nth(1) {
            Some(import) if msg.contains("imports") => refuse(format!(
                "the component imports `{import}`, which Sandgate does not provide (a strategy may import \
                 sandgate:strategy/{{storage,crypto,log,config}} and WASI p2 only)"
            )),
            _ => refuse(format!("the component cannot be linked: {msg}")),
        }
    })?;
    let pre = StrategyPre::new(instance_pre).map_err(|e| {
        refuse(format!(
            "the component does not export `sandgate:strategy/authenticator@0.1.0` as Sandgate expects: {e:#}"
        ))
    })?;
    let mut strategy = Strategy {
        name: name.to_string(),
        pre,
        config: std::sync::Arc::from(config_value.to_string()),
        fields: Vec::new(),
        hash,
        size: wasm.len(),
        registered_at_ms: crate::tokens::now_ms(),
        limits: std::sync::Arc::new(merged),
        limit_overrides,
        metrics: sandbox.metrics_for(name),
        in_flight: AtomicU32::new(0),
        gate: std::sync::Arc::new(tokio::sync::Semaphore::new(merged_cap)),
        warm: std::sync::Mutex::new(Vec::new()),
        me: std::sync::OnceLock::new(),
    };
    // One real call before accepting it: it must instantiate and answer under the limits.
    let mut overlay = super::Overlay::default();
    let fields = sandbox
        .call(&strategy, &mut overlay, "upload", |i, st| i.sandgate_strategy_authenticator().call_fields(st).map(Ok))
        .map_err(|e| refuse(format!("the strategy failed its first call (fields): it {e}")))?;
    strategy.fields = fields.unwrap_or_default();
    Ok(strategy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["local", "api-key", "totp_2", &"a".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "Local", "a b", "a/b", "é", &"a".repeat(65), "../x"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn headers() {
        assert!(check_header(b"\0asm\x0d\x00\x01\x00rest").is_ok());
        assert!(check_header(b"\0asm\x01\x00\x00\x00rest").unwrap_err().0.contains("core WebAssembly module"));
        assert!(check_header(b"(component)").unwrap_err().0.contains("WAT"));
        assert!(check_header(b"hello world").unwrap_err().0.contains("not a WebAssembly binary"));
        assert!(check_header(b"").unwrap_err().0.contains("not a WebAssembly binary"));
    }
}
