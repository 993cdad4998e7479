//! The sandbox: one wasmtime `Engine` per process, one `InstancePre` per registered strategy,
//! and a fresh `Store` + instance for every call, so nothing a call leaves behind reaches the
//! next one. Each call runs under the caps of [`Limits`]: memory, guest CPU time (epoch
//! deadlines, host time excluded), wasm stack, table size, returned-string size, host-call
//! counts, and a per-strategy concurrency cap.
//!
//! Calls are synchronous: run them on a blocking thread (the API layer does), never on the
//! async reactor.

pub mod bindings;
mod clocks;
pub mod compile;
pub mod crypto;
pub mod host;
pub mod limits;
pub mod metrics;
pub mod registry;
mod warm;

use bindings::{LoginRequest, StrategyError, StrategyPre};
use host::{CallLimiter, HostState, LimitHit, Overlay, ReadGuard};
use limits::Limits;
use metrics::{Outcome, StrategyMetrics};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx};

pub use crypto::{Argon2Config, PasswordHasher};

/// The epoch ticks this often; CPU budgets are counted in ticks.
const TICK: Duration = Duration::from_millis(5);

/// A registered strategy, ready to instantiate.
pub struct Strategy {
    pub name: String,
    pre: StrategyPre<HostState>,
    pub config: Arc<str>,
    pub fields: Vec<String>,
    /// sha256 of the component, hex.
    pub hash: String,
    pub size: usize,
    pub registered_at_ms: i64,
    /// The caps this strategy runs under (global limits with its overrides applied).
    pub limits: Arc<Limits>,
    /// The overrides as the operator gave them (JSON object text).
    pub limit_overrides: String,
    pub metrics: Arc<StrategyMetrics>,
    in_flight: AtomicU32,
    /// Login admission for this strategy (`limits.max_concurrent_calls` permits, waited on
    /// asynchronously before a worker thread is taken).
    pub gate: Arc<tokio::sync::Semaphore>,
    /// Fresh instances built ahead of time, each for exactly one call (see `warm`).
    warm: std::sync::Mutex<Vec<warm::Ready>>,
    /// Set at install: lets the aftercare refill this strategy while it lives.
    me: std::sync::OnceLock<std::sync::Weak<Strategy>>,
}

impl Strategy {
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Why a call did not produce an answer from the strategy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The guest ran past its CPU budget.
    Cpu { budget_ms: u64 },
    /// The call ran past its wall-clock cap (sleeping, waiting on the host).
    Wall { cap_ms: u64 },
    /// A login read the record of a locked account (seconds left).
    Locked { secs: u64 },
    /// The guest tried to grow its memory past the cap.
    Memory { cap_bytes: usize },
    /// The guest overflowed its wasm stack.
    Stack,
    /// The host stopped the guest (host-call caps, storage failure).
    Limit(String),
    /// The strategy returned more than `max_return_bytes`.
    ReturnTooLarge { cap_bytes: usize },
    /// The input was larger than `max_input_bytes`.
    InputTooLarge { cap_bytes: usize },
    /// Too many calls in flight for this strategy.
    Busy { cap: u32 },
    /// The guest trapped (panic, unreachable…): what it printed to stderr, if anything.
    Trap(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Cpu { budget_ms } => write!(f, "exceeded its CPU budget of {budget_ms} ms (limits.cpu_ms)"),
            CallError::Wall { cap_ms } => write!(f, "{}", LimitHit::Wall(*cap_ms)),
            CallError::Locked { secs } => write!(f, "{}", LimitHit::Locked(*secs)),
            CallError::Memory { cap_bytes } => {
                write!(f, "exceeded its memory cap of {cap_bytes} bytes (limits.memory_bytes)")
            }
            CallError::Stack => write!(f, "overflowed its stack (limits.stack_bytes)"),
            CallError::Limit(what) => write!(f, "was stopped: {what}"),
            CallError::ReturnTooLarge { cap_bytes } => {
                write!(f, "returned more than {cap_bytes} bytes (limits.max_return_bytes)")
            }
            CallError::InputTooLarge { cap_bytes } => {
                write!(f, "input exceeds {cap_bytes} bytes (limits.max_input_bytes)")
            }
            CallError::Busy { cap } => write!(f, "has {cap} calls in flight already (limits.max_concurrent_calls)"),
            CallError::Trap(msg) => write!(f, "crashed: {msg}"),
        }
    }
}

