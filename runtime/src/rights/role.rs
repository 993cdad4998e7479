//! A role: which actions it allows, Kuzzle 2's way.
//!
//! `{"controllers": {"<controller>" | "*": {"actions": {"<action>" | "*": true | false}}}}`.
//! The exact controller key is looked up first, then `"*"`; an exact key hides `"*"`
//! entirely (a role that names `auth` says everything it allows on `auth`). Then the same
//! for the action. Only the boolean `true` allows: anything else stored there denies.

use crate::core::errors::{KError, defs};
use serde_json::{Map, Value};

/// A role as stored: its id and its body, kept as given (extra fields included), since
/// Kuzzle returns a role as it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: String,
    pub body: Map<String, Value>,
}

impl Role {
    pub fn new(id: &str, body: Value) -> Self {
        Role { id: id.to_string(), body: body.as_object().cloned().unwrap_or_default() }
    }

    fn controllers(&self) -> Option<&Map<String, Value>> {
        self.body.get("controllers").and_then(Value::as_object)
    }

    /// Whether this role allows `controller:action`.
    pub fn allows(&self, controller: &str, action: &str) -> bool {
        let Some(controllers) = self.controllers() else { return false };
        let Some(entry) = controllers.get(controller).or_else(|| controllers.get("*")) else { return false };
        let Some(actions) = entry.get("actions").and_then(Value::as_object) else { return false };
        matches!(actions.get(action).or_else(|| actions.get("*")), Some(Value::Bool(true)))
    }

    /// Every `(controller, action, allowed)` the role names, in its order (what the rights
    /// actions list).
    pub fn entries(&self) -> Vec<(&str, &str, bool)> {
        let mut out = Vec::new();
        for (controller, entry) in self.controllers().into_iter().flatten() {
            let actions = entry.get("actions").and_then(Value::as_object);
            for (action, value) in actions.into_iter().flatten() {
                out.push((controller.as_str(), action.as_str(), value == &Value::Bool(true)));
            }
        }
        out
    }
}

/// What a role body must be, checked as Kuzzle's `Role.validateDefinition` (its error ids,
/// arguments named `<role id>.controllers…`): `controllers` a non-empty object of non-empty
/// `{actions: {...}}` objects whose values are booleans. Unknown controllers and actions are
/// checked apart ([`unknown`]), since `force` lets them through.
pub fn check_shape(id: &str, body: &Map<String, Value>) -> Result<(), KError> {
    let at = format!("{id}.controllers");
    let controllers = match body.get("controllers") {
        None | Some(Value::Null) => return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &[&at])),
        Some(Value::Object(c)) if c.is_empty() => return Err(KError::new(defs::API_ASSERT_EMPTY_ARGUMENT, &[&at])),
        Some(Value::Object(c)) => c,
        Some(_) => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&at, "object"])),
    };
    for (name, entry) in controllers {
        let entry = match entry {
            Value::Object(e) if e.is_empty() => return Err(KError::new(defs::API_ASSERT_EMPTY_ARGUMENT, &[name])),
            Value::Object(e) => e,
            _ => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[name, "object"])),
        };
        let at = format!("{name}.actions");
        let actions = match entry.get("actions") {
            None | Some(Value::Null) => return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &[&at])),
            Some(Value::Object(a)) if a.is_empty() => return Err(KError::new(defs::API_ASSERT_EMPTY_ARGUMENT, &[&at])),
            Some(Value::Object(a)) => a,
            Some(_) => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&at, "object"])),
        };
        if let Some((action, _)) = actions.iter().find(|(_, v)| !v.is_boolean()) {
            return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&format!("{at}.{action}"), "boolean"]));
        }
    }
    Ok(())
}

