//! The clocks a strategy sees through WASI, and how long it may wait on them.
//!
//! - Both clocks tick in whole milliseconds ([`RESOLUTION`]): a strategy has no use for a
//!   nanosecond clock, and a fine one is a timing channel (how long a host call took).
//! - Waiting: `wasi:clocks/monotonic-clock.subscribe-{duration,instant}` are replaced by
//!   versions whose pollable fires at the call's wall-clock deadline at the latest, so a
//!   blocking `poll`/`block` (`std::thread::sleep`) never outlives the call. Asking to wait once
//!   the deadline has passed stops the call. Time spent waiting is not charged as CPU.

use super::host::{HostState, LimitHit};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

/// The granularity of every clock a strategy can read.
pub const RESOLUTION: Duration = Duration::from_millis(1);

/// The WASI version whose clock functions wasmtime-wasi links (components importing any
/// earlier 0.2.x resolve to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

fn coarse(d: Duration) -> Duration {
    let step = RESOLUTION.as_nanos();
    Duration::from_nanos(((d.as_nanos() / step) * step) as u64)
}

/// `wasi:clocks/monotonic-clock`, in milliseconds since the call's Store was made.
pub struct Monotonic(pub Instant);

impl wasmtime_wasi::HostMonotonicClock for Monotonic {
    fn resolution(&self) -> u64 {
        RESOLUTION.as_nanos() as u64
    }
    fn now(&self) -> u64 {
        coarse(self.0.elapsed()).as_nanos() as u64
    }
}

/// `wasi:clocks/wall-clock`, in whole milliseconds.
pub struct Wall;

impl wasmtime_wasi::HostWallClock for Wall {
    fn resolution(&self) -> Duration {
        RESOLUTION
    }
    fn now(&self) -> Duration {
        coarse(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
    }
}

/// The time a call spent waiting on its clock pollables, each moment counted once however
/// many pollables were waited on together (one `poll` of a hundred sleeps is one wait).
#[derive(Default)]
pub struct Waits(Mutex<WaitState>);

#[derive(Default)]
struct WaitState {
    waiting: u32,
    since: Option<Instant>,
    total: Duration,
}

impl Waits {
    fn state(&self) -> std::sync::MutexGuard<'_, WaitState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time waited so far.
    pub fn total(&self) -> Duration {
        self.state().total
    }

    pub fn reset(&self) {
        *self.state() = WaitState::default();
    }

    fn enter(self: &Arc<Self>) -> Waiting {
        let mut s = self.state();
        if s.waiting == 0 {
            s.since = Some(Instant::now());
        }
        s.waiting += 1;
        Waiting(self.clone())
    }
}

/// One pollable being waited on; dropped when it fires or when the poll ends without it.
struct Waiting(Arc<Waits>);

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut s = self.0.state();
        s.waiting = s.waiting.saturating_sub(1);
        if s.waiting == 0
            && let Some(since) = s.since.take()
        {
            s.total += since.elapsed();
        }
    }
}

/// A pollable that fires at `at`.
struct Wake {
    at: tokio::time::Instant,
    waits: Arc<Waits>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Wake {
    async fn ready(&mut self) {
        let _waiting = self.waits.enter();
        tokio::time::sleep_until(self.at).await;
    }
}

/// A pollable for `wait` from now, cut at the call's deadline.
fn wake_after(mut cx: StoreContextMut<'_, HostState>, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
    let state = cx.data_mut();
    state.count()?;
    let now = Instant::now();
    if now >= state.deadline {
        return Err(LimitHit::Wall(state.limits.wall_ms).into());
    }
    let at = now.checked_add(wait).map_or(state.deadline, |at| at.min(state.deadline));
    let wake = Wake { at: tokio::time::Instant::from_std(at), waits: state.waits.clone() };
    let table = &mut state.table;
    let wake = table.push(wake)?;
    subscribe(table, wake)
}

/// Replaces the WASI subscribe functions (call after `wasmtime_wasi::p2::add_to_linker_sync`).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |cx: StoreContextMut<'_, HostState>, (ns,): (u64,)| {
        Ok((wake_after(cx, Duration::from_nanos(ns))?,))
    })?;
    clock.func_wrap("subscribe-instant", |cx: StoreContextMut<'_, HostState>, (when,): (u64,)| {
        // `when` is on the guest's clock (`Monotonic`, coarse): compare on the same one.
        let now = coarse(cx.data().clock_origin.elapsed()).as_nanos() as u64;
        Ok((wake_after(cx, Duration::from_nanos(when.saturating_sub(now)))?,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

    #[test]
    fn clocks_tick_in_milliseconds() {
        let m = Monotonic(Instant::now() - Duration::from_nanos(5_123_456));
        assert_eq!(m.resolution(), 1_000_000);
        assert_eq!(m.now() % 1_000_000, 0);
        assert!(m.now() >= 5_000_000);
        assert_eq!(Wall.now().subsec_nanos() % 1_000_000, 0);
        assert_eq!(Wall.resolution(), RESOLUTION);
    }
}
