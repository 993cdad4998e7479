//! One call of a strategy, from start to finish: a fresh Store and instance (a warm one if
//! ready), the caps set, the function called, the outcome measured and classified, and the
//! Store set aside for the aftercare. Nothing a call leaves behind reaches the next one.
//!
//! Calls are synchronous: run them on a blocking thread (the API layer does), never on the
//! async reactor.

use super::bindings::{self, LoginRequest, StrategyError};
use super::errors::{CallError, classify, error_message, outcome_of};
use super::host::clocks;
use super::host::crypto::{Crypto, Hashing};
use super::host::log::{Log, LogSink};
use super::host::storage::KeyValue;
use super::host::{CallLimiter, HostState, Meter, Overlay, ReadGuard, Storage};
use super::metrics::Outcome;
use super::strategy::{Permit, Ready, Strategy};
use super::warm;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx};

/// What one call is made with besides its arguments.
pub struct CallCtx<'a> {
    /// The request's admission to this strategy.
    pub permit: &'a Permit,
    /// The request's uncommitted writes: the call reads through them, and adds its own if it
    /// answers `Ok(Ok(_))`.
    pub overlay: &'a mut Overlay,
    pub request_id: &'a str,
    /// Sees every storage read (the login soft lock).
    pub guard: Option<Arc<dyn ReadGuard>>,
}

/// What every call shares: the engine and the host's backends.
pub struct Calls {
    engine: Engine,
    backends: Backends,
    aftercare: warm::Aftercare,
}

/// The host's side of each interface, handed to every call's Store.
#[derive(Clone)]
pub struct Backends {
    pub kv: Arc<dyn KeyValue>,
    pub hasher: Arc<dyn Hashing>,
    pub log: Arc<dyn LogSink>,
}

impl Calls {
    pub fn new(engine: Engine, backends: Backends) -> Self {
        let builder: warm::Builder = {
            let (engine, backends) = (engine.clone(), backends.clone());
            Arc::new(move |s: &Strategy| fresh(&engine, &backends, s))
        };
        Calls { aftercare: warm::Aftercare::new(builder), engine, backends }
    }

    /// Work deferred by this thread's calls: drop their Stores, build fresh instances for the
    /// next calls. Call it once the response is on its way (`api::dispatch` does).
    pub fn after_response(&self) {
        self.aftercare.run();
    }

    /// One call: a fresh Store and instance, `f` on it, then everything set aside.
    pub(super) fn call<R: Answer>(
        &self,
        strategy: &Strategy,
        cx: CallCtx<'_>,
        f: impl FnOnce(&bindings::Strategy, &mut wasmtime::Store<HostState>) -> wasmtime::Result<Result<R, StrategyError>>,
    ) -> Result<Result<R, StrategyError>, CallError> {
        assert!(strategy.admits(cx.permit), "a call needs its strategy's permit");
        let limits = strategy.limits.clone();
        let _running = strategy.running();
        let started = Instant::now();
        let budget = limits.cpu_ms;
        // A ready fresh instance if there is one, else one built now.
        let ready = strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
        self.aftercare.refill(strategy);
        let (mut store, outcome) = match ready.map(Ok).unwrap_or_else(|| fresh(&self.engine, &self.backends, strategy))
        {
            Ok((mut store, instance)) => {
                let state = store.data_mut();
                state.storage.overlay = cx.overlay.clone();
                state.storage.guard = cx.guard;
                state.log.request_id = Arc::from(cx.request_id);
                state.meter.begin(started);
                store.set_epoch_deadline(1);
                let outcome = f(&instance, &mut store);
                (store, outcome)
            }
            Err(e) => {
                // Instantiation itself failed (a start function trapped, the pool is full).
                let store = wasmtime::Store::new(&self.engine, new_state(&self.backends, strategy));
                (store, Err(e))
            }
        };
        let state = store.data();
        if state.log.dropped > 0 {
            strategy.metrics.dropped_log_lines(state.log.dropped);
        }
        let elapsed = started.elapsed();
        let used =
            elapsed.saturating_sub(state.meter.uncharged()).as_secs_f64() / Duration::from_millis(budget).as_secs_f64();
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
                        *cx.overlay = std::mem::take(&mut store.data_mut().storage.overlay);
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

    pub fn verify(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        req: &LoginRequest,
    ) -> Result<Result<String, StrategyError>, CallError> {
        check_input(s, &req.credentials)?;
        self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_verify(st, req))
    }

