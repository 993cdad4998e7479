//! Kuzzle's rights model: roles say which actions they allow ([`role`]), profiles grant
//! roles ([`profile`]), users hold profiles. A caller may run an action when any policy of
//! any of its profiles names a role that allows it. Anonymous callers hold the `anonymous`
//! profile.
//!
//! [`Rights`] is one consistent view of every role and profile, read whole from the store and
//! swapped whole when one changes: a request evaluates against a single version.

pub mod live;
pub mod profile;
pub mod role;
pub mod standard;

use crate::core::errors::{KError, defs};
use profile::Profile;
use role::Role;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub use standard::BUILT_IN;

/// Every role and profile.
#[derive(Debug, Clone, Default)]
pub struct Rights {
    pub roles: BTreeMap<String, Role>,
    pub profiles: BTreeMap<String, Profile>,
}

impl Rights {
    /// The stored roles and profiles, the built-in ones in their standard form where the
    /// store has none (they are stored only once changed).
    pub fn from_stored(roles: Vec<Role>, profiles: Vec<Profile>) -> Self {
        let mut rights = Rights::standard();
        rights.roles.extend(roles.into_iter().map(|r| (r.id.clone(), r)));
        rights.profiles.extend(profiles.into_iter().map(|p| (p.id.clone(), p)));
        rights
    }

    /// The built-in roles and profiles, and nothing else.
    pub fn standard() -> Self {
        let mut rights = Rights::default();
        for id in BUILT_IN {
            rights.roles.insert(id.into(), standard::role(id).expect("built in"));
            rights.profiles.insert(id.into(), standard::profile(id).expect("built in"));
        }
        rights
    }

    /// Whether a caller holding `profile_ids` may run `controller:action`.
    /// A role, or Kuzzle's 404.
    pub fn role(&self, id: &str) -> Result<&Role, KError> {
        self.roles.get(id).ok_or_else(|| KError::new(defs::SECURITY_ROLE_NOT_FOUND, &[id]))
    }

    /// A profile, or Kuzzle's 404.
    pub fn profile(&self, id: &str) -> Result<&Profile, KError> {
        self.profiles.get(id).ok_or_else(|| KError::new(defs::SECURITY_PROFILE_NOT_FOUND, &[id]))
    }

    /// (Every request: no allocation.)
    pub fn allows(&self, profile_ids: &[&str], controller: &str, action: &str) -> bool {
        profile_ids
            .iter()
            .filter_map(|id| self.profiles.get(*id))
            .flat_map(|p| p.role_ids().iter().filter_map(|r| self.roles.get(r)))
            .any(|role| role.allows(controller, action))
    }

    /// Requests per second a caller holding `profile_ids` may make: the largest of its
    /// profiles' limits, `0` (no limit) if any profile has none.
    pub fn rate_limit(&self, profile_ids: &[&str]) -> u64 {
        let mut limit = 0;
        for p in profile_ids.iter().filter_map(|id| self.profiles.get(*id)) {
            match p.rate_limit() {
                0 => return 0,
                n => limit = limit.max(n),
            }
        }
        limit
    }

    /// The rights of a caller holding `profile_ids`, as `getMyRights` lists them: one
    /// `{controller, action, index, collection, value}` per action a role names, `allowed`
    /// winning over `denied` when several policies name the same.
    pub fn list(&self, profile_ids: &[&str]) -> Vec<Value> {
        let profiles: Vec<&Profile> = profile_ids.iter().filter_map(|id| self.profiles.get(*id)).collect();
        list_of(self, &profiles)
    }

    /// The rights one profile grants (`getProfileRights`).
    pub fn list_profile(&self, profile: &Profile) -> Vec<Value> {
        list_of(self, &[profile])
    }

    /// Profiles whose policies name `role_id`.
    pub fn profiles_using(&self, role_id: &str) -> Vec<&str> {
        self.profiles.values().filter(|p| p.role_ids().iter().any(|r| r == role_id)).map(|p| p.id.as_str()).collect()
    }
}

