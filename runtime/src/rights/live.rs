//! The rights in force on this node.
//!
//! Every role and profile lives in memory as one [`Rights`] value, read whole from the store
//! at start-up and again after every change to one (here, or on another node: its notice),
//! then swapped in whole: a request is judged against one version, never half of an update.
//! A change takes effect on the next request of every user holding it, since nothing about
//! rights is kept in tokens or sessions.

use super::Rights;
use super::profile::Profile;
use super::role::Role;
use crate::store::front::Db;
use crate::store::{Doc, Store};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

pub struct Live {
    /// The rights, and the reading they come from (a later reading replaces an earlier one,
    /// never the other way round).
    current: RwLock<(u64, Arc<Rights>)>,
    readings: AtomicU64,
    stale: std::sync::atomic::AtomicBool,
    /// Held by a role or profile write from its checks to its re-read: on one node, writes
    /// happen one after the other (no lost update, no profile created on a role being
    /// deleted). Across nodes they are not serialized: two administrators editing the same
    /// role on two nodes at the same moment can lose one edit.
    pub writing: tokio::sync::Mutex<()>,
    /// The second being counted, and each limited user's requests in it (started over every
    /// second: it holds at most the users limited within one second).
    counts: Mutex<(i64, HashMap<String, u64>)>,
}

/// Reads every role and profile. A body that is not JSON is skipped with a warning (it
/// cannot be written through the API).
pub fn read(store: &dyn Store) -> crate::store::Result<Rights> {
    let parse = |kind: Doc| -> crate::store::Result<Vec<(String, Value)>> {
        Ok(store
            .docs(kind)?
            .into_iter()
            .filter_map(|(id, body)| match serde_json::from_str(&body) {
                Ok(v) => Some((id, v)),
                Err(e) => {
                    tracing::warn!(id = %id, "stored {} is not JSON, ignored: {e}", kind.name());
                    None
                }
            })
            .collect())
    };
    let roles = parse(Doc::Role)?.into_iter().map(|(id, v)| Role::new(&id, v)).collect();
    let profiles = parse(Doc::Profile)?.into_iter().map(|(id, v)| Profile::new(&id, v)).collect();
    Ok(Rights::from_stored(roles, profiles))
}

impl Live {
    /// Blocking: start-up.
    pub fn load(store: &dyn Store) -> crate::store::Result<Self> {
        Ok(Live {
            current: RwLock::new((0, Arc::new(read(store)?))),
            readings: AtomicU64::new(1),
            stale: Default::default(),
            writing: Default::default(),
            counts: Mutex::default(),
        })
    }

    pub fn current(&self) -> Arc<Rights> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    /// Reads the rights again (blocking: a store thread).
    pub fn reload_blocking(&self, store: &dyn Store) -> crate::store::Result<()> {
        let reading = self.readings.fetch_add(1, Ordering::SeqCst);
        let rights = read(store)?;
        self.install(reading, rights);
        Ok(())
    }

    /// Reads the rights again, after a change committed here. The change is durable by then:
    /// a read that fails does not fail the request (a retried create would find it exists);
    /// it is tried three times, then the node is marked stale and the minute task (see
    /// `App::sweep_expired_keys`) keeps trying.
    pub async fn reload(&self, db: &Db) {
        for attempt in 1..=3u64 {
            let reading = self.readings.fetch_add(1, Ordering::SeqCst);
            match db.read(read).await {
                Ok(rights) => {
                    self.install(reading, rights);
                    self.stale.store(false, Ordering::SeqCst);
                    return;
                }
                Err(e) => {
                    tracing::warn!("could not read the rights again (try {attempt} of 3): {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
            }
        }
        tracing::error!("the rights in force here may be stale until the store answers again");
        self.stale.store(true, Ordering::SeqCst);
    }

    /// A reload failed and none succeeded since.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::SeqCst)
    }

    fn install(&self, reading: u64, rights: Rights) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if reading >= current.0 {
            *current = (reading, Arc::new(rights));
        }
    }

    /// Counts one request of `kuid` against `limit` per second (`0`: none); false past it.
    pub fn admit(&self, kuid: &str, limit: u64, now_ms: i64) -> bool {
        if limit == 0 {
            return true;
        }
        let second = now_ms.div_euclid(1000);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.0 != second {
            *counts = (second, HashMap::new());
        }
        let count = match counts.1.get_mut(kuid) {
            Some(count) => count,
            None => counts.1.entry(kuid.to_string()).or_insert(0),
        };
        *count += 1;
        *count <= limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_limit_counts_per_user_per_second() {
        let dir = tempfile::tempdir().unwrap();
        let live = Live::load(&crate::store::sqlite::Sqlite::open(dir.path()).unwrap()).unwrap();
        assert!((0..3).all(|_| live.admit("a", 3, 1_000)));
        assert!(!live.admit("a", 3, 1_999), "a fourth in the same second");
        assert!(live.admit("b", 3, 1_999), "another user counts apart");
        assert!(live.admit("a", 3, 2_000), "a new second");
        assert!((0..100).all(|_| live.admit("a", 0, 2_000)), "0: no limit");
    }

    #[test]
    fn a_later_reading_is_never_replaced_by_an_earlier_one() {
        let dir = tempfile::tempdir().unwrap();
        let live = Live::load(&crate::store::sqlite::Sqlite::open(dir.path()).unwrap()).unwrap();
        live.install(5, Rights::default());
        live.install(3, Rights::standard());
        assert!(live.current().roles.is_empty(), "the reading begun later stands");
    }
}
