//! A pooled PostgreSQL connection with its prepared statements, and what a database error
//! means for the caller (unavailable, worth retrying, or a plain failure).

use crate::store::StoreError;
use postgres::{GenericClient, NoTls, Statement, types::ToSql};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A pooled connection and the statements prepared on it.
pub struct Conn {
    pub(super) client: postgres::Client,
    pub(super) statements: HashMap<&'static str, Statement>,
    /// The [`Suspicion`] generation this connection was last known good at.
    pub(super) checked: u64,
}

/// When one pooled connection is found closed, the database most likely restarted and
/// closed them all: the generation moves on, and every connection older than it is checked
/// with one round trip before its next use. In steady state nothing is checked.
#[derive(Clone, Default)]
pub(super) struct Suspicion(Arc<AtomicU64>);

impl Suspicion {
    pub(super) fn raise(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
    fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
    /// Whether `conn` may be used as is; checks it (and marks it good) if it is older than
    /// the last suspicion.
    pub(super) fn vouch(&self, conn: &mut Conn) -> bool {
        let now = self.current();
        if conn.checked == now {
            return true;
        }
        let good = conn.client.simple_query("").is_ok();
        if good {
            conn.checked = now;
        }
        good
    }
}

pub(super) struct Manager {
    pub(super) config: postgres::Config,
    pub(super) suspicion: Suspicion,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<Conn, postgres::Error> {
        let checked = self.suspicion.current();
        Ok(Conn { client: self.config.connect(NoTls)?, statements: HashMap::new(), checked })
    }
    fn is_valid(&self, conn: &mut Conn) -> std::result::Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }
    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// A statement prepared once per connection: the SQL text is its key.
pub(super) fn prepared(
    client: &mut impl GenericClient,
    cache: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> std::result::Result<Statement, postgres::Error> {
    if let Some(statement) = cache.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql)?;
    cache.insert(sql, statement.clone());
    Ok(statement)
}

impl Conn {
    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Vec<postgres::Row>, postgres::Error> {
        let statement = prepared(&mut self.client, &mut self.statements, sql)?;
        self.client.query(&statement, params)
    }
}

/// A failure that says the database could not be reached or is going away is
/// [`StoreError::Unavailable`]; anything else is [`StoreError::Backend`].
pub(super) fn unavailable_or_backend(e: postgres::Error) -> StoreError {
    let unreachable = match e.as_db_error() {
        // 08: connection exceptions; 57P: shutting down, cannot connect now; 53300: too many
        // connections; 57014: a statement cancelled (our statement timeout).
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P") || code == "53300" || code == "57014"
        }
        None => {
            e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
        }
    };
    // A database error says what in its message (the error's own text is "db error").
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    if unreachable { StoreError::Unavailable(text) } else { StoreError::Backend(text) }
}

/// Deadlocks and serialization failures: the other node's transaction won, try again.
pub(super) fn retryable(e: &postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| matches!(db.code().code(), "40P01" | "40001"))
}

/// Sends notices in the current transaction (delivered when it commits).
pub(super) fn notify(
    tx: &mut impl GenericClient,
    statements: &mut HashMap<&'static str, Statement>,
    payloads: &[String],
) -> std::result::Result<(), postgres::Error> {
    let statement = prepared(tx, statements, "SELECT pg_notify('sandgate', n) FROM unnest($1::text[]) AS n")?;
    tx.query(&statement, &[&payloads])?;
    Ok(())
}
