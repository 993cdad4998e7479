//! Configuration: a TOML file (`--config`, `SANDGATE_CONFIG`), the three start-up settings
//! from the command line or environment, and defaults for everything else. An unknown key or a
//! bad value stops start-up with a message naming it.

use crate::core::time as expires_in;
use crate::sandbox::{Argon2Config, limits::Limits};
use crate::tokens::{Algorithm, TokenSettings};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:7512";
pub const DEFAULT_DATA_DIR: &str = "./sandgate-data";

/// A duration in the `ms` grammar ("1h", "30s") or a number of milliseconds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Duration {
    Ms(i64),
    Text(String),
}

impl Duration {
    fn millis(&self, key: &str) -> Result<f64, String> {
        match self {
            Duration::Ms(ms) => Ok(*ms as f64),
            Duration::Text(s) => expires_in::parse_ms(s)
                .ok_or_else(|| format!("{key}: {s:?} is not a duration (examples: \"1h\", \"30s\", 60000, -1)")),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Largest request body accepted (bytes); default 1 MiB.
    pub max_body_bytes: Option<usize>,
    /// Where compiled strategies are cached; default `<data_dir>/compiled`.
    pub cache_dir: Option<PathBuf>,
    /// Largest strategy upload (bytes); default 64 MiB (Python/JS components carry their
    /// interpreter).
    pub max_upload_bytes: Option<usize>,
    /// Allow `cookieAuth` (Kuzzle's `http.cookieAuthentication`); default true.
    pub cookie_auth: Option<bool>,
    /// No longer used: requests hold no thread (admission is per strategy,
    /// `limits.max_concurrent_calls`). Accepted so older files still load; a warning says so.
    pub max_concurrent_requests: Option<usize>,
    /// How long a compiled artifact that no strategy uses stays in `cache_dir` (for several
    /// servers sharing one cache directory); default 0: removed at once.
    pub cache_keep_unused: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokensSection {
    /// The HMAC secret; generated once and kept in the store when absent.
    pub secret: Option<String>,
    /// "jwt" (Kuzzle's), "paseto-v4-local" or "paseto-v4-public".
    pub format: String,
    pub algorithm: String,
    pub expires_in: Duration,
    /// `-1`: no maximum.
    pub max_ttl: Duration,
    pub grace_period: Duration,
    /// The longest an API key may live (Kuzzle's `security.apiKey.maxTTL`); `-1`: no maximum.
    pub api_key_max_ttl: Duration,
}

impl Default for TokensSection {
    fn default() -> Self {
        TokensSection {
            secret: None,
            format: "jwt".into(),
            algorithm: "HS256".into(),
            expires_in: Duration::Text("1h".into()),
            max_ttl: Duration::Ms(-1),
            grace_period: Duration::Ms(1000),
            api_key_max_ttl: Duration::Ms(-1),
        }
    }
}

/// `[login]` in the config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoginLimits {
    /// Logins per second per WebSocket connection (0: no limit). Kuzzle's default is 1,
    /// which breaks clients that log in twice in a row (kuzzle#2264); ours is 10.
    pub logins_per_second: u32,
    /// Consecutive failures that lock an account (0: never).
    pub max_failures: u32,
    /// Consecutive failed logins from one client address that lock that address (0: never).
    pub max_failures_per_address: u32,
    /// How long a lock lasts, in the `ms` grammar or milliseconds.
    pub lockout: Duration,
    /// Memory the failure counters may take (bytes).
    pub failure_memory_bytes: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            logins_per_second: 10,
            max_failures: 10,
            max_failures_per_address: 100,
            lockout: Duration::Text("1m".into()),
            failure_memory_bytes: 8 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub server: ServerSection,
    pub tokens: TokensSection,
    pub limits: Limits,
    pub argon2: Argon2Config,
    pub login: LoginLimits,
    pub outbound: OutboundSection,
    pub store: StoreSection,
    pub security: SecuritySection,
}

/// `[security]`: Kuzzle's `security.*` settings that are not about tokens.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecuritySection {
    /// The profiles `security:createRestrictedUser` gives.
    pub restricted_profile_ids: Vec<String>,
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection { restricted_profile_ids: vec!["default".into()] }
    }
}

