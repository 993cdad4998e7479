//! The running server's state, and start-up: open the store, settle the token secret, start
//! the sandbox, register the bundled strategies.

use crate::config::Config;
use crate::sandbox::host::LimitHit;
use crate::sandbox::host::http::Network;
use crate::sandbox::host::log::Tracing;
use crate::sandbox::host::storage::{KeyValue, Pending, Usage};
use crate::sandbox::{Backends, Grants, PasswordHasher, Sandbox};
use crate::service::throttle::Throttle;
use crate::store::cluster::Shared;
use crate::store::front::Db;
use crate::store::{Change, Store, StoreError, postgres::Postgres, sqlite::Sqlite};
use crate::tokens::Tokens;
use anyhow::{Context, anyhow};
use prometheus_client::registry::Registry;
use std::sync::Arc;

pub use super::bundled::BUNDLED_LOCAL;

const SECRET_KEY: &str = "token_secret";

pub struct App {
    pub config: Config,
    /// The store, async (caches, reader pool, group commit: see `store::front`).
    pub store: Arc<Db>,
    pub sandbox: Sandbox,
    pub tokens: Tokens,
    /// Every role and profile, in memory (see `service::rights`).
    pub rights: Live,
    pub throttle: Arc<Throttle>,
    /// The host's password hasher (strategies reach it through `crypto`).
    pub hasher: Arc<PasswordHasher>,
    /// This node's name in responses (`node`) and in what it tells the other nodes.
    pub node: String,
    /// The database the nodes share, if they share one (PostgreSQL).
    pub shared: Option<Arc<dyn Shared>>,
    /// What `GET /metrics` shows: the strategies' families and the store's counters.
    pub metrics: Registry,
    /// The first admin was created (for good: see `Store::admin_exists`), so createFirstAdmin
    /// answers 412 without asking the database again.
    pub first_admin_done: std::sync::atomic::AtomicBool,
}

/// A store, and what it shares with other nodes if it is a shared one.
pub type Opened = (Arc<dyn Store>, Option<Arc<dyn Shared>>);

/// The store the configuration names: the shared PostgreSQL database, or the SQLite file.
pub fn open_store(config: &Config, node: &str) -> anyhow::Result<Opened> {
    match &config.store.url {
        Some(url) => {
            let pg = Arc::new(Postgres::open(url, node).context("store.url")?);
            Ok((pg.clone(), Some(pg)))
        }
        None => {
            let sqlite = Sqlite::open(&config.data_dir)
                .with_context(|| format!("data directory {}", config.data_dir.display()))?;
            Ok((Arc::new(sqlite), None))
        }
    }
}

impl App {
    /// Everything but the network. Blocking: call from a blocking thread of the runtime that
    /// will serve (`spawn_blocking`), before it serves requests.
    pub fn start(config: Config) -> anyhow::Result<Arc<App>> {
        let node = format!("sandgate-{}", crate::core::ids::hex(&crate::core::ids::random::<4>()));
        let (backend, shared) = open_store(&config, &node)?;
        let secret = token_secret(&config, &*backend)?;
        let tokens = Tokens::new(config.tokens.clone(), &secret, &*backend)?;
        let rights = Live::load(&*backend)?;
        let stored = backend.strategies()?;
        let store = Arc::new(Db::new(backend));
        let hasher = Arc::new(PasswordHasher::new(&config.argon2).map_err(|e| anyhow!(e))?);
        let sandbox = new_sandbox(&config, store.clone(), hasher.clone())?;
        if !stored.iter().any(|s| s.name == "local") {
            install_bundled(&sandbox)?;
        }
        // Uploaded strategies: their compiled artifacts are cached, so this is fast, and their
        // `fields` were recorded at upload, so none of their code runs here (a strategy that
        // misbehaves cannot hold start-up). Rows from before that record make one call,
        // bounded like every call.
        for s in stored {
            let prepared = Grants::parse(&s.outbound, &s.provision)
                .and_then(|grants| sandbox.prepare(&s.name, &s.wasm, &s.config, &s.limits, &grants, s.fields.clone()));
            match prepared {
                Ok(mut strategy) => {
                    strategy.registered_at_ms = s.registered_at_ms;
                    sandbox.install(strategy);
                }
                // One bad strategy must not keep the server (and every other one) down.
                Err(e) => tracing::error!(strategy = %s.name, "not loaded: {e}"),
            }
        }
        sandbox.clean_cache();
        let throttle = Arc::new(Throttle::new(&config.login, config.lockout_ms));
        let mut metrics = Registry::with_prefix("sandgate");
        sandbox.register_metrics(&mut metrics);
        store.register_metrics(&mut metrics);
        let app = Arc::new(App {
            config,
            store,
            sandbox,
            tokens,
            rights,
            throttle,
            hasher,
            node,
            shared: shared.clone(),
            metrics,
            first_admin_done: Default::default(),
        });
        if let Some(shared) = shared {
            super::cluster::join(&app, shared).context("following the other nodes")?;
        }
        Ok(app)
    }

