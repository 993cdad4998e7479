//! Login throttling.
//! - Kuzzle's `limits.loginsPerSecond`: logins per second on one long-lived connection
//!   (WebSocket); an HTTP request is its own connection, as in Kuzzle.
//! - What Kuzzle lacks: a soft lock per account after repeated failures. It keys on the
//!   records a failing login actually read (the strategy's storage keys, through
//!   [`LoginGuard`]), not on the name the client sent: a strategy that reads its username from
//!   the query string is locked all the same. Names that exist and names that don't are locked
//!   alike, with the same message, so it tells an attacker nothing.
//! - Failed logins per client address (every transport): past `max_failures_per_address`, that
//!   address gets Kuzzle's 429 `api.process.too_many_logins_requests` for the lockout period.
//!
//! Entries are a 16-byte digest and a few counters, whatever the length of the name or key
//! they stand for; their number is bounded by `failure_memory_bytes`.
//!
//! A record counts an attempt when it is read, and a success clears it: logins running at
//! the same time cannot each slip in under the threshold.
//!
//! Several nodes on one database count together: each failure and each clearing is also
//! handed to [`Throttle::share_with`]'s sink (the database counts it and tells every node),
//! and what the others counted comes back through [`Throttle::merge`]. A node decides from
//! its own memory, so a lock reaches the others within a notice's delay.

use crate::config::LoginLimits;
use crate::core::errors::{KError, defs};
use crate::sandbox::bindings::StrategyError;
use crate::sandbox::host::ReadGuard;
use crate::store::cluster::{FailureCount, Tally};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What one tracked account or address costs: the digest, the counters and the hash map's
/// own overhead at its load factor.
pub const ENTRY_BYTES: usize = 96;

/// A record or an address, by digest: its length costs nothing.
pub type Id = [u8; 16];

fn id(kind: &str, parts: &[&str]) -> Id {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(kind.as_bytes());
    for part in parts {
        ctx.update(&[0]);
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&ctx.finish().as_ref()[..16]);
    out
}

struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Where the throttle reads the time: the system's monotonic clock, or a test's.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The throttle's state: counters keyed by digest, driven by the clock it is given.
pub struct Throttle {
    clock: Clock,
    logins_per_second: u32,
    max_failures: u32,
    max_address_failures: u32,
    lockout: Duration,
    capacity: usize,
    connections: Mutex<HashMap<u64, (Instant, u32)>>,
    failures: Mutex<HashMap<Id, Failures>>,
    /// Where failures and clearings also go (the shared database), if anywhere.
    sink: OnceLock<Sink>,
}

/// Takes what this node counted to the others (must not block: it runs inside logins).
pub type Sink = Box<dyn Fn(Tally) + Send + Sync>;

impl Throttle {
    pub fn new(limits: &LoginLimits, lockout_ms: i64) -> Self {
        Throttle::with_clock(limits, lockout_ms, Arc::new(Instant::now))
    }

    pub fn with_clock(limits: &LoginLimits, lockout_ms: i64, clock: Clock) -> Self {
        Throttle {
            clock,
            logins_per_second: limits.logins_per_second,
            max_failures: limits.max_failures,
            max_address_failures: limits.max_failures_per_address,
            // At most a year: `Instant + lockout` must not overflow.
            lockout: Duration::from_millis(lockout_ms.clamp(0, 365 * 86_400_000) as u64),
            capacity: (limits.failure_memory_bytes / ENTRY_BYTES).max(1),
            connections: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            sink: OnceLock::new(),
        }
    }

    /// From now on, every failure and clearing is also handed to `sink`.
    pub fn share_with(&self, sink: Sink) {
        let _ = self.sink.set(sink);
    }

    pub fn lockout_ms(&self) -> i64 {
        self.lockout.as_millis() as i64
    }