/// `[store]`: where a node keeps everything. No `url`: the embedded SQLite file in the data
/// directory. A PostgreSQL `url`: one database shared by every node that names it.
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    pub url: Option<String>,
    /// How often a node re-reads what it keeps in memory, in case a notice was missed.
    pub resync_interval: Option<Duration>,
}

/// The store, resolved.
#[derive(Clone, PartialEq)]
pub struct StoreSettings {
    /// A PostgreSQL URL (`postgres://user:password@host:port/database`), or `None` for SQLite.
    pub url: Option<String>,
    pub resync_ms: u64,
}

impl std::fmt::Debug for StoreSettings {
    /// The URL may carry a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.url.as_ref().map(|_| "postgres://…");
        f.debug_struct("StoreSettings").field("url", &url).field("resync_ms", &self.resync_ms).finish()
    }
}

/// `[outbound]`: strategies' outbound HTTP, for every strategy (each reaches only the origins
/// listed when it was registered).
#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundSection {
    /// Let listed hostnames resolve to loopback, private, link-local… addresses. Off: only an
    /// origin listed as that IP literal reaches such an address.
    pub allow_private_networks: bool,
}

/// Everything start-up needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub max_body_bytes: usize,
    pub max_upload_bytes: usize,
    pub cookie_auth: bool,
    pub secret: Option<String>,
    pub tokens: TokenSettings,
    pub limits: Limits,
    pub argon2: Argon2Config,
    pub login: LoginLimits,
    /// `login.lockout` in milliseconds.
    pub lockout_ms: i64,
    /// `server.cache_keep_unused` in milliseconds.
    pub cache_keep_unused_ms: u64,
    /// How uploads are compiled. `Config::resolve` says in process; `sandgate serve` sets its
    /// own binary as the compiler child (a compile past `limits.compile_ms` is killed).
    pub compiler: crate::sandbox::compile::Compiler,
    pub outbound: OutboundSection,
    pub store: StoreSettings,
    /// The profiles `security:createRestrictedUser` gives (`[security]`).
    pub restricted_profile_ids: Vec<String>,
}

/// What the command line / environment said (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
    /// `--database-url`, `SANDGATE_DATABASE_URL`: over `[store] url`.
    pub database_url: Option<String>,
}

impl Config {
    pub fn load(overrides: &Overrides) -> Result<Config, String> {
        let file = match &overrides.config {
            Some(path) => parse_file(path)?,
            None => FileConfig::default(),
        };
        Config::resolve(file, overrides)
    }

