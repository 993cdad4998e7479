//! Tokens: issue, check, revoke.
//!
//! A token is a signed, self-contained JWT (see [`jwt`]); checking it costs a signature check
//! and two hash-map look-ups in memory, never a database round trip. Revocation is exact:
//! - a single token (logout, refresh after its grace period) is listed by its `jti`;
//! - "every token of this user issued until now" (global logout, revokeTokens, user deletion)
//!   is one cut-off time per user, compared with the token's issue time in milliseconds,
//!   which the `jti` carries (`<issued_ms>-<random>`).
//!
//! The state is written through to the store (so it survives a restart) and loaded at start.

pub mod jwt;
pub mod paseto;

use crate::store::{Change, Store};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::RwLock;

pub use crate::core::time::{Ttl, now_ms};
pub use jwt::{Algorithm, Claims, Jwt, VerifyError};

/// Which kind of token the server hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `kauth-` + JWT (HS256/384/512): what Kuzzle and its SDK use. The default.
    Jwt,
    /// `kauth-v4.local.…`: encrypted PASETO.
    PasetoLocal,
    /// `kauth-v4.public.…`: Ed25519-signed PASETO.
    PasetoPublic,
}

impl Format {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "jwt" => Some(Format::Jwt),
            "paseto-v4-local" => Some(Format::PasetoLocal),
            "paseto-v4-public" => Some(Format::PasetoPublic),
            _ => None,
        }
    }
}

enum Codec {
    Jwt(Jwt),
    Paseto(paseto::Paseto),
}

impl Codec {
    fn sign(&self, claims: &Claims) -> String {
        match self {
            Codec::Jwt(j) => j.sign(claims),
            Codec::Paseto(p) => p.sign(claims),
        }
    }
    /// `token` without its prefix.
    fn verify(&self, token: &str, now_s: i64) -> Result<Claims, VerifyError> {
        match self {
            Codec::Jwt(j) => j.verify_unprefixed(token, now_s),
            Codec::Paseto(p) => p.verify_unprefixed(token, now_s),
        }
    }
}

/// Token settings, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub format: Format,
    pub algorithm: Algorithm,
    pub default_ttl_ms: i64,
    /// `-1`: no maximum.
    pub max_ttl_ms: i64,
    /// How long a refreshed token stays valid.
    pub grace_period_ms: i64,
    /// The longest an API key may live; `-1`: no maximum.
    pub api_key_max_ttl_ms: i64,
}

/// A freshly issued token and what login answers about it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub kuid: String,
    pub token: String,
    /// Epoch milliseconds, `-1` when infinite.
    pub expires_at: i64,
    /// Milliseconds, `-1` when infinite.
    pub ttl: i64,
    /// Its id, for revoking it (an API key's record keeps it).
    pub jti: String,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A login's token (`kauth-`).
    Session,
    /// An API key (`kapikey-`): it survives logouts and `revokeTokens`; only its deletion
    /// (or its user's) ends it.
    ApiKey,
    /// `auth:createToken` with `singleUse`: the first request that uses it uses it up.
    SingleUse,
}

impl Kind {
    fn claim(self) -> Option<String> {
        match self {
            Kind::Session => None,
            Kind::ApiKey => Some(API_KEY.into()),
            Kind::SingleUse => Some(SINGLE_USE.into()),
        }
    }
}

const API_KEY: &str = "api-key";
const SINGLE_USE: &str = "single-use";
/// What an API key starts with (a session token starts with `kauth-`).
pub const API_KEY_PREFIX: &str = "kapikey-";

/// A token that checked out.
#[derive(Debug, Clone)]
pub struct Session {
    pub kuid: String,
    pub jti: String,
    pub issued_ms: i64,
    /// Epoch milliseconds, `-1` when infinite.
    pub expires_at: i64,
    pub kind: Kind,
}

#[derive(Default)]
struct RevocationState {
    /// jti → void from this time (ms). Refresh sets it in the future (the grace period).
    tokens: HashMap<String, i64>,
    /// kuid → session tokens issued at or before this time (ms) are void.
    users: HashMap<String, i64>,
    /// kuid → API keys issued at or before this time are void (the user was deleted).
    deleted: HashMap<String, i64>,
}

