//! One call of a strategy, from start to finish: a fresh Store and instance (a warm one if
//! ready), the caps set, the function called, the outcome measured and classified, and the
//! Store set aside for the aftercare. Nothing a call leaves behind reaches the next one.
//!
//! Calls are async, on the reactor: a guest that computes yields its thread at every epoch
//! tick until its CPU budget is spent; a guest that waits on the host (storage, hashing, its
//! clocks) is parked and holds no thread.

use super::bindings::{Login, LoginRequest, StrategyError};
use super::contract::Instance;
use super::errors::{CallError, classify, error_message, outcome_of};
use super::host::crypto::{Crypto, Hashing};
use super::host::http::{Network, Outbound};
use super::host::log::{Log, LogSink};
use super::host::storage::KeyValue;
use super::host::{CallLimiter, HostState, Meter, Overlay, ReadGuard, Storage};
use super::host::{clocks, v0_1};
use super::metrics::Outcome;
use super::strategy::{Permit, Ready, Strategy};
use super::warm;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx};

/// What one call is made with besides its arguments.
pub struct CallCtx<'a> {
    /// The request's admission to this strategy: held until the call's aftercare is done.
    pub permit: &'a Arc<Permit>,
    /// The request's uncommitted writes: the call reads through them, and adds its own if it
    /// answers `Ok(Ok(_))`.
    pub overlay: &'a mut Overlay,
    pub request_id: &'a str,
    /// Sees every storage read (the login soft lock).
    pub guard: Option<Arc<dyn ReadGuard>>,
    /// Filled with what the call cost, if given (`sandgate strategy run`).
    pub report: Option<&'a mut Option<CallReport>>,
}

/// What one call cost, measured by the host around it.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    /// From the call's start to its end, fresh instance included.
    pub wall: Duration,
    /// What was charged to its CPU budget (the wall time less parked time).
    pub cpu: Duration,
    /// The most linear memory its instances held at once.
    pub peak_memory_bytes: usize,
    /// Host calls by interface (storage, crypto, log, config, wasi), then outbound HTTP
    /// requests (made through wasi:http, so counted under `wasi` too).
    pub host_calls: Vec<(&'static str, u32)>,
    /// Bytes (keys + values) it wrote to its storage, if they were kept (it answered Ok).
    pub storage_bytes_written: usize,
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
    pub network: Arc<Network>,
    pub hasher: Arc<dyn Hashing>,
    pub log: Arc<dyn LogSink>,
}

type Store = wasmtime::Store<HostState>;
type CallOutcome<R> = wasmtime::Result<Result<R, StrategyError>>;
/// One exported function running on its instance; gives the Store back with the outcome.
type Run<'r, R> = Pin<Box<dyn Future<Output = (Store, CallOutcome<R>)> + Send + 'r>>;

/// `either!(call_x(args))`: the exported function `call_x` on an instance of either contract,
/// its refusal in the host's type; `either!(plain call_x(args))` for one that cannot refuse.
macro_rules! either {
    ($method:ident ( $($arg:expr),* )) => {
        move |i: Instance, mut st: Store| -> Run<'_, _> {
            Box::pin(async move {
                let out = match i {
                    Instance::V0_2(i) => i.sandgate_strategy_authenticator().$method(&mut st, $($arg),*).await,
                    Instance::V0_1(i) => i
                        .sandgate_strategy_authenticator()
                        .$method(&mut st, $($arg),*)
                        .await
                        .map(|answer| answer.map_err(v0_1::error)),
                };
                (st, out)
            })
        }
    };
    (plain $method:ident ( $($arg:expr),* )) => {
        move |i: Instance, mut st: Store| -> Run<'_, _> {
            Box::pin(async move {
                let out = match i {
                    Instance::V0_2(i) => i.sandgate_strategy_authenticator().$method(&mut st, $($arg),*).await,
                    Instance::V0_1(i) => i.sandgate_strategy_authenticator().$method(&mut st, $($arg),*).await,
                };
                (st, out.map(Ok))
            })
        }
    };
}

impl Calls {
    pub fn new(engine: Engine, backends: Backends) -> Self {
        let builder: warm::Builder = {
            let (engine, backends) = (engine.clone(), backends.clone());
            Arc::new(move |s: Arc<Strategy>| {
                let (engine, backends) = (engine.clone(), backends.clone());
                Box::pin(async move { fresh(&engine, &backends, &s).await })
            })
        };
        Calls { aftercare: warm::Aftercare::new(builder), engine, backends }
    }

