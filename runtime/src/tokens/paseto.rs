//! PASETO v4 (`pasetors`), the alternative token format: `kauth-v4.local.…` (encrypted:
//! clients cannot read the claims) or `kauth-v4.public.…` (Ed25519-signed). The claims are
//! the JWT's (`_id`, `iat`, `exp`, `jti`). Keys are derived from the server secret with HKDF.
//!
//! Note: kuzzle-sdk 7 decodes the token as a three-part JWT to read `exp`; PASETO tokens
//! are opaque to it, so `kuzzle.auth.login` fails with "Invalid JSON payload for JWT". Use
//! PASETO with clients that treat the token as opaque (curl, your own SDK).

use super::jwt::{Claims, PREFIX, VerifyError};
use pasetors::keys::{AsymmetricPublicKey, AsymmetricSecretKey, SymmetricKey};
use pasetors::token::UntrustedToken;
use pasetors::version4::{LocalToken, PublicToken, V4};
use pasetors::{Local, Public};
use ring::hkdf;
use ring::signature::KeyPair;

pub enum Paseto {
    Local(SymmetricKey<V4>),
    Public { secret: AsymmetricSecretKey<V4>, public: AsymmetricPublicKey<V4> },
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    struct Len32;
    impl hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"sandgate-token-keys").extract(secret);
    let mut out = [0u8; 32];
    prk.expand(&[label], Len32).and_then(|okm| okm.fill(&mut out)).expect("32 bytes from HKDF-SHA256");
    out
}

impl Paseto {
    pub fn local(secret: &[u8]) -> Self {
        Paseto::Local(SymmetricKey::from(&derive(secret, b"v4.local")).expect("32-byte key"))
    }

    pub fn public(secret: &[u8]) -> Self {
        let seed = derive(secret, b"v4.public");
        let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("ed25519 seed");
        let mut sk = seed.to_vec();
        sk.extend_from_slice(pair.public_key().as_ref());
        let secret = AsymmetricSecretKey::<V4>::from(&sk).expect("ed25519 secret key");
        let public = AsymmetricPublicKey::<V4>::from(pair.public_key().as_ref()).expect("ed25519 public key");
        Paseto::Public { secret, public }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let token = match self {
            Paseto::Local(key) => LocalToken::encrypt(key, &payload, None, None),
            Paseto::Public { secret, .. } => PublicToken::sign(secret, &payload, None, None),
        }
        .expect("PASETO v4 with a valid key and a non-empty payload");
        format!("{PREFIX}{token}")
    }

    pub fn verify(&self, token: &str, now_s: i64) -> Result<Claims, VerifyError> {
        self.verify_unprefixed(token.strip_prefix(PREFIX).ok_or(VerifyError::Invalid)?, now_s)
    }

    /// Checks a token without its prefix (whichever it was: the kind signed inside says).
    pub fn verify_unprefixed(&self, raw: &str, now_s: i64) -> Result<Claims, VerifyError> {
        let trusted = match self {
            Paseto::Local(key) => {
                let untrusted = UntrustedToken::<Local, V4>::try_from(raw).map_err(|_| VerifyError::Invalid)?;
                LocalToken::decrypt(key, &untrusted, None, None)
            }
            Paseto::Public { public, .. } => {
                let untrusted = UntrustedToken::<Public, V4>::try_from(raw).map_err(|_| VerifyError::Invalid)?;
                PublicToken::verify(public, &untrusted, None, None)
            }
        }
        .map_err(|_| VerifyError::Invalid)?;
        let claims: Claims = serde_json::from_str(trusted.payload()).map_err(|_| VerifyError::Invalid)?;
        claims.checked(now_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_public_round_trip_and_refuse_forgeries() {
        let claims = Claims { kuid: "alice".into(), iat: 10, exp: Some(20), jti: "10000-x".into(), kind: None };
        for (make, header) in
            [(Paseto::local as fn(&[u8]) -> Paseto, "kauth-v4.local."), (Paseto::public, "kauth-v4.public.")]
        {
            let p = make(b"a server secret of some length");
            let token = p.sign(&claims);
            assert!(token.starts_with(header), "{token}");
            assert_eq!(p.verify(&token, 15), Ok(claims.clone()));
            assert_eq!(p.verify(&token, 20), Err(VerifyError::Expired));
            assert_eq!(make(b"another secret entirely!!!!!!!").verify(&token, 15), Err(VerifyError::Invalid));
            let mut bytes = token.into_bytes();
            let last = bytes.len() - 5;
            bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
            assert_eq!(p.verify(&String::from_utf8(bytes).unwrap(), 15), Err(VerifyError::Invalid));
        }
        let jwt = super::super::jwt::Jwt::new(super::super::jwt::Algorithm::HS256, b"s").sign(&claims);
        assert_eq!(Paseto::local(b"s").verify(&jwt, 15), Err(VerifyError::Invalid));
    }
}