    /// A counter as the shared database holds it (every node's failures): this node's copy
    /// takes the larger count and the later lock.
    pub fn merge(&self, counted: &FailureCount, now_ms: i64) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = (self.clock)();
        if !map.contains_key(&counted.id) && map.len() >= self.capacity && !self.make_room(&mut map, now) {
            return;
        }
        let until = counted.locked_until_ms.filter(|&ms| ms > now_ms).map(|ms| {
            let left = Duration::from_millis((ms - now_ms) as u64).min(self.lockout);
            now + left
        });
        let f = map.entry(counted.id).or_insert(Failures { count: 0, last: now, locked_until: None });
        f.count = f.count.max(counted.count);
        f.last = now;
        f.locked_until = f.locked_until.max(until);
    }

    /// Another node's login succeeded on this counter.
    pub fn clear(&self, id: &Id) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Counts a login on a long-lived connection.
    pub fn connection(&self, id: u64) -> Result<(), KError> {
        if self.logins_per_second == 0 {
            return Ok(());
        }
        let mut map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let now = (self.clock)();
        let entry = map.entry(id).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(1) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.logins_per_second {
            return Err(KError::new(defs::API_PROCESS_TOO_MANY_LOGINS_REQUESTS, &[]));
        }
        Ok(())
    }

    pub fn forget_connection(&self, id: u64) {
        self.connections.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    /// Refuses a login from an address that failed too often.
    pub fn check_address(&self, address: &str) -> Result<(), KError> {
        if self.max_address_failures == 0 {
            return Ok(());
        }
        match self.locked_for(&address_id(address)) {
            Some(_) => Err(KError::new(defs::API_PROCESS_TOO_MANY_LOGINS_REQUESTS, &[])),
            None => Ok(()),
        }
    }

    pub fn address_failed(&self, address: &str) {
        if self.max_address_failures > 0 {
            self.failed(address_id(address), self.max_address_failures);
        }
    }

    /// A credential check (a login, `validateMyCredentials`) from `address`: refused while
    /// the address is locked; its strategy call reads its records through the guard.
    pub fn attempt(self: &Arc<Self>, address: Option<&str>) -> Result<Attempt, KError> {
        if let Some(address) = address {
            self.check_address(address)?;
        }
        Ok(Attempt {
            guard: Arc::new(LoginGuard { throttle: self.clone(), read: Mutex::new(Vec::new()) }),
            address: address.map(str::to_string),
        })
    }

    /// Seconds left on the lock of `id`, if locked.
    fn locked_for(&self, id: &Id) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let until = map.get(id).and_then(|f| f.locked_until)?;
        let now = (self.clock)();
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    fn failed(&self, id: Id, threshold: u32) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = (self.clock)();
        if !map.contains_key(&id) && map.len() >= self.capacity && !self.make_room(&mut map, now) {
            tracing::warn!("login failure counters are full of locked entries (login.failure_memory_bytes)");
            return;
        }
        let f = map.entry(id).or_insert(Failures { count: 0, last: now, locked_until: None });
        // A lock that has run out starts a fresh count; so do failures long apart.
        if f.locked_until.is_some_and(|u| u <= now) || now.duration_since(f.last) >= self.lockout {
            f.count = 0;
            f.locked_until = None;
        }
        f.count += 1;
        f.last = now;
        if f.count >= threshold {
            f.locked_until = Some(now + self.lockout);
        }
        drop(map);
        if let Some(sink) = self.sink.get() {
            sink(Tally::Failed { id, threshold, lockout_ms: self.lockout_ms() });
        }
    }

    /// Frees entries when the table is at its memory bound: stale ones first, then those not
    /// locked (a count in progress is worth less than a lock). False if only locks are left.
    fn make_room(&self, map: &mut HashMap<Id, Failures>, now: Instant) -> bool {
        let lockout = self.lockout;
        let locked = |f: &Failures| f.locked_until.is_some_and(|u| u > now);
        map.retain(|_, f| now.duration_since(f.last) < lockout || locked(f));
        if map.len() >= self.capacity {
            map.retain(|_, f| locked(f));
        }
        map.len() < self.capacity
    }

    fn succeeded(&self, id: &Id) {
        let known = self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(id).is_some();
        // Only a counter that exists is worth a word to the others (every node knows every
        // counter): a success with nothing to clear costs the database nothing.
        if known && let Some(sink) = self.sink.get() {
            sink(Tally::Cleared { id: *id });
        }
    }

    /// Counters locked now.
    pub fn locked(&self) -> usize {
        let now = (self.clock)();
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.values().filter(|f| f.locked_until.is_some_and(|u| u > now)).count()
    }

    /// Entries tracked now (each at most [`ENTRY_BYTES`]).
    pub fn tracked(&self) -> usize {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// One login's view of the soft lock: the strategy's storage reads go through it (refused
/// while that record is locked), and the outcome is charged to the records it read.
pub struct LoginGuard {
    throttle: Arc<Throttle>,
    read: Mutex<Vec<Id>>,
}

/// Records of one login that are counted (a strategy reads one or two per login).
const READS_COUNTED: usize = 16;

impl ReadGuard for LoginGuard {
    fn read(&self, strategy: &str, key: &str) -> Result<(), u64> {
        if self.throttle.max_failures == 0 {
            return Ok(());
        }
        let record = id("record", &[strategy, key]);
        if let Some(secs) = self.throttle.locked_for(&record) {
            return Err(secs);
        }
        let mut read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        if read.len() < READS_COUNTED && !read.contains(&record) {
            read.push(record);
            // Counted now, as an attempt; a success clears it.
            self.throttle.failed(record, self.throttle.max_failures);
        }
        Ok(())
    }
}

impl LoginGuard {
    /// A successful check clears the counts of what it read.
    fn succeeded(&self) {
        for record in self.read.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            self.throttle.succeeded(record);
        }
    }
}