fn list_of(rights: &Rights, profiles: &[&Profile]) -> Vec<Value> {
    // key → allowed; in first-seen order.
    let mut seen: Vec<((String, String, String, String), bool)> = Vec::new();
    for profile in profiles {
        for policy in profile.policies() {
            let Some(role) = rights.roles.get(policy.role_id) else { continue };
            for (controller, action, allowed) in role.entries() {
                for (index, collection) in &policy.scopes {
                    let key = (controller.to_string(), action.to_string(), index.to_string(), collection.to_string());
                    match seen.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, v)) => *v |= allowed,
                        None => seen.push((key, allowed)),
                    }
                }
            }
        }
    }
    seen.into_iter()
        .map(|((controller, action, index, collection), allowed)| {
            json!({ "controller": controller, "action": action, "index": index, "collection": collection,
                    "value": if allowed { "allowed" } else { "denied" } })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights() -> Rights {
        Rights::from_stored(
            vec![
                Role::new("reader", json!({ "controllers": { "security": { "actions": { "getUser": true } } } })),
                Role::new("no-logout", json!({ "controllers": { "auth": { "actions": { "logout": false } } } })),
            ],
            vec![
                Profile::new("readers", json!({ "policies": [{ "roleId": "reader" }], "rateLimit": 3 })),
                Profile::new("stuck", json!({ "policies": [{ "roleId": "no-logout" }], "rateLimit": 7 })),
                Profile::new("ghost", json!({ "policies": [{ "roleId": "missing" }] })),
            ],
        )
    }

    #[test]
    fn any_profile_that_allows_wins() {
        let r = rights();
        assert!(r.allows(&["readers"], "security", "getUser"));
        assert!(!r.allows(&["readers"], "auth", "logout"));
        assert!(!r.allows(&["stuck"], "auth", "logout"), "false denies");
        assert!(r.allows(&["stuck", "default"], "auth", "logout"), "one profile that allows is enough");
        assert!(!r.allows(&["ghost"], "auth", "checkToken"), "a missing role allows nothing");
        assert!(!r.allows(&["nobody-has-this"], "auth", "checkToken"), "a missing profile allows nothing");
        assert!(!r.allows(&[], "auth", "checkToken"));
        assert!(r.allows(&["admin"], "anything", "at-all"));
    }

    #[test]
    fn the_standard_set() {
        let r = Rights::default();
        assert!(!r.allows(&["anonymous"], "auth", "login"), "an empty set allows nothing");
        let r = rights();
        assert!(r.allows(&["anonymous"], "auth", "login"));
        assert!(!r.allows(&["anonymous"], "auth", "logout"));
        assert!(!r.allows(&["anonymous"], "security", "createUser"));
        assert!(r.allows(&["default"], "auth", "updateSelf"));
        assert!(!r.allows(&["default"], "security", "updateUser"));
        assert!(!r.allows(&["default"], "auth", "login"));
    }

    #[test]
    fn rate_limits_take_the_largest_and_zero_wins() {
        let r = rights();
        assert_eq!(r.rate_limit(&["readers"]), 3);
        assert_eq!(r.rate_limit(&["readers", "stuck"]), 7);
        assert_eq!(r.rate_limit(&["readers", "admin"]), 0);
        assert_eq!(r.rate_limit(&[]), 0);
    }

    #[test]
    fn listing_merges_allowed_over_denied() {
        let r = Rights::from_stored(
            vec![
                Role::new("a", json!({ "controllers": { "auth": { "actions": { "logout": false, "login": true } } } })),
                Role::new("b", json!({ "controllers": { "auth": { "actions": { "logout": true } } } })),
            ],
            vec![Profile::new("p", json!({ "policies": [{ "roleId": "a" }, { "roleId": "b" }] }))],
        );
        let list = r.list(&["p"]);
        assert_eq!(list.len(), 2);
        let logout = list.iter().find(|h| h["action"] == "logout").unwrap();
        assert_eq!(logout["value"], "allowed", "denied by a, allowed by b");
        assert!(list.iter().all(|h| h["value"] == "allowed"));
        assert_eq!(
            r.list(&["admin"]),
            vec![json!({ "controller": "*", "action": "*", "index": "*", "collection": "*", "value": "allowed" })]
        );
    }
}