    pub fn validate(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
        creds: &str,
        is_update: bool,
    ) -> Result<Result<(), StrategyError>, CallError> {
        check_input(s, creds)?;
        self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_validate(st, kuid, creds, is_update))
    }

    pub fn create(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
        creds: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        check_input(s, creds)?;
        self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_create(st, kuid, creds))
    }

    pub fn update(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
        creds: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        check_input(s, creds)?;
        self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_update(st, kuid, creds))
    }

    pub fn delete(&self, s: &Strategy, cx: CallCtx<'_>, kuid: &str) -> Result<Result<(), StrategyError>, CallError> {
        self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_delete(st, kuid))
    }

    pub fn exists(&self, s: &Strategy, cx: CallCtx<'_>, kuid: &str) -> Result<bool, CallError> {
        let out = self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_exists(st, kuid).map(Ok))?;
        Ok(out.unwrap_or(false))
    }

    pub fn get_info(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_get_info(st, kuid))
    }

    pub fn get_by_id(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        id: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_get_by_id(st, id))
    }

    pub(super) fn fields(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
    ) -> Result<Result<Vec<String>, StrategyError>, CallError> {
        self.call(s, cx, |i, st| i.sandgate_strategy_authenticator().call_fields(st).map(Ok))
    }

    /// For benchmarks: one `verify` through the per-call cycle, timed by phase:
    /// (new Store + instantiate, the call, dropping the Store).
    #[doc(hidden)]
    pub fn timed_verify(&self, s: &Strategy, req: &LoginRequest) -> (Duration, Duration, Duration, bool) {
        let t0 = Instant::now();
        let (mut store, instance) = fresh(&self.engine, &self.backends, s).expect("instantiate");
        let t1 = Instant::now();
        let ok = matches!(instance.sandgate_strategy_authenticator().call_verify(&mut store, req), Ok(Ok(_)));
        let t2 = Instant::now();
        drop(store);
        (t1 - t0, t2 - t1, t2.elapsed(), ok)
    }
}

fn check_input(s: &Strategy, input: &str) -> Result<(), CallError> {
    if input.len() > s.limits.max_input_bytes {
        s.metrics.record(Outcome::InputTooLarge, None, None);
        return Err(CallError::InputTooLarge { cap_bytes: s.limits.max_input_bytes });
    }
    Ok(())
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

/// What a call's Store holds: nothing shared with any other call but read-only handles.
fn new_state(backends: &Backends, strategy: &Strategy) -> HostState {
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
    let name: Arc<str> = Arc::from(strategy.name.as_str());
    HostState {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limiter: CallLimiter::new(strategy.limits.memory_bytes, strategy.limits.table_elements),
        meter: Meter::new(strategy.limits.clone(), now),
        storage: Storage::new(name.clone(), backends.kv.clone(), strategy.limits.clone()),
        crypto: Crypto::new(backends.hasher.clone()),
        log: Log::new(backends.log.clone(), name),
        config: strategy.config.clone(),
        stderr,
        clock_origin: now,
    }
}

/// A fresh Store with its caps, and a fresh instance of the strategy in it.
fn fresh(engine: &Engine, backends: &Backends, strategy: &Strategy) -> wasmtime::Result<Ready> {
    let mut store = wasmtime::Store::new(engine, new_state(backends, strategy));
    store.limiter(|s| &mut s.limiter);
    // At every epoch tick while the guest runs (a call of a few µs never sees one): the
    // wall-clock deadline (a host call that returned past it stops the guest at once), the
    // CPU budget, charged for what is not hashing or waiting (argon2 may take a while), and
    // the host-call count, which WASI calls raise without a way to trap themselves.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| ctx.data().meter.on_tick());
    let instance = strategy.pre.instantiate(&mut store)?;
    Ok((store, instance))
}