    /// One call: a fresh Store and instance, `f` on it, then the Store handed to the aftercare.
    /// Awaited on the reactor: the guest yields at every epoch tick and parks while the host
    /// works for it. A dropped future ends the call there, Store and all (the dispatcher keeps
    /// a request running when its client leaves: see `api::dispatch`).
    async fn call<'r, R: Answer>(
        &self,
        strategy: &Strategy,
        cx: CallCtx<'_>,
        f: impl FnOnce(Instance, Store) -> Run<'r, R>,
    ) -> Result<Result<R, StrategyError>, CallError> {
        assert!(strategy.admits(cx.permit), "a call needs its strategy's permit");
        let limits = strategy.limits.clone();
        let _running = strategy.running();
        let started = Instant::now();
        let budget = limits.cpu_ms;
        // A ready fresh instance if there is one, else one built now.
        let ready = strategy.warm.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let ready = match ready {
            Some(ready) => Ok(ready),
            None => fresh(&self.engine, &self.backends, strategy).await,
        };
        let instantiated = ready.is_ok();
        let (store, outcome) = match ready {
            Ok((mut store, instance)) => {
                let state = store.data_mut();
                state.storage.overlay = cx.overlay.clone();
                state.storage.guard = cx.guard;
                state.log.request_id = Arc::from(cx.request_id);
                state.meter.begin(started);
                store.set_epoch_deadline(1);
                f(instance, store).await
            }
            Err(e) => {
                // Instantiation itself failed (a start function trapped, the pool is full).
                (Store::new(&self.engine, new_state(&self.backends, strategy)), Err(e))
            }
        };
        let state = store.data();
        if state.log.dropped > 0 {
            strategy.metrics.dropped_log_lines(state.log.dropped);
        }
        let elapsed = started.elapsed();
        let used = state.meter.cpu_used(Instant::now()).as_secs_f64() / Duration::from_millis(budget).as_secs_f64();
        let mut store = store;
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
        // Not for a call whose instance could not be built: there is nothing to measure.
        if let Some(report) = cx.report.filter(|_| instantiated) {
            let state = store.data();
            let mut host_calls: Vec<(&'static str, u32)> =
                state.meter.calls_by_kind().map(|(kind, n)| (kind.name(), n)).collect();
            host_calls.push(("http", state.outbound.requests));
            *report = Some(CallReport {
                wall: elapsed,
                cpu: state.meter.cpu_used(started + elapsed),
                peak_memory_bytes: state.limiter.peak_memory(),
                host_calls,
                // What it wrote is kept only if it answered Ok.
                storage_bytes_written: if matches!(result, Ok(Ok(_))) { state.storage.pending_bytes() } else { 0 },
            });
        }
        strategy.metrics.record(outcome_of(&result), Some(elapsed), Some(used.min(1.0)));
        self.aftercare.after(strategy, store, cx.permit.clone());
        result
    }

    /// `verify`: whose credentials these are, or the login's next step (0.2.0 only; a 0.1.0
    /// component answers a kuid).
    pub async fn verify(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        req: &LoginRequest,
    ) -> Result<Result<Login, StrategyError>, CallError> {
        check_input(s, &req.credentials)?;
        let run = move |i: Instance, mut st: Store| -> Run<'_, Login> {
            Box::pin(async move {
                let out = match i {
                    Instance::V0_2(i) => i.sandgate_strategy_authenticator().call_verify(&mut st, req).await,
                    Instance::V0_1(i) => {
                        let req = v0_1::request(req);
                        let out = i.sandgate_strategy_authenticator().call_verify(&mut st, &req).await;
                        out.map(|answer| answer.map(Login::User).map_err(v0_1::error))
                    }
                };
                (st, out)
            })
        };
        self.call(s, cx, run).await
    }

    pub async fn validate(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
        creds: &str,
        is_update: bool,
    ) -> Result<Result<(), StrategyError>, CallError> {
        check_input(s, creds)?;
        self.call(s, cx, either!(call_validate(kuid, creds, is_update))).await
    }

    pub async fn create(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
        creds: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        check_input(s, creds)?;
        self.call(s, cx, either!(call_create(kuid, creds))).await
    }

    pub async fn update(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
        creds: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        check_input(s, creds)?;
        self.call(s, cx, either!(call_update(kuid, creds))).await
    }

    pub async fn delete(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
    ) -> Result<Result<(), StrategyError>, CallError> {
        self.call(s, cx, either!(call_delete(kuid))).await
    }

    pub async fn exists(&self, s: &Strategy, cx: CallCtx<'_>, kuid: &str) -> Result<bool, CallError> {
        let out = self.call(s, cx, either!(plain call_exists(kuid))).await?;
        Ok(out.unwrap_or(false))
    }

    pub async fn get_info(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        kuid: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.call(s, cx, either!(call_get_info(kuid))).await
    }

    pub async fn get_by_id(
        &self,
        s: &Strategy,
        cx: CallCtx<'_>,
        id: &str,
    ) -> Result<Result<String, StrategyError>, CallError> {
        self.call(s, cx, either!(call_get_by_id(id))).await
    }

    pub async fn fields(&self, s: &Strategy, cx: CallCtx<'_>) -> Result<Result<Vec<String>, StrategyError>, CallError> {
        self.call(s, cx, either!(plain call_fields())).await
    }

    /// For benchmarks: one `verify` through the per-call cycle, timed by phase:
    /// (new Store + instantiate, the call, dropping the Store).
    #[doc(hidden)]
    pub async fn timed_verify(&self, s: &Strategy, req: &LoginRequest) -> (Duration, Duration, Duration, bool) {
        let t0 = Instant::now();
        let (mut store, instance) = fresh(&self.engine, &self.backends, s).await.expect("instantiate");
        let t1 = Instant::now();
        let ok = match instance {
            Instance::V0_2(i) => {
                matches!(i.sandgate_strategy_authenticator().call_verify(&mut store, req).await, Ok(Ok(_)))
            }
            Instance::V0_1(i) => {
                let req = v0_1::request(req);
                matches!(i.sandgate_strategy_authenticator().call_verify(&mut store, &req).await, Ok(Ok(_)))
            }
        };
        let t2 = Instant::now();
        drop(store);
        (t1 - t0, t2 - t1, t2.elapsed(), ok)
    }
}

