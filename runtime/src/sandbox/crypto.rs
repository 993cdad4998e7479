//! Password hashing for strategies, run natively by the host: argon2id, PHC strings.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;

/// `[argon2]` in the config. Defaults: OWASP's argon2id minimum (m=19456 KiB, t=2, p=1).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

pub struct PasswordHasher {
    argon2: Argon2<'static>,
    params: Params,
    dummy: String,
}

impl PasswordHasher {
    pub fn new(cfg: &Argon2Config) -> Result<Self, String> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| format!("argon2 parameters (memory_kib, iterations, parallelism): {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut hasher = PasswordHasher { argon2, params, dummy: String::new() };
        let mut random = [0u8; 32];
        SystemRandom::new().fill(&mut random).map_err(|_| "system random failed".to_string())?;
        hasher.dummy = hasher.hash(&String::from_utf8_lossy(&random));
        Ok(hasher)
    }

    /// A new PHC string with a fresh 16-byte salt.
    pub fn hash(&self, password: &str) -> String {
        let mut salt = [0u8; 16];
        SystemRandom::new().fill(&mut salt).expect("system random");
        let salt = SaltString::encode_b64(&salt).expect("16-byte salt encodes");
        self.argon2.hash_password(password.as_bytes(), &salt).expect("argon2 with validated parameters").to_string()
    }

    /// Checks `password` against a PHC string. The PHC comes from a strategy, so it is not
    /// trusted: only argon2id, with costs no higher than the configured ones, is computed
    /// (a hostile strategy cannot make the host hash with 4 GiB and 1000 passes).
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        if parsed.algorithm != argon2::ARGON2ID_IDENT {
            return false;
        }
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        if params.m_cost() > self.params.m_cost()
            || params.t_cost() > self.params.t_cost()
            || params.p_cost() > self.params.p_cost()
        {
            return false;
        }
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params).verify_password(password.as_bytes(), &parsed).is_ok()
    }

    /// The PHC of a random password, for answering "unknown user" at the cost of a real check.
    pub fn dummy(&self) -> &str {
        &self.dummy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(&Argon2Config { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[test]
    fn hash_and_verify() {
        let h = cheap();
        let phc = h.hash("s3cret");
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify("s3cret", &phc));
        assert!(!h.verify("nope", &phc));
        assert!(!h.verify("s3cret", "not a phc"));
        assert!(!h.verify("anything", h.dummy()));
    }

    #[test]
    fn refuses_costlier_phc_than_configured() {
        let strong = PasswordHasher::new(&Argon2Config { memory_kib: 128, iterations: 1, parallelism: 1 }).unwrap();
        let phc = strong.hash("pw");
        assert!(strong.verify("pw", &phc));
        assert!(!cheap().verify("pw", &phc), "m=128 exceeds the configured m=64");
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = PasswordHasher::new(&Argon2Config { memory_kib: 1, iterations: 0, parallelism: 1 }).err().unwrap();
        assert!(err.contains("argon2 parameters"), "{err}");
    }
}