    /// (Re)installs the bundled `local` strategy.
    pub fn install_bundled(&self) -> anyhow::Result<()> {
        install_bundled(&self.sandbox)
    }

    /// Every minute while the server runs: deletes the strategies' expired keys (they read as
    /// absent already; this gives their room back to the quotas), and reads the rights again
    /// if a re-read after a change failed.
    pub async fn sweep_expired_keys(self: Arc<Self>) {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            let now_ms = crate::core::time::now_ms();
            if let Err(e) = self.store.commit(vec![Change::KvSweep { now_ms }]).await {
                tracing::warn!("could not sweep expired strategy keys: {e}");
            }
            // A change to the rights whose re-read failed: try again.
            if self.rights.is_stale() {
                self.rights.reload(&self.store).await;
            }
        }
    }

    /// `GET /metrics`, in the OpenMetrics text format.
    pub fn metrics_text(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.metrics);
        text
    }

    /// A long-lived connection closed: drop what was kept about it.
    pub fn forget_connection(&self, id: u64) {
        self.throttle.forget_connection(id);
    }
}

fn new_sandbox(config: &Config, store: Arc<Db>, hasher: Arc<PasswordHasher>) -> anyhow::Result<Sandbox> {
    let keep = std::time::Duration::from_millis(config.cache_keep_unused_ms);
    let backends = Backends {
        kv: Arc::new(StrategyStorage(store)),
        network: Arc::new(Network::new(config.outbound.allow_private_networks)),
        hasher,
        log: Arc::new(Tracing),
    };
    Ok(Sandbox::new(config.limits.clone(), backends, config.cache_dir.clone())?
        .with_compiler(config.compiler.clone(), keep))
}

/// The store, as the sandbox's storage interface sees it: the strategies' key-value tables,
/// read on the store's reader pool.
pub struct StrategyStorage(pub Arc<Db>);

impl KeyValue for StrategyStorage {
    fn get(&self, strategy: &str, key: &str) -> Pending<Option<String>> {
        // A cached value is answered without copying the names for a read that won't happen.
        if let Some(hit) = self.0.kv_cached(strategy, key) {
            return Box::pin(std::future::ready(Ok(hit)));
        }
        let (db, strategy, key) = (self.0.clone(), strategy.to_string(), key.to_string());
        Box::pin(async move { db.kv_get(&strategy, &key).await.map_err(storage_failure) })
    }
    fn list(&self, strategy: &str, prefix: &str, limit: u32) -> Pending<Vec<String>> {
        let (db, strategy, prefix) = (self.0.clone(), strategy.to_string(), prefix.to_string());
        Box::pin(async move {
            db.read_for_strategy(move |s| s.kv_list(&strategy, &prefix, limit)).await.map_err(storage_failure)
        })
    }
    fn usage(&self, strategy: &str) -> Pending<Usage> {
        let (db, strategy) = (self.0.clone(), strategy.to_string());
        Box::pin(async move {
            let u = db.read_for_strategy(move |s| s.kv_usage(&strategy)).await.map_err(storage_failure)?;
            Ok(Usage { keys: u.keys, bytes: u.bytes })
        })
    }
}

impl super::cluster::Node for App {
    fn store(&self) -> &Db {
        &self.store
    }
    fn tokens(&self) -> &Tokens {
        &self.tokens
    }
    fn throttle(&self) -> &Throttle {
        &self.throttle
    }
    fn rights(&self) -> &Live {
        &self.rights
    }
    fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }
    fn resync_ms(&self) -> u64 {
        self.config.store.resync_ms
    }
}

/// A store failure as the sandbox stops a call for it.
fn storage_failure(e: StoreError) -> LimitHit {
    match e {
        StoreError::Unavailable(what) => LimitHit::StorageUnavailable(what),
        other => LimitHit::StorageFailure(other.to_string()),
    }
}

use super::bundled::install as install_bundled;
use crate::rights::live::Live;

/// The configured secret, else the one generated on first start and kept in the store.
fn token_secret(config: &Config, store: &dyn Store) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.secret {
        return Ok(secret.as_bytes().to_vec());
    }
    tracing::warn!(
        "[!] Sandgate is using a generated seed for authentication. This is suitable for development \
         but should NEVER be used in production (set tokens.secret)."
    );
    // Generated by whichever node starts first; the others read it.
    let hex = crate::core::ids::hex(&crate::core::ids::random::<256>());
    Ok(store.meta_init(SECRET_KEY, &hex)?.into_bytes())
}

/// `sandgate strategy add|list|remove`: the same registry, without a running server (a
/// server started afterwards loads what is there).
pub mod offline {
    use super::*;
    use crate::store::StoredStrategy;

    fn open(config: &Config) -> anyhow::Result<(Arc<dyn Store>, Sandbox)> {
        let (store, _) = open_store(config, "sandgate-cli")?;
        let (_, sandbox) = sandbox_on(config, store.clone())?;
        Ok((store, sandbox))
    }

