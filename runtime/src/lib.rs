//! Sandgate: a login server that speaks Kuzzle's authentication API and runs every
//! authentication strategy as a sandboxed WebAssembly component.
//!
//! - [`api`]: routes, envelope, errors, dispatcher, transports
//! - [`actions`]: who answers each (controller, action), and who may call it
//! - [`auth`], [`security`], [`server`]: the controllers
//! - [`tokens`]: `expiresIn`, JWT, revocation
//! - [`sandbox`]: wasmtime engine, strategies, limits, host interfaces
//! - [`store`] — persistence (SQLite)

pub mod actions;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod escape;
pub mod ids;
pub mod sandbox;
pub mod security;
pub mod server;
pub mod store;
pub mod strategies;
pub mod tokens;

pub use app::App;
pub use config::Config;
