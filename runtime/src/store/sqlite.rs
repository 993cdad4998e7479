//! The embedded store: one SQLite file in the data directory, WAL journal, `synchronous=FULL`
//! (an acknowledged write survives a crash or a power cut), schema migrations numbered from
//! the first version on (`PRAGMA user_version`).
//!
//! One writer connection, a few reader connections: WAL lets readers run while a write commits.

use super::{Change, Doc, KvEntry, KvUsage, Result, Revocations, Store, StoreError, StoredStrategy, User};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Schema versions, applied in order; never edit a released one, append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: users, the strategy ↔ user links, per-strategy storage, revocations, metadata.
    r#"
    CREATE TABLE users (
        kuid TEXT PRIMARY KEY,
        content TEXT NOT NULL,
        is_admin INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE INDEX users_admin ON users(is_admin) WHERE is_admin = 1;
    CREATE TABLE credential_links (
        strategy TEXT NOT NULL,
        kuid TEXT NOT NULL,
        PRIMARY KEY (strategy, kuid)
    ) WITHOUT ROWID;
    CREATE INDEX credential_links_kuid ON credential_links(kuid);
    CREATE TABLE strategy_kv (
        strategy TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (strategy, key)
    ) WITHOUT ROWID;
    CREATE TABLE revoked_tokens (
        jti TEXT PRIMARY KEY,
        void_from_ms INTEGER NOT NULL,
        expires_ms INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE revoked_users (
        kuid TEXT PRIMARY KEY,
        cutoff_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: uploaded strategies (the component bytes, so restarts and other nodes can load them).
    r#"
    CREATE TABLE strategy_modules (
        name TEXT PRIMARY KEY,
        wasm BLOB NOT NULL,
        hash TEXT NOT NULL,
        config TEXT NOT NULL,
        limits TEXT NOT NULL,
        registered_at_ms INTEGER NOT NULL
    );
    "#,
    // 3: per-strategy storage usage, kept exact by triggers in the writing transaction, so a
    //    quota check is one row read instead of a scan of the strategy's keys on every write.
    r#"
    CREATE TABLE strategy_kv_usage (
        strategy TEXT PRIMARY KEY,
        keys INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO strategy_kv_usage (strategy, keys, bytes)
        SELECT strategy, count(*), sum(length(key) + length(value)) FROM strategy_kv GROUP BY strategy;
    CREATE TRIGGER strategy_kv_usage_insert AFTER INSERT ON strategy_kv BEGIN
        INSERT INTO strategy_kv_usage (strategy, keys, bytes) VALUES (new.strategy, 1, length(new.key) + length(new.value))
        ON CONFLICT(strategy) DO UPDATE SET keys = keys + 1, bytes = bytes + length(new.key) + length(new.value);
    END;
    CREATE TRIGGER strategy_kv_usage_update AFTER UPDATE OF value ON strategy_kv BEGIN
        UPDATE strategy_kv_usage SET bytes = bytes - length(old.value) + length(new.value) WHERE strategy = new.strategy;
    END;
    CREATE TRIGGER strategy_kv_usage_delete AFTER DELETE ON strategy_kv BEGIN
        UPDATE strategy_kv_usage SET keys = keys - 1, bytes = bytes - length(old.key) - length(old.value)
        WHERE strategy = old.strategy;
    END;
    "#,
    // 4: a strategy's `fields`, recorded when it was accepted: start-up runs none of its code.
    r#"
    ALTER TABLE strategy_modules ADD COLUMN fields TEXT;
    "#,
    // 5: expiring strategy keys (`storage.set-expiring`), and what an uploaded strategy may
    //    reach (`outbound`) and whom it may provision (`provision`).
    r#"
    ALTER TABLE strategy_kv ADD COLUMN expires_ms INTEGER;
    CREATE INDEX strategy_kv_expiry ON strategy_kv(expires_ms) WHERE expires_ms IS NOT NULL;
    ALTER TABLE strategy_modules ADD COLUMN outbound TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE strategy_modules ADD COLUMN provision TEXT NOT NULL DEFAULT '{}';
    "#,
    // 6: security documents: roles, profiles, API keys (their fingerprints, never the keys);
    //    the first admin's creation recorded for good (`meta.first_admin`), so demoting or
    //    deleting every admin never reopens createFirstAdmin; a deleted user's cut-off that
    //    also ends its API keys.
    r#"
    CREATE TABLE security_docs (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        owner TEXT,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID;
    CREATE INDEX security_docs_owner ON security_docs(kind, owner) WHERE owner IS NOT NULL;
    INSERT INTO meta (key, value) SELECT 'first_admin', kuid FROM users WHERE is_admin = 1 LIMIT 1;
    ALTER TABLE revoked_users ADD COLUMN api_keys_cutoff_ms INTEGER;
    "#,
];

const READERS: usize = 4;

/// Whether the first admin was ever created: an admin exists, or one was once.
const FIRST_ADMIN_DONE: &str =
    "SELECT EXISTS(SELECT 1 FROM users WHERE is_admin = 1) OR EXISTS(SELECT 1 FROM meta WHERE key = 'first_admin')";

pub struct Sqlite {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(())
}

impl Sqlite {
    /// Opens (creating if needed) `dir/sandgate.db` and brings its schema up to date.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| backend(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join("sandgate.db");
        let mut writer = Connection::open(&path).map_err(backend)?;
        let mode: String =
            writer.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(backend(format!("could not enable WAL on {} (got {mode})", path.display())));
        }
        configure(&writer).map_err(backend)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let c = Connection::open_with_flags(
                    &path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(backend)?;
                configure(&c).map_err(backend)?;
                Ok(Mutex::new(c))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Sqlite { writer: Mutex::new(writer), readers, next_reader: AtomicUsize::new(0) })
    }

    /// The schema version in force (the number of migrations applied).
    pub fn schema_version(&self) -> Result<usize> {
        self.read(|c| c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0)).map(|v| v as usize))
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        // Take a free reader if there is one, else wait on the next in turn.
        for i in 0..self.readers.len() {
            if let Ok(conn) = self.readers[i].try_lock() {
                return f(&conn).map_err(backend);
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = self.readers[i].lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(backend)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(backend)?;
    if current as usize > MIGRATIONS.len() {
        return Err(backend(format!(
            "the database schema is version {current}, newer than this Sandgate knows ({}); refusing to touch it",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(|e| backend(format!("migration {}: {e}", i + 1)))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

fn decode_user(kuid: String, content: String) -> rusqlite::Result<User> {
    let content: Map<String, Value> = serde_json::from_str(&content)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(User { kuid, content })
}

impl Store for Sqlite {
    fn get_user(&self, kuid: &str) -> Result<Option<User>> {
        self.read(|c| {
            c.prepare_cached("SELECT kuid, content FROM users WHERE kuid = ?1")?
                .query_row([kuid], |r| decode_user(r.get(0)?, r.get(1)?))
                .optional()
        })
    }

    fn admin_exists(&self) -> Result<bool> {
        self.read(|c| c.prepare_cached(FIRST_ADMIN_DONE)?.query_row([], |r| r.get(0)))
    }

    fn linked_strategies(&self, kuid: &str) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT strategy FROM credential_links WHERE kuid = ?1 ORDER BY strategy")?;
            stmt.query_map([kuid], |r| r.get(0))?.collect()
        })
    }

    fn is_linked(&self, strategy: &str, kuid: &str) -> Result<bool> {
        self.read(|c| {
            c.prepare_cached("SELECT EXISTS(SELECT 1 FROM credential_links WHERE strategy = ?1 AND kuid = ?2)")?
                .query_row([strategy, kuid], |r| r.get(0))
        })
    }

    fn kv_entry(&self, strategy: &str, key: &str, now_ms: i64) -> Result<Option<KvEntry>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT value, expires_ms FROM strategy_kv
                 WHERE strategy = ?1 AND key = ?2 AND (expires_ms IS NULL OR expires_ms > ?3)",
            )?
            .query_row(params![strategy, key, now_ms], |r| Ok(KvEntry { value: r.get(0)?, expires_ms: r.get(1)? }))
            .optional()
        })
    }

    fn kv_list(&self, strategy: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
        self.read(|c| list_keys(c, strategy, prefix, limit)).map(|(keys, _)| keys)
    }

    fn has_links(&self, strategy: &str) -> Result<bool> {
        self.read(|c| {
            c.prepare_cached("SELECT EXISTS(SELECT 1 FROM credential_links WHERE strategy = ?1)")?
                .query_row([strategy], |r| r.get(0))
        })
    }

    fn kv_usage(&self, strategy: &str) -> Result<KvUsage> {
        self.read(|c| {
            c.prepare_cached("SELECT keys, bytes FROM strategy_kv_usage WHERE strategy = ?1")?
                .query_row([strategy], |r| {
                    Ok(KvUsage { keys: r.get::<_, i64>(0)? as u64, bytes: r.get::<_, i64>(1)? as u64 })
                })
                .optional()
                .map(Option::unwrap_or_default)
        })
    }

    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()
        })
    }

    fn docs(&self, kind: Doc) -> Result<Vec<(String, String)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT id, body FROM security_docs WHERE kind = ?1 ORDER BY id")?;
            stmt.query_map([kind.name()], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    fn docs_of(&self, kind: Doc, owner: &str) -> Result<Vec<(String, String)>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT id, body FROM security_docs WHERE kind = ?1 AND owner = ?2 ORDER BY id")?;
            stmt.query_map([kind.name(), owner], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
    }

    fn users_after(&self, after: &str, limit: u32) -> Result<Vec<User>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT kuid, content FROM users WHERE kuid > ?1 ORDER BY kuid LIMIT ?2")?;
            stmt.query_map(params![after, limit], |r| decode_user(r.get(0)?, r.get(1)?))?.collect()
        })
    }

    fn strategies(&self) -> Result<Vec<StoredStrategy>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT name, wasm, hash, config, limits, registered_at_ms, fields, outbound, provision
                 FROM strategy_modules ORDER BY name",
            )?;
            stmt.query_map([], |r| {
                Ok(StoredStrategy {
                    name: r.get(0)?,
                    wasm: r.get(1)?,
                    hash: r.get(2)?,
                    config: r.get(3)?,
                    limits: r.get(4)?,
                    registered_at_ms: r.get(5)?,
                    fields: r.get::<_, Option<String>>(6)?.and_then(|text| serde_json::from_str(&text).ok()),
                    outbound: r.get(7)?,
                    provision: r.get(8)?,
                })
            })?
            .collect()
        })
    }

    fn revocations(&self, now_ms: i64) -> Result<Revocations> {
        // Rows for tokens that have expired anyway are useless: drop them on the way.
        {
            let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            conn.execute("DELETE FROM revoked_tokens WHERE expires_ms IS NOT NULL AND expires_ms < ?1", [now_ms])
                .map_err(backend)?;
        }
        self.read(|c| {
            let tokens = c
                .prepare("SELECT jti, void_from_ms, expires_ms FROM revoked_tokens")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let users = c
                .prepare("SELECT kuid, cutoff_ms, api_keys_cutoff_ms FROM revoked_users")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Revocations { tokens, users })
        })
    }

    fn commit(&self, changes: &[Change]) -> Result<()> {
        self.commit_group(&[changes]).pop().unwrap_or(Ok(()))
    }

    /// One transaction, one fsync, for every batch; each batch in a savepoint, so a batch
    /// that fails is rolled back alone and the others commit.
    fn commit_group(&self, batches: &[&[Change]]) -> Vec<Result<()>> {
        if batches.iter().all(|b| b.is_empty()) {
            return batches.iter().map(|_| Ok(())).collect();
        }
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => return batches.iter().map(|_| Err(backend(&e))).collect(),
        };
        let mut outcomes: Vec<Result<()>> = Vec::with_capacity(batches.len());
        for batch in batches {
            // After some failures (disk full, I/O error) SQLite rolls the whole transaction
            // back by itself: a later savepoint would then commit on its own. Stop there.
            if outcomes.last().is_some_and(|o: &Result<()>| o.is_err()) && tx.is_autocommit() {
                let lost = || Err(backend("the transaction was rolled back by the database"));
                return batches.iter().map(|_| lost()).collect();
            }
            outcomes.push(apply_batch(&mut tx, batch));
        }
        if let Err(e) = tx.commit() {
            // Nothing of the group is durable: every batch failed.
            outcomes = batches.iter().map(|_| Err(backend(&e))).collect();
        }
        outcomes
    }
}

