//! Turning uploaded bytes into a registered strategy: validation with messages that name the
//! problem, compilation once, and a compiled-artifact cache keyed by content hash and engine.

use super::call::{CallCtx, Calls};
use super::compile::Compiler;
use super::contract::{Contract, Pre};
use super::errors::UploadError;
use super::host::{HostState, Overlay};
use super::limits::Limits;
use super::metrics::StrategyMetrics;
use super::strategy::Strategy;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// What registering a strategy works with.
pub(super) struct Workshop<'a> {
    pub engine: &'a Engine,
    pub linker: &'a Linker<HostState>,
    pub cache_dir: &'a Path,
    /// The server's limits, which a strategy's overrides are merged into.
    pub limits: &'a Limits,
    pub compiler: &'a Compiler,
    pub calls: &'a Calls,
}

fn refuse(msg: impl Into<String>) -> UploadError {
    UploadError(msg.into())
}

pub const NAME_RULE: &str = "a strategy name is 1 to 64 characters among a-z, 0-9, '_' and '-'";

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

/// The content hash a strategy is known by (`hash` in its info): sha256, hex.
pub fn content_hash(wasm: &[u8]) -> String {
    crate::core::ids::hex(ring::digest::digest(&ring::digest::SHA256, wasm).as_ref())
}

/// Interfaces a strategy may import: the WIT contract, and WASI p2 (linked with no capability).
const PROVIDED: &[(&str, &[&str])] = &[
    ("sandgate:strategy", &["types", "storage", "crypto", "log", "config"]),
    (
        "wasi:cli",
        &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
    ("wasi:clocks", &["monotonic-clock", "wall-clock"]),
    ("wasi:filesystem", &["types", "preopens"]),
    ("wasi:http", &["types", "outgoing-handler"]),
    ("wasi:io", &["error", "poll", "streams"]),
    ("wasi:random", &["random", "insecure", "insecure-seed"]),
    (
        "wasi:sockets",
        &["network", "instance-network", "tcp", "tcp-create-socket", "udp", "udp-create-socket", "ip-name-lookup"],
    ),
];

/// What a strategy must export, in every contract version served.
const AUTHENTICATOR: &str = "sandgate:strategy/authenticator@0.2.0 (or @0.1.0)";

/// Whether Sandgate provides `name` (`pkg:ns/interface@version`): same package and interface,
/// a version the linker resolves (sandgate 0.2.x and 0.1.x, WASI 0.2.x).
fn provided(name: &str) -> bool {
    let Some((path, version)) = name.split_once('@') else { return false };
    let Some((package, interface)) = path.split_once('/') else { return false };
    let compatible = if package == "sandgate:strategy" {
        version.starts_with("0.2.") || version.starts_with("0.1.")
    } else {
        version.starts_with("0.2.")
    };
    compatible && PROVIDED.iter().any(|(p, interfaces)| *p == package && interfaces.contains(&interface))
}

/// Reads the component's own imports and exports, before any compilation: a component that
/// could never link is refused for the price of a parse, not of a compile. Answers the contract
/// version its `authenticator` export was built against (the newest, if it has several).
fn check_interfaces(wasm: &[u8]) -> Result<Contract, UploadError> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    let mut contract: Option<Contract> = None;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| refuse(format!("invalid component: {}", e.message())))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| refuse(format!("invalid component: {}", e.message())))?;
                    if !provided(import.name.name) {
                        return Err(refuse(format!(
                            "the component imports `{}`, which Sandgate does not provide (a strategy may import \
                             sandgate:strategy/{{storage,crypto,log,config}}, WASI p2 and wasi:http/outgoing-handler only)",
                            import.name.name
                        )));
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| refuse(format!("invalid component: {}", e.message())))?;
                    if let Some(c) = Contract::of_export(export.name.name) {
                        contract =
                            Some(contract.map_or(c, |seen: Contract| if seen == Contract::V0_2 { seen } else { c }));
                    }
                }
            }
            _ => {}
        }
    }
    contract.ok_or_else(|| refuse(format!("the component does not export `{AUTHENTICATOR}` as Sandgate expects")))
}

/// Where the compiled artifact of `hash` lives for this engine. Artifacts are only valid
/// for the engine settings and wasmtime version that made them.
fn artifact_path(sandbox: &Workshop, hash: &str) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sandbox.engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    sandbox.cache_dir.join(format!("{hash}-{:016x}.cwasm", h.finish()))
}

