//! What the nodes on one database share beyond the tables: notices (LISTEN on a dedicated
//! connection, reconnected by itself) and the soft lock's failure counters.

use super::conn::{Conn, notify, prepared, unavailable_or_backend};
use super::{CHANNEL, Postgres};
use crate::store::Result;
use crate::store::cluster::{Envelope, FailureCount, Heard, Notice, Shared, Tally};
use postgres::NoTls;
use postgres::fallible_iterator::FallibleIterator;
use std::time::{Duration, Instant};

/// How long the listener waits for a notice before it tells its caller it is idle.
const IDLE: Duration = Duration::from_secs(1);
/// How often an idle listener checks that its connection still answers (a database that
/// vanished without closing the socket is found out by then, or by TCP keepalives).
const PING_EVERY: Duration = Duration::from_secs(5);
/// Waits between reconnection attempts: from the first to the longest.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// One failure more, with the soft lock's rules (a lock that ran out, or failures long apart,
/// start a fresh count; `$3` failures lock for `$4` ms), in one statement.
const COUNT_FAILURE: &str = "
    INSERT INTO login_failures AS f (id, count, last_ms, locked_until_ms)
    VALUES ($1, 1, $2::bigint, CASE WHEN $3::integer <= 1 THEN $2::bigint + $4::bigint END)
    ON CONFLICT (id) DO UPDATE SET
        count = CASE WHEN f.locked_until_ms <= $2 OR $2 - f.last_ms >= $4 THEN 1 ELSE f.count + 1 END,
        last_ms = $2,
        locked_until_ms = CASE
            WHEN f.locked_until_ms <= $2 OR $2 - f.last_ms >= $4 THEN CASE WHEN $3 <= 1 THEN $2 + $4 END
            WHEN f.count + 1 >= $3 THEN $2 + $4
            ELSE f.locked_until_ms
        END
    RETURNING count, locked_until_ms";

impl Shared for Postgres {
    fn node(&self) -> &str {
        &self.node
    }

    fn tally(&self, tallies: &[Tally], now_ms: i64) -> Result<()> {
        if tallies.is_empty() {
            return Ok(());
        }
        let node = self.node.clone();
        // Not `read`: a transaction whose connection died at COMMIT may have committed, and
        // running it again would count the same failures twice.
        self.with(|conn: &mut Conn| count(conn, &node, tallies, now_ms).map_err(unavailable_or_backend))
    }

    fn failures(&self, now_ms: i64, lockout_ms: i64) -> Result<Vec<FailureCount>> {
        let since = now_ms.saturating_sub(lockout_ms);
        let rows = self.read(|c| {
            // Counters that count no more are dropped on the way.
            c.query(
                "DELETE FROM login_failures WHERE (locked_until_ms IS NULL OR locked_until_ms <= $1) AND last_ms <= $2",
                &[&now_ms, &since],
            )?;
            c.query("SELECT id, count, locked_until_ms FROM login_failures", &[])
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id: Vec<u8> = r.get(0);
                Some(FailureCount {
                    id: id.try_into().ok()?,
                    count: r.get::<_, i32>(1).max(0) as u32,
                    locked_until_ms: r.get(2),
                })
            })
            .collect())
    }

    fn listen(&self, mut heard: Box<dyn FnMut(Heard) -> bool + Send>) {
        let config = self.config.clone();
        let spawned =
            std::thread::Builder::new().name("sandgate-listen".into()).spawn(move || listen_loop(&config, &mut *heard));
        if let Err(e) = spawned {
            tracing::error!("cannot start the PostgreSQL listener: {e}");
        }
    }
}

/// Connects, LISTENs, hands over what it hears; reconnects whenever the connection fails.
fn listen_loop(config: &postgres::Config, heard: &mut dyn FnMut(Heard) -> bool) {
    let mut retry = RETRY_FIRST;
    loop {
        match config.connect(NoTls).and_then(|mut c| c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|_| c)) {
            Ok(mut client) => {
                retry = RETRY_FIRST;
                tracing::info!("listening to the other nodes on PostgreSQL");
                if !heard(Heard::Connected) {
                    return;
                }
                let mut pinged = Instant::now();
                loop {
                    let next = client.notifications().timeout_iter(IDLE).next();
                    let go_on = match next {
                        Ok(Some(n)) => heard(Heard::Notice(Envelope::parse(n.payload()))),
                        Ok(None) if client.is_closed() => break,
                        Ok(None) => {
                            if pinged.elapsed() >= PING_EVERY {
                                pinged = Instant::now();
                                if let Err(e) = client.simple_query("") {
                                    tracing::warn!("lost the PostgreSQL listener: {}", unavailable_or_backend(e));
                                    break;
                                }
                            }
                            heard(Heard::Idle)
                        }
                        Err(e) => {
                            tracing::warn!("lost the PostgreSQL listener: {}", unavailable_or_backend(e));
                            break;
                        }
                    };
                    if !go_on {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!("cannot listen on PostgreSQL (retrying): {}", unavailable_or_backend(e)),
        }
        // Idle while disconnected too: the caller may want to stop.
        if !heard(Heard::Idle) {
            return;
        }
        std::thread::sleep(retry);
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// Counts `tallies` in one transaction and tells the other nodes, in it, what they came to.
fn count(conn: &mut Conn, node: &str, tallies: &[Tally], now_ms: i64) -> std::result::Result<(), postgres::Error> {
    let Conn { client, statements, .. } = conn;
    let mut tx = client.transaction()?;
    let mut payloads = Vec::with_capacity(tallies.len());
    for tally in tallies {
        let notice = match tally {
            Tally::Failed { id, threshold, lockout_ms } => {
                let statement = prepared(&mut tx, statements, COUNT_FAILURE)?;
                let threshold = i32::try_from(*threshold).unwrap_or(i32::MAX);
                let row = tx.query_one(&statement, &[&&id[..], &now_ms, &threshold, lockout_ms])?;
                let count: i32 = row.get(0);
                Notice::Failures { id: hex::encode(id), count: count.max(0) as u32, locked_until_ms: row.get(1) }
            }
            Tally::Cleared { id } => {
                let statement = prepared(&mut tx, statements, "DELETE FROM login_failures WHERE id = $1")?;
                tx.execute(&statement, &[&&id[..]])?;
                Notice::Cleared { id: hex::encode(id) }
            }
        };
        payloads.push(Envelope::payload(node, notice));
    }
    notify(&mut tx, statements, &payloads)?;
    tx.commit()
}
