//! The shared store: one PostgreSQL database for several Sandgate nodes.
//!
//! - Connections come from an r2d2 pool (readers and the writer alike), each with its own
//!   cache of prepared statements; a dedicated connection LISTENs ([`shared`]).
//! - A group of batches is one transaction, each batch in a savepoint (all or nothing on its
//!   own), as with SQLite. The notices the other nodes need go out with `pg_notify` in that
//!   same transaction: sent if and only if it commits. A group that deadlocks with another
//!   node's is retried whole.
//! - The database unreachable (restarting, the network) is [`StoreError::Unavailable`], within
//!   the pool's connect timeout: a request gets a 503 and the node keeps serving what needs no
//!   database (token checks, from memory).
//!
//! The client speaks no TLS here (no OpenSSL, no libpq): keep the database on a private
//! network or behind a local TLS tunnel.

mod conn;
pub mod schema;
mod shared;

use super::cluster::{Envelope, Notice};
use super::{Change, Doc, KvEntry, KvUsage, Result, Revocations, Store, StoreError, StoredStrategy, User};
use conn::{Conn, Manager, Suspicion, notify, prepared, retryable, unavailable_or_backend};
use postgres::{GenericClient, Statement, types::ToSql};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Connections in the pool: the front's four readers, its writer, the failure counter.
const POOL_SIZE: u32 = 8;
/// How long a request waits for a connection (or the database to answer a connect) before
/// it is told the database is unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Server-side cap on one statement: a lock held by a stuck node cannot hold a request.
const STATEMENT_TIMEOUT_MS: u32 = 10_000;
/// A group that deadlocked with another node's is tried this many times in all.
const ATTEMPTS: usize = 3;
/// The channel every node LISTENs on.
pub const CHANNEL: &str = "sandgate";
/// Held by the transaction that inserts a first admin: two nodes cannot both find none.
const ADMIN_LOCK: i64 = 0x5a4e_d648;

pub struct Postgres {
    pool: r2d2::Pool<Manager>,
    /// For the LISTEN connection, outside the pool (a pooled connection would drop what it
    /// heard when handed to a request).
    config: postgres::Config,
    /// This node's name in its notices.
    node: String,
    suspicion: Suspicion,
}