pub struct Sandbox {
    engine: Engine,
    linker: Linker<HostState>,
    limits: Arc<Limits>,
    hasher: Arc<PasswordHasher>,
    store: Arc<dyn crate::store::Store>,
    cache_dir: PathBuf,
    strategies: RwLock<HashMap<String, Arc<Strategy>>>,
    metrics: std::sync::Mutex<HashMap<String, Arc<StrategyMetrics>>>,
    stats: Stats,
    aftercare: warm::Aftercare,
    compiler: compile::Compiler,
    /// How long an unused compiled artifact is kept (servers sharing one cache directory).
    cache_keep: Duration,
}

/// Process-wide counters (the per-strategy metrics build on these).
#[derive(Debug, Default)]
pub struct Stats {
    /// Strategy calls started.
    pub calls: std::sync::atomic::AtomicU64,
    /// Password hashes and checks the host computed for strategies.
    pub hash_calls: std::sync::atomic::AtomicU64,
}

impl Sandbox {
    pub fn new(
        limits: Limits,
        hasher: PasswordHasher,
        store: Arc<dyn crate::store::Store>,
        cache_dir: PathBuf,
    ) -> anyhow::Result<Self> {
        let engine = Engine::new(&engine_config(&limits))?;
        let mut linker = Linker::<HostState>::new(&engine);
        // WASI with no capability at all (see `new_state`): components built with plain
        // `cargo build --target wasm32-wasip2` import it for std's panic and print machinery.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        clocks::add_to_linker(&mut linker)?;
        bindings::Strategy::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)?;
        create_private_dir(&cache_dir)?;
        start_ticker(engine.weak());
        let hasher = Arc::new(hasher);
        let builder: warm::Builder = {
            let (engine, hasher, store) = (engine.clone(), hasher.clone(), store.clone());
            Arc::new(move |s: &Strategy| fresh(&engine, &hasher, &store, s))
        };
        Ok(Sandbox {
            aftercare: warm::Aftercare::new(builder),
            engine,
            linker,
            limits: Arc::new(limits),
            hasher,
            store,
            cache_dir,
            strategies: RwLock::new(HashMap::new()),
            metrics: std::sync::Mutex::new(HashMap::new()),
            stats: Stats::default(),
            compiler: compile::Compiler::InProcess,
            cache_keep: Duration::ZERO,
        })
    }

    /// How uploads are compiled (in process by default: set [`compile::Compiler::Child`] for
    /// anything untrusted), and how long unused artifacts stay in the cache.
    pub fn with_compiler(mut self, compiler: compile::Compiler, cache_keep: Duration) -> Self {
        self.compiler = compiler;
        self.cache_keep = cache_keep;
        self
    }

    /// Removes compiled artifacts that no registered strategy uses.
    pub fn clean_cache(&self) {
        let in_use: Vec<String> =
            self.strategies.read().unwrap_or_else(|p| p.into_inner()).values().map(|s| s.hash.clone()).collect();
        registry::clean_cache(self, &in_use, self.cache_keep);
    }

    /// Work deferred by this thread's calls: drop their Stores, build fresh instances for the
    /// next calls. Call it once the response is on its way (`api::dispatch` does).
    pub fn after_response(&self) {
        self.aftercare.run();
    }

    /// The host's password hasher (the one strategies reach through `crypto`).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn get(&self, name: &str) -> Option<Arc<Strategy>> {
        self.strategies.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Registered strategy names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.strategies.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        names.sort();
        names
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

    /// One call: a fresh Store and instance, `f` on it, then everything dropped. The
    /// storage writes it made are added to `overlay` only if `f` answered `Ok(Ok(_))`.
    fn call<R: Answer>(
        &self,
        strategy: &Strategy,
        overlay: &mut Overlay,
        request_id: &str,
        guard: Option<Arc<dyn ReadGuard>>,
        f: impl FnOnce(&bindings::Strategy, &mut wasmtime::Store<HostState>) -> wasmtime::Result<Result<R, StrategyError>>,
    ) -> Result<Result<R, StrategyError>, CallError> {
        let limits = strategy.limits.clone();
        let _slot = match InFlight::enter(&strategy.in_flight, limits.max_concurrent_calls) {
            Ok(slot) => slot,
            Err(e) => {
                strategy.metrics.record(Outcome::Busy, None, None);
                return Err(e);
            }
        };
        let started = Instant::now();
        let budget = limits.cpu_ms;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        // A ready fresh instance if there is one, else one built now.
        let ready = strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
        self.aftercare.refill(strategy);
        let (mut store, outcome) =
            match ready.map(Ok).unwrap_or_else(|| fresh(&self.engine, &self.hasher, &self.store, strategy)) {
                Ok((mut store, instance)) => {
                    let state = store.data_mut();
                    state.overlay = overlay.clone();
                    state.request_id = Arc::from(request_id);
                    state.guard = guard;
                    state.begin(started);
                    store.set_epoch_deadline(1);
                    let outcome = f(&instance, &mut store);
                    (store, outcome)
                }
                Err(e) => {
                    // Instantiation itself failed (a start function trapped, the pool is full).
                    let store = wasmtime::Store::new(&self.engine, new_state(&self.hasher, &self.store, strategy));
                    (store, Err(e))
                }
            };
        let state = store.data();
        self.stats.hash_calls.fetch_add(state.hash_calls as u64, Ordering::Relaxed);
        if state.dropped_log_lines > 0 {
            strategy.metrics.dropped_log_lines(state.dropped_log_lines);
        }
        let elapsed = started.elapsed();
        let used =
            elapsed.saturating_sub(state.uncharged()).as_secs_f64() / Duration::from_millis(budget).as_secs_f64();
        let result = match outcome {
            Ok(answer) => {
                let size = match &answer {
                    Ok(value) => value.size(),
                    Err(e) => error_message(e).len(),
                };
                if size > limits.max_return_bytes {
                    Err(CallError::ReturnTooLarge { cap_bytes: limits.max_return_bytes })
                } else {
                    if answer.is_ok() {
                        *overlay = std::mem::take(&mut store.data_mut().overlay);
                    }
                    Ok(answer)
                }
            }
            Err(err) => Err(classify(err, &store, &limits)),
        };
        strategy.metrics.record(outcome_of(&result), Some(elapsed), Some(used.min(1.0)));
        self.aftercare.reap(store);
        result
    }

    /// `guard` sees every storage read of the call (the login soft lock).
    pub fn verify(
        &self,
        s: &Strategy,
        req: &LoginRequest,
        overlay: &mut Overlay,
        rid: &str,
        guard: Option<Arc<dyn ReadGuard>>,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.check_input(s, &req.credentials)?;
        self.call(s, overlay, rid, guard, |i, st| i.sandgate_strategy_authenticator().call_verify(st, req))
    }

    /// `guard` when the validation is a credential check (`validateMyCredentials`).
    #[allow(clippy::too_many_arguments)]
    pub fn validate(
        &self,
        s: &Strategy,
        kuid: &str,
        creds: &str,
        is_update: bool,
        overlay: &mut Overlay,
        rid: &str,
        guard: Option<Arc<dyn ReadGuard>>,
    ) -> Result<Result<(), StrategyError>, CallError> {
        self.check_input(s, creds)?;
        self.call(s, overlay, rid, guard, |i, st| {
            i.sandgate_strategy_authenticator().call_validate(st, kuid, creds, is_update)
        })
    }

    pub fn create(
        &self,
        s: &Strategy,
        kuid: &str,
        creds: &str,
        overlay: &mut Overlay,
        rid: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.check_input(s, creds)?;
        self.call(s, overlay, rid, None, |i, st| i.sandgate_strategy_authenticator().call_create(st, kuid, creds))
    }

    pub fn update(
        &self,
        s: &Strategy,
        kuid: &str,
        creds: &str,
        overlay: &mut Overlay,
        rid: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.check_input(s, creds)?;
        self.call(s, overlay, rid, None, |i, st| i.sandgate_strategy_authenticator().call_update(st, kuid, creds))
    }

    pub fn delete(
        &self,
        s: &Strategy,
        kuid: &str,
        overlay: &mut Overlay,
        rid: &str,
    ) -> Result<Result<(), StrategyError>, CallError> {
        self.call(s, overlay, rid, None, |i, st| i.sandgate_strategy_authenticator().call_delete(st, kuid))
    }

    pub fn exists(&self, s: &Strategy, kuid: &str, overlay: &mut Overlay, rid: &str) -> Result<bool, CallError> {
        let out = self
            .call(s, overlay, rid, None, |i, st| i.sandgate_strategy_authenticator().call_exists(st, kuid).map(Ok))?;
        Ok(out.unwrap_or(false))
    }

    pub fn get_info(
        &self,
        s: &Strategy,
        kuid: &str,
        overlay: &mut Overlay,
        rid: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.call(s, overlay, rid, None, |i, st| i.sandgate_strategy_authenticator().call_get_info(st, kuid))
    }

    pub fn get_by_id(
        &self,
        s: &Strategy,
        id: &str,
        overlay: &mut Overlay,
        rid: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.call(s, overlay, rid, None, |i, st| i.sandgate_strategy_authenticator().call_get_by_id(st, id))
    }

    fn check_input(&self, s: &Strategy, input: &str) -> Result<(), CallError> {
        if input.len() > s.limits.max_input_bytes {
            s.metrics.record(Outcome::InputTooLarge, None, None);
            return Err(CallError::InputTooLarge { cap_bytes: s.limits.max_input_bytes });
        }
        Ok(())
    }

    /// For benchmarks: one `verify` through the per-call cycle, timed by phase:
    /// (new Store + instantiate, the call, dropping the Store).
    #[doc(hidden)]
    pub fn timed_verify(&self, s: &Strategy, req: &LoginRequest) -> (Duration, Duration, Duration, bool) {
        let t0 = Instant::now();
        let (mut store, instance) = fresh(&self.engine, &self.hasher, &self.store, s).expect("instantiate");
        let t1 = Instant::now();
        let ok = matches!(instance.sandgate_strategy_authenticator().call_verify(&mut store, req), Ok(Ok(_)));
        let t2 = Instant::now();
        drop(store);
        (t1 - t0, t2 - t1, t2.elapsed(), ok)
    }

    /// The metrics of `name`, created on first use; kept across re-registrations.
    pub fn metrics_for(&self, name: &str) -> Arc<StrategyMetrics> {
        self.metrics.lock().unwrap_or_else(|p| p.into_inner()).entry(name.to_string()).or_default().clone()
    }

    /// `GET /metrics`.
    pub fn metrics_text(&self) -> String {
        let mut all: Vec<(String, Arc<StrategyMetrics>)> = self
            .metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        metrics::render(&all)
    }
}

