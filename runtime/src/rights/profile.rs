//! A profile: the roles it grants, and how many requests per second its users may make.
//!
//! `{"policies": [{"roleId": "...", "restrictedTo": [{"index": "...", "collections": [...]}]}],
//!   "rateLimit": 0}`. Restrictions narrow a policy to indexes and collections; Sandgate's
//! actions carry none, so a restricted policy still applies to them, as in Kuzzle for
//! requests without an index. They are kept and returned as given.

use crate::core::errors::{KError, defs};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub id: String,
    pub body: Map<String, Value>,
    /// Its policies' role ids and its rate limit, read once from `body`: every request
    /// evaluates them.
    role_ids: Vec<String>,
    rate_limit: u64,
}

/// One policy of a profile.
pub struct Policy<'a> {
    pub role_id: &'a str,
    /// `(index, collection)` pairs, `"*"` for any; `[("*", "*")]` when unrestricted.
    pub scopes: Vec<(&'a str, &'a str)>,
}

impl Profile {
    pub fn new(id: &str, body: Value) -> Self {
        let body = body.as_object().cloned().unwrap_or_default();
        let mut profile = Profile { id: id.to_string(), body, role_ids: Vec::new(), rate_limit: 0 };
        profile.role_ids = profile.policies().into_iter().map(|p| p.role_id.to_string()).collect();
        profile.rate_limit = profile.body.get("rateLimit").and_then(Value::as_u64).unwrap_or(0);
        profile
    }

    pub fn policies(&self) -> Vec<Policy<'_>> {
        let list = self.body.get("policies").and_then(Value::as_array);
        list.into_iter()
            .flatten()
            .filter_map(|p| {
                let role_id = p.get("roleId")?.as_str()?;
                let mut scopes = Vec::new();
                for r in p.get("restrictedTo").and_then(Value::as_array).into_iter().flatten() {
                    let Some(index) = r.get("index").and_then(Value::as_str) else { continue };
                    match r.get("collections").and_then(Value::as_array).filter(|c| !c.is_empty()) {
                        Some(cols) => scopes.extend(cols.iter().filter_map(Value::as_str).map(|c| (index, c))),
                        None => scopes.push((index, "*")),
                    }
                }
                if scopes.is_empty() {
                    scopes.push(("*", "*"));
                }
                Some(Policy { role_id, scopes })
            })
            .collect()
    }

    pub fn role_ids(&self) -> &[String] {
        &self.role_ids
    }

    /// Requests per second allowed to each of its users, `0` for no limit.
    pub fn rate_limit(&self) -> u64 {
        self.rate_limit
    }
}

/// What a profile body must be, checked as Kuzzle's `Profile.validateDefinition` (its error
/// ids, arguments named `<profile id>.policies…`).
pub fn check_shape(id: &str, body: &Map<String, Value>) -> Result<(), KError> {
    let at = format!("{id}.policies");
    let policies = match body.get("policies") {
        None | Some(Value::Null) => return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &[&at])),
        Some(Value::Array(p)) if p.is_empty() => return Err(KError::new(defs::API_ASSERT_EMPTY_ARGUMENT, &[&at])),
        Some(Value::Array(p)) => p,
        Some(_) => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&at, "object[]"])),
    };
    for (i, p) in policies.iter().enumerate() {
        let at = format!("{id}.policies[{i}]");
        let Some(p) = p.as_object() else {
            return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&at, "object"]));
        };
        if let Some(key) = p.keys().find(|k| *k != "roleId" && *k != "restrictedTo") {
            return Err(KError::new(
                defs::API_ASSERT_UNEXPECTED_ARGUMENT,
                &[&format!("{at}.{key}"), r#""roleId", "restrictedTo""#],
            ));
        }
        match p.get("roleId") {
            Some(Value::String(r)) if !r.is_empty() => {}
            None | Some(Value::Null) => {
                return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &[&format!("{at}.roleId")]));
            }
            Some(_) => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&format!("{at}.roleId"), "string"])),
        }
        let restricted = match p.get("restrictedTo") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&format!("{at}.restrictedTo"), "object[]"]));
            }
        };
        for (j, r) in restricted.iter().enumerate() {
            let at = format!("{at}.restrictedTo[{j}]");
            let Some(r) = r.as_object() else {
                return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&at, "object"]));
            };
            if let Some(key) = r.keys().find(|k| *k != "index" && *k != "collections") {
                return Err(KError::new(
                    defs::API_ASSERT_UNEXPECTED_ARGUMENT,
                    &[&format!("{at}.{key}"), r#""index", "collections""#],
                ));
            }
            match r.get("index") {
                Some(Value::String(ix)) if !ix.is_empty() => {}
                None | Some(Value::Null) => {
                    return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &[&format!("{at}.index")]));
                }
                Some(_) => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&format!("{at}.index"), "string"])),
            }
            match r.get("collections") {
                None | Some(Value::Null) => {}
                Some(Value::Array(c)) if c.iter().all(Value::is_string) => {}
                Some(_) => {
                    let at = format!("{at}.collections");
                    return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&at, "string[]"]));
                }
            }
        }
    }
    match body.get("rateLimit") {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_u64().is_some() => Ok(()),
        Some(v) if v.as_i64().is_some() => {
            Err(KError::new(defs::API_ASSERT_INVALID_ARGUMENT, &["rateLimit", "positive integer, or zero"]))
        }
        Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["rateLimit", "integer"])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn policies_scopes_and_rate_limit() {
        let p = Profile::new(
            "p",
            json!({ "policies": [
                { "roleId": "a" },
                { "roleId": "b", "restrictedTo": [{ "index": "i", "collections": ["c1", "c2"] }, { "index": "j" }] },
            ], "rateLimit": 5 }),
        );
        let policies = p.policies();
        assert_eq!(policies[0].scopes, vec![("*", "*")]);
        assert_eq!(policies[1].scopes, vec![("i", "c1"), ("i", "c2"), ("j", "*")]);
        assert_eq!(p.role_ids(), ["a", "b"]);
        assert_eq!(p.rate_limit(), 5);
        assert!(check_shape("p", &p.body).is_ok());
        for (bad, id) in [
            (json!({}), "api.assert.missing_argument"),
            (json!({ "policies": [] }), "api.assert.empty_argument"),
            (json!({ "policies": {} }), "api.assert.invalid_type"),
            (json!({ "policies": [{}] }), "api.assert.missing_argument"),
            (json!({ "policies": [{ "roleId": "a", "extra": 1 }] }), "api.assert.unexpected_argument"),
            (json!({ "policies": [{ "roleId": "a", "restrictedTo": "x" }] }), "api.assert.invalid_type"),
            (
                json!({ "policies": [{ "roleId": "a", "restrictedTo": [{ "collections": ["c"] }] }] }),
                "api.assert.missing_argument",
            ),
            (
                json!({ "policies": [{ "roleId": "a", "restrictedTo": [{ "index": "i", "collections": "c" }] }] }),
                "api.assert.invalid_type",
            ),
            (json!({ "policies": [{ "roleId": "a" }], "rateLimit": -1 }), "api.assert.invalid_argument"),
            (json!({ "policies": [{ "roleId": "a" }], "rateLimit": 1.5 }), "api.assert.invalid_type"),
        ] {
            assert_eq!(check_shape("p", bad.as_object().unwrap()).unwrap_err().id, id, "{bad}");
        }
    }
}
