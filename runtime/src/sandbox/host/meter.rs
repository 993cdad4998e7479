//! The call's clock and counter, shared by every host interface: each host function of ours
//! goes through [`Meter::count`] first, WASI functions through `WasiView::ctx`, and the
//! epoch callback looks at it every tick ([`Meter::on_tick`]).

use super::limiter::LimitHit;
use crate::sandbox::limits::Limits;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which host interface a call went to (`sandgate strategy run` shows them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Storage,
    Crypto,
    Log,
    Config,
    /// WASI: clocks, random, streams and the rest.
    Wasi,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Storage, Kind::Crypto, Kind::Log, Kind::Config, Kind::Wasi];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Storage => "storage",
            Kind::Crypto => "crypto",
            Kind::Log => "log",
            Kind::Config => "config",
            Kind::Wasi => "wasi",
        }
    }
}

pub struct Meter {
    pub(crate) limits: Arc<Limits>,
    /// Every host call, WASI included.
    pub(crate) host_calls: u32,
    /// The same, by interface (in the order of [`Kind::ALL`]).
    by_kind: [u32; Kind::ALL.len()],
    /// Time the guest was parked: waiting on the host (storage, hashing, clock pollables) or
    /// yielding its thread to other tasks. Not charged to its CPU budget.
    pub(crate) waits: Arc<Waits>,
    pub(crate) started: Instant,
    /// The call's wall-clock deadline (`limits.wall_ms` after it started, plus what it
    /// queued for the host's hashers: see [`Meter::postpone`]).
    pub(crate) deadline: Instant,
    /// How much the deadline was moved back so far.
    postponed: Duration,
}

impl Meter {
    pub fn new(limits: Arc<Limits>, now: Instant) -> Self {
        let deadline = now + Duration::from_millis(limits.wall_ms);
        Meter {
            limits,
            host_calls: 0,
            by_kind: [0; Kind::ALL.len()],
            waits: Arc::default(),
            started: now,
            deadline,
            postponed: Duration::ZERO,
        }
    }

    /// Before each host call of ours: its count, and the wall-clock deadline.
    pub fn count(&mut self, kind: Kind) -> wasmtime::Result<()> {
        self.host_calls = self.host_calls.saturating_add(1);
        self.by_kind[kind as usize] = self.by_kind[kind as usize].saturating_add(1);
        if self.host_calls > self.limits.max_host_calls {
            return Err(LimitHit::HostCalls(self.limits.max_host_calls).into());
        }
        if Instant::now() >= self.deadline {
            return Err(LimitHit::Wall(self.limits.wall_ms).into());
        }
        Ok(())
    }

    /// A WASI call: counted now, enforced at the next tick (WASI functions cannot trap here).
    pub fn count_wasi(&mut self) {
        self.host_calls = self.host_calls.saturating_add(1);
        self.by_kind[Kind::Wasi as usize] = self.by_kind[Kind::Wasi as usize].saturating_add(1);
    }

    /// Host calls so far, by interface.
    pub fn calls_by_kind(&self) -> impl Iterator<Item = (Kind, u32)> + '_ {
        Kind::ALL.into_iter().zip(self.by_kind)
    }

    /// At each epoch tick while the guest runs: stop it past the wall-clock deadline, past its
    /// CPU budget, or past its host-call count; else let the other tasks on this thread run
    /// (`yield_now`, reference notes §5: wasmtime's own async yield starved them) and look
    /// again at the next tick. The yield is parked time, not charged.
    pub fn on_tick(&self) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        if self.host_calls > self.limits.max_host_calls {
            return Err(LimitHit::HostCalls(self.limits.max_host_calls).into());
        }
        let now = Instant::now();
        if now >= self.deadline || self.cpu_used(now) >= Duration::from_millis(self.limits.cpu_ms) {
            return Ok(wasmtime::UpdateDeadline::Interrupt);
        }
        let waits = self.waits.clone();
        Ok(wasmtime::UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                let _parked = waits.enter();
                tokio::task::yield_now().await;
            }),
        ))
    }

    /// The call's time so far that is charged as CPU: all of it but the parked time.
    pub fn cpu_used(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started).saturating_sub(self.waits.total())
    }

    /// Starts the call's clocks (a warm instance was built earlier).
    pub fn begin(&mut self, started: Instant) {
        self.started = started;
        self.deadline = started + Duration::from_millis(self.limits.wall_ms);
        self.postponed = Duration::ZERO;
        self.waits.reset();
    }

    /// Moves the deadline back by time the call spent queued for a shared host resource (a
    /// free argon2 core): the host's congestion, not the strategy's doing. At most `wall_ms`
    /// in all, so a call never lasts more than twice its wall-clock cap.
    pub fn postpone(&mut self, queued: Duration) {
        let room = Duration::from_millis(self.limits.wall_ms).saturating_sub(self.postponed);
        let by = queued.min(room);
        self.postponed += by;
        self.deadline += by;
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

    pub(crate) fn enter(self: &Arc<Self>) -> Waiting {
        let mut s = self.state();
        if s.waiting == 0 {
            s.since = Some(Instant::now());
        }
        s.waiting += 1;
        Waiting(self.clone())
    }
}

/// One pollable being waited on; dropped when it fires or when the poll ends without it.
pub(crate) struct Waiting(Arc<Waits>);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queueing_for_the_hashers_moves_the_deadline_by_at_most_wall_ms() {
        let limits = Arc::new(Limits { wall_ms: 1000, ..Limits::default() });
        let start = Instant::now();
        let mut m = Meter::new(limits, start);
        m.postpone(Duration::from_millis(300));
        assert_eq!(m.deadline, start + Duration::from_millis(1300));
        m.postpone(Duration::from_secs(60));
        assert_eq!(m.deadline, start + Duration::from_millis(2000), "never more than twice wall_ms");
        m.begin(start);
        m.postpone(Duration::from_millis(500));
        assert_eq!(m.deadline, start + Duration::from_millis(1500), "each call has its own allowance");
    }
}
