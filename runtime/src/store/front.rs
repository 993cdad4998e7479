//! The store as the async server uses it: nothing here blocks the thread that awaits it.
//!
//! - Users, their credential links and the strategies' stored values, small and read on
//!   every authenticated request and every login, are answered from memory once read; every
//!   write that touches them invalidates them, after it is durable and before it is
//!   acknowledged. Each cache is bounded (entries, bytes) and starts over when full.
//! - Other reads run on a few blocking threads (as many as the store has reader
//!   connections), awaited: a cold page or a busy disk stalls a pool thread, never the reactor.
//! - Writes go to one writer thread, which takes every batch queued while it was busy and
//!   makes them durable together: one transaction, one fsync (`synchronous = FULL`), each
//!   batch still all-or-nothing on its own. A write is acknowledged only after its fsync.
//!
//! The caches are this process's: with several nodes on one database, a write made elsewhere
//! reaches them as a notice (see `service::cluster`), which drops the entry like a local write.

use super::{Change, Result, Store, StoreError, User};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Semaphore, oneshot};

/// Reads that may run at once (the SQLite store keeps four reader connections).
const READERS: usize = 4;
/// Of which strategies' storage calls may take at most this many: a strategy that lists keys
/// in a loop cannot keep the host's own reads (a user not yet cached) waiting.
const STRATEGY_READERS: usize = 2;
/// Entries each cache may hold; beyond, it starts over (a scan of every user must not grow
/// the server without bound).
const MAX_CACHED: usize = 100_000;
/// Bytes (keys + values) the strategies' value cache may hold.
const MAX_KV_BYTES: usize = 64 << 20;
/// Batches one group commit takes at most.
const MAX_GROUP: usize = 256;

/// The async front of a [`Store`].
pub struct Db {
    store: Arc<dyn Store>,
    readers: Arc<Semaphore>,
    strategy_readers: Arc<Semaphore>,
    writer: std::sync::mpsc::Sender<Job>,
    cache: Arc<Mutex<Cache>>,
}

struct Job {
    changes: Vec<Change>,
    done: oneshot::Sender<Result<()>>,
}

#[derive(Default)]
struct Cache {
    /// Bumped by every write that invalidates something: a read that started before it must
    /// not put what it read into the cache.
    version: u64,
    users: HashMap<String, Option<User>>,
    /// kuid → the strategies holding credentials for it.
    links: HashMap<String, Arc<Vec<String>>>,
    /// strategy → key → the stored value, or `None` (known absent). Nested, so a lookup
    /// by `&str` allocates nothing (it runs for every storage read of every call).
    kv: HashMap<String, HashMap<String, Option<String>>>,
    /// Entries in `kv`, and their bytes (keys + values).
    kv_entries: usize,
    kv_bytes: usize,
    /// Group commits done, and batches they carried (`/metrics`, the tests).
    groups: Counter,
    batches: Counter,
}

impl Cache {
    fn invalidate(&mut self, changes: &[Change]) {
        let mut touched = false;
        for change in changes {
            let (user, links) = match change {
                Change::InsertUser { user, .. } => (Some(&user.kuid), Some(&user.kuid)),
                Change::UpdateUser(user) => (Some(&user.kuid), None),
                Change::DeleteUser(kuid) => (Some(kuid), Some(kuid)),
                Change::Link { kuid, .. } | Change::Unlink { kuid, .. } => (None, Some(kuid)),
                Change::KvPut { strategy, key, .. } | Change::KvDelete { strategy, key } => {
                    if let Some(old) = self.kv.get_mut(strategy).and_then(|m| m.remove(key)) {
                        self.forget_kv(key, &old);
                    }
                    touched = true;
                    (None, None)
                }
                _ => (None, None),
            };
            if let Some(kuid) = user {
                self.users.remove(kuid);
                touched = true;
            }
            if let Some(kuid) = links {
                self.links.remove(kuid);
                touched = true;
            }
        }
        if touched {
            self.version += 1;
        }
    }

    fn forget_kv(&mut self, key: &str, value: &Option<String>) {
        self.kv_entries = self.kv_entries.saturating_sub(1);
        self.kv_bytes = self.kv_bytes.saturating_sub(key.len() + value.as_ref().map_or(0, String::len));
    }

    fn put_kv(&mut self, strategy: &str, key: &str, value: Option<String>) {
        let size = key.len() + value.as_ref().map_or(0, String::len);
        if self.kv_bytes + size > MAX_KV_BYTES || self.kv_entries >= MAX_CACHED * 10 {
            self.kv.clear();
            (self.kv_entries, self.kv_bytes) = (0, 0);
        }
        (self.kv_entries, self.kv_bytes) = (self.kv_entries + 1, self.kv_bytes + size);
        let old = self.kv.entry(strategy.to_string()).or_default().insert(key.to_string(), value);
        if let Some(old) = old {
            self.forget_kv(key, &old);
        }
    }
}

