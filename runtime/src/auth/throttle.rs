//! Login throttling.
//! - Kuzzle's `limits.loginsPerSecond`: logins per second on one long-lived connection
//!   (WebSocket); an HTTP request is its own connection, as in Kuzzle.
//! - What Kuzzle lacks: a soft lock per account name after repeated failures. It applies to
//!   names that exist and names that don't alike, with the same message, so it tells an
//!   attacker nothing about which accounts exist.

use crate::api::errors::{KError, defs};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `[login]` in the config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoginLimits {
    /// Logins per second per WebSocket connection (0: no limit). Kuzzle's default is 1,
    /// which breaks clients that log in twice in a row (kuzzle#2264); ours is 10.
    pub logins_per_second: u32,
    /// Consecutive failures that lock an account name (0: never).
    pub max_failures: u32,
    /// How long the lock lasts, in the `ms` grammar or milliseconds.
    pub lockout: crate::config::Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits { logins_per_second: 10, max_failures: 10, lockout: crate::config::Duration::Text("1m".into()) }
    }
}

struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

pub struct Throttle {
    logins_per_second: u32,
    max_failures: u32,
    lockout: Duration,
    connections: Mutex<HashMap<u64, (Instant, u32)>>,
    failures: Mutex<HashMap<String, Failures>>,
}

/// Entries kept before stale ones are swept (bounds memory under a spray of names).
const SWEEP_AT: usize = 100_000;

impl Throttle {
    pub fn new(limits: &LoginLimits, lockout_ms: i64) -> Self {
        Throttle {
            logins_per_second: limits.logins_per_second,
            max_failures: limits.max_failures,
            lockout: Duration::from_millis(lockout_ms.max(0) as u64),
            connections: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a login on a long-lived connection.
    pub fn connection(&self, id: u64) -> Result<(), KError> {
        if self.logins_per_second == 0 {
            return Ok(());
        }
        let mut map = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
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

    /// Refuses while `account` is locked.
    pub fn check(&self, account: &str) -> Result<(), KError> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = map.get(account).and_then(|f| f.locked_until) {
            let now = Instant::now();
            if until > now {
                let secs = (until - now).as_secs().max(1).to_string();
                return Err(KError::new(defs::SECURITY_CREDENTIALS_TOO_MANY_FAILURES, &[&secs]));
            }
        }
        Ok(())
    }

    pub fn failed(&self, account: &str) {
        if self.max_failures == 0 {
            return;
        }
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= SWEEP_AT {
            let lockout = self.lockout;
            map.retain(|_, f| now.duration_since(f.last) < lockout || f.locked_until.is_some_and(|u| u > now));
        }
        let f = map.entry(account.to_string()).or_insert(Failures { count: 0, last: now, locked_until: None });
        // A lock that has run out starts a fresh count; so do failures long apart.
        if f.locked_until.is_some_and(|u| u <= now) || now.duration_since(f.last) >= self.lockout {
            f.count = 0;
            f.locked_until = None;
        }
        f.count += 1;
        f.last = now;
        if f.count >= self.max_failures {
            f.locked_until = Some(now + self.lockout);
        }
    }

    pub fn succeeded(&self, account: &str) {
        if self.max_failures > 0 {
            self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(account);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_failures_and_tells_nothing() {
        let t = Throttle::new(&LoginLimits { max_failures: 3, ..Default::default() }, 60_000);
        for _ in 0..2 {
            t.failed("local:alice");
        }
        assert!(t.check("local:alice").is_ok());
        t.failed("local:alice");
        let err = t.check("local:alice").unwrap_err();
        assert_eq!((err.status, err.id), (429, "security.credentials.too_many_failures"));
        assert!(t.check("local:bob").is_ok(), "other accounts are not affected");
        t.succeeded("local:alice");
        assert!(t.check("local:alice").is_ok());
    }

    #[test]
    fn per_connection_rate() {
        let t = Throttle::new(&LoginLimits { logins_per_second: 2, ..Default::default() }, 60_000);
        assert!(t.connection(7).is_ok() && t.connection(7).is_ok());
        assert_eq!(t.connection(7).unwrap_err().id, "api.process.too_many_logins_requests");
        assert!(t.connection(8).is_ok());
    }
}
