//! The PostgreSQL schema, numbered from the first version on as SQLite's is, in a table of
//! its own (`sandgate_schema`). Nodes starting together migrate one at a time (an advisory
//! lock held by the migrating transaction); a node refuses a schema newer than it knows.

use super::conn::{Conn, unavailable_or_backend};
use crate::store::{Result, StoreError};

/// Schema versions, applied in order; never edit a released one, append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's five versions hold, plus the shared login failure counters.
    //    Strategy keys and values are bytes: compared bytewise (a prefix is a key range, as in
    //    SQLite) and free to hold any character, NUL included.
    r#"
    CREATE TABLE users (
        kuid TEXT PRIMARY KEY,
        content TEXT NOT NULL,
        is_admin BOOLEAN NOT NULL DEFAULT false
    );
    CREATE INDEX users_admin ON users(is_admin) WHERE is_admin;
    CREATE TABLE credential_links (
        strategy TEXT NOT NULL,
        kuid TEXT NOT NULL,
        PRIMARY KEY (strategy, kuid)
    );
    CREATE INDEX credential_links_kuid ON credential_links(kuid);
    CREATE TABLE strategy_kv (
        strategy TEXT NOT NULL,
        key BYTEA NOT NULL,
        value BYTEA NOT NULL,
        expires_ms BIGINT,
        PRIMARY KEY (strategy, key)
    );
    CREATE INDEX strategy_kv_expiry ON strategy_kv(expires_ms) WHERE expires_ms IS NOT NULL;
    -- Per-strategy usage, kept exact in the writing transaction (a quota check reads a row).
    CREATE TABLE strategy_kv_usage (
        strategy TEXT PRIMARY KEY,
        keys BIGINT NOT NULL,
        bytes BIGINT NOT NULL
    );
    CREATE FUNCTION sandgate_kv_usage() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO strategy_kv_usage AS u (strategy, keys, bytes)
                VALUES (NEW.strategy, 1, octet_length(NEW.key) + octet_length(NEW.value))
                ON CONFLICT (strategy) DO UPDATE SET keys = u.keys + 1, bytes = u.bytes + excluded.bytes;
        ELSIF TG_OP = 'UPDATE' THEN
            UPDATE strategy_kv_usage SET bytes = bytes - octet_length(OLD.value) + octet_length(NEW.value)
                WHERE strategy = NEW.strategy;
        ELSE
            UPDATE strategy_kv_usage SET keys = keys - 1, bytes = bytes - octet_length(OLD.key) - octet_length(OLD.value)
                WHERE strategy = OLD.strategy;
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER strategy_kv_usage AFTER INSERT OR DELETE OR UPDATE OF value ON strategy_kv
        FOR EACH ROW EXECUTE FUNCTION sandgate_kv_usage();
    CREATE TABLE revoked_tokens (
        jti TEXT PRIMARY KEY,
        void_from_ms BIGINT NOT NULL,
        expires_ms BIGINT
    );
    CREATE TABLE revoked_users (
        kuid TEXT PRIMARY KEY,
        cutoff_ms BIGINT NOT NULL
    );
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE strategy_modules (
        name TEXT PRIMARY KEY,
        wasm BYTEA NOT NULL,
        hash TEXT NOT NULL,
        config TEXT NOT NULL,
        limits TEXT NOT NULL,
        registered_at_ms BIGINT NOT NULL,
        fields TEXT,
        outbound TEXT NOT NULL DEFAULT '[]',
        provision TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE login_failures (
        id BYTEA PRIMARY KEY,
        count INTEGER NOT NULL,
        last_ms BIGINT NOT NULL,
        locked_until_ms BIGINT
    );
    "#,
    // 2: security documents: roles, profiles, API keys (their fingerprints, never the keys);
    //    the first admin's creation recorded for good; a deleted user's cut-off that also ends
    //    its API keys; users in byte order (their pages, whatever the database's locale).
    r#"
    CREATE TABLE security_docs (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        body TEXT NOT NULL,
        owner TEXT,
        PRIMARY KEY (kind, id)
    );
    CREATE INDEX security_docs_owner ON security_docs(kind, owner) WHERE owner IS NOT NULL;
    INSERT INTO meta (key, value) SELECT 'first_admin', kuid FROM users WHERE is_admin LIMIT 1
        ON CONFLICT (key) DO NOTHING;
    ALTER TABLE revoked_users ADD COLUMN api_keys_cutoff_ms BIGINT;
    CREATE INDEX users_kuid_bytes ON users (kuid COLLATE "C");
    "#,
];

/// The advisory lock migrations hold (any number: Sandgate's).
const MIGRATION_LOCK: i64 = 0x5a4e_d647;

/// Brings the schema up to date, or refuses a newer one.
pub fn migrate(conn: &mut Conn) -> Result<usize> {
    let mut tx = conn.client.transaction().map_err(unavailable_or_backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(unavailable_or_backend)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sandgate_schema (version INTEGER NOT NULL);
         INSERT INTO sandgate_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM sandgate_schema);",
    )
    .map_err(unavailable_or_backend)?;
    let current: i32 = tx.query_one("SELECT version FROM sandgate_schema", &[]).map_err(unavailable_or_backend)?.get(0);
    let current = current.max(0) as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database schema is version {current}, newer than this Sandgate knows ({}); refusing to touch it",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.batch_execute(sql).map_err(|e| StoreError::Backend(format!("migration {}: {e}", i + 1)))?;
        tx.execute("UPDATE sandgate_schema SET version = $1", &[&((i + 1) as i32)]).map_err(unavailable_or_backend)?;
    }
    tx.commit().map_err(unavailable_or_backend)?;
    Ok(MIGRATIONS.len())
}