impl Postgres {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and brings the
    /// schema up to date. `node` names this node in what it tells the others.
    pub fn open(url: &str, node: &str) -> Result<Self> {
        let mut config: postgres::Config =
            url.parse().map_err(|e| StoreError::Backend(format!("store.url is not a PostgreSQL URL ({e})")))?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            // A database that vanishes without closing its sockets (a network partition) is
            // given up on in seconds, not after the kernel's minutes of retransmissions.
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(10))
            .application_name("sandgate")
            .options(&format!("-c statement_timeout={STATEMENT_TIMEOUT_MS} -c client_min_messages=warning"));
        let suspicion = Suspicion::default();
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(2))
            .connection_timeout(CONNECT_TIMEOUT)
            // A round trip before every use would double each read: connections are checked
            // only after one was found closed (see `Suspicion`).
            .test_on_check_out(false)
            .build(Manager { config: config.clone(), suspicion: suspicion.clone() })
            .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
        let store = Postgres { pool, config, node: node.to_string(), suspicion };
        store.with(schema::migrate)?;
        Ok(store)
    }

    /// The schema version in force.
    pub fn schema_version(&self) -> Result<usize> {
        let rows = self.read(|c| c.query("SELECT version FROM sandgate_schema", &[]))?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i32>(0) as usize))
    }

    /// A pooled connection known good since the last suspicion. One that fails its check is
    /// closed, so the pool drops it and the next checkout gets another (or a new one).
    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>> {
        for _ in 0..=POOL_SIZE {
            let mut conn =
                self.pool.get().map_err(|e| StoreError::Unavailable(format!("no connection to PostgreSQL: {e}")))?;
            if self.suspicion.vouch(&mut conn) {
                return Ok(conn);
            }
        }
        Err(StoreError::Unavailable("no working connection to PostgreSQL".into()))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        f(&mut *self.conn()?)
    }

    /// Runs `f` on a pooled connection. A connection the database closed while it sat in the
    /// pool (a restart) is found out on use: the others are suspected, and the read is tried
    /// once more on one that passes its check.
    fn read<T>(&self, f: impl Fn(&mut Conn) -> std::result::Result<T, postgres::Error>) -> Result<T> {
        let mut conn = self.conn()?;
        match f(&mut conn) {
            Err(_) if conn.client.is_closed() => {
                self.suspicion.raise();
                drop(conn);
                f(&mut *self.conn()?).map_err(unavailable_or_backend)
            }
            outcome => outcome.map_err(unavailable_or_backend),
        }
    }

    /// One attempt at a group: its outcomes, or the error that ended the whole transaction.
    fn try_group(&self, conn: &mut Conn, batches: &[&[Change]]) -> std::result::Result<Vec<Result<()>>, GroupError> {
        let Conn { client, statements, .. } = conn;
        let mut tx = client.transaction().map_err(GroupError::Begin)?;
        let mut outcomes = Vec::with_capacity(batches.len());
        let mut payloads = Vec::new();
        for batch in batches {
            if batch.is_empty() {
                outcomes.push(Ok(()));
                continue;
            }
            let mut sp = tx.savepoint("batch").map_err(GroupError::Sent)?;
            let applied = batch.iter().try_for_each(|change| apply(&mut sp, statements, change));
            match applied {
                Ok(()) => {
                    sp.commit().map_err(GroupError::Sent)?;
                    payloads.extend(batch.iter().filter_map(Notice::of).map(|n| Envelope::payload(&self.node, n)));
                    outcomes.push(Ok(()));
                }
                Err(Failed::Pg(e)) if retryable(&e) || e.is_closed() => return Err(GroupError::Sent(e)),
                // Dropping the savepoint rolls this batch back; the others go on.
                Err(Failed::Pg(e)) => outcomes.push(Err(unavailable_or_backend(e))),
                Err(Failed::Store(e)) => outcomes.push(Err(e)),
            }
        }
        if !payloads.is_empty() {
            payloads.dedup();
            notify(&mut tx, statements, &payloads).map_err(GroupError::Sent)?;
        }
        tx.commit().map_err(GroupError::Sent)?;
        Ok(outcomes)
    }
}

/// Why a group's transaction ended: before anything was sent (safe to try again on another
/// connection), or after.
enum GroupError {
    Begin(postgres::Error),
    Sent(postgres::Error),
}

/// Why a change did not apply: the store's own refusal, or the database's error.
enum Failed {
    Store(StoreError),
    Pg(postgres::Error),
}

impl From<postgres::Error> for Failed {
    fn from(e: postgres::Error) -> Self {
        Failed::Pg(e)
    }
}