pub struct Tokens {
    settings: TokenSettings,
    codec: Codec,
    rng: SystemRandom,
    revoked: RwLock<RevocationState>,
    /// Tokens whose refresh is under way (see `claim_refresh`).
    refreshing: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Tokens {
    /// Loads the revocation state from the store.
    pub fn new(settings: TokenSettings, secret: &[u8], store: &dyn Store) -> crate::store::Result<Self> {
        let saved = store.revocations(now_ms())?;
        let state = RevocationState {
            tokens: saved.tokens.into_iter().map(|(j, t, _)| (j, t)).collect(),
            users: saved.users.iter().map(|(k, c, _)| (k.clone(), *c)).collect(),
            deleted: saved.users.into_iter().filter_map(|(k, _, keys)| Some((k, keys?))).collect(),
        };
        let codec = match settings.format {
            Format::Jwt => Codec::Jwt(Jwt::new(settings.algorithm, secret)),
            Format::PasetoLocal => Codec::Paseto(paseto::Paseto::local(secret)),
            Format::PasetoPublic => Codec::Paseto(paseto::Paseto::public(secret)),
        };
        Ok(Tokens {
            codec,
            settings,
            rng: SystemRandom::new(),
            revoked: RwLock::new(state),
            refreshing: Default::default(),
        })
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Signs a token for `kuid`. Never issues a token at or before the user's cut-off, so a
    /// login right after a global logout is not void at birth.
    pub fn issue(&self, kuid: &str, ttl: Ttl) -> Issued {
        self.issue_kind(kuid, ttl, Kind::Session)
    }

    /// Signs a token of a given kind (an API key carries the `kapikey-` prefix).
    pub fn issue_kind(&self, kuid: &str, ttl: Ttl, kind: Kind) -> Issued {
        let mut issued_ms = now_ms();
        {
            let state = self.revoked.read().unwrap_or_else(|p| p.into_inner());
            for cutoff in [state.users.get(kuid), state.deleted.get(kuid)].into_iter().flatten() {
                issued_ms = issued_ms.max(cutoff + 1);
            }
        }
        let mut random = [0u8; 12];
        self.rng.fill(&mut random).expect("system random");
        let jti = format!("{issued_ms}-{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random));
        let (exp, expires_at, ttl_ms) = match ttl {
            Ttl::Infinite => (None, -1, -1),
            // Rounded up: the token never dies before the `expiresAt` we announce.
            Ttl::Ms(ms) => (Some((issued_ms + ms + 999).div_euclid(1000)), issued_ms + ms, ms),
        };
        let claims = Claims { kuid: kuid.to_string(), iat: issued_ms.div_euclid(1000), exp, jti, kind: kind.claim() };
        let mut token = self.codec.sign(&claims);
        if kind == Kind::ApiKey {
            token = format!("{API_KEY_PREFIX}{}", &token[jwt::PREFIX.len()..]);
        }
        Issued { kuid: kuid.to_string(), token, expires_at, ttl: ttl_ms, jti: claims.jti }
    }

    /// Checks signature, expiry and revocation. In memory only.
    pub fn check(&self, token: &str) -> Result<Session, VerifyError> {
        let now = now_ms();
        // The kind signed inside must match the prefix shown.
        let (unprefixed, api_key) = match (token.strip_prefix(API_KEY_PREFIX), token.strip_prefix(jwt::PREFIX)) {
            (Some(rest), _) => (rest, true),
            (None, Some(rest)) => (rest, false),
            (None, None) => return Err(VerifyError::Invalid),
        };
        let claims = self.codec.verify(unprefixed, now.div_euclid(1000))?;
        let kind = match claims.kind.as_deref() {
            None => Kind::Session,
            Some(API_KEY) => Kind::ApiKey,
            Some(SINGLE_USE) => Kind::SingleUse,
            Some(_) => return Err(VerifyError::Invalid),
        };
        if api_key != (kind == Kind::ApiKey) {
            return Err(VerifyError::Invalid);
        }
        let issued_ms =
            claims.jti.split_once('-').and_then(|(ms, _)| ms.parse::<i64>().ok()).ok_or(VerifyError::Invalid)?;
        let expires_at = claims.exp.map_or(-1, |exp| exp * 1000);
        let session = Session { kuid: claims.kuid, jti: claims.jti, issued_ms, expires_at, kind };
        if self.revoked(&session, now) {
            return Err(VerifyError::Invalid);
        }
        Ok(session)
    }

    /// Whether a token that checked out is still good at `now_ms`: not expired, not revoked
    /// since. Its signature is not checked again (it was, to make the session).
    pub fn still_valid(&self, session: &Session, now_ms: i64) -> Result<(), VerifyError> {
        if session.expires_at >= 0 && now_ms >= session.expires_at {
            return Err(VerifyError::Expired);
        }
        if self.revoked(session, now_ms) {
            return Err(VerifyError::Invalid);
        }
        Ok(())
    }

    fn revoked(&self, session: &Session, now: i64) -> bool {
        let state = self.revoked.read().unwrap_or_else(|p| p.into_inner());
        if state.tokens.get(&session.jti).is_some_and(|void_from| now >= *void_from) {
            return true;
        }
        // "Every token of this user" (global logout, revokeTokens) keeps the API keys; the
        // user's deletion ends them too.
        let cutoffs = if session.kind == Kind::ApiKey { &state.deleted } else { &state.users };
        cutoffs.get(&session.kuid).is_some_and(|cutoff| session.issued_ms <= *cutoff)
    }

    /// The right to refresh this token, once: `None` if it was refreshed (or revoked) already
    /// or a refresh of it is under way. Check and claim are one step under one lock, so
    /// concurrent refreshes of one token yield one new token. The claim ends when the guard
    /// drops; by then a successful refresh has recorded the token as revoked.
    pub fn claim_refresh(&self, session: &Session) -> Option<RefreshClaim<'_>> {
        let mut refreshing = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        let revoked = self.revoked.read().unwrap_or_else(|p| p.into_inner()).tokens.contains_key(&session.jti);
        if revoked || !refreshing.insert(session.jti.clone()) {
            return None;
        }
        Some(RefreshClaim { tokens: self, jti: session.jti.clone() })
    }

    /// The change that voids one token from `void_from_ms`. Apply it with [`Tokens::apply`]
    /// once the store has committed it.
    pub fn revoke_token_change(session: &Session, void_from_ms: i64) -> Change {
        Self::revoke_jti_change(&session.jti, session.expires_at, void_from_ms)
    }

    /// The same for a token known by its id and expiry (`-1`: never): an API key's record.
    pub fn revoke_jti_change(jti: &str, expires_at: i64, void_from_ms: i64) -> Change {
        // Its row can go a second after the token would have expired anyway.
        let expires_ms = (expires_at >= 0).then_some(expires_at + 1000);
        Change::RevokeToken { jti: jti.to_string(), void_from_ms, expires_ms, refresh: false }
    }

    /// The change that uses a token up for a refresh: the store refuses it if the token was
    /// refreshed or revoked already, here or on another node sharing the database.
    pub fn refresh_change(session: &Session, void_from_ms: i64) -> Change {
        let mut change = Self::revoke_token_change(session, void_from_ms);
        if let Change::RevokeToken { refresh, .. } = &mut change {
            *refresh = true;
        }
        change
    }

    /// The change that voids every session token of `kuid` issued until now.
    pub fn revoke_user_change(kuid: &str) -> Change {
        Change::RevokeUser { kuid: kuid.to_string(), cutoff_ms: now_ms(), api_keys: false }
    }

    /// The change that voids every token of a deleted user, API keys included: a user created
    /// again under the same kuid starts with none.
    pub fn deleted_user_change(kuid: &str) -> Change {
        Change::RevokeUser { kuid: kuid.to_string(), cutoff_ms: now_ms(), api_keys: true }
    }

    /// Mirrors committed revocation changes in memory.
    pub fn apply(&self, changes: &[Change]) {
        let mut state = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        for change in changes {
            match change {
                Change::RevokeToken { jti, void_from_ms, .. } => {
                    let entry = state.tokens.entry(jti.clone()).or_insert(*void_from_ms);
                    *entry = (*entry).min(*void_from_ms);
                }
                Change::RevokeUser { kuid, cutoff_ms, api_keys } => {
                    let entry = state.users.entry(kuid.clone()).or_insert(*cutoff_ms);
                    *entry = (*entry).max(*cutoff_ms);
                    if *api_keys {
                        let entry = state.deleted.entry(kuid.clone()).or_insert(*cutoff_ms);
                        *entry = (*entry).max(*cutoff_ms);
                    }
                }
                _ => {}
            }
        }
    }
}

/// A refresh in progress (see [`Tokens::claim_refresh`]).
#[must_use]
pub struct RefreshClaim<'a> {
    tokens: &'a Tokens,
    jti: String,
}

impl Drop for RefreshClaim<'_> {
    fn drop(&mut self) {
        self.tokens.refreshing.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.jti);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (Tokens, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::Sqlite::open(dir.path()).unwrap();
        let settings = TokenSettings {
            format: Format::Jwt,
            algorithm: Algorithm::HS256,
            default_ttl_ms: 3_600_000,
            max_ttl_ms: -1,
            grace_period_ms: 1000,
            api_key_max_ttl_ms: -1,
        };
        (Tokens::new(settings, b"0123456789abcdef0123456789abcdef", &store).unwrap(), dir)
    }