    pub fn resolve(file: FileConfig, overrides: &Overrides) -> Result<Config, String> {
        if file.server.max_concurrent_requests.is_some() {
            tracing::warn!(
                "server.max_concurrent_requests is no longer used: requests hold no thread, and each strategy \
                 admits limits.max_concurrent_calls calls at once"
            );
        }
        let listen_text =
            overrides.listen.clone().or(file.server.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| format!("server.listen: {listen_text:?} is not an address like 127.0.0.1:7512"))?;
        let data_dir =
            overrides.data_dir.clone().or(file.server.data_dir.clone()).unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let cache_dir = file.server.cache_dir.clone().unwrap_or_else(|| data_dir.join("compiled"));
        let t = &file.tokens;
        let algorithm = Algorithm::parse(&t.algorithm)
            .ok_or_else(|| format!("tokens.algorithm: {:?} is not supported (HS256, HS384 or HS512)", t.algorithm))?;
        let format = crate::tokens::Format::parse(&t.format).ok_or_else(|| {
            format!("tokens.format: {:?} is not supported (jwt, paseto-v4-local or paseto-v4-public)", t.format)
        })?;
        let default_ttl = t.expires_in.millis("tokens.expires_in")?;
        if default_ttl != -1.0 && default_ttl < 1000.0 {
            return Err("tokens.expires_in: must be at least 1s, or -1 (never expires)".into());
        }
        let max_ttl = t.max_ttl.millis("tokens.max_ttl")?;
        if max_ttl < -1.0 || (max_ttl > -1.0 && max_ttl < 1000.0) {
            return Err("tokens.max_ttl: must be -1 (no maximum) or at least 1s".into());
        }
        if max_ttl > -1.0 && (default_ttl == -1.0 || default_ttl > max_ttl) {
            return Err("tokens.expires_in: exceeds tokens.max_ttl".into());
        }
        let api_key_max_ttl = t.api_key_max_ttl.millis("tokens.api_key_max_ttl")?;
        if api_key_max_ttl < -1.0 || (api_key_max_ttl > -1.0 && api_key_max_ttl < 1000.0) {
            return Err("tokens.api_key_max_ttl: must be -1 (no maximum) or at least 1s".into());
        }
        if file.security.restricted_profile_ids.is_empty() {
            return Err("security.restricted_profile_ids: give at least one profile".into());
        }
        let grace = t.grace_period.millis("tokens.grace_period")?;
        if grace < 0.0 {
            return Err("tokens.grace_period: must not be negative".into());
        }
        if let Some(secret) = &t.secret
            && secret.len() < 32
        {
            return Err("tokens.secret: must be at least 32 characters (or leave it out to have one generated)".into());
        }
        file.limits.validate()?;
        crate::sandbox::PasswordHasher::new(&file.argon2).map(|_| ()).map_err(|e| format!("argon2: {e}"))?;
        let lockout = file.login.lockout.millis("login.lockout")?;
        if lockout < 0.0 {
            return Err("login.lockout: must not be negative".into());
        }
        let cache_keep_unused = match &file.server.cache_keep_unused {
            Some(d) => d.millis("server.cache_keep_unused")?,
            None => 0.0,
        };
        if cache_keep_unused < 0.0 {
            return Err("server.cache_keep_unused: must not be negative".into());
        }
        let store = resolve_store(&file.store, overrides)?;
        let max_body_bytes = file.server.max_body_bytes.unwrap_or(1 << 20);
        if max_body_bytes == 0 {
            return Err("server.max_body_bytes: must be greater than 0".into());
        }
        Ok(Config {
            listen,
            data_dir,
            cache_dir,
            max_body_bytes,
            max_upload_bytes: file.server.max_upload_bytes.unwrap_or(64 << 20),
            cookie_auth: file.server.cookie_auth.unwrap_or(true),
            secret: t.secret.clone(),
            tokens: TokenSettings {
                format,
                algorithm,
                default_ttl_ms: default_ttl as i64,
                max_ttl_ms: max_ttl as i64,
                grace_period_ms: grace as i64,
                api_key_max_ttl_ms: api_key_max_ttl as i64,
            },
            restricted_profile_ids: file.security.restricted_profile_ids.clone(),
            limits: file.limits,
            argon2: file.argon2,
            login: file.login,
            lockout_ms: lockout as i64,
            cache_keep_unused_ms: cache_keep_unused as u64,
            compiler: crate::sandbox::compile::Compiler::InProcess,
            outbound: file.outbound,
            store,
        })
    }
}

fn resolve_store(section: &StoreSection, overrides: &Overrides) -> Result<StoreSettings, String> {
    let url = overrides.database_url.clone().or(section.url.clone()).filter(|u| !u.trim().is_empty());
    if let Some(url) = &url {
        let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !scheme_ok || url.parse::<postgres::Config>().is_err() {
            return Err("store.url: not a PostgreSQL URL (postgres://user:password@host:port/database)".into());
        }
    }
    let resync = match &section.resync_interval {
        Some(d) => d.millis("store.resync_interval")?,
        None => 30_000.0,
    };
    if resync < 1000.0 {
        return Err("store.resync_interval: must be at least 1s".into());
    }
    Ok(StoreSettings { url, resync_ms: resync as u64 })
}