/// A compiled component, and the artifact file to keep once the strategy is accepted.
struct Compiled {
    component: Component,
    pending: Option<tempfile::NamedTempFile>,
}

/// Loads the cached artifact of `hash`, or compiles `wasm` into a fresh temporary file of
/// the cache directory. Only files this server wrote are loaded: `deserialize_file` trusts
/// its input, so the directory is the server user's alone and artifacts are written under
/// unique temporary names, renamed into place only once their strategy was accepted.
fn load(sandbox: &Workshop, wasm: &[u8], hash: &str) -> Result<Compiled, UploadError> {
    let path = artifact_path(sandbox, hash);
    if path.exists() {
        // SAFETY: the file was produced by `Component::serialize` of this engine configuration
        // (the file name carries the engine's compatibility hash) in a directory we own.
        match unsafe { Component::deserialize_file(sandbox.engine, &path) } {
            Ok(component) => {
                // Recently used: a cleaning by another server sharing the directory keeps it.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                return Ok(Compiled { component, pending: None });
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compiled artifact: {e:#}")
            }
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix(".compiling-")
        .suffix(".tmp")
        .tempfile_in(sandbox.cache_dir)
        .map_err(|e| refuse(format!("cannot compile now (cache directory: {e})")))?;
    super::compile::compile(sandbox.compiler, sandbox.engine, sandbox.limits, wasm, tmp.path())?;
    // SAFETY: written just now by our own compiler (this process or its child) into a file
    // only this user can write.
    let component = unsafe { Component::deserialize_file(sandbox.engine, tmp.path()) }
        .map_err(|e| refuse(format!("invalid component: {}", root_cause(&e))))?;
    Ok(Compiled { component, pending: Some(tmp) })
}

/// Deletes compiled artifacts no registered strategy uses (and compilations left behind by a
/// crash), sparing files touched within `keep` (servers sharing one cache directory).
pub(super) fn clean_cache(sandbox: &Workshop, in_use: &[String], keep: std::time::Duration) {
    let keep_paths: Vec<PathBuf> = in_use.iter().map(|hash| artifact_path(sandbox, hash)).collect();
    let Ok(entries) = std::fs::read_dir(sandbox.cache_dir) else { return };
    // A compilation under way is younger than its time limit.
    let compiling = std::time::Duration::from_millis(sandbox.limits.compile_ms.saturating_mul(2)).max(keep);
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        let grace = if name.starts_with(".compiling-") {
            compiling
        } else if name.ends_with(".cwasm") {
            keep
        } else {
            continue;
        };
        if keep_paths.contains(&path) {
            continue;
        }
        let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age >= grace) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!(path = %path.display(), "removed unused compiled artifact"),
                Err(e) => tracing::warn!(path = %path.display(), "could not remove unused compiled artifact: {e}"),
            }
        }
    }
}

fn root_cause(e: &wasmtime::Error) -> String {
    e.chain().last().map(|c| c.to_string()).unwrap_or_else(|| e.to_string())
}

/// The global limits with a strategy's overrides (a JSON object of `[limits]` keys) applied.
/// A strategy cannot have more memory than the pool gives any instance, nor change the pool.
pub fn merge_limits(global: &Limits, overrides: &str) -> Result<Limits, UploadError> {
    let overrides: serde_json::Value = serde_json::from_str(if overrides.trim().is_empty() { "{}" } else { overrides })
        .map_err(|e| refuse(format!("invalid limits: {e}")))?;
    let Some(map) = overrides.as_object() else { return Err(refuse("invalid limits: it must be a JSON object")) };
    let mut merged = serde_json::to_value(global).expect("limits serialize");
    for (key, value) in map {
        if key == "pool_instances" || key == "keep_resident_bytes" || key == "compile_ms" {
            return Err(refuse(format!("limits.{key} is global; it cannot be set per strategy")));
        }
        merged[key] = value.clone();
    }
    let limits: Limits = serde_json::from_value(merged).map_err(|e| refuse(format!("invalid limits: {e}")))?;
    limits.validate().map_err(|e| refuse(format!("invalid limits: {e}")))?;
    if limits.memory_bytes > global.memory_bytes {
        return Err(refuse(format!(
            "invalid limits: memory_bytes {} exceeds the server's limits.memory_bytes ({}), the most any instance can have",
            limits.memory_bytes, global.memory_bytes
        )));
    }
    Ok(limits)
}