    #[test]
    fn a_token_can_be_claimed_for_refresh_once() {
        let (tokens, _dir) = tokens();
        let session = tokens.check(&tokens.issue("alice", Ttl::Ms(60_000)).token).unwrap();
        let claim = tokens.claim_refresh(&session).expect("first claim");
        assert!(tokens.claim_refresh(&session).is_none(), "a second refresh while the first runs");
        tokens.apply(&[Tokens::revoke_token_change(&session, now_ms() + 1000)]);
        drop(claim);
        assert!(tokens.claim_refresh(&session).is_none(), "a second refresh after the first");
        // A refresh that failed before its commit gives the claim back.
        let other = tokens.check(&tokens.issue("bob", Ttl::Ms(60_000)).token).unwrap();
        drop(tokens.claim_refresh(&other).unwrap());
        assert!(tokens.claim_refresh(&other).is_some());
    }

    #[test]
    fn kinds_are_signed_and_api_keys_survive_the_users_cutoff() {
        let (tokens, _dir) = tokens();
        let key = tokens.issue_kind("alice", Ttl::Infinite, Kind::ApiKey).token;
        assert!(key.starts_with(API_KEY_PREFIX));
        assert_eq!(tokens.check(&key).unwrap().kind, Kind::ApiKey);
        let session = tokens.issue("alice", Ttl::Ms(60_000)).token;
        let once = tokens.issue_kind("alice", Ttl::Ms(60_000), Kind::SingleUse).token;
        assert_eq!(tokens.check(&once).unwrap().kind, Kind::SingleUse);
        // The prefix is not signed; the kind inside is: neither passes for the other.
        let as_key = format!("{API_KEY_PREFIX}{}", &session["kauth-".len()..]);
        assert_eq!(tokens.check(&as_key).unwrap_err(), VerifyError::Invalid);
        let as_session = format!("kauth-{}", &key[API_KEY_PREFIX.len()..]);
        assert_eq!(tokens.check(&as_session).unwrap_err(), VerifyError::Invalid);
        std::thread::sleep(std::time::Duration::from_millis(2));
        tokens.apply(&[Tokens::revoke_user_change("alice")]);
        assert!(tokens.check(&session).is_err(), "global logout ends sessions");
        assert!(tokens.check(&once).is_err());
        assert!(tokens.check(&key).is_ok(), "and keeps API keys");
        std::thread::sleep(std::time::Duration::from_millis(2));
        tokens.apply(&[Tokens::deleted_user_change("alice")]);
        assert!(tokens.check(&key).is_err(), "the user's deletion ends them");
        let again = tokens.issue_kind("alice", Ttl::Infinite, Kind::ApiKey).token;
        assert!(tokens.check(&again).is_ok(), "a key issued after it is not void at birth");
    }
}