fn text_of(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn decode_user(kuid: String, content: &str) -> Result<User> {
    let content: Map<String, Value> =
        serde_json::from_str(content).map_err(|e| StoreError::Backend(format!("user {kuid}: {e}")))?;
    Ok(User { kuid, content })
}

/// A row if the first admin was ever created: an admin exists, or one was once (demoting or
/// deleting every admin never reopens createFirstAdmin).
const FIRST_ADMIN_DONE: &str = "SELECT 1 WHERE EXISTS (SELECT 1 FROM users WHERE is_admin)
     OR EXISTS (SELECT 1 FROM meta WHERE key = 'first_admin')";

fn apply(
    tx: &mut impl GenericClient,
    statements: &mut HashMap<&'static str, Statement>,
    change: &Change,
) -> std::result::Result<(), Failed> {
    let mut run = |sql: &'static str, params: &[&(dyn ToSql + Sync)]| -> std::result::Result<u64, postgres::Error> {
        let statement = prepared(tx, statements, sql)?;
        tx.execute(&statement, params)
    };
    match change {
        Change::InsertUser { user, first_admin } => {
            if *first_admin {
                run("SELECT pg_advisory_xact_lock($1)", &[&ADMIN_LOCK])?;
                let admins = run(FIRST_ADMIN_DONE, &[])?;
                if admins > 0 {
                    return Err(Failed::Store(StoreError::AdminExists));
                }
            }
            let content = Value::Object(user.content.clone()).to_string();
            let inserted = run(
                "INSERT INTO users (kuid, content, is_admin) VALUES ($1, $2, $3) ON CONFLICT (kuid) DO NOTHING",
                &[&user.kuid, &content, &user.is_admin()],
            )?;
            if inserted == 0 {
                return Err(Failed::Store(StoreError::UserExists(user.kuid.clone())));
            }
            if *first_admin {
                run(
                    "INSERT INTO meta (key, value) VALUES ('first_admin', $1) ON CONFLICT (key) DO NOTHING",
                    &[&user.kuid],
                )?;
            }
        }
        Change::UpdateUser(user) => {
            let content = Value::Object(user.content.clone()).to_string();
            run(
                "UPDATE users SET content = $2, is_admin = $3 WHERE kuid = $1",
                &[&user.kuid, &content, &user.is_admin()],
            )?;
        }
        Change::DeleteUser(kuid) => {
            run("DELETE FROM users WHERE kuid = $1", &[kuid])?;
            run("DELETE FROM credential_links WHERE kuid = $1", &[kuid])?;
        }
        Change::Link { strategy, kuid } => {
            run(
                "INSERT INTO credential_links (strategy, kuid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[strategy, kuid],
            )?;
        }
        Change::Unlink { strategy, kuid } => {
            run("DELETE FROM credential_links WHERE strategy = $1 AND kuid = $2", &[strategy, kuid])?;
        }
        Change::KvPut { strategy, key, value, expires_ms, insert: false } => {
            run(
                "INSERT INTO strategy_kv (strategy, key, value, expires_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (strategy, key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms",
                &[strategy, &key.as_bytes(), &value.as_bytes(), expires_ms],
            )?;
        }
        Change::KvPut { strategy, key, value, expires_ms, insert: true } => {
            // Over an expired value only (it reads as absent). Waits for another node's
            // uncommitted insert of the same key, then loses to it.
            let stored = run(
                "INSERT INTO strategy_kv AS r (strategy, key, value, expires_ms) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (strategy, key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms
                 WHERE r.expires_ms <= $5",
                &[strategy, &key.as_bytes(), &value.as_bytes(), expires_ms, &crate::store::now_ms()],
            )?;
            if stored == 0 {
                return Err(Failed::Store(StoreError::Taken { strategy: strategy.clone(), key: key.clone() }));
            }
        }
        Change::KvDelete { strategy, key } => {
            run("DELETE FROM strategy_kv WHERE strategy = $1 AND key = $2", &[strategy, &key.as_bytes()])?;
        }
        Change::KvSweep { now_ms } => {
            // A bounded batch: the writer commits every request's changes, it must not stall.
            run(
                "DELETE FROM strategy_kv WHERE (strategy, key) IN
                 (SELECT strategy, key FROM strategy_kv WHERE expires_ms <= $1 LIMIT 10000)",
                &[now_ms],
            )?;
        }
        Change::RevokeToken { jti, void_from_ms, expires_ms, refresh: true } => {
            // Waits for another node's uncommitted claim of the same token, then loses to it.
            let inserted = run(
                "INSERT INTO revoked_tokens (jti, void_from_ms, expires_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (jti) DO NOTHING",
                &[jti, void_from_ms, expires_ms],
            )?;
            if inserted == 0 {
                return Err(Failed::Store(StoreError::Refreshed));
            }
        }
        Change::RevokeToken { jti, void_from_ms, expires_ms, refresh: false } => {
            run(
                "INSERT INTO revoked_tokens AS r (jti, void_from_ms, expires_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (jti) DO UPDATE SET void_from_ms = LEAST(r.void_from_ms, excluded.void_from_ms)",
                &[jti, void_from_ms, expires_ms],
            )?;
        }
        Change::RevokeUser { kuid, cutoff_ms, api_keys } => {
            let keys_cutoff = api_keys.then_some(*cutoff_ms);
            // GREATEST ignores NULLs: a cut-off without API keys keeps the one with.
            run(
                "INSERT INTO revoked_users AS r (kuid, cutoff_ms, api_keys_cutoff_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (kuid) DO UPDATE SET cutoff_ms = GREATEST(r.cutoff_ms, excluded.cutoff_ms),
                   api_keys_cutoff_ms = GREATEST(r.api_keys_cutoff_ms, excluded.api_keys_cutoff_ms)",
                &[kuid, cutoff_ms, &keys_cutoff],
            )?;
        }
        Change::PutStrategy(st) => {
            let fields = st.fields.as_ref().map(|f| Value::from(f.clone()).to_string());
            run(
                "INSERT INTO strategy_modules (name, wasm, hash, config, limits, registered_at_ms, fields, outbound, provision)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (name) DO UPDATE SET wasm = excluded.wasm, hash = excluded.hash, config = excluded.config,
                   limits = excluded.limits, registered_at_ms = excluded.registered_at_ms, fields = excluded.fields,
                   outbound = excluded.outbound, provision = excluded.provision",
                &[
                    &st.name,
                    &st.wasm,
                    &st.hash,
                    &st.config,
                    &st.limits,
                    &st.registered_at_ms,
                    &fields,
                    &st.outbound,
                    &st.provision,
                ],
            )?;
        }
        Change::DeleteStrategy(name) => {
            run("DELETE FROM strategy_modules WHERE name = $1", &[name])?;
        }
        Change::PutDoc { kind, id, body, owner, insert: true } => {
            let stored = run(
                "INSERT INTO security_docs (kind, id, body, owner) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (kind, id) DO NOTHING",
                &[&kind.name(), id, body, owner],
            )?;
            if stored == 0 {
                return Err(Failed::Store(StoreError::DocExists { kind: kind.name().into(), id: id.clone() }));
            }
        }
        Change::PutDoc { kind, id, body, owner, insert: false } => {
            run(
                "INSERT INTO security_docs (kind, id, body, owner) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, owner = excluded.owner",
                &[&kind.name(), id, body, owner],
            )?;
        }
        Change::DeleteDoc { kind, id } => {
            run("DELETE FROM security_docs WHERE kind = $1 AND id = $2", &[&kind.name(), id])?;
        }
        Change::SetMeta { key, value } => {
            run(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[key, value],
            )?;
        }
    }
    Ok(())
}

