//! The clocks a strategy sees through WASI, and how long it may wait on them.
//!
//! - Both clocks tick in whole milliseconds ([`RESOLUTION`]): a strategy has no use for a
//!   nanosecond clock, and a fine one is a timing channel (how long a host call took).
//! - Waiting: `wasi:clocks/monotonic-clock.subscribe-{duration,instant}` are replaced by
//!   versions whose pollable fires at the call's wall-clock deadline at the latest, so a
//!   blocking `poll`/`block` (`std::thread::sleep`) never outlives the call. Asking to wait once
//!   the deadline has passed stops the call. Time spent waiting is not charged as CPU.

use super::limiter::LimitHit;
use super::meter::Kind;
use super::meter::{Meter, Waits};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
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

/// What the clock functions see of a call: its meter, its resource table, its clock's origin.
pub struct ClockView<'a> {
    pub meter: &'a mut Meter,
    pub table: &'a mut ResourceTable,
    pub origin: Instant,
}

/// A pollable for `wait` from now, cut at the call's deadline.
fn wake_after(view: ClockView<'_>, wait: Duration) -> wasmtime::Result<Resource<DynPollable>> {
    view.meter.count(Kind::Wasi)?;
    let now = Instant::now();
    if now >= view.meter.deadline {
        return Err(LimitHit::Wall(view.meter.limits.wall_ms).into());
    }
    let at = now.checked_add(wait).map_or(view.meter.deadline, |at| at.min(view.meter.deadline));
    let wake = Wake { at: tokio::time::Instant::from_std(at), waits: view.meter.waits.clone() };
    let wake = view.table.push(wake)?;
    subscribe(view.table, wake)
}

/// Replaces the WASI subscribe functions (call after `wasmtime_wasi::p2::add_to_linker_async`).
pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> ClockView<'_>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", move |mut cx: StoreContextMut<'_, T>, (ns,): (u64,)| {
        Ok((wake_after(view(cx.data_mut()), Duration::from_nanos(ns))?,))
    })?;
    clock.func_wrap("subscribe-instant", move |mut cx: StoreContextMut<'_, T>, (when,): (u64,)| {
        let view = view(cx.data_mut());
        // `when` is on the guest's clock (`Monotonic`, coarse): compare on the same one.
        let now = coarse(view.origin.elapsed()).as_nanos() as u64;
        Ok((wake_after(view, Duration::from_nanos(when.saturating_sub(now)))?,))
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
