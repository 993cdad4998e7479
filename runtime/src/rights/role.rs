//! A role: which actions it allows, Kuzzle 2's way.
//!
//! `{"controllers": {"<controller>" | "*": {"actions": {"<action>" | "*": true | false}}}}`.
//! The exact controller key is looked up first, then `"*"`; an exact key hides `"*"`
//! entirely (a role that names `auth` says everything it allows on `auth`). Then the same
//! for the action. Only the boolean `true` allows: anything else stored there denies.

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

/// What a role body must be: `controllers` an object of `{actions: {...}}` objects. Returns
/// the argument at fault and what was expected. Unknown controllers and actions are checked
/// apart ([`unknown`]), since `force` lets them through.
pub fn check_shape(body: &Map<String, Value>) -> Result<(), (String, &'static str)> {
    let Some(controllers) = body.get("controllers") else {
        return Err(("body.controllers".into(), "an object"));
    };
    let Some(controllers) = controllers.as_object() else {
        return Err(("body.controllers".into(), "an object"));
    };
    if controllers.is_empty() {
        return Err(("body.controllers".into(), "a non-empty object"));
    }
    for (name, entry) in controllers {
        let actions = entry.as_object().and_then(|e| e.get("actions")).and_then(Value::as_object);
        let Some(actions) = actions.filter(|a| !a.is_empty()) else {
            return Err((format!("body.controllers.{name}"), r#"an object {"actions": {...}}, not empty"#));
        };
        if let Some((action, _)) = actions.iter().find(|(_, v)| !v.is_boolean()) {
            return Err((format!("body.controllers.{name}.actions.{action}"), "a boolean"));
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
        assert!(
            check_shape(
                &json!({ "controllers": { "auth": { "actions": { "login": true } } } }).as_object().unwrap().clone()
            )
            .is_ok()
        );
        assert!(check_shape(&json!({}).as_object().unwrap().clone()).is_err());
        assert!(check_shape(&json!({ "controllers": { "auth": true } }).as_object().unwrap().clone()).is_err());
        let not_bool = json!({ "controllers": { "auth": { "actions": { "login": "yes" } } } });
        assert!(check_shape(not_bool.as_object().unwrap()).is_err(), "only booleans are written");
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
