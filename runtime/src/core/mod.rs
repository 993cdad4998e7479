//! The bottom floor: what every other room uses and that uses nothing of ours. Kuzzle's
//! errors, identifiers, time and the `ms` grammar, and the escaping of logged text.

pub mod errors;
pub mod escape;
pub mod ids;
pub mod time;
