//! A profile: the roles it grants, and how many requests per second its users may make.
//!
//! `{"policies": [{"roleId": "...", "restrictedTo": [{"index": "...", "collections": [...]}]}],
//!   "rateLimit": 0}`. Restrictions narrow a policy to indexes and collections; Sandgate's
//! actions carry none, so a restricted policy still applies to them, as in Kuzzle for
//! requests without an index. They are kept and returned as given.

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

/// What a profile body must be. Returns the argument at fault and what was expected.
pub fn check_shape(body: &Map<String, Value>) -> Result<(), (String, &'static str)> {
    let Some(policies) = body.get("policies").and_then(Value::as_array).filter(|p| !p.is_empty()) else {
        return Err(("body.policies".into(), "a non-empty array of {roleId, restrictedTo?}"));
    };
    for (i, p) in policies.iter().enumerate() {
        if p.get("roleId").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err((format!("body.policies[{i}].roleId"), "a role id"));
        }
        match p.get("restrictedTo") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (j, r) in list.iter().enumerate() {
                    let index_ok = r.get("index").and_then(Value::as_str).is_some_and(|s| !s.is_empty());
                    let cols_ok = match r.get("collections") {
                        None | Some(Value::Null) => true,
                        Some(Value::Array(c)) => c.iter().all(Value::is_string),
                        Some(_) => false,
                    };
                    if !index_ok || !cols_ok {
                        return Err((
                            format!("body.policies[{i}].restrictedTo[{j}]"),
                            "an object {index, collections?: string[]}",
                        ));
                    }
                }
            }
            Some(_) => return Err((format!("body.policies[{i}].restrictedTo"), "an array")),
        }
    }
    match body.get("rateLimit") {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_u64().is_some() => Ok(()),
        Some(_) => Err(("body.rateLimit".into(), "a positive integer or 0 (no limit)")),
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
        assert!(check_shape(&p.body).is_ok());
        for bad in [
            json!({}),
            json!({ "policies": [] }),
            json!({ "policies": [{}] }),
            json!({ "policies": [{ "roleId": "a", "restrictedTo": "x" }] }),
            json!({ "policies": [{ "roleId": "a", "restrictedTo": [{ "collections": ["c"] }] }] }),
            json!({ "policies": [{ "roleId": "a" }], "rateLimit": -1 }),
        ] {
            assert!(check_shape(bad.as_object().unwrap()).is_err(), "{bad}");
        }
    }
}