pub fn parse_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    parse_toml(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

pub fn parse_toml(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        Config::resolve(parse_toml(text)?, &Overrides::default())
    }

    #[test]
    fn defaults() {
        let c = load("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7512");
        assert_eq!(c.data_dir, PathBuf::from("./sandgate-data"));
        assert_eq!(c.tokens.default_ttl_ms, 3_600_000);
        assert_eq!(c.tokens.max_ttl_ms, -1);
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert_eq!(c.argon2, Argon2Config { memory_kib: 19_456, iterations: 2, parallelism: 1 });
    }

    #[test]
    fn reads_every_section() {
        let c = load(
            r#"
            [server]
            listen = "127.0.0.1:9000"
            [tokens]
            secret = "0123456789abcdef0123456789abcdef"
            algorithm = "HS512"
            expires_in = "2h"
            max_ttl = "1d"
            [limits]
            cpu_ms = 50
            [argon2]
            memory_kib = 1024
            iterations = 1
            parallelism = 1
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.tokens.algorithm, Algorithm::HS512);
        assert_eq!((c.tokens.default_ttl_ms, c.tokens.max_ttl_ms), (7_200_000, 86_400_000));
        assert_eq!(c.limits.cpu_ms, 50);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[tokens]\nexpires_in = \"soon\"", "tokens.expires_in"),
            ("[tokens]\nmax_ttl = \"1h\"\nexpires_in = \"2h\"", "tokens.expires_in"),
            ("[tokens]\nalgorithm = \"none\"", "tokens.algorithm"),
            ("[tokens]\nformat = \"paseto-v1\"", "tokens.format"),
            ("[tokens]\nsecret = \"short\"", "tokens.secret"),
            ("[server]\nlisten = \"nowhere\"", "server.listen"),
            ("[limits]\ncpu_ms = 0", "limits.cpu_ms"),
            ("[limits]\nbogus = 1", "bogus"),
            ("colour = \"blue\"", "colour"),
            ("[argon2]\nmemory_kib = 1", "argon2"),
        ];
        for (text, key) in cases {
            let err = load(text).unwrap_err();
            assert!(err.contains(key), "{text:?} → {err}");
        }
    }

    #[test]
    fn overrides_win() {
        let o = Overrides {
            listen: Some("127.0.0.1:1".into()),
            data_dir: Some("/tmp/x".into()),
            config: None,
            database_url: Some("postgres://a@127.0.0.1:5/b".into()),
        };
        let toml = "[server]\nlisten = \"127.0.0.1:2\"\n[store]\nurl = \"postgres://z@h/db\"";
        let c = Config::resolve(parse_toml(toml).unwrap(), &o).unwrap();
        assert_eq!(c.listen.port(), 1);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.store.url.as_deref(), Some("postgres://a@127.0.0.1:5/b"));
    }

    #[test]
    fn the_store_is_sqlite_unless_a_postgres_url_is_given() {
        let c = load("").unwrap();
        assert_eq!((c.store.url, c.store.resync_ms), (None, 30_000));
        let c = load("[store]\nurl = \"postgres://u:secret@db:5432/sandgate\"\nresync_interval = \"5s\"").unwrap();
        assert_eq!(c.store.resync_ms, 5000);
        assert!(!format!("{:?}", c.store).contains("secret"), "the password is never printed");
        for (text, needle) in [
            ("[store]\nurl = \"mysql://x@y/z\"", "not a PostgreSQL URL"),
            ("[store]\nurl = \"postgres://x@y:notaport/z\"", "not a PostgreSQL URL"),
            ("[store]\nresync_interval = \"10ms\"", "at least 1s"),
            ("[store]\nhost = \"db\"", "unknown field"),
        ] {
            let err = load(text).unwrap_err();
            assert!(err.contains(needle), "{text:?} → {err}");
        }
    }
}