/// What a strategy returns, measured against `limits.max_return_bytes`.
pub trait Answer {
    fn size(&self) -> usize;
}
impl Answer for String {
    fn size(&self) -> usize {
        self.len()
    }
}
impl Answer for () {
    fn size(&self) -> usize {
        0
    }
}
impl Answer for bool {
    fn size(&self) -> usize {
        1
    }
}
impl Answer for Vec<String> {
    fn size(&self) -> usize {
        self.iter().map(|s| s.len() + 8).sum()
    }
}

fn error_message(e: &StrategyError) -> &str {
    match e {
        StrategyError::Rejected(s)
        | StrategyError::BadRequest(s)
        | StrategyError::Conflict(s)
        | StrategyError::NotFound(s)
        | StrategyError::Internal(s) => s,
    }
}

fn outcome_of<R>(result: &Result<Result<R, StrategyError>, CallError>) -> Outcome {
    match result {
        Ok(Ok(_)) => Outcome::Ok,
        Ok(Err(StrategyError::Rejected(_))) => Outcome::Rejected,
        Ok(Err(StrategyError::BadRequest(_))) => Outcome::BadRequest,
        Ok(Err(StrategyError::Conflict(_))) => Outcome::Conflict,
        Ok(Err(StrategyError::NotFound(_))) => Outcome::NotFound,
        Ok(Err(StrategyError::Internal(_))) => Outcome::Internal,
        Err(CallError::Cpu { .. }) => Outcome::Cpu,
        Err(CallError::Wall { .. }) => Outcome::Wall,
        Err(CallError::Locked { .. }) => Outcome::Rejected,
        Err(CallError::Memory { .. }) => Outcome::Memory,
        Err(CallError::Stack) => Outcome::Stack,
        Err(CallError::Limit(_)) => Outcome::HostLimit,
        Err(CallError::ReturnTooLarge { .. }) => Outcome::ReturnTooLarge,
        Err(CallError::InputTooLarge { .. }) => Outcome::InputTooLarge,
        Err(CallError::Busy { .. }) => Outcome::Busy,
        Err(CallError::Trap(_)) => Outcome::Trap,
    }
}