/// The smallest byte string greater than every one that starts with `prefix`: the last byte
/// below 0xFF incremented, what follows dropped. `None` when nothing bounds the range.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A text PostgreSQL cannot hold (a NUL character): no row has it, so a read of it finds
/// nothing rather than failing (`users::create` refuses such a kuid on every backend).
fn unstorable(text: &str) -> bool {
    text.contains('\0')
}

fn stored_strategy(r: &postgres::Row) -> StoredStrategy {
    StoredStrategy {
        name: r.get(0),
        wasm: r.get(1),
        hash: r.get(2),
        config: r.get(3),
        limits: r.get(4),
        registered_at_ms: r.get(5),
        fields: r.get::<_, Option<String>>(6).and_then(|text| serde_json::from_str(&text).ok()),
        outbound: r.get(7),
        provision: r.get(8),
    }
}

impl Store for Postgres {
    fn get_user(&self, kuid: &str) -> Result<Option<User>> {
        if unstorable(kuid) {
            return Ok(None);
        }
        let rows = self.read(|c| c.query("SELECT content FROM users WHERE kuid = $1", &[&kuid]))?;
        rows.first().map(|r| decode_user(kuid.to_string(), r.get(0))).transpose()
    }

    fn admin_exists(&self) -> Result<bool> {
        Ok(!self.read(|c| c.query(FIRST_ADMIN_DONE, &[]))?.is_empty())
    }

