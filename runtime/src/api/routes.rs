//! The route table. It is data: HTTP routing, the WebSocket and `/_query` dispatch (which
//! look actions up by `(controller, action)`) and `GET /_publicApi` are all driven by it,
//! so a new action is one row in [`ROUTES`] plus its handler in [`crate::actions`].

use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub fn parse(method: &str) -> Option<Verb> {
        match method {
            "GET" | "HEAD" => Some(Verb::Get),
            "POST" => Some(Verb::Post),
            "PUT" => Some(Verb::Put),
            "DELETE" => Some(Verb::Delete),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub verb: Verb,
    pub path: &'static str,
    pub controller: &'static str,
    pub action: &'static str,
    /// Kept for the SDK's static routes and older clients.
    pub deprecated: bool,
}

const fn r(verb: Verb, path: &'static str, controller: &'static str, action: &'static str) -> Route {
    Route { verb, path, controller, action, deprecated: false }
}
const fn old(verb: Verb, path: &'static str, controller: &'static str, action: &'static str) -> Route {
    Route { verb, path, controller, action, deprecated: true }
}

use Verb::*;

pub const ROUTES: &[Route] = &[
    // auth
    r(Post, "/_login/:strategy", "auth", "login"),
    r(Get, "/_login/:strategy", "auth", "login"),
    // The seed's form: strategy (default "local") and expiresIn in the body.
    r(Post, "/_login", "auth", "login"),
    r(Post, "/_logout", "auth", "logout"),
    r(Post, "/_checkToken", "auth", "checkToken"),
    r(Post, "/_refreshToken", "auth", "refreshToken"),
    r(Get, "/_me", "auth", "getCurrentUser"),
    old(Get, "/users/_me", "auth", "getCurrentUser"),
    r(Get, "/_me/_rights", "auth", "getMyRights"),
    old(Get, "/users/_me/_rights", "auth", "getMyRights"),
    r(Put, "/_me", "auth", "updateSelf"),
    old(Put, "/_updateSelf", "auth", "updateSelf"),
    r(Get, "/strategies", "auth", "getStrategies"),
    r(Get, "/_me/credentials/:strategy", "auth", "getMyCredentials"),
    old(Get, "/credentials/:strategy/_me", "auth", "getMyCredentials"),
    r(Get, "/_me/credentials/:strategy/_exists", "auth", "credentialsExist"),
    old(Get, "/credentials/:strategy/_me/_exists", "auth", "credentialsExist"),
    r(Post, "/_me/credentials/:strategy/_create", "auth", "createMyCredentials"),
    old(Post, "/credentials/:strategy/_me/_create", "auth", "createMyCredentials"),
    r(Post, "/_me/credentials/:strategy/_validate", "auth", "validateMyCredentials"),
    old(Post, "/credentials/:strategy/_me/_validate", "auth", "validateMyCredentials"),
    r(Put, "/_me/credentials/:strategy/_update", "auth", "updateMyCredentials"),
    old(Put, "/credentials/:strategy/_me/_update", "auth", "updateMyCredentials"),
    r(Delete, "/_me/credentials/:strategy", "auth", "deleteMyCredentials"),
    old(Delete, "/credentials/:strategy/_me", "auth", "deleteMyCredentials"),
    // security: users and their credentials
    r(Post, "/_createFirstAdmin", "security", "createFirstAdmin"),
    r(Post, "/_createFirstAdmin/:_id", "security", "createFirstAdmin"),
    r(Post, "/users/_create", "security", "createUser"),
    r(Post, "/users/:_id/_create", "security", "createUser"),
    r(Get, "/users/:_id", "security", "getUser"),
    r(Delete, "/users/:_id", "security", "deleteUser"),
    r(Delete, "/users/:_id/tokens", "security", "revokeTokens"),
    r(Get, "/users/:_id/_strategies", "security", "getUserStrategies"),
    r(Post, "/credentials/:strategy/:_id/_create", "security", "createCredentials"),
    r(Put, "/credentials/:strategy/:_id/_update", "security", "updateCredentials"),
    r(Delete, "/credentials/:strategy/:_id", "security", "deleteCredentials"),
    r(Get, "/credentials/:strategy/:_id", "security", "getCredentials"),
    r(Get, "/credentials/:strategy/:_id/_byId", "security", "getCredentialsById"),
    r(Get, "/credentials/:strategy/:_id/_exists", "security", "hasCredentials"),
    r(Post, "/credentials/:strategy/:_id/_validate", "security", "validateCredentials"),
    r(Get, "/credentials/:strategy/_fields", "security", "getCredentialFields"),
    r(Get, "/credentials/_fields", "security", "getAllCredentialFields"),
    // strategies: upload, inspect, remove (`GET /strategies` above is auth:getStrategies)
    r(Put, "/strategies/:name", "strategies", "register"),
    r(Get, "/strategies/:name", "strategies", "info"),
    r(Delete, "/strategies/:name", "strategies", "unregister"),
    // server
    r(Get, "/", "server", "info"),
    r(Get, "/_serverInfo", "server", "info"),
    r(Get, "/_publicApi", "server", "publicApi"),
    r(Get, "/_now", "server", "now"),
    r(Get, "/_healthcheck", "server", "healthCheck"),
    r(Get, "/_healthCheck", "server", "healthCheck"),
];

/// Finds the route for `verb path`, with its placeholders bound. Among matches, the one with
/// the most literal segments wins (`/users/_me` over `/users/:_id`).
pub fn find(verb: Verb, path: &str) -> Option<(&'static Route, Map<String, Value>)> {
    let path = path.trim_end_matches('/');
    let segments: Vec<&str> = if path.is_empty() { Vec::new() } else { path[1..].split('/').collect() };
    let mut best: Option<(&Route, Map<String, Value>, usize)> = None;
    'routes: for route in ROUTES.iter().filter(|r| r.verb == verb) {
        let pattern: Vec<&str> = route.path.trim_end_matches('/').split('/').skip(1).collect();
        if pattern.len() != segments.len() {
            continue;
        }
        let mut params = Map::new();
        let mut literals = 0;
        for (p, s) in pattern.iter().zip(&segments) {
            if let Some(name) = p.strip_prefix(':') {
                let Some(value) = percent_decode(s).filter(|v| !v.is_empty()) else {
                    continue 'routes;
                };
                params.insert(name.to_string(), Value::String(value));
            } else if p == s {
                literals += 1;
            } else {
                continue 'routes;
            }
        }
        if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
            best = Some((route, params, literals));
        }
    }
    best.map(|(route, params, _)| (route, params))
}