/// Inserts into a cache of at most [`MAX_CACHED`] entries (past it, the cache starts over).
fn bounded_insert<V>(map: &mut HashMap<String, V>, key: &str, value: V) {
    if map.len() >= MAX_CACHED {
        map.clear();
    }
    map.insert(key.to_string(), value);
}

fn lock(cache: &Mutex<Cache>) -> MutexGuard<'_, Cache> {
    cache.lock().unwrap_or_else(|p| p.into_inner())
}

impl Db {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let (writer, jobs) = std::sync::mpsc::channel();
        let cache = Arc::new(Mutex::new(Cache::default()));
        let (s, c) = (store.clone(), cache.clone());
        std::thread::Builder::new()
            .name("sandgate-writer".into())
            .spawn(move || write_loop(&*s, &c, jobs))
            .expect("spawn the store's writer");
        Db {
            store,
            readers: Arc::new(Semaphore::new(READERS)),
            strategy_readers: Arc::new(Semaphore::new(STRATEGY_READERS)),
            writer,
            cache,
        }
    }

    /// The store itself, for blocking code (start-up, the command line), never the reactor.
    pub fn blocking(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs `f` on a reader thread.
    pub async fn read<T: Send + 'static>(&self, f: impl FnOnce(&dyn Store) -> Result<T> + Send + 'static) -> Result<T> {
        self.read_with(&[&self.readers], f).await
    }

    /// A read for a strategy's storage call: it also takes one of the strategies' slots.
    pub async fn read_for_strategy<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.read_with(&[&self.strategy_readers, &self.readers], f).await
    }

    async fn read_with<T: Send + 'static>(
        &self,
        slots: &[&Arc<Semaphore>],
        f: impl FnOnce(&dyn Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut held = Vec::with_capacity(slots.len());
        for slot in slots {
            let closed = |_| StoreError::Backend("the store is closed".into());
            held.push(Arc::clone(slot).acquire_owned().await.map_err(closed)?);
        }
        let store = self.store.clone();
        // The slots go with the read itself: a caller that leaves does not free them early.
        tokio::task::spawn_blocking(move || {
            let _held = held;
            f(&*store)
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Backend(format!("a store read failed: {e}"))))
    }

    /// A read through a cache: from memory if there, else from the store (the read is made
    /// only on a miss), kept unless a write came in between.
    async fn cached<T: Clone + Send + 'static, R: FnOnce(&dyn Store) -> Result<T> + Send + 'static>(
        &self,
        get: impl Fn(&Cache) -> Option<T>,
        put: impl FnOnce(&mut Cache, T),
        read: impl FnOnce() -> R,
    ) -> Result<T> {
        let version = {
            let cache = lock(&self.cache);
            if let Some(hit) = get(&cache) {
                return Ok(hit);
            }
            cache.version
        };
        let value = self.read(read()).await?;
        let mut cache = lock(&self.cache);
        if cache.version == version {
            put(&mut cache, value.clone());
        }
        Ok(value)
    }

    pub async fn get_user(&self, kuid: &str) -> Result<Option<User>> {
        self.cached(
            |c| c.users.get(kuid).cloned(),
            |c, user| bounded_insert(&mut c.users, kuid, user),
            || {
                let kuid = kuid.to_string();
                move |s: &dyn Store| s.get_user(&kuid)
            },
        )
        .await
    }

    /// The strategies holding credentials for `kuid`, in order.
    pub async fn linked_strategies(&self, kuid: &str) -> Result<Arc<Vec<String>>> {
        self.cached(
            |c| c.links.get(kuid).cloned(),
            |c, links| bounded_insert(&mut c.links, kuid, links),
            || {
                let kuid = kuid.to_string();
                move |s: &dyn Store| s.linked_strategies(&kuid).map(Arc::new)
            },
        )
        .await
    }

    /// A strategy's stored value if the cache has it (known present or known absent).
    pub fn kv_cached(&self, strategy: &str, key: &str) -> Option<Option<String>> {
        lock(&self.cache).kv.get(strategy).and_then(|m| m.get(key)).cloned()
    }

    /// A strategy's stored value (`storage.get`). A value that expires is never cached: it
    /// must read as absent from its expiry on, and the cache keeps no clock.
    pub async fn kv_get(&self, strategy: &str, key: &str) -> Result<Option<String>> {
        let version = {
            let cache = lock(&self.cache);
            if let Some(hit) = cache.kv.get(strategy).and_then(|m| m.get(key)) {
                return Ok(hit.clone());
            }
            cache.version
        };
        let (owned_strategy, owned_key) = (strategy.to_string(), key.to_string());
        let entry = self.read(move |s: &dyn Store| s.kv_entry(&owned_strategy, &owned_key, super::now_ms())).await?;
        let mut cache = lock(&self.cache);
        if cache.version == version && entry.as_ref().is_none_or(|e| e.expires_ms.is_none()) {
            cache.put_kv(strategy, key, entry.as_ref().map(|e| e.value.clone()));
        }
        Ok(entry.map(|e| e.value))
    }

    pub async fn is_linked(&self, strategy: &str, kuid: &str) -> Result<bool> {
        Ok(self.linked_strategies(kuid).await?.iter().any(|s| s == strategy))
    }

    /// Commits one request's batch (all or nothing), with whatever else is queued; returns
    /// once it is durable. A request abandoned meanwhile changes nothing: the batch commits.
    pub async fn commit(&self, changes: Vec<Change>) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let (done, outcome) = oneshot::channel();
        self.writer
            .send(Job { changes, done })
            .map_err(|_| StoreError::Backend("the store's writer has stopped".into()))?;
        outcome.await.unwrap_or_else(|_| Err(StoreError::Backend("the store's writer has stopped".into())))
    }

    /// Another node changed this user or its credential links.
    pub fn forget_user(&self, kuid: &str) {
        lock(&self.cache).invalidate(&[Change::DeleteUser(kuid.to_string())]);
    }

    /// Another node changed this stored value.
    pub fn forget_kv(&self, strategy: &str, key: &str) {
        lock(&self.cache).invalidate(&[Change::KvDelete { strategy: strategy.to_string(), key: key.to_string() }]);
    }

    /// Drops every cached entry (notices may have been missed): everything is read again.
    pub fn forget_all(&self) {
        let mut cache = lock(&self.cache);
        cache.users.clear();
        cache.links.clear();
        cache.kv.clear();
        (cache.kv_entries, cache.kv_bytes) = (0, 0);
        cache.version += 1;
    }

    /// Group commits so far, and the batches they carried.
    pub fn group_commits(&self) -> (u64, u64) {
        let c = lock(&self.cache);
        (c.groups.get(), c.batches.get())
    }

    /// Adds the group-commit counters to `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let c = lock(&self.cache);
        registry.register("store_commits", "Transactions committed (one fsync each)", c.groups.clone());
        registry.register(
            "store_batches",
            "Requests' write batches committed (several may share a commit)",
            c.batches.clone(),
        );
    }
}