    fn linked_strategies(&self, kuid: &str) -> Result<Vec<String>> {
        if unstorable(kuid) {
            return Ok(Vec::new());
        }
        let rows = self
            .read(|c| c.query("SELECT strategy FROM credential_links WHERE kuid = $1 ORDER BY strategy", &[&kuid]))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn is_linked(&self, strategy: &str, kuid: &str) -> Result<bool> {
        if unstorable(kuid) {
            return Ok(false);
        }
        let rows = self.read(|c| {
            c.query("SELECT 1 FROM credential_links WHERE strategy = $1 AND kuid = $2", &[&strategy, &kuid])
        })?;
        Ok(!rows.is_empty())
    }

    fn has_links(&self, strategy: &str) -> Result<bool> {
        let rows =
            self.read(|c| c.query("SELECT 1 FROM credential_links WHERE strategy = $1 LIMIT 1", &[&strategy]))?;
        Ok(!rows.is_empty())
    }

    fn kv_entry(&self, strategy: &str, key: &str, now_ms: i64) -> Result<Option<KvEntry>> {
        let rows = self.read(|c| {
            c.query(
                "SELECT value, expires_ms FROM strategy_kv
                 WHERE strategy = $1 AND key = $2 AND (expires_ms IS NULL OR expires_ms > $3)",
                &[&strategy, &key.as_bytes(), &now_ms],
            )
        })?;
        Ok(rows.into_iter().next().map(|r| KvEntry { value: text_of(r.get(0)), expires_ms: r.get(1) }))
    }

    fn kv_list(&self, strategy: &str, prefix: &str, limit: u32) -> Result<Vec<String>> {
        let (now, limit) = (super::now_ms(), i64::from(limit));
        let rows = self.read(|c| match prefix_end(prefix.as_bytes()) {
            Some(end) => c.query(
                "SELECT key FROM strategy_kv WHERE strategy = $1 AND key >= $2 AND key < $3
                 AND (expires_ms IS NULL OR expires_ms > $5) ORDER BY key LIMIT $4",
                &[&strategy, &prefix.as_bytes(), &end, &limit, &now],
            ),
            None => c.query(
                "SELECT key FROM strategy_kv WHERE strategy = $1 AND key >= $2
                 AND (expires_ms IS NULL OR expires_ms > $4) ORDER BY key LIMIT $3",
                &[&strategy, &prefix.as_bytes(), &limit, &now],
            ),
        })?;
        Ok(rows.into_iter().map(|r| text_of(r.get(0))).collect())
    }

    fn kv_usage(&self, strategy: &str) -> Result<KvUsage> {
        let rows =
            self.read(|c| c.query("SELECT keys, bytes FROM strategy_kv_usage WHERE strategy = $1", &[&strategy]))?;
        Ok(rows.first().map_or_else(KvUsage::default, |r| KvUsage {
            keys: r.get::<_, i64>(0).max(0) as u64,
            bytes: r.get::<_, i64>(1).max(0) as u64,
        }))
    }

    fn meta_get(&self, key: &str) -> Result<Option<String>> {
        let rows = self.read(|c| c.query("SELECT value FROM meta WHERE key = $1", &[&key]))?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        let rows = self.read(|c| {
            c.query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", &[&key, &value])?;
            c.query("SELECT value FROM meta WHERE key = $1", &[&key])
        })?;
        rows.first().map(|r| r.get(0)).ok_or_else(|| StoreError::Backend(format!("meta {key} vanished")))
    }

    fn docs(&self, kind: Doc) -> Result<Vec<(String, String)>> {
        let rows = self.read(|c| {
            c.query("SELECT id, body FROM security_docs WHERE kind = $1 ORDER BY id COLLATE \"C\"", &[&kind.name()])
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn docs_of(&self, kind: Doc, owner: &str) -> Result<Vec<(String, String)>> {
        let rows = self.read(|c| {
            c.query(
                "SELECT id, body FROM security_docs WHERE kind = $1 AND owner = $2 ORDER BY id COLLATE \"C\"",
                &[&kind.name(), &owner],
            )
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn users_after(&self, after: &str, limit: u32) -> Result<Vec<User>> {
        let rows = self.read(|c| {
            c.query(
                // Byte order, as SQLite's: the same pages whatever the database's locale.
                "SELECT kuid, content FROM users WHERE kuid COLLATE \"C\" > $1 ORDER BY kuid COLLATE \"C\" LIMIT $2",
                &[&after, &(limit as i64)],
            )
        })?;
        rows.iter().map(|r| decode_user(r.get(0), r.get(1))).collect()
    }

    fn strategies(&self) -> Result<Vec<StoredStrategy>> {
        let rows = self.read(|c| {
            c.query(
                "SELECT name, wasm, hash, config, limits, registered_at_ms, fields, outbound, provision
                 FROM strategy_modules ORDER BY name",
                &[],
            )
        })?;
        Ok(rows.iter().map(stored_strategy).collect())
    }

    fn strategy_versions(&self) -> Result<Vec<(String, String, i64)>> {
        let rows =
            self.read(|c| c.query("SELECT name, hash, registered_at_ms FROM strategy_modules ORDER BY name", &[]))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    fn strategy(&self, name: &str) -> Result<Option<StoredStrategy>> {
        let rows = self.read(|c| {
            c.query(
                "SELECT name, wasm, hash, config, limits, registered_at_ms, fields, outbound, provision
                 FROM strategy_modules WHERE name = $1",
                &[&name],
            )
        })?;
        Ok(rows.first().map(stored_strategy))
    }

    fn revocations(&self, now_ms: i64) -> Result<Revocations> {
        self.read(|c| {
            // Rows for tokens that have expired anyway are useless: drop them on the way.
            c.query("DELETE FROM revoked_tokens WHERE expires_ms IS NOT NULL AND expires_ms < $1", &[&now_ms])?;
            let tokens = c
                .query("SELECT jti, void_from_ms, expires_ms FROM revoked_tokens", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            let users = c
                .query("SELECT kuid, cutoff_ms, api_keys_cutoff_ms FROM revoked_users", &[])?
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect();
            Ok(Revocations { tokens, users })
        })
    }

    fn commit(&self, changes: &[Change]) -> Result<()> {
        self.commit_group(&[changes]).pop().unwrap_or(Ok(()))
    }

    fn commit_group(&self, batches: &[&[Change]]) -> Vec<Result<()>> {
        if batches.iter().all(|b| b.is_empty()) {
            return batches.iter().map(|_| Ok(())).collect();
        }
        let every = |e: StoreError| batches.iter().map(|_| Err(e.clone())).collect();
        let mut conn = match self.conn() {
            Ok(conn) => conn,
            Err(e) => return every(e),
        };
        let mut attempt = 1;
        loop {
            match self.try_group(&mut conn, batches) {
                Ok(outcomes) => return outcomes,
                // The connection was closed while pooled (a restart): nothing was sent yet.
                Err(GroupError::Begin(_)) if conn.client.is_closed() && attempt < ATTEMPTS => {
                    attempt += 1;
                    self.suspicion.raise();
                    conn = match self.conn() {
                        Ok(fresh) => fresh,
                        Err(e) => return every(e),
                    };
                }
                Err(GroupError::Sent(e)) if retryable(&e) && attempt < ATTEMPTS => attempt += 1,
                // The transaction did not commit (or, if the connection died at COMMIT, we
                // cannot know): every batch is reported failed.
                Err(GroupError::Begin(e) | GroupError::Sent(e)) => {
                    if e.is_closed() {
                        self.suspicion.raise();
                    }
                    return every(unavailable_or_backend(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_are_bytewise() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
