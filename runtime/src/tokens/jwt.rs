//! Kuzzle's token format: `kauth-` + a JWT signed with HMAC (HS256 by default) through `ring`.
//!
//! Verification is strict: the header's `alg` must be the configured one (never `none`, never
//! another family), the signature is checked in constant time by `ring::hmac::verify`, and
//! `_id` must be a non-empty string.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde::{Deserialize, Serialize};

pub const PREFIX: &str = "kauth-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::HS256),
            "HS384" => Some(Self::HS384),
            "HS512" => Some(Self::HS512),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
        }
    }
    fn ring(self) -> hmac::Algorithm {
        match self {
            Self::HS256 => hmac::HMAC_SHA256,
            Self::HS384 => hmac::HMAC_SHA384,
            Self::HS512 => hmac::HMAC_SHA512,
        }
    }
}

/// The claims Sandgate puts in a token. `exp` is absent for tokens that never expire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    #[serde(rename = "_id")]
    pub kuid: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub jti: String,
    /// What the token is, when it is not an ordinary session token: `"api-key"` or
    /// `"single-use"`. Signed with the rest, so a session token cannot pass for another kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Claims {
    /// The checks every format makes once the signature holds: a user, and not expired.
    pub fn checked(self, now_s: i64) -> Result<Claims, VerifyError> {
        if self.kuid.is_empty() {
            return Err(VerifyError::Invalid);
        }
        match self.exp {
            Some(exp) if now_s >= exp => Err(VerifyError::Expired),
            _ => Ok(self),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// Malformed, forged, wrong algorithm: `security.token.invalid`.
    Invalid,
    /// Well signed, but `exp` has passed: `security.token.expired`.
    Expired,
}

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
}

pub struct Jwt {
    alg: Algorithm,
    key: hmac::Key,
    /// The header never changes: encode it once.
    header_b64: String,
}

impl Jwt {
    pub fn new(alg: Algorithm, secret: &[u8]) -> Self {
        let header = serde_json::to_vec(&Header { alg: alg.name(), typ: "JWT" }).expect("static header");
        Jwt { alg, key: hmac::Key::new(alg.ring(), secret), header_b64: B64.encode(header) }
    }

    /// The full token, prefix included.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{}.{}", self.header_b64, payload);
        let sig = hmac::sign(&self.key, signing_input.as_bytes());
        format!("{PREFIX}{signing_input}.{}", B64.encode(sig.as_ref()))
    }

    /// Checks a full token (prefix included) at `now_s` (seconds since the epoch).
    pub fn verify(&self, token: &str, now_s: i64) -> Result<Claims, VerifyError> {
        self.verify_unprefixed(token.strip_prefix(PREFIX).ok_or(VerifyError::Invalid)?, now_s)
    }

    /// Checks a token without its prefix (whichever it was: the kind signed inside says).
    pub fn verify_unprefixed(&self, jwt: &str, now_s: i64) -> Result<Claims, VerifyError> {
        let mut parts = jwt.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(VerifyError::Invalid);
        };
        let header_bytes = B64.decode(h).map_err(|_| VerifyError::Invalid)?;
        let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| VerifyError::Invalid)?;
        if header.alg != self.alg.name() {
            return Err(VerifyError::Invalid);
        }
        let sig = B64.decode(s).map_err(|_| VerifyError::Invalid)?;
        let signing_input = &jwt[..h.len() + 1 + p.len()];
        hmac::verify(&self.key, signing_input.as_bytes(), &sig).map_err(|_| VerifyError::Invalid)?;
        let payload = B64.decode(p).map_err(|_| VerifyError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| VerifyError::Invalid)?;
        claims.checked(now_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<i64>) -> Claims {
        Claims { kuid: "alice".into(), iat: 1_000, exp, jti: "1000000-abc".into(), kind: None }
    }

    #[test]
    fn round_trip_each_algorithm() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let jwt = Jwt::new(alg, b"secret");
            let token = jwt.sign(&claims(Some(2_000)));
            assert!(token.starts_with("kauth-"));
            assert_eq!(token.matches('.').count(), 2);
            assert_eq!(jwt.verify(&token, 1_500), Ok(claims(Some(2_000))));
            assert_eq!(jwt.verify(&token, 2_000), Err(VerifyError::Expired));
        }
    }

    #[test]
    fn refuses_forgeries() {
        let jwt = Jwt::new(Algorithm::HS256, b"secret");
        let token = jwt.sign(&claims(None));
        assert_eq!(jwt.verify(&token, i64::MAX), Ok(claims(None)), "no exp: never expires");
        // Wrong key, missing prefix, other algorithm, alg none, tampered payload.
        assert_eq!(Jwt::new(Algorithm::HS256, b"other").verify(&token, 0), Err(VerifyError::Invalid));
        assert_eq!(jwt.verify(&token["kauth-".len()..], 0), Err(VerifyError::Invalid));
        let hs512 = Jwt::new(Algorithm::HS512, b"secret").sign(&claims(None));
        assert_eq!(jwt.verify(&hs512, 0), Err(VerifyError::Invalid));
        let parts: Vec<&str> = token["kauth-".len()..].split('.').collect();
        let none = format!("kauth-{}.{}.", B64.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert_eq!(jwt.verify(&none, 0), Err(VerifyError::Invalid));
        let admin = B64.encode(r#"{"_id":"admin","iat":1000,"jti":"x"}"#);
        let tampered = format!("kauth-{}.{}.{}", parts[0], admin, parts[2]);
        assert_eq!(jwt.verify(&tampered, 0), Err(VerifyError::Invalid));
        assert_eq!(jwt.verify("kauth-a.b", 0), Err(VerifyError::Invalid));
        assert_eq!(jwt.verify("", 0), Err(VerifyError::Invalid));
    }
}
