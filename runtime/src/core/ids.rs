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

/// The longest id (a user's, a role's, a profile's, an API key's), in bytes: Kuzzle's own
/// limit, an Elasticsearch document id.
const MAX_ID_BYTES: usize = 512;

/// Whether both stores can hold `id`: at most 512 bytes (PostgreSQL's index cannot hold a
/// long key) and no NUL (its text cannot hold one). The same rule on SQLite, so data moves.
pub fn storable(id: &str) -> bool {
    id.len() <= MAX_ID_BYTES && !id.contains('\0')
}

/// An id an administrator gives a role, a profile or an API key: storable, not empty, not
/// starting with `_` (the routes' own words).
pub fn check_document_id(id: &str) -> Result<(), crate::core::errors::KError> {
    if id.is_empty() || !storable(id) || id.starts_with('_') {
        return Err(crate::core::errors::KError::new(
            crate::core::errors::defs::API_ASSERT_INVALID_ARGUMENT,
            &["_id", "a non-empty id of at most 512 bytes, not starting with _, without NUL characters"],
        ));
    }
    Ok(())
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

    #[test]
    fn document_ids() {
        for ok in ["reader", "a b", "é", &"x".repeat(512)] {
            assert!(super::check_document_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_mGet", "a\0b", &"x".repeat(513)] {
            assert!(super::check_document_id(bad).is_err(), "{bad:?}");
        }
    }
}
