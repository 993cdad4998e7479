//! Why a call produced no answer ([`CallError`]), and how a wasmtime error becomes one.

use super::bindings::StrategyError;
use super::host::{HostState, LimitHit};
use super::limits::Limits;
use super::metrics::Outcome;
use std::time::Instant;
use wasmtime::Trap;

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
    /// The store could not be reached during the call: nothing the strategy did wrong.
    StoreUnavailable(String),
    /// The strategy returned more than `max_return_bytes`.
    ReturnTooLarge { cap_bytes: usize },
    /// The input was larger than `max_input_bytes`.
    InputTooLarge { cap_bytes: usize },
    /// All `cap` permits of the strategy were held by other requests, for all of `waited_ms`
    /// (`limits.queue_ms`; 0 for a request that may not wait).
    Busy { cap: u32, waited_ms: u64 },
    /// Every instance slot of the pool is taken (`limits.pool_instances`), whatever the strategy.
    PoolFull { cap: u32 },
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
            CallError::StoreUnavailable(what) => write!(f, "could not reach the database: {what}"),
            CallError::ReturnTooLarge { cap_bytes } => {
                write!(f, "returned more than {cap_bytes} bytes (limits.max_return_bytes)")
            }
            CallError::InputTooLarge { cap_bytes } => {
                write!(f, "input exceeds {cap_bytes} bytes (limits.max_input_bytes)")
            }
            CallError::Busy { cap, waited_ms: 0 } => {
                write!(f, "has {cap} requests in flight (limits.max_concurrent_calls)")
            }
            CallError::Busy { cap, waited_ms } => {
                write!(f, "has had {cap} requests in flight for {waited_ms} ms (limits.max_concurrent_calls)")
            }
            CallError::PoolFull { cap } => {
                write!(f, "cannot start: all {cap} instance slots are in use (limits.pool_instances)")
            }
            CallError::Trap(msg) => write!(f, "crashed: {msg}"),
        }
    }
}

pub(super) fn error_message(e: &StrategyError) -> &str {
    match e {
        StrategyError::Rejected(s)
        | StrategyError::BadRequest(s)
        | StrategyError::Conflict(s)
        | StrategyError::NotFound(s)
        | StrategyError::Internal(s) => s,
    }
}

pub(super) fn outcome_of<R>(result: &Result<Result<R, StrategyError>, CallError>) -> Outcome {
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
        // The host could not serve the call now (its permits, its pool, its database).
        Err(CallError::Busy { .. } | CallError::PoolFull { .. } | CallError::StoreUnavailable(_)) => Outcome::Busy,
        Err(CallError::Trap(_)) => Outcome::Trap,
    }
}

/// Turns a wasmtime error into what the caller is told.
pub(super) fn classify(err: wasmtime::Error, store: &wasmtime::Store<HostState>, limits: &Limits) -> CallError {
    match err.downcast_ref::<LimitHit>() {
        Some(LimitHit::Memory(cap)) => return CallError::Memory { cap_bytes: *cap },
        Some(LimitHit::Wall(ms)) => return CallError::Wall { cap_ms: *ms },
        Some(LimitHit::Locked(secs)) => return CallError::Locked { secs: *secs },
        Some(LimitHit::StorageUnavailable(what)) => return CallError::StoreUnavailable(what.clone()),
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
        return CallError::PoolFull { cap: limits.pool_instances };
    }
    let stderr = String::from_utf8_lossy(&store.data().stderr.contents()).trim().to_string();
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) if Instant::now() >= store.data().meter.deadline => {
            CallError::Wall { cap_ms: limits.wall_ms }
        }
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

/// Why bytes were refused as a strategy (400, the message is shown to the uploader).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadError(pub String);

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for UploadError {}
