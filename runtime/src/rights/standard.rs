//! The built-in roles and profiles, as Kuzzle's `security.standard` (what `createFirstAdmin`
//! with `reset` applies), which Sandgate starts with: nothing is open until an admin opens it.
//!
//! Sandgate's additions, each an action Kuzzle does not have or that Sandgate's users had
//! before rights existed: `server:healthCheck` and `server:info` for everyone (load balancers
//! and the SDK's fallback read them), and for logged-in users `auth:refreshToken`,
//! `auth:getStrategies`, `server:now` and the actions on one's own credentials.
//!
//! Kuzzle's standard profiles limit `default` to 10 requests per second and `anonymous` to
//! 200 (shared by every anonymous caller of a node). Sandgate's built-in profiles have no
//! limit: on an authentication server, anonymous traffic is every client before its login.
//! An operator sets `rateLimit` with `security:updateProfile`.

use super::profile::Profile;
use super::role::Role;
use serde_json::{Value, json};

fn allow(actions: &[&str]) -> Value {
    Value::Object(actions.iter().map(|a| (a.to_string(), Value::Bool(true))).collect())
}

pub fn role(id: &str) -> Option<Role> {
    let body = match id {
        "admin" => json!({ "controllers": { "*": { "actions": { "*": true } } } }),
        "default" => json!({ "controllers": {
            "auth": { "actions": allow(&[
                "checkToken", "getCurrentUser", "getMyRights", "logout", "updateSelf",
                "refreshToken", "getStrategies",
                "getMyCredentials", "credentialsExist", "createMyCredentials", "updateMyCredentials",
                "validateMyCredentials", "deleteMyCredentials",
            ]) },
            "server": { "actions": allow(&["publicApi", "healthCheck", "info", "now"]) },
        } }),
        "anonymous" => json!({ "controllers": {
            "auth": { "actions": allow(&["checkToken", "getCurrentUser", "getMyRights", "login"]) },
            "server": { "actions": allow(&["publicApi", "healthCheck", "info"]) },
        } }),
        _ => return None,
    };
    Some(Role::new(id, body))
}

/// The three profiles and roles that always exist (and cannot be deleted).
pub const BUILT_IN: [&str; 3] = ["admin", "default", "anonymous"];

pub fn profile(id: &str) -> Option<Profile> {
    BUILT_IN.contains(&id).then(|| Profile::new(id, json!({ "policies": [{ "roleId": id }], "rateLimit": 0 })))
}