/// What a call's Store holds: nothing shared with any other call but read-only handles.
fn new_state(hasher: &Arc<PasswordHasher>, store: &Arc<dyn crate::store::Store>, strategy: &Strategy) -> HostState {
    let stderr = MemoryOutputPipe::new(4096);
    let now = Instant::now();
    let mut wasi = WasiCtx::builder();
    // Nothing: no preopened directory, no environment, no arguments, no network; stdin is
    // empty and what the guest prints to stderr is kept (4 KiB) to explain a crash. Clocks
    // tick in milliseconds; random bytes are capped per call like everything the host holds.
    wasi.allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .stderr(stderr.clone())
        .monotonic_clock(clocks::Monotonic(now))
        .wall_clock(clocks::Wall)
        .max_random_size(strategy.limits.max_random_bytes as u64);
    HostState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limiter: CallLimiter::new(strategy.limits.memory_bytes, strategy.limits.table_elements),
        strategy: Arc::from(strategy.name.as_str()),
        config: strategy.config.clone(),
        request_id: Arc::from(""),
        store: store.clone(),
        hasher: hasher.clone(),
        limits: strategy.limits.clone(),
        overlay: Overlay::default(),
        own_writes: HashMap::new(),
        pending_bytes: 0,
        guard: None,
        stderr,
        hash_calls: 0,
        host_calls: 0,
        log_lines: 0,
        dropped_log_lines: 0,
        host_time: Duration::ZERO,
        waits: Arc::default(),
        started: now,
        deadline: now + Duration::from_millis(strategy.limits.wall_ms),
        clock_origin: now,
    }
}