/// The writer: waits for a batch, takes every other one already queued, commits them together.
fn write_loop(store: &dyn Store, cache: &Mutex<Cache>, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP
            && let Ok(job) = jobs.try_recv()
        {
            group.push(job);
        }
        let batches: Vec<&[Change]> = group.iter().map(|j| j.changes.as_slice()).collect();
        let outcomes = store.commit_group(&batches);
        {
            let mut c = lock(cache);
            c.groups.inc();
            c.batches.inc_by(group.len() as u64);
            for (job, outcome) in group.iter().zip(&outcomes) {
                if outcome.is_ok() {
                    c.invalidate(&job.changes);
                }
            }
        }
        for (job, outcome) in group.into_iter().zip(outcomes) {
            let _ = job.done.send(outcome);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::Sqlite;
    use serde_json::json;

    fn user(kuid: &str) -> User {
        User { kuid: kuid.into(), content: json!({ "profileIds": ["default"] }).as_object().unwrap().clone() }
    }

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        (dir, Db::new(Arc::new(store)))
    }

    /// The SQLite store, with commits that take 50 ms (a slow disk): batches queue meanwhile.
    struct SlowDisk(Sqlite);

    impl Store for SlowDisk {
        fn get_user(&self, kuid: &str) -> Result<Option<User>> {
            self.0.get_user(kuid)
        }
        fn admin_exists(&self) -> Result<bool> {
            self.0.admin_exists()
        }
        fn linked_strategies(&self, kuid: &str) -> Result<Vec<String>> {
            self.0.linked_strategies(kuid)
        }
        fn is_linked(&self, strategy: &str, kuid: &str) -> Result<bool> {
            self.0.is_linked(strategy, kuid)
        }
        fn has_links(&self, strategy: &str) -> Result<bool> {
            self.0.has_links(strategy)
        }
        fn kv_entry(&self, strategy: &str, key: &str, now_ms: i64) -> Result<Option<crate::store::KvEntry>> {
            self.0.kv_entry(strategy, key, now_ms)
        }
        fn kv_list(&self, strategy: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
            self.0.kv_list(strategy, prefix, limit)
        }
        fn kv_usage(&self, strategy: &str) -> Result<crate::store::KvUsage> {
            self.0.kv_usage(strategy)
        }
        fn meta_get(&self, key: &str) -> Result<Option<String>> {
            self.0.meta_get(key)
        }
        fn docs(&self, kind: crate::store::Doc) -> Result<Vec<(String, String)>> {
            self.0.docs(kind)
        }
        fn docs_of(&self, kind: crate::store::Doc, owner: &str) -> Result<Vec<(String, String)>> {
            self.0.docs_of(kind, owner)
        }
        fn users_after(&self, after: &str, limit: u32) -> Result<Vec<User>> {
            self.0.users_after(after, limit)
        }
        fn strategies(&self) -> Result<Vec<crate::store::StoredStrategy>> {
            self.0.strategies()
        }
        fn revocations(&self, now_ms: i64) -> Result<crate::store::Revocations> {
            self.0.revocations(now_ms)
        }
        fn commit(&self, changes: &[Change]) -> Result<()> {
            self.0.commit(changes)
        }
        fn commit_group(&self, batches: &[&[Change]]) -> Vec<Result<()>> {
            std::thread::sleep(std::time::Duration::from_millis(50));
            self.0.commit_group(batches)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_batches_commit_together_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::new(Arc::new(SlowDisk(Sqlite::open(dir.path()).unwrap()))));
        db.commit(vec![Change::InsertUser { user: user("taken"), first_admin: false }]).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..64 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                // Every eighth batch inserts a user that exists: it fails, alone.
                let kuid = if i % 8 == 0 { "taken".to_string() } else { format!("u{i}") };
                let changes = vec![
                    Change::KvPut {
                        strategy: "s".into(),
                        key: format!("k{i}"),
                        value: "v".into(),
                        expires_ms: None,
                        insert: false,
                    },
                    Change::InsertUser { user: user(&kuid), first_admin: false },
                ];
                (i, db.commit(changes).await)
            }));
        }
        for t in tasks {
            let (i, outcome) = t.await.unwrap();
            let stored = db.read(move |s| s.kv_get("s", &format!("k{i}"))).await.unwrap();
            if i % 8 == 0 {
                assert!(matches!(outcome, Err(StoreError::UserExists(_))), "{outcome:?}");
                assert_eq!(stored, None, "a failed batch leaves nothing");
            } else {
                assert!(outcome.is_ok(), "{outcome:?}");
                assert_eq!(stored.as_deref(), Some("v"));
            }
        }
        let (groups, batches) = db.group_commits();
        assert_eq!(batches, 65);
        // The first commit holds the writer for 50 ms: the 64 batches queue behind it.
        assert!(groups <= 4, "64 concurrent batches shared their fsyncs: {groups} commits");
    }

    #[tokio::test]
    async fn the_user_cache_follows_every_write() {
        let (_dir, db) = db();
        assert_eq!(db.get_user("alice").await.unwrap(), None, "absence is cached too");
        db.commit(vec![Change::InsertUser { user: user("alice"), first_admin: false }]).await.unwrap();
        assert_eq!(db.get_user("alice").await.unwrap(), Some(user("alice")));
        assert!(!db.is_linked("local", "alice").await.unwrap());
        db.commit(vec![Change::Link { strategy: "local".into(), kuid: "alice".into() }]).await.unwrap();
        assert!(db.is_linked("local", "alice").await.unwrap());
        let mut changed = user("alice");
        changed.content.insert("name".into(), json!("Alice"));
        db.commit(vec![Change::UpdateUser(changed.clone())]).await.unwrap();
        assert_eq!(db.get_user("alice").await.unwrap(), Some(changed));
        db.commit(vec![Change::DeleteUser("alice".into())]).await.unwrap();
        assert_eq!(db.get_user("alice").await.unwrap(), None);
        assert!(!db.is_linked("local", "alice").await.unwrap());
    }

    #[tokio::test]
    async fn the_value_cache_follows_every_write() {
        let (_dir, db) = db();
        assert_eq!(db.kv_get("s", "k").await.unwrap(), None);
        db.commit(vec![Change::KvPut {
            strategy: "s".into(),
            key: "k".into(),
            value: "1".into(),
            expires_ms: None,
            insert: false,
        }])
        .await
        .unwrap();
        assert_eq!(db.kv_get("s", "k").await.unwrap().as_deref(), Some("1"));
        db.commit(vec![Change::KvPut {
            strategy: "s".into(),
            key: "k".into(),
            value: "2".into(),
            expires_ms: None,
            insert: false,
        }])
        .await
        .unwrap();
        assert_eq!(db.kv_get("s", "k").await.unwrap().as_deref(), Some("2"));
        assert_eq!(db.kv_get("other", "k").await.unwrap(), None, "namespaced by strategy");
        db.commit(vec![Change::KvDelete { strategy: "s".into(), key: "k".into() }]).await.unwrap();
        assert_eq!(db.kv_get("s", "k").await.unwrap(), None);
    }
}