/// Keys of `strategy` starting with `prefix`, and the VM steps the query took. A range of the
/// primary key, [prefix, the first string after every prefixed key): the scan stops at the
/// prefix's end and at `limit`, whatever else the strategy stores.
fn list_keys(c: &Connection, strategy: &str, prefix: &str, limit: u32) -> rusqlite::Result<(Vec<String>, i32)> {
    use rusqlite::StatementStatus::VmStep;
    let end = prefix_end(prefix);
    let mut stmt = match end {
        Some(_) => c.prepare_cached(
            "SELECT key FROM strategy_kv WHERE strategy = ?1 AND key >= ?2 AND key < ?3
             AND (expires_ms IS NULL OR expires_ms > ?5) ORDER BY key LIMIT ?4",
        )?,
        None => c.prepare_cached(
            "SELECT key FROM strategy_kv WHERE strategy = ?1 AND key >= ?2
             AND (expires_ms IS NULL OR expires_ms > ?4) ORDER BY key LIMIT ?3",
        )?,
    };
    stmt.reset_status(VmStep);
    let now = super::now_ms();
    let keys = match &end {
        Some(end) => stmt
            .query_map(params![strategy, prefix, end, limit, now], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        None => {
            stmt.query_map(params![strategy, prefix, limit, now], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        }
    };
    Ok((keys, stmt.get_status(VmStep)))
}

/// The smallest string greater than every string that starts with `prefix` (SQLite compares
/// TEXT bytewise, and UTF-8 byte order is code point order): the last character that can be
/// incremented is, and what follows it is dropped. `None` when nothing bounds the range.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// One batch of a group, all or nothing: in its own savepoint.
fn apply_batch(tx: &mut rusqlite::Transaction<'_>, batch: &[Change]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let sp = tx.savepoint().map_err(backend)?;
    for change in batch {
        // Dropping the savepoint unreleased rolls the batch back.
        apply(&sp, change)?;
    }
    sp.commit().map_err(backend)
}

fn apply(tx: &rusqlite::Connection, change: &Change) -> Result<()> {
    match change {
        Change::InsertUser { user, first_admin } => {
            if *first_admin {
                let exists: bool = tx.query_row(FIRST_ADMIN_DONE, [], |r| r.get(0)).map_err(backend)?;
                if exists {
                    return Err(StoreError::AdminExists);
                }
            }
            let content = Value::Object(user.content.clone()).to_string();
            let inserted = tx
                .execute(
                    "INSERT INTO users (kuid, content, is_admin) VALUES (?1, ?2, ?3) ON CONFLICT(kuid) DO NOTHING",
                    params![user.kuid, content, user.is_admin()],
                )
                .map_err(backend)?;
            if inserted == 0 {
                return Err(StoreError::UserExists(user.kuid.clone()));
            }
            if *first_admin {
                tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('first_admin', ?1)", [&user.kuid])
                    .map_err(backend)?;
            }
        }
        Change::UpdateUser(user) => {
            let content = Value::Object(user.content.clone()).to_string();
            tx.execute(
                "UPDATE users SET content = ?2, is_admin = ?3 WHERE kuid = ?1",
                params![user.kuid, content, user.is_admin()],
            )
            .map_err(backend)?;
        }
        Change::DeleteUser(kuid) => {
            tx.execute("DELETE FROM users WHERE kuid = ?1", [kuid]).map_err(backend)?;
            tx.execute("DELETE FROM credential_links WHERE kuid = ?1", [kuid]).map_err(backend)?;
        }
        Change::Link { strategy, kuid } => {
            tx.execute("INSERT OR IGNORE INTO credential_links (strategy, kuid) VALUES (?1, ?2)", [strategy, kuid])
                .map_err(backend)?;
        }
        Change::Unlink { strategy, kuid } => {
            tx.execute("DELETE FROM credential_links WHERE strategy = ?1 AND kuid = ?2", [strategy, kuid])
                .map_err(backend)?;
        }
        Change::KvPut { strategy, key, value, expires_ms, insert: false } => {
            tx.execute(
                "INSERT INTO strategy_kv (strategy, key, value, expires_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(strategy, key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms",
                params![strategy, key, value, expires_ms],
            )
            .map_err(backend)?;
        }
        Change::KvPut { strategy, key, value, expires_ms, insert: true } => {
            // Over an expired value only (it reads as absent).
            let stored = tx
                .execute(
                    "INSERT INTO strategy_kv (strategy, key, value, expires_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(strategy, key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms
                     WHERE strategy_kv.expires_ms <= ?5",
                    params![strategy, key, value, expires_ms, super::now_ms()],
                )
                .map_err(backend)?;
            if stored == 0 {
                return Err(StoreError::Taken { strategy: strategy.clone(), key: key.clone() });
            }
        }
        Change::KvSweep { now_ms } => {
            // A bounded batch: the writer commits every request's changes, it must not stall.
            tx.execute(
                "DELETE FROM strategy_kv WHERE (strategy, key) IN
                 (SELECT strategy, key FROM strategy_kv WHERE expires_ms <= ?1 LIMIT 10000)",
                [now_ms],
            )
            .map_err(backend)?;
        }
        Change::KvDelete { strategy, key } => {
            tx.execute("DELETE FROM strategy_kv WHERE strategy = ?1 AND key = ?2", [strategy, key]).map_err(backend)?;
        }
        Change::RevokeToken { jti, void_from_ms, expires_ms, refresh: true } => {
            let inserted = tx
                .execute(
                    "INSERT INTO revoked_tokens (jti, void_from_ms, expires_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT(jti) DO NOTHING",
                    params![jti, void_from_ms, expires_ms],
                )
                .map_err(backend)?;
            if inserted == 0 {
                return Err(StoreError::Refreshed);
            }
        }
        Change::RevokeToken { jti, void_from_ms, expires_ms, refresh: false } => {
            tx.execute(
                "INSERT INTO revoked_tokens (jti, void_from_ms, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(jti) DO UPDATE SET void_from_ms = min(void_from_ms, excluded.void_from_ms)",
                params![jti, void_from_ms, expires_ms],
            )
            .map_err(backend)?;
        }
        Change::RevokeUser { kuid, cutoff_ms, api_keys } => {
            let keys_cutoff = api_keys.then_some(*cutoff_ms);
            tx.execute(
                "INSERT INTO revoked_users (kuid, cutoff_ms, api_keys_cutoff_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(kuid) DO UPDATE SET cutoff_ms = max(cutoff_ms, excluded.cutoff_ms),
                   api_keys_cutoff_ms = max(coalesce(api_keys_cutoff_ms, excluded.api_keys_cutoff_ms),
                                            coalesce(excluded.api_keys_cutoff_ms, api_keys_cutoff_ms))",
                params![kuid, cutoff_ms, keys_cutoff],
            )
            .map_err(backend)?;
        }
        Change::PutStrategy(st) => {
            tx.execute(
                "INSERT INTO strategy_modules (name, wasm, hash, config, limits, registered_at_ms, fields, outbound, provision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(name) DO UPDATE SET wasm = excluded.wasm, hash = excluded.hash, config = excluded.config,
                   limits = excluded.limits, registered_at_ms = excluded.registered_at_ms, fields = excluded.fields,
                   outbound = excluded.outbound, provision = excluded.provision",
                params![
                    st.name,
                    st.wasm,
                    st.hash,
                    st.config,
                    st.limits,
                    st.registered_at_ms,
                    st.fields.as_ref().map(|f| serde_json::Value::from(f.clone()).to_string()),
                    st.outbound,
                    st.provision
                ],
            )
            .map_err(backend)?;
        }
        Change::DeleteStrategy(name) => {
            tx.execute("DELETE FROM strategy_modules WHERE name = ?1", [name]).map_err(backend)?;
        }
        Change::PutDoc { kind, id, body, owner, insert } => {
            let sql = if *insert {
                "INSERT INTO security_docs (kind, id, body, owner) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(kind, id) DO NOTHING"
            } else {
                "INSERT INTO security_docs (kind, id, body, owner) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body, owner = excluded.owner"
            };
            if tx.execute(sql, params![kind.name(), id, body, owner]).map_err(backend)? == 0 {
                return Err(StoreError::DocExists { kind: kind.name().into(), id: id.clone() });
            }
        }
        Change::DeleteDoc { kind, id } => {
            tx.execute("DELETE FROM security_docs WHERE kind = ?1 AND id = ?2", [kind.name(), id]).map_err(backend)?;
        }
        Change::SetMeta { key, value } => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(backend)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(kuid: &str, profiles: &[&str]) -> User {
        User { kuid: kuid.into(), content: json!({ "profileIds": profiles }).as_object().unwrap().clone() }
    }

    #[test]
    fn migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(dir.path()).unwrap();
        assert_eq!(db.schema_version().unwrap(), MIGRATIONS.len());
        db.commit(&[Change::InsertUser { user: user("a", &["admin"]), first_admin: true }]).unwrap();
        drop(db);
        let db = Sqlite::open(dir.path()).unwrap();
        assert!(db.admin_exists().unwrap());
        assert_eq!(db.get_user("a").unwrap().unwrap().profile_ids(), vec!["admin"]);
    }

    /// A prefix that matches nothing costs a look-up, not a walk over the strategy's keys
    /// (an anonymous login listing "t" over 20k "user:" keys walked them all).
    #[test]
    fn prefix_listing_stops_at_the_prefix_end() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(dir.path()).unwrap();
        let keys: Vec<Change> = (0..20_000)
            .map(|i| Change::KvPut {
                strategy: "a".into(),
                key: format!("user:{i:05}"),
                value: "v".into(),
                expires_ms: None,
                insert: false,
            })
            .collect();
        db.commit(&keys).unwrap();
        for (prefix, expected) in [("t", 0), ("user:0000", 10), ("user:1999", 10), ("", 10), ("\u{10FFFF}", 0)] {
            let (listed, vm_steps) = db.read(|c| list_keys(c, "a", prefix, 10)).unwrap();
            assert_eq!(listed.len(), expected, "{prefix:?}");
            assert!(listed.iter().all(|k| k.starts_with(prefix)));
            assert_eq!(listed, db.kv_list("a", prefix, 10).unwrap());
            assert!(vm_steps < 500, "listing {prefix:?} took {vm_steps} VM steps");
        }
        assert_eq!(prefix_end("ab"), Some("ac".into()));
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_end("\u{D7FF}"), Some("\u{E000}".into()));
        assert_eq!(prefix_end(""), None);
    }
    // The cases every backend must pass are in tests/store.rs.
}