/// A fresh Store with its caps, and a fresh instance of the strategy in it.
fn fresh(
    engine: &Engine,
    hasher: &Arc<PasswordHasher>,
    kv: &Arc<dyn crate::store::Store>,
    strategy: &Strategy,
) -> wasmtime::Result<warm::Ready> {
    let mut store = wasmtime::Store::new(engine, new_state(hasher, kv, strategy));
    store.limiter(|s| &mut s.limiter);
    // At every epoch tick while the guest runs (a call of a few µs never sees one): the
    // wall-clock deadline (a host call that returned past it stops the guest at once), the
    // CPU budget, charged for what is not hashing or waiting (argon2 may take a while), and
    // the host-call count, which WASI calls raise without a way to trap themselves.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| ctx.data().on_tick());
    let instance = strategy.pre.instantiate(&mut store)?;
    Ok((store, instance))
}

/// Counts a strategy's calls in flight; refuses past the cap.
struct InFlight<'a>(&'a AtomicU32);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicU32, cap: u32) -> Result<Self, CallError> {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        if before >= cap {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(CallError::Busy { cap });
        }
        Ok(InFlight(counter))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Advances the engine's epoch every [`TICK`] while the engine lives.
fn start_ticker(engine: wasmtime::EngineWeak) {
    std::thread::Builder::new()
        .name("sandgate-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })
        .expect("spawn epoch ticker");
}

/// The compilation settings (the compiler child builds its engine from these alone).
fn compile_config(limits: &Limits) -> Config {
    let mut cfg = Config::new();
    cfg.epoch_interruption(true).max_wasm_stack(limits.stack_bytes).concurrency_support(false);
    cfg
}

/// The cache holds native code the server will run: only the server's user may write there.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

fn engine_config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let n = limits.pool_instances;
    pool.total_component_instances(n)
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 8)
        .max_memory_size(limits.memory_bytes)
        .max_core_instances_per_component(16)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        // Keep the start of a recycled heap mapped: fewer page faults on the next call.
        .linear_memory_keep_resident(limits.keep_resident_bytes)
        // Tables too: otherwise each recycled slot's tables are decommitted with madvise,
        // and on a multi-core machine every madvise may cost a TLB shootdown.
        .table_keep_resident(64 << 10);
    let mut cfg = compile_config(limits);
    cfg.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

/// Turns a wasmtime error into what the caller is told.
fn classify(err: wasmtime::Error, store: &wasmtime::Store<HostState>, limits: &Limits) -> CallError {
    match err.downcast_ref::<LimitHit>() {
        Some(LimitHit::Memory(cap)) => return CallError::Memory { cap_bytes: *cap },
        Some(LimitHit::Wall(ms)) => return CallError::Wall { cap_ms: *ms },
        Some(LimitHit::Locked(secs)) => return CallError::Locked { secs: *secs },
        Some(hit) => return CallError::Limit(hit.to_string()),
        None => {}
    }
    // Only the root cause's own text: the rest (a backtrace) carries names the guest chose.
    let root = err.root_cause().to_string();
    // wasmtime-wasi refuses `get-random-bytes` past `max_random_size` with this text.
    if root.starts_with("requested len") && root.contains("exceeds limit") {
        return CallError::Limit(format!(
            "asked WASI for more than {} random bytes (limits.max_random_bytes)",
            limits.max_random_bytes
        ));
    }
    // Every pooling slot is taken (too many calls at once across strategies): try later.
    if root.contains("concurrent limit") {
        return CallError::Busy { cap: limits.pool_instances };
    }
    let stderr = String::from_utf8_lossy(&store.data().stderr.contents()).trim().to_string();
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) if Instant::now() >= store.data().deadline => CallError::Wall { cap_ms: limits.wall_ms },
        Some(Trap::Interrupt) => CallError::Cpu { budget_ms: limits.cpu_ms },
        Some(Trap::StackOverflow) => CallError::Stack,
        _ if format!("{err:#}").contains("forcing trap when growing memory") => {
            CallError::Memory { cap_bytes: limits.memory_bytes }
        }
        _ if stderr.contains("memory allocation of") => CallError::Memory { cap_bytes: limits.memory_bytes },
        // Languages that keep their call stack in linear memory (Rust, C) overflow it
        // into out-of-bounds accesses before the wasm stack limit is reached.
        Some(Trap::MemoryOutOfBounds) if stderr.is_empty() => {
            CallError::Trap("out of bounds memory access (often the strategy's own stack overflowing)".into())
        }
        Some(trap) if stderr.is_empty() => CallError::Trap(trap.to_string()),
        _ if stderr.is_empty() => {
            CallError::Trap(format!("{err:#}").lines().next().unwrap_or("unknown error").to_string())
        }
        _ => CallError::Trap(stderr),
    }
}

impl Sandbox {
    /// Compiles (or loads from the cache) and links a component, checking it is a strategy.
    /// `fields` as recorded at its acceptance, if known: then nothing of the strategy runs.
    pub fn prepare(
        &self,
        name: &str,
        wasm: &[u8],
        config: &str,
        limits: &str,
        fields: Option<Vec<String>>,
    ) -> Result<Strategy, registry::UploadError> {
        registry::prepare(self, name, wasm, config, limits, fields)
    }

    fn engine(&self) -> &Engine {
        &self.engine
    }

    fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    fn cache_dir(&self) -> &std::path::Path {
        &self.cache_dir
    }
}