/// Runs a call from blocking code (registering a strategy): on the server's runtime from one
/// of its blocking threads, else on a runtime of its own (the command line).
pub(super) fn block_on<F: Future>(call: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.block_on(call),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime for the call")
            .block_on(call),
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
impl Answer for Login {
    fn size(&self) -> usize {
        match self {
            Login::User(kuid) => kuid.len(),
            Login::Redirect(url) => url.len(),
            Login::Provision(newcomer) => newcomer.credentials.len() + newcomer.content.len(),
        }
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

/// Resources a call may hold at once (wasmtime's default is a million).
const MAX_RESOURCES: usize = 4096;
/// Header bytes of one HTTP `fields` resource (wasmtime-wasi-http's default is 128 KiB).
const MAX_HTTP_FIELDS_BYTES: usize = 16 << 10;

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
    // Host memory a guest makes the host hold, outside its own memory cap: resources (a
    // pollable, a stream, HTTP fields…) and the header bytes of each HTTP `fields`.
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_RESOURCES);
    let mut http = wasmtime_wasi_http::WasiHttpCtx::new();
    http.set_field_size_limit(MAX_HTTP_FIELDS_BYTES);
    HostState {
        wasi: wasi.build(),
        table,
        limiter: CallLimiter::new(strategy.limits.memory_bytes, strategy.limits.table_elements),
        meter: Meter::new(strategy.limits.clone(), now),
        storage: Storage::new(name.clone(), backends.kv.clone(), strategy.limits.clone()),
        crypto: Crypto::new(backends.hasher.clone()),
        log: Log::new(backends.log.clone(), name),
        config: strategy.config.clone(),
        http,
        outbound: Outbound {
            allow: strategy.outbound.clone(),
            network: backends.network.clone(),
            limits: strategy.limits.clone(),
            metrics: strategy.metrics.clone(),
            requests: 0,
            deadline: now,
        },
        stderr,
        clock_origin: now,
    }
}

/// A fresh Store with its caps, and a fresh instance of the strategy in it.
async fn fresh(engine: &Engine, backends: &Backends, strategy: &Strategy) -> wasmtime::Result<Ready> {
    let mut store = Store::new(engine, new_state(backends, strategy));
    store.limiter(|s| &mut s.limiter);
    // At every epoch tick while the guest runs (a call of a few µs never sees one): the
    // wall-clock deadline (a host call that returned past it stops the guest at once), the
    // CPU budget, charged for what is not parked time (hashing, storage, waiting, yielding),
    // and the host-call count, which WASI calls raise without a way to trap themselves.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| ctx.data().meter.on_tick());
    let instance = strategy.pre.instantiate_async(&mut store).await?;
    Ok((store, instance))
}
