//! Random identifiers and hex: request ids, generated kuids, node names, content hashes and
//! the generated secret.

use ring::rand::{SecureRandom, SystemRandom};

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// `N` bytes from the system's secure random source.
pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).expect("system random");
    bytes
}

/// A random (version 4) UUID, hyphenated: request ids (one per request) and generated kuids.
/// From a thread-local CSPRNG seeded by the system (uuid's `fast-rng`), not a system call
/// per id; secrets use [`random`].
pub fn uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        assert_eq!(super::hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        let u = super::uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "RFC 4122 variant: {u}");
        assert_ne!(u, super::uuid());
    }
}