/// The first controller, or `controller:action`, the role names that `known` does not
/// (`"*"` always exists).
pub fn unknown(
    body: &Map<String, Value>,
    known: &dyn Fn(&str, Option<&str>) -> bool,
) -> Option<(String, Option<String>)> {
    let controllers = body.get("controllers").and_then(Value::as_object)?;
    for (controller, entry) in controllers {
        if controller != "*" && !known(controller, None) {
            return Some((controller.clone(), None));
        }
        let actions = entry.get("actions").and_then(Value::as_object);
        for action in actions.into_iter().flatten().map(|(a, _)| a) {
            // Under `*` only `*` means something (an action of every controller).
            if action != "*" && (controller == "*" || !known(controller, Some(action))) {
                return Some((controller.clone(), Some(action.clone())));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(controllers: Value) -> Role {
        Role::new("r", json!({ "controllers": controllers }))
    }

    #[test]
    fn exact_controller_key_hides_the_star() {
        let r = role(json!({
            "*": { "actions": { "*": true } },
            "security": { "actions": { "getUser": true } },
        }));
        assert!(r.allows("auth", "login"), "through *");
        assert!(r.allows("security", "getUser"));
        assert!(!r.allows("security", "createUser"), "security is named: * no longer speaks for it");
    }

    #[test]
    fn action_wildcard_and_exact_action() {
        let r = role(json!({ "auth": { "actions": { "*": true, "logout": false } } }));
        assert!(r.allows("auth", "login"));
        assert!(!r.allows("auth", "logout"), "the exact action wins over *");
        assert!(!r.allows("server", "info"), "no key: denied");
    }

    #[test]
    fn only_the_boolean_true_allows() {
        for value in [json!("true"), json!(1), json!({}), json!(null), json!([true]), json!(false)] {
            let r = role(json!({ "auth": { "actions": { "login": value.clone() } } }));
            assert!(!r.allows("auth", "login"), "{value}");
        }
        assert!(!Role::new("r", json!({})).allows("auth", "login"), "no controllers");
        assert!(!role(json!({ "auth": {} })).allows("auth", "login"), "no actions");
        assert!(!role(json!({ "auth": { "actions": [] } })).allows("auth", "login"));
    }

    #[test]
    fn names_are_compared_exactly() {
        let r = role(json!({ "auth": { "actions": { "login": true } } }));
        assert!(!r.allows("Auth", "login"));
        assert!(!r.allows("auth", "Login"));
        assert!(!r.allows("auth ", "login"));
    }

    #[test]
    fn shape_and_unknown_names() {
        let check = |v: Value| check_shape("r", v.as_object().unwrap()).map_err(|e| (e.id, e.message));
        assert!(check(json!({ "controllers": { "auth": { "actions": { "login": true } } } })).is_ok());
        assert_eq!(check(json!({})).unwrap_err().0, "api.assert.missing_argument");
        assert_eq!(check(json!({ "controllers": {} })).unwrap_err().0, "api.assert.empty_argument");
        assert_eq!(check(json!({ "controllers": [] })).unwrap_err().0, "api.assert.invalid_type");
        assert_eq!(check(json!({ "controllers": { "auth": true } })).unwrap_err().0, "api.assert.invalid_type");
        assert_eq!(check(json!({ "controllers": { "auth": {} } })).unwrap_err().0, "api.assert.empty_argument");
        assert_eq!(
            check(json!({ "controllers": { "auth": { "x": 1 } } })).unwrap_err().0,
            "api.assert.missing_argument"
        );
        let not_bool = check(json!({ "controllers": { "auth": { "actions": { "login": "yes" } } } })).unwrap_err();
        assert_eq!(not_bool.0, "api.assert.invalid_type", "only booleans are written");
        assert_eq!(not_bool.1, r#"Wrong type for argument "auth.actions.login" (expected: boolean)"#);
        let known = |c: &str, a: Option<&str>| c == "auth" && a.is_none_or(|a| a == "login");
        let body = json!({ "controllers": { "auth": { "actions": { "login": true, "nope": true } } } });
        assert_eq!(unknown(body.as_object().unwrap(), &known), Some(("auth".into(), Some("nope".into()))));
        let body =
            json!({ "controllers": { "*": { "actions": { "*": true } }, "auth": { "actions": { "*": true } } } });
        assert_eq!(unknown(body.as_object().unwrap(), &known), None);
        let body = json!({ "controllers": { "*": { "actions": { "login": true } } } });
        assert_eq!(unknown(body.as_object().unwrap(), &known), Some(("*".into(), Some("login".into()))));
    }
}
