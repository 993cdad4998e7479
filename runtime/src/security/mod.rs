//! The `security` controller: users and their credentials, for administrators.

pub mod credentials;
pub mod users;
