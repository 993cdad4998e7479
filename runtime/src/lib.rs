//! Sandgate: a login server that speaks Kuzzle's authentication API and runs every
//! authentication strategy as a sandboxed WebAssembly component.
//!
//! The rooms, each importing only the ones below it (`make lint` checks there is no cycle,
//! between files nor between rooms):
//! - [`api`]: the action table, the dispatcher, HTTP routing, the transports
//! - [`controllers`]: one function per action
//! - [`service`]: the running server's parts and start-up ([`service::app`]), the request
//!   context, authentication, strategy calls, users, credentials, login, throttling, error
//!   mapping
//! - [`config`]: the configuration
//! - [`sandbox`]: wasmtime engine, strategies, limits, the host interfaces
//! - [`tokens`]: JWT and PASETO, revocation; [`store`]: persistence (SQLite)
//! - [`protocol`]: request, reply, response envelope; [`core`]: errors, ids, time, escaping

pub mod api;
pub mod config;
pub mod controllers;
pub mod core;
pub mod protocol;
pub mod rights;
pub mod sandbox;
pub mod service;
pub mod store;
pub mod tokens;

pub use config::Config;
pub use service::app::App;
