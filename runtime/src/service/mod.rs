//! The service layer: what the controllers stand on. The running server's parts ([`app::App`]:
//! the store, the sandbox, the tokens, the throttle) and start-up, the request context ([`context::Ctx`]),
//! authentication of a token into a caller, the strategy-call glue, the credentials and
//! users operations, logging in, cookie mode, login throttling, and the one place where lower
//! failures become Kuzzle errors ([`errors`]). Nothing here knows about HTTP or the action
//! table.

pub mod api_keys;
pub mod app;
pub mod authn;
pub mod bundled;
pub mod cluster;
pub mod context;
pub mod cookie;
pub mod credentials;
pub mod errors;
pub mod login;
#[cfg(feature = "bench-native")]
pub mod native_bench;
pub mod rights;
pub mod roles;
pub mod runner;
pub mod search;
pub mod strategy;
pub mod throttle;
pub mod users;
