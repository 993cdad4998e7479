//! Persistence behind a trait. The embedded default is SQLite ([`sqlite::Sqlite`]); several
//! Sandgate nodes share one PostgreSQL database ([`postgres::Postgres`]), which also carries
//! what the nodes tell each other ([`cluster::Shared`]). The API code never sees SQL.
//!
//! Every method is blocking: call it from a blocking thread, never from the async reactor.
//! Writes go through [`Store::commit`], one atomic batch per request, so a request that fails
//! half-way leaves nothing behind (no user without credentials, no orphan credentials).

pub mod cluster;
pub mod front;
pub mod postgres;
pub mod sqlite;

use serde_json::{Map, Value};

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone)]
pub enum StoreError {
    /// `InsertUser` for a kuid that exists.
    UserExists(String),
    /// `InsertUser { first_admin: true }` while an admin exists.
    AdminExists,
    /// A `RevokeToken { refresh: true }` for a token revoked or refreshed already.
    Refreshed,
    /// A `KvPut { insert: true }` for a key another request stored meanwhile.
    Taken { strategy: String, key: String },
    /// A `PutDoc { insert: true }` for a document that exists.
    DocExists { kind: String, id: String },
    /// The database cannot be reached (a shared one restarting, the network): try again.
    Unavailable(String),
    /// Anything else: the backend failed.
    Backend(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::UserExists(kuid) => write!(f, "user {kuid} already exists"),
            StoreError::AdminExists => write!(f, "an admin already exists"),
            StoreError::Refreshed => write!(f, "the token was refreshed or revoked already"),
            StoreError::Taken { strategy, key } => write!(f, "{strategy}'s key {key:?} was stored meanwhile"),
            StoreError::DocExists { kind, id } => write!(f, "{kind} {id} already exists"),
            StoreError::Unavailable(e) => write!(f, "the database is unavailable: {e}"),
            StoreError::Backend(e) => write!(f, "storage failure: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A Kuzzle user: its kuid and its content (`profileIds` and whatever else the admin set).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub kuid: String,
    pub content: Map<String, Value>,
}

impl User {
    pub fn profile_ids(&self) -> Vec<&str> {
        match self.content.get("profileIds") {
            Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
    pub fn is_admin(&self) -> bool {
        self.profile_ids().contains(&"admin")
    }
}

/// One change in an atomic batch.
#[derive(Debug, Clone)]
pub enum Change {
    /// Fails the batch with `UserExists`, or `AdminExists` when `first_admin` and an admin exists.
    InsertUser {
        user: User,
        first_admin: bool,
    },
    /// Replace the content of an existing user.
    UpdateUser(User),
    DeleteUser(String),
    /// "These credentials were created through this strategy": only then may the strategy
    /// log the user in.
    Link {
        strategy: String,
        kuid: String,
    },
    Unlink {
        strategy: String,
        kuid: String,
    },
    /// `expires_ms`: the key reads as absent from then on (`storage.set-expiring`).
    KvPut {
        strategy: String,
        key: String,
        value: String,
        expires_ms: Option<i64>,
        /// Only if the key is absent (or expired): else [`StoreError::Taken`].
        insert: bool,
    },
    KvDelete {
        strategy: String,
        key: String,
    },
    /// Deletes every strategy key expired at `now_ms` (they already read as absent; this
    /// gives their room back to the strategies' quotas).
    KvSweep {
        now_ms: i64,
    },
    /// The token `jti` is void from `void_from_ms`; the row can go after `expires_ms`.
    RevokeToken {
        jti: String,
        void_from_ms: i64,
        expires_ms: Option<i64>,
        /// A refresh: fails with [`StoreError::Refreshed`] if the token was revoked or
        /// refreshed already, by any node sharing the database (one new token per token).
        refresh: bool,
    },
    /// Every session token of `kuid` issued at or before `cutoff_ms` is void; with
    /// `api_keys` (the user is deleted) its API keys too.
    RevokeUser {
        kuid: String,
        cutoff_ms: i64,
        api_keys: bool,
    },
    SetMeta {
        key: String,
        value: String,
    },
    /// Writes a security document (see [`Doc`]): its body, JSON text.
    PutDoc {
        kind: Doc,
        id: String,
        body: String,
        /// Whose it is, to list them by owner (an API key's user); `None` for the others.
        owner: Option<String>,
        /// Only if it does not exist: else [`StoreError::DocExists`].
        insert: bool,
    },
    DeleteDoc {
        kind: Doc,
        id: String,
    },
    /// Registers (or replaces) an uploaded strategy.
    PutStrategy(StoredStrategy),
    DeleteStrategy(String),
}

/// An uploaded strategy as kept by the store: the component itself, so a restart (or
/// another node) can load it again, with what the operator attached to it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStrategy {
    pub name: String,
    pub wasm: Vec<u8>,
    /// sha256 of `wasm`, hex.
    pub hash: String,
    /// The strategy's configuration (JSON object text).
    pub config: String,
    /// Per-strategy limit overrides (JSON object text, `{}` for none).
    pub limits: String,
    /// The origins it may reach (JSON array text, `[]` for none).
    pub outbound: String,
    /// Whom it may provision (JSON object text, `{}` for nobody).
    pub provision: String,
    pub registered_at_ms: i64,
    /// What its `fields` answered when it was accepted (`None` for rows from before v4).
    pub fields: Option<Vec<String>>,
}

/// The kinds of security documents: small JSON bodies the server reads whole (roles and
/// profiles, kept in memory) or per user (API keys, whose tokens are never stored: only
/// their fingerprint and their `jti`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Doc {
    Role,
    Profile,
    ApiKey,
}

impl Doc {
    /// Its name in the database.
    pub fn name(self) -> &'static str {
        match self {
            Doc::Role => "role",
            Doc::Profile => "profile",
            Doc::ApiKey => "api-key",
        }
    }
}

/// The revocation state, loaded once at start-up and kept in memory afterwards.
#[derive(Debug, Default, Clone)]
pub struct Revocations {
    pub tokens: Vec<(String, i64, Option<i64>)>,
    /// kuid, the sessions' cut-off, the API keys' cut-off (a deleted user's).
    pub users: Vec<(String, i64, Option<i64>)>,
}

/// A stored strategy value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub value: String,
    pub expires_ms: Option<i64>,
}

