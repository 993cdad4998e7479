//! What several nodes on one database share beyond its tables ([`Shared`]): the notices a
//! node sends when it has committed something the others keep in memory (with PostgreSQL, a
//! `NOTIFY` in the committing transaction, so it goes out if and only if the change is
//! durable, in commit order), and the soft lock's failure counters.
//!
//! A notice is small: it names what changed, never carries a secret or a component. A node
//! that receives it drops its copy and reads again, or applies the revocation it carries.

use super::{Change, Doc, Result};
use serde::{Deserialize, Serialize};

/// PostgreSQL's limit on a notification payload is 8000 bytes; past this, a notice becomes
/// [`Notice::Flush`].
pub const MAX_PAYLOAD: usize = 7900;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "n", rename_all = "snake_case")]
pub enum Notice {
    /// A user, or the strategies holding its credentials, changed.
    User { kuid: String },
    /// A strategy's stored value changed.
    Kv { strategy: String, key: String },
    /// A token is void from `void_from_ms`.
    RevokeToken { jti: String, void_from_ms: i64 },
    /// Every token of `kuid` issued at or before `cutoff_ms` is void.
    RevokeUser {
        kuid: String,
        cutoff_ms: i64,
        #[serde(default)]
        api_keys: bool,
    },
    /// An uploaded strategy was registered, replaced or removed.
    Strategy { name: String },
    /// A role or a profile changed: every node reads the rights again.
    Rights,
    /// A login failure counter (soft lock), as the database holds it now.
    Failures { id: String, count: u32, locked_until_ms: Option<i64> },
    /// A login succeeded: the counter is gone.
    Cleared { id: String },
    /// Something too large to name changed: drop every cache and read everything again.
    Flush,
}

impl Notice {
    /// What another node must hear of a committed change, if anything.
    pub fn of(change: &Change) -> Option<Notice> {
        Some(match change {
            Change::InsertUser { user, .. } | Change::UpdateUser(user) => Notice::User { kuid: user.kuid.clone() },
            Change::DeleteUser(kuid) | Change::Link { kuid, .. } | Change::Unlink { kuid, .. } => {
                Notice::User { kuid: kuid.clone() }
            }
            Change::KvPut { strategy, key, .. } | Change::KvDelete { strategy, key } => {
                Notice::Kv { strategy: strategy.clone(), key: key.clone() }
            }
            Change::RevokeToken { jti, void_from_ms, .. } => {
                Notice::RevokeToken { jti: jti.clone(), void_from_ms: *void_from_ms }
            }
            Change::RevokeUser { kuid, cutoff_ms, api_keys } => {
                Notice::RevokeUser { kuid: kuid.clone(), cutoff_ms: *cutoff_ms, api_keys: *api_keys }
            }
            Change::PutStrategy(s) => Notice::Strategy { name: s.name.clone() },
            Change::DeleteStrategy(name) => Notice::Strategy { name: name.clone() },
            Change::PutDoc { kind: Doc::Role | Doc::Profile, .. }
            | Change::DeleteDoc { kind: Doc::Role | Doc::Profile, .. } => Notice::Rights,
            // Expired keys read as absent already and are never cached; the token secret is
            // read once at start-up; API keys are read when asked for (a deleted one is also
            // a revoked token, which has its notice).
            Change::KvSweep { .. }
            | Change::SetMeta { .. }
            | Change::PutDoc { kind: Doc::ApiKey, .. }
            | Change::DeleteDoc { kind: Doc::ApiKey, .. } => return None,
        })
    }

    /// The change a remote revocation stands for (to mirror it in memory).
    pub fn revocation(&self) -> Option<Change> {
        match self {
            Notice::RevokeToken { jti, void_from_ms } => Some(Change::RevokeToken {
                jti: jti.clone(),
                void_from_ms: *void_from_ms,
                expires_ms: None,
                refresh: false,
            }),
            Notice::RevokeUser { kuid, cutoff_ms, api_keys } => {
                Some(Change::RevokeUser { kuid: kuid.clone(), cutoff_ms: *cutoff_ms, api_keys: *api_keys })
            }
            _ => None,
        }
    }
}

/// What a node's listener hears.
#[derive(Debug)]
pub enum Heard {
    /// (Re)connected and listening: notices sent before may have been missed.
    Connected,
    Notice(Envelope),
    /// Nothing for a second (or still disconnected).
    Idle,
}

/// A notice on the wire, with the node that sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub from: String,
    #[serde(flatten)]
    pub notice: Notice,
}

impl Envelope {
    /// The payload: JSON, at most [`MAX_PAYLOAD`] bytes (a longer one says [`Notice::Flush`]).
    pub fn payload(from: &str, notice: Notice) -> String {
        let text = serde_json::to_string(&Envelope { from: from.to_string(), notice }).unwrap_or_default();
        if text.len() <= MAX_PAYLOAD {
            return text;
        }
        serde_json::to_string(&Envelope { from: from.to_string(), notice: Notice::Flush }).unwrap_or_default()
    }

    /// A payload heard; one that is not ours to read (another program on the channel, a
    /// newer Sandgate) asks for a full re-read, which is always safe.
    pub fn parse(payload: &str) -> Envelope {
        serde_json::from_str(payload).unwrap_or(Envelope { from: String::new(), notice: Notice::Flush })
    }
}

/// A login failure counter (the soft lock's), by its 16-byte digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    pub id: [u8; 16],
    pub count: u32,
    pub locked_until_ms: Option<i64>,
}

/// A login's outcome for one counter, to count in the shared database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    /// One more failure; locked for `lockout_ms` once there are `threshold`.
    Failed { id: [u8; 16], threshold: u32, lockout_ms: i64 },
    /// A success: the count starts over.
    Cleared { id: [u8; 16] },
}

/// What a database shared by several nodes adds: the nodes hear of each other's commits, and
/// count login failures together (an attacker gains nothing by spreading attempts over nodes).
pub trait Shared: Send + Sync + 'static {
    /// This node's name in what it sends (it skips its own notices).
    fn node(&self) -> &str;
    /// Counts failures and successes; every node hears the result ([`Notice::Failures`],
    /// [`Notice::Cleared`]).
    fn tally(&self, tallies: &[Tally], now_ms: i64) -> Result<()>;
    /// The counters that still count at `now_ms` (a node catching up reads them all).
    fn failures(&self, now_ms: i64, lockout_ms: i64) -> Result<Vec<FailureCount>>;
    /// Calls `heard` on a thread of its own with every notice, each time it has
    /// (re)connected (notices sent meanwhile are lost: everything must be read again), and
    /// when idle. Stops when `heard` answers false.
    fn listen(&self, heard: Box<dyn FnMut(Heard) -> bool + Send>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_under_the_payload_limit() {
        let notice = Notice::RevokeUser { kuid: "alice".into(), cutoff_ms: 42, api_keys: false };
        let text = Envelope::payload("node-a", notice.clone());
        assert_eq!(Envelope::parse(&text), Envelope { from: "node-a".into(), notice });
        let long = Notice::Kv { strategy: "s".into(), key: "k".repeat(10_000) };
        let text = Envelope::payload("node-a", long);
        assert!(text.len() <= MAX_PAYLOAD);
        assert_eq!(Envelope::parse(&text).notice, Notice::Flush);
        assert_eq!(Envelope::parse("not json").notice, Notice::Flush);
    }
}