/// One credential check under way (see [`Throttle::attempt`]).
pub struct Attempt {
    guard: Arc<LoginGuard>,
    address: Option<String>,
}

impl Attempt {
    /// What the strategy call reads its records through.
    pub fn guard(&self) -> Arc<dyn ReadGuard> {
        self.guard.clone()
    }

    /// The strategy's answer: a success clears the records it read; any refusal of the
    /// strategy (wrong credentials, or any other strategy error) counts for the address.
    pub fn finish<T>(&self, outcome: &Result<Result<T, StrategyError>, crate::sandbox::CallError>) {
        match outcome {
            Ok(Ok(_)) => self.guard.succeeded(),
            Ok(Err(_)) => {
                if let Some(address) = &self.address {
                    self.guard.throttle.address_failed(address);
                }
            }
            Err(_) => {}
        }
    }
}

/// Addresses as an attacker can vary them: an IPv6 client usually holds a whole /64, so its
/// first 64 bits are the address; an IPv4-mapped IPv6 address is its IPv4 address.
fn address_id(address: &str) -> Id {
    let key = match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(ip) => ip.to_string(),
        Err(_) => address.to_string(),
    };
    id("address", &[&key])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(limits: LoginLimits) -> Arc<Throttle> {
        Arc::new(Throttle::new(&limits, 60_000))
    }

    type Outcome = Result<Result<(), StrategyError>, crate::sandbox::CallError>;
    const WRONG: Outcome = Ok(Err(StrategyError::Rejected(String::new())));
    const RIGHT: Outcome = Ok(Ok(()));

    /// One check reading `key` of `local`, ending with `outcome`; `Err(secs)` if locked.
    fn check(t: &Arc<Throttle>, key: &str, outcome: Outcome) -> Result<(), u64> {
        let attempt = t.attempt(Some("192.0.2.1")).unwrap();
        attempt.guard().read("local", key)?;
        attempt.finish(&outcome);
        Ok(())
    }

    #[test]
    fn locks_the_records_a_failing_login_read() {
        let t = throttle(LoginLimits { max_failures: 3, ..Default::default() });
        for _ in 0..3 {
            assert!(check(&t, "user:alice", WRONG).is_ok());
        }
        // Whatever channel the name came through, the strategy reads the same record.
        let secs = check(&t, "user:alice", RIGHT).unwrap_err();
        assert!((1..=60).contains(&secs));
        assert!(check(&t, "user:bob", WRONG).is_ok(), "other records are not affected");
        let other = t.attempt(None).unwrap();
        assert!(other.guard().read("other", "user:alice").is_ok(), "nor other strategies' records");
        let err = crate::service::errors::call_error("local", crate::sandbox::CallError::Locked { secs });
        assert_eq!((err.status, err.id), (429, "security.credentials.too_many_failures"));
    }

    #[test]
    fn success_clears_the_count() {
        let t = throttle(LoginLimits { max_failures: 2, ..Default::default() });
        check(&t, "user:a", WRONG).unwrap();
        check(&t, "user:a", RIGHT).unwrap();
        check(&t, "user:a", WRONG).unwrap();
        assert!(check(&t, "user:a", RIGHT).is_ok(), "one failure since the success");
    }

    /// Checks running at the same time count when they read: no more than `max_failures`
    /// of them get through, however many start together.
    #[test]
    fn concurrent_attempts_count_at_once() {
        let t = throttle(LoginLimits { max_failures: 3, ..Default::default() });
        let attempts: Vec<Attempt> = (0..10).map(|_| t.attempt(None).unwrap()).collect();
        let through = attempts.iter().filter(|a| a.guard().read("local", "user:alice").is_ok()).count();
        assert_eq!(through, 3);
    }

    #[test]
    fn an_ipv6_client_is_its_64_prefix() {
        let t = throttle(LoginLimits { max_failures_per_address: 2, ..Default::default() });
        t.address_failed("2001:db8:1:2::1");
        t.address_failed("2001:db8:1:2:ffff::9");
        assert!(t.check_address("2001:db8:1:2::77").is_err());
        assert!(t.check_address("2001:db8:1:3::1").is_ok());
        t.address_failed("::ffff:192.0.2.7");
        t.address_failed("192.0.2.7");
        assert!(t.check_address("192.0.2.7").is_err(), "an IPv4-mapped address is its IPv4 address");
    }

    #[test]
    fn addresses_are_limited() {
        let t = throttle(LoginLimits { max_failures_per_address: 2, ..Default::default() });
        t.address_failed("10.0.0.1");
        assert!(t.check_address("10.0.0.1").is_ok());
        t.address_failed("10.0.0.1");
        assert_eq!(t.check_address("10.0.0.1").unwrap_err().id, "api.process.too_many_logins_requests");
        assert!(t.check_address("10.0.0.2").is_ok());
    }

    /// 3,000 failures with 60 KB names once kept 177 MiB; entries are now digests, and their
    /// number stays under the memory bound. Locks survive a spray of new names.
    #[test]
    fn memory_is_bounded_and_locks_survive_a_spray() {
        let t =
            throttle(LoginLimits { max_failures: 1, failure_memory_bytes: 100 * ENTRY_BYTES, ..Default::default() });
        check(&t, "user:alice", WRONG).unwrap();
        let long = "n".repeat(60_000);
        for i in 0..3_000 {
            let _ = check(&t, &format!("user:{long}{i}"), WRONG);
            assert!(t.tracked() <= 100);
        }
        assert!(check(&t, "user:alice", RIGHT).is_err(), "the lock survived");
    }

    /// A test clock: starts now, moves only when told to.
    fn manual() -> (Clock, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let read = now.clone();
        (Arc::new(move || *read.lock().unwrap()), now)
    }

    #[test]
    fn locks_last_the_lockout_and_old_failures_are_forgotten() {
        let (clock, now) = manual();
        let limits = LoginLimits { max_failures: 2, ..Default::default() };
        let t = Arc::new(Throttle::with_clock(&limits, 60_000, clock));
        let advance = |secs: u64| *now.lock().unwrap() += Duration::from_secs(secs);
        check(&t, "user:a", WRONG).unwrap();
        check(&t, "user:a", WRONG).unwrap();
        assert_eq!(check(&t, "user:a", RIGHT), Err(60), "locked for the whole lockout");
        advance(59);
        assert_eq!(check(&t, "user:a", RIGHT), Err(1));
        advance(1);
        assert!(check(&t, "user:a", RIGHT).is_ok(), "the lock has run out");
        // Failures a lockout apart do not add up.
        check(&t, "user:b", WRONG).unwrap();
        advance(60);
        check(&t, "user:b", WRONG).unwrap();
        assert!(check(&t, "user:b", RIGHT).is_ok());
        // The per-connection rate is per second of this clock too.
        let t =
            Throttle::with_clock(&LoginLimits { logins_per_second: 1, ..Default::default() }, 60_000, t.clock.clone());
        assert!(t.connection(1).is_ok() && t.connection(1).is_err());
        advance(1);
        assert!(t.connection(1).is_ok());
    }

    #[test]
    fn per_connection_rate() {
        let t = Throttle::new(&LoginLimits { logins_per_second: 2, ..Default::default() }, 60_000);
        assert!(t.connection(7).is_ok() && t.connection(7).is_ok());
        assert_eq!(t.connection(7).unwrap_err().id, "api.process.too_many_logins_requests");
        assert!(t.connection(8).is_ok());
    }
}