    /// The server's sandbox over `store`, and the async front it reads through.
    fn sandbox_on(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<(Arc<Db>, Sandbox)> {
        let hasher = Arc::new(PasswordHasher::new(&config.argon2).map_err(|e| anyhow!(e))?);
        let db = Arc::new(Db::new(store));
        let sandbox = new_sandbox(config, db.clone(), hasher)?;
        Ok((db, sandbox))
    }

    /// A sandbox like the server's on a data directory thrown away with it (`strategy check`,
    /// `strategy run`): nothing of the operator's is read or written.
    pub struct Scratch {
        pub db: Arc<Db>,
        pub sandbox: Sandbox,
        /// Last: removed once the rest is gone.
        _dir: tempfile::TempDir,
    }

    /// A [`Scratch`] sandbox for `wasm`, if the upload's size cap admits it.
    pub fn scratch(config: &Config, wasm: &[u8]) -> anyhow::Result<Scratch> {
        if wasm.len() > config.max_upload_bytes {
            anyhow::bail!(
                "the component is {} bytes, more than the server accepts (server.max_upload_bytes = {})",
                wasm.len(),
                config.max_upload_bytes
            );
        }
        let dir = tempfile::tempdir()?;
        let mut config = config.clone();
        config.data_dir = dir.path().to_path_buf();
        config.cache_dir = dir.path().join("compiled");
        config.store.url = None;
        let (store, _) = open_store(&config, "sandgate-cli")?;
        let (db, sandbox) = sandbox_on(&config, store)?;
        Ok(Scratch { db, sandbox, _dir: dir })
    }

    /// Validates and compiles (filling the cache), then stores.
    pub fn add(
        config: &Config,
        name: &str,
        wasm: Vec<u8>,
        strategy_config: &str,
        limits: &str,
        grants: &Grants,
        replace: bool,
    ) -> anyhow::Result<String> {
        let (store, sandbox) = open(config)?;
        let hash = crate::sandbox::upload::content_hash(&wasm);
        let stored = store.strategies()?;
        let config_of = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
        let same_code = stored
            .iter()
            .any(|s| s.name == name && s.hash == hash && config_of(&s.config) == config_of(strategy_config));
        if !same_code && !replace && store.has_links(name)? {
            anyhow::bail!(
                "{name} holds users' credentials: the new component would log them in (add --replace to confirm)"
            );
        }
        let strategy = sandbox.prepare(name, &wasm, strategy_config, limits, grants, None)?;
        let config_text =
            if strategy_config.trim().is_empty() { "{}".to_string() } else { strategy_config.to_string() };
        let limits_text = if limits.trim().is_empty() { "{}".to_string() } else { limits.to_string() };
        store.commit(&[Change::PutStrategy(StoredStrategy {
            name: name.to_string(),
            wasm,
            hash: hash.clone(),
            config: config_text,
            limits: limits_text,
            registered_at_ms: strategy.registered_at_ms,
            fields: Some(strategy.fields.clone()),
            outbound: grants.outbound_json(),
            provision: grants.provision_json(),
        })])?;
        Ok(format!("registered {name} ({hash}), fields: {}", strategy.fields.join(", ")))
    }

    /// `sandgate strategy check`: what uploading `wasm` would answer, without a server: the
    /// upload's own checks, compilation and `fields` call, on a scratch data directory that is
    /// thrown away (nothing of the operator's is read or written).
    pub fn check(
        config: &Config,
        wasm: &[u8],
        strategy_config: &str,
        limits: &str,
        grants: &Grants,
    ) -> anyhow::Result<String> {
        let strategy = scratch(config, wasm)?.sandbox.prepare("check", wasm, strategy_config, limits, grants, None)?;
        Ok(format!(
            "ok: a sandgate:strategy@{} component, {} bytes, sha256 {}; fields: {}",
            strategy.contract().version(),
            strategy.size,
            strategy.hash,
            strategy.fields.join(", ")
        ))
    }

    pub fn list(config: &Config) -> anyhow::Result<Vec<String>> {
        let (store, _) = open_store(config, "sandgate-cli")?;
        let stored = store.strategies()?;
        let mut lines = Vec::new();
        if !stored.iter().any(|s| s.name == "local") {
            lines.push(format!("local\tbundled\t{} bytes", BUNDLED_LOCAL.len()));
        }
        for s in stored {
            lines.push(format!("{}\t{}\t{} bytes", s.name, s.hash, s.wasm.len()));
        }
        lines.sort();
        Ok(lines)
    }

    pub fn remove(config: &Config, name: &str) -> anyhow::Result<()> {
        let (store, _) = open_store(config, "sandgate-cli")?;
        if !store.strategies()?.iter().any(|s| s.name == name) {
            anyhow::bail!("no uploaded strategy named {name:?}");
        }
        Ok(store.commit(&[Change::DeleteStrategy(name.to_string())])?)
    }
}