/// Whether some route has this path with another verb (for a 400 unsupported verb vs 404).
pub fn path_exists(path: &str) -> bool {
    [Get, Post, Put, Delete].iter().any(|v| find(*v, path).is_some())
}

/// `GET /_publicApi`: every action with its HTTP routes, shaped as the SDK reads it.
pub fn public_api() -> Value {
    let mut api = Map::new();
    for route in ROUTES {
        let controller = api.entry(route.controller).or_insert_with(|| json!({}));
        let action = controller
            .as_object_mut()
            .expect("object")
            .entry(route.action)
            .or_insert_with(|| json!({ "controller": route.controller, "action": route.action, "http": [] }));
        action["http"].as_array_mut().expect("array").push(json!({ "verb": route.verb.name(), "url": route.path }));
    }
    Value::Object(api)
}

pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win() {
        let (route, params) = find(Get, "/users/_me").unwrap();
        assert_eq!(route.action, "getCurrentUser");
        assert!(params.is_empty());
        let (route, params) = find(Get, "/users/alice").unwrap();
        assert_eq!((route.controller, route.action), ("security", "getUser"));
        assert_eq!(params["_id"], "alice");
        let (route, params) = find(Post, "/_login/local").unwrap();
        assert_eq!(route.action, "login");
        assert_eq!(params["strategy"], "local");
        assert_eq!(find(Post, "/_login").unwrap().1.len(), 0);
        assert!(find(Get, "/nope").is_none());
        assert!(find(Put, "/_login/local").is_none() && path_exists("/_login/local"));
        assert_eq!(find(Get, "/users/a%20b").unwrap().1["_id"], "a b");
    }

    #[test]
    fn every_route_is_reachable() {
        for route in ROUTES {
            let path = route.path.replace(":strategy", "local").replace(":_id", "someone");
            let (found, _) = find(route.verb, &path).unwrap_or_else(|| panic!("{} {}", route.verb.name(), route.path));
            assert_eq!((found.controller, found.action), (route.controller, route.action), "{}", route.path);
        }
    }

    #[test]
    fn public_api_lists_routes() {
        let api = public_api();
        assert_eq!(api["auth"]["login"]["http"][0], json!({"verb": "POST", "url": "/_login/:strategy"}));
        assert_eq!(api["auth"]["getCurrentUser"]["http"].as_array().unwrap().len(), 2);
    }
}
