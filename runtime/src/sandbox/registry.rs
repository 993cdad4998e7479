//! The [`Sandbox`]: the engine, the registered strategies by name, their metrics, and the
//! compiled-artifact cache. Registering swaps a strategy in: calls in flight finish on the
//! version they started with.

use super::call::{Backends, Calls};
use super::compile::Compiler;
use super::errors::UploadError;
use super::host::HostState;
use super::limits::Limits;
use super::metrics::{Families, StrategyMetrics};
use super::strategy::Strategy;
use super::upload::{self, Workshop};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::Linker;

pub struct Sandbox {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Limits,
    calls: Calls,
    cache_dir: PathBuf,
    strategies: RwLock<HashMap<String, Arc<Strategy>>>,
    metrics: Mutex<HashMap<String, Arc<StrategyMetrics>>>,
    families: Families,
    compiler: Compiler,
    /// How long an unused compiled artifact is kept (servers sharing one cache directory).
    cache_keep: Duration,
}

impl Sandbox {
    pub fn new(limits: Limits, backends: Backends, cache_dir: PathBuf) -> anyhow::Result<Self> {
        let (engine, linker) = super::engine::start(&limits)?;
        super::engine::create_private_dir(&cache_dir)?;
        Ok(Sandbox {
            calls: Calls::new(engine.clone(), backends),
            engine,
            linker,
            limits,
            cache_dir,
            strategies: RwLock::new(HashMap::new()),
            metrics: Mutex::new(HashMap::new()),
            families: Families::default(),
            compiler: Compiler::InProcess,
            cache_keep: Duration::ZERO,
        })
    }

    /// How uploads are compiled (in process by default: set [`Compiler::Child`] for anything
    /// untrusted), and how long unused artifacts stay in the cache.
    pub fn with_compiler(mut self, compiler: Compiler, cache_keep: Duration) -> Self {
        self.compiler = compiler;
        self.cache_keep = cache_keep;
        self
    }

    /// Strategy calls (each needs the strategy's [`super::Permit`]).
    pub fn calls(&self) -> &Calls {
        &self.calls
    }

    pub fn get(&self, name: &str) -> Option<Arc<Strategy>> {
        self.strategies.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// How many strategies are registered.
    pub fn count(&self) -> usize {
        self.strategies.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Registered strategy names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.strategies.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        names.sort();
        names
    }

    /// Compiles (or loads from the cache) and links a component, checking it is a strategy.
    /// `fields` as recorded at its acceptance, if known: then nothing of the strategy runs.
    pub fn prepare(
        &self,
        name: &str,
        wasm: &[u8],
        config: &str,
        limits: &str,
        grants: &super::grants::Grants,
        fields: Option<Vec<String>>,
    ) -> Result<Strategy, UploadError> {
        let registration = upload::Registration { name, wasm, config, limits, grants };
        upload::prepare(&self.workshop(), registration, fields, || self.metrics_for(name))
    }

    /// Makes `strategy` the one new calls get; calls in flight keep the one they hold.
    pub fn install(&self, strategy: Strategy) -> Arc<Strategy> {
        let strategy = Arc::new(strategy);
        let _ = strategy.me.set(Arc::downgrade(&strategy));
        self.strategies.write().unwrap_or_else(|p| p.into_inner()).insert(strategy.name.clone(), strategy.clone());
        strategy
    }

    pub fn remove(&self, name: &str) -> Option<Arc<Strategy>> {
        self.strategies.write().unwrap_or_else(|p| p.into_inner()).remove(name)
    }

    /// Removes compiled artifacts that no registered strategy uses.
    pub fn clean_cache(&self) {
        let in_use: Vec<String> =
            self.strategies.read().unwrap_or_else(|p| p.into_inner()).values().map(|s| s.hash.clone()).collect();
        upload::clean_cache(&self.workshop(), &in_use, self.cache_keep);
    }

    fn workshop(&self) -> Workshop<'_> {
        Workshop {
            engine: &self.engine,
            linker: &self.linker,
            cache_dir: &self.cache_dir,
            limits: &self.limits,
            compiler: &self.compiler,
            calls: &self.calls,
        }
    }

    /// The metrics of `name`, created on first use; kept across re-registrations.
    fn metrics_for(&self, name: &str) -> Arc<StrategyMetrics> {
        let mut all = self.metrics.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(name.to_string()).or_insert_with(|| Arc::new(self.families.of(name))).clone()
    }

    /// Adds every strategy's metrics to `registry` (`GET /metrics`).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.families.register(registry);
    }
}
