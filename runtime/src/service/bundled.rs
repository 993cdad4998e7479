//! The `local` strategy that comes with the server: compiled to a component by `make
//! strategies` and embedded, served until an operator uploads a replacement.

use crate::sandbox::{Grants, Sandbox};
use anyhow::anyhow;

pub const BUNDLED_LOCAL: &[u8] = include_bytes!(env!("SANDGATE_LOCAL_WASM_PATH"));

/// (Re)installs the bundled `local` strategy.
pub fn install(sandbox: &Sandbox) -> anyhow::Result<()> {
    let local = sandbox
        .prepare("local", BUNDLED_LOCAL, "{}", "{}", &Grants::default(), None)
        .map_err(|e| anyhow!("bundled local strategy: {e}"))?;
    sandbox.install(local);
    Ok(())
}

/// Its content hash, as a registered strategy reports it (computed once).
pub fn hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::sandbox::upload::content_hash(BUNDLED_LOCAL))
}