/// What an operator registers: a name, the component, its config and limit overrides (JSON
/// object texts) and what it is granted.
pub(super) struct Registration<'a> {
    pub name: &'a str,
    pub wasm: &'a [u8],
    pub config: &'a str,
    pub limits: &'a str,
    pub grants: &'a super::grants::Grants,
}

/// Validates, compiles (or loads from the cache) and links a component, then makes its first
/// call: `fields`, unless `fields` were recorded when it was accepted (a restart must not
/// depend on any strategy behaving: nothing of the strategy runs). Blocking (it compiles):
/// call it from a blocking thread or outside the runtime.
pub(super) fn prepare(
    sandbox: &Workshop,
    registration: Registration<'_>,
    known_fields: Option<Vec<String>>,
    metrics: impl FnOnce() -> Arc<StrategyMetrics>,
) -> Result<Strategy, UploadError> {
    let Registration { name, wasm, config, limits, grants } = registration;
    if !valid_name(name) {
        return Err(refuse(format!("invalid strategy name {name:?}: {NAME_RULE}")));
    }
    let config_value: serde_json::Value = serde_json::from_str(if config.trim().is_empty() { "{}" } else { config })
        .map_err(|e| refuse(format!("invalid strategy config: {e}")))?;
    if !config_value.is_object() {
        return Err(refuse("invalid strategy config: it must be a JSON object"));
    }
    let merged = merge_limits(sandbox.limits, limits)?;
    let limit_overrides =
        serde_json::from_str::<serde_json::Value>(if limits.trim().is_empty() { "{}" } else { limits })
            .map(|v| v.to_string())
            .unwrap_or_else(|_| "{}".into());
    check_header(wasm)?;
    let contract = check_interfaces(wasm)?;
    let hash = content_hash(wasm);
    let Compiled { component, pending } = load(sandbox, wasm, &hash)?;
    let instance_pre = sandbox.linker.instantiate_pre(&component).map_err(|e| {
        let msg = format!("{e:#}");
        // wasmtime says: component imports instance `x:y/z@1.0`, but a matching implementation…
        match msg.split('`').nth(1) {
            Some(import) if msg.contains("imports") => refuse(format!(
                "the component imports `{import}`, which Sandgate does not provide (a strategy may import \
                 sandgate:strategy/{{storage,crypto,log,config}}, WASI p2 and wasi:http/outgoing-handler only)"
            )),
            _ => refuse(format!("the component cannot be linked: {msg}")),
        }
    })?;
    let pre = Pre::new(contract, instance_pre)
        .map_err(|e| refuse(format!("the component does not export `{AUTHENTICATOR}` as Sandgate expects: {e:#}")))?;
    // Its counters exist from here on (a refused upload leaves none behind in /metrics).
    let mut strategy = Strategy::new(name, pre, merged, metrics());
    strategy.config = Arc::from(config_value.to_string());
    strategy.hash = hash.clone();
    strategy.size = wasm.len();
    strategy.limit_overrides = limit_overrides;
    strategy.outbound = Arc::new(grants.outbound.clone());
    strategy.provision = grants.provision.clone();
    strategy.fields = match known_fields {
        Some(fields) => fields,
        // One real call before accepting it: it must instantiate and answer under the limits.
        None => {
            let refused =
                |e: super::errors::CallError| refuse(format!("the strategy failed its first call (fields): it {e}"));
            // A strategy nobody else can call yet: its permit is free.
            let permit = Arc::new(strategy.try_admit().map_err(refused)?);
            let cx = CallCtx {
                permit: &permit,
                overlay: &mut Overlay::default(),
                request_id: "upload",
                guard: None,
                report: None,
            };
            super::call::block_on(sandbox.calls.fields(&strategy, cx)).map_err(refused)?.unwrap_or_default()
        }
    };
    // Accepted: only now does its compiled artifact enter the cache.
    if let Some(tmp) = pending {
        let path = artifact_path(sandbox, &hash);
        if let Err(e) = tmp.persist(&path) {
            tracing::warn!(path = %path.display(), "could not cache the compiled strategy: {}", e.error);
        }
    }
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
