//! The controllers: one function per Kuzzle action, reading its arguments and answering.
//! They stand on the service layer and the protocol; they never import `api/` (the table
//! that routes to them) nor each other.

pub mod auth;
pub mod roles;
pub mod security;
pub mod server;
pub mod strategies;
