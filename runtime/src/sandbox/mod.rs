//! The sandbox: one wasmtime `Engine` per process, one `InstancePre` per registered strategy,
//! and a fresh `Store` + instance for every call, so nothing a call leaves behind reaches the
//! next one. Each call runs under the caps of [`Limits`]: memory, guest CPU time (epoch
//! deadlines, host time excluded), wall-clock time, wasm stack, table size, returned-string
//! size, host-call counts; each strategy admits a bounded number of requests at once.
//!
//! Rooms, bottom up: `limits`, `metrics`, `bindings` (the WIT world), `host/` (one file per
//! interface), `contract` (0.2.0 or 0.1.0), `errors`, `grants` (what the operator allows it), `strategy` (a registered strategy and its admission), `warm`
//! (instances built ahead), `call` (one call's life), `engine`, `compile` and `upload`
//! (bytes to a strategy), `registry` (the [`Sandbox`] itself).

pub mod bindings;
pub mod call;
pub mod compile;
pub mod contract;
mod engine;
pub mod errors;
pub mod grants;
pub mod host;
pub mod limits;
pub mod metrics;
pub mod passwords;
pub mod registry;
pub mod strategy;
pub mod upload;
mod warm;

pub use call::{Backends, CallCtx, CallReport, Calls};
pub use errors::{CallError, UploadError};
pub use grants::Grants;
pub use limits::Limits;
pub use passwords::{Argon2Config, PasswordHasher};
pub use registry::Sandbox;
pub use strategy::{Permit, Strategy};

/// A read guard as a call takes it.
pub type ReadGuardArc = std::sync::Arc<dyn host::ReadGuard>;