/// Milliseconds since the Unix epoch (the store's own: it imports nothing of the server's).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Per-strategy storage use, for quotas.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KvUsage {
    pub keys: u64,
    pub bytes: u64,
}

pub trait Store: Send + Sync + 'static {
    fn get_user(&self, kuid: &str) -> Result<Option<User>>;
    fn admin_exists(&self) -> Result<bool>;
    /// Strategies holding credentials for `kuid` (created through them).
    fn linked_strategies(&self, kuid: &str) -> Result<Vec<String>>;
    fn is_linked(&self, strategy: &str, kuid: &str) -> Result<bool>;
    /// Whether any user holds credentials created through `strategy`.
    fn has_links(&self, strategy: &str) -> Result<bool>;

    /// A strategy's value and when it expires, unless it has expired by `now_ms`.
    fn kv_entry(&self, strategy: &str, key: &str, now_ms: i64) -> Result<Option<KvEntry>>;
    /// A strategy's value, unless it has expired.
    fn kv_get(&self, strategy: &str, key: &str) -> Result<Option<String>> {
        Ok(self.kv_entry(strategy, key, now_ms())?.map(|e| e.value))
    }
    /// Keys of `strategy` starting with `prefix` that have not expired, in order, at most `limit`.
    fn kv_list(&self, strategy: &str, prefix: &str, limit: u32) -> Result<Vec<String>>;
    fn kv_usage(&self, strategy: &str) -> Result<KvUsage>;

    fn meta_get(&self, key: &str) -> Result<Option<String>>;
    /// Every document of a kind, `(id, body)`, by id.
    fn docs(&self, kind: Doc) -> Result<Vec<(String, String)>>;
    /// The documents of a kind that `owner` owns, `(id, body)`, by id.
    fn docs_of(&self, kind: Doc, owner: &str) -> Result<Vec<(String, String)>>;
    /// Users in kuid order, after `after` (`""`: from the first), at most `limit`.
    fn users_after(&self, after: &str, limit: u32) -> Result<Vec<User>>;
    /// Every uploaded strategy, by name.
    fn strategies(&self) -> Result<Vec<StoredStrategy>>;
    /// Every uploaded strategy's name, hash and registration time, without the components
    /// (what a node compares with what it serves, at every re-read).
    fn strategy_versions(&self) -> Result<Vec<(String, String, i64)>> {
        Ok(self.strategies()?.into_iter().map(|s| (s.name, s.hash, s.registered_at_ms)).collect())
    }
    /// One uploaded strategy.
    fn strategy(&self, name: &str) -> Result<Option<StoredStrategy>> {
        Ok(self.strategies()?.into_iter().find(|s| s.name == name))
    }
    /// The value of `key`, set to `value` first if it has none: with several nodes starting
    /// at once, the first one's value is everyone's (the token secret).
    fn meta_init(&self, key: &str, value: &str) -> Result<String> {
        if let Some(saved) = self.meta_get(key)? {
            return Ok(saved);
        }
        self.commit(&[Change::SetMeta { key: key.into(), value: value.into() }])?;
        Ok(value.to_string())
    }
    fn revocations(&self, now_ms: i64) -> Result<Revocations>;

    /// Applies every change or none.
    fn commit(&self, changes: &[Change]) -> Result<()>;

    /// Several requests' batches at once, each all-or-nothing on its own, made durable
    /// together (one fsync: group commit). One outcome per batch, in order.
    fn commit_group(&self, batches: &[&[Change]]) -> Vec<Result<()>> {
        batches.iter().map(|b| self.commit(b)).collect()
    }
}
