//! THE action table: one row per Kuzzle action, with everything every transport needs to
//! know about it: who may call it, the function that answers, its HTTP routes, and its
//! policies (login admission, cookie handling, upload body). HTTP routing ([`route`]), the
//! WebSocket and `/_query` dispatch ([`find`]), `GET /_publicApi` and `auth:getMyRights` are
//! all driven by it, so a new action is one row here plus its handler in `controllers/`.

use crate::controllers::{auth, roles, security, server, strategies};
use crate::core::errors::KError;
use crate::protocol::Request;
use crate::service::context::{Access, Catalog, Ctx, Handled, Handler};
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

/// How an action treats cookie mode (`cookieAuth`, reference §3.5). Elsewhere the flag is
/// ignored; the `authToken` cookie itself is read for every action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cookie {
    Ignored,
    /// Runs anonymously in cookie mode, and may answer with a token cookie (login, checkToken).
    Anonymous,
    /// A dead cookie does not fail the request: it only has to be cleared (logout).
    Tolerant,
    /// The new token goes in the cookie (refreshToken).
    Token,
}

/// What the body of an HTTP request may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// JSON or a form, up to `server.max_body_bytes`.
    Json,
    /// A strategy upload: the caller is checked to be an admin before the body is read; it
    /// may be binary (`application/wasm`), up to `server.max_upload_bytes`.
    Upload,
}

/// Names the strategy a request is admitted to (or why the request names none).
pub type Target = fn(&Request) -> Result<String, KError>;

pub struct Action {
    pub controller: &'static str,
    pub action: &'static str,
    pub access: Access,
    pub handler: Handler,
    /// Its HTTP routes, `:name` being a placeholder, in the order `/_publicApi` lists them.
    pub http: &'static [(Verb, &'static str)],
    /// Admitted to the strategy this function names before the request takes a worker, waiting
    /// (without a thread) up to the strategy's `limits.queue_ms`. The name it read is the
    /// handler's too (`Ctx::target`).
    pub admission: Option<Target>,
    pub cookie: Cookie,
    pub body: Body,
}

const fn row(
    controller: &'static str,
    action: &'static str,
    access: Access,
    handler: Handler,
    http: &'static [(Verb, &'static str)],
) -> Action {
    Action { controller, action, access, handler, http, admission: None, cookie: Cookie::Ignored, body: Body::Json }
}

impl Action {
    const fn cookie(mut self, cookie: Cookie) -> Self {
        self.cookie = cookie;
        self
    }
    const fn admission(mut self, name: Target) -> Self {
        self.admission = Some(name);
        self
    }
    const fn upload(mut self) -> Self {
        self.body = Body::Upload;
        self
    }
}

/// An `async fn(&Ctx) -> Result<Reply, KError>` as a row holds it.
macro_rules! handler {
    ($f:path) => {{
        fn boxed<'a>(ctx: &'a Ctx<'a>) -> Handled<'a> {
            Box::pin($f(ctx))
        }
        boxed as Handler
    }};
}

/// A login's strategy: the `strategy` argument, else `body.strategy`, else "local" (HTTP).
const LOGIN_STRATEGY: Target = crate::service::login::strategy_name;
/// The `strategy` argument (`/credentials/:strategy/...`).
const STRATEGY_ARG: Target = crate::service::strategy::arg_name;

use Access::{Anyone, Open, User};
use Verb::{Delete, Get, Post, Put};

// One row per line (rustfmt would spread each over seven): controller, action, who, handler,
// HTTP routes (current paths first, then the older ones the SDK's static routes and older
// clients use), then the row's policies.
#[rustfmt::skip]
pub const ACTIONS: &[Action] = &[
    // auth. `POST /_login` is the seed's form: strategy (default "local") and expiresIn in the body.
    row("auth", "login", Anyone, handler!(auth::login), &[(Post, "/_login/:strategy"), (Get, "/_login/:strategy"), (Post, "/_login")])
        .admission(LOGIN_STRATEGY).cookie(Cookie::Anonymous),
    row("auth", "checkToken", Anyone, handler!(auth::check_token), &[(Post, "/_checkToken")]).cookie(Cookie::Anonymous),
    row("auth", "getCurrentUser", Anyone, handler!(auth::get_current_user), &[(Get, "/_me"), (Get, "/users/_me")]),
    // logout checks the caller itself: in cookie mode a dead cookie is still cleared.
    row("auth", "logout", Anyone, handler!(auth::logout), &[(Post, "/_logout")]).cookie(Cookie::Tolerant),
    row("auth", "refreshToken", User, handler!(auth::refresh_token), &[(Post, "/_refreshToken")]).cookie(Cookie::Token),
    row("auth", "getMyRights", Anyone, handler!(auth::get_my_rights), &[(Get, "/_me/_rights"), (Get, "/users/_me/_rights")]),
    row("auth", "updateSelf", User, handler!(auth::update_self), &[(Put, "/_me"), (Put, "/_updateSelf")]),
    row("auth", "getStrategies", User, handler!(auth::get_strategies), &[(Get, "/strategies")]),
    row("auth", "checkRights", Anyone, handler!(auth::check_rights), &[(Post, "/_checkRights")]),
    row("auth", "createToken", User, handler!(auth::create_token), &[(Post, "/_createToken")]),
    row("auth", "createApiKey", User, handler!(auth::create_api_key), &[(Post, "/api-keys/_create")]),
    row("auth", "searchApiKeys", User, handler!(auth::search_api_keys), &[(Post, "/api-keys/_search")]),
    row("auth", "deleteApiKey", User, handler!(auth::delete_api_key), &[(Delete, "/api-keys/:_id")]),
    row("auth", "getMyCredentials", User, handler!(auth::get_mine),
        &[(Get, "/_me/credentials/:strategy"), (Get, "/credentials/:strategy/_me")]).admission(STRATEGY_ARG),
    row("auth", "credentialsExist", User, handler!(auth::exist_mine),
        &[(Get, "/_me/credentials/:strategy/_exists"), (Get, "/credentials/:strategy/_me/_exists")])
        .admission(STRATEGY_ARG),
    row("auth", "createMyCredentials", User, handler!(auth::create_mine),
        &[(Post, "/_me/credentials/:strategy/_create"), (Post, "/credentials/:strategy/_me/_create")])
        .admission(STRATEGY_ARG),
    row("auth", "updateMyCredentials", User, handler!(auth::update_mine),
        &[(Put, "/_me/credentials/:strategy/_update"), (Put, "/credentials/:strategy/_me/_update")])
        .admission(STRATEGY_ARG),
    row("auth", "validateMyCredentials", User, handler!(auth::validate_mine),
        &[(Post, "/_me/credentials/:strategy/_validate"), (Post, "/credentials/:strategy/_me/_validate")])
        .admission(STRATEGY_ARG),
    row("auth", "deleteMyCredentials", User, handler!(auth::delete_mine),
        &[(Delete, "/_me/credentials/:strategy"), (Delete, "/credentials/:strategy/_me")]).admission(STRATEGY_ARG),
    // security: users and their credentials. createFirstAdmin guards itself: it works once, ever.
    row("security", "createFirstAdmin", Open, handler!(security::create_first_admin),
        &[(Post, "/_createFirstAdmin"), (Post, "/_createFirstAdmin/:_id")]),
    row("security", "createUser", Anyone, handler!(security::create_user), &[(Post, "/users/_create"), (Post, "/users/:_id/_create")]),
    row("security", "createRestrictedUser", Anyone, handler!(security::create_restricted_user),
        &[(Post, "/users/_createRestricted"), (Post, "/users/:_id/_createRestricted")]),
    row("security", "getUser", Anyone, handler!(security::get_user), &[(Get, "/users/:_id")]),
    row("security", "updateUser", Anyone, handler!(security::update_user), &[(Put, "/users/:_id/_update")]),
    row("security", "replaceUser", Anyone, handler!(security::replace_user), &[(Put, "/users/:_id/_replace")]),
    row("security", "searchUsers", Anyone, handler!(security::search_users), &[(Post, "/users/_search")]),
    row("security", "mGetUsers", Anyone, handler!(security::m_get_users), &[(Get, "/users/_mGet"), (Post, "/users/_mGet")]),
    row("security", "mDeleteUsers", Anyone, handler!(security::m_delete_users), &[(Post, "/users/_mDelete")]),
    row("security", "getUserRights", Anyone, handler!(security::get_user_rights), &[(Get, "/users/:_id/_rights")]),
    row("security", "getUserMapping", Anyone, handler!(security::get_user_mapping), &[(Get, "/users/_mapping")]),
    row("security", "checkRights", Anyone, handler!(security::check_rights), &[(Post, "/_checkRights/:userId")]),
    row("security", "createApiKey", Anyone, handler!(security::create_api_key), &[(Post, "/users/:userId/api-keys/_create")]),
    row("security", "searchApiKeys", Anyone, handler!(security::search_api_keys), &[(Post, "/users/:userId/api-keys/_search")]),
    row("security", "deleteApiKey", Anyone, handler!(security::delete_api_key), &[(Delete, "/users/:userId/api-keys/:_id")]),
    row("security", "deleteUser", Anyone, handler!(security::delete_user), &[(Delete, "/users/:_id")]),
    row("security", "revokeTokens", Anyone, handler!(security::revoke_tokens), &[(Delete, "/users/:_id/tokens")]),
    row("security", "getUserStrategies", Anyone, handler!(security::get_user_strategies), &[(Get, "/users/:_id/_strategies")]),
    row("security", "createCredentials", Anyone, handler!(security::create_credentials), &[(Post, "/credentials/:strategy/:_id/_create")])
        .admission(STRATEGY_ARG),
    row("security", "updateCredentials", Anyone, handler!(security::update_credentials), &[(Put, "/credentials/:strategy/:_id/_update")])
        .admission(STRATEGY_ARG),
    row("security", "deleteCredentials", Anyone, handler!(security::delete_credentials), &[(Delete, "/credentials/:strategy/:_id")])
        .admission(STRATEGY_ARG),
    row("security", "getCredentials", Anyone, handler!(security::get_credentials), &[(Get, "/credentials/:strategy/:_id")])
        .admission(STRATEGY_ARG),
    row("security", "getCredentialsById", Anyone, handler!(security::get_credentials_by_id), &[(Get, "/credentials/:strategy/:_id/_byId")])
        .admission(STRATEGY_ARG),
    row("security", "hasCredentials", Anyone, handler!(security::has_credentials), &[(Get, "/credentials/:strategy/:_id/_exists")])
        .admission(STRATEGY_ARG),
    row("security", "validateCredentials", Anyone, handler!(security::validate_credentials),
        &[(Post, "/credentials/:strategy/:_id/_validate")]).admission(STRATEGY_ARG),
    row("security", "getCredentialFields", Anyone, handler!(security::credential_fields), &[(Get, "/credentials/:strategy/_fields")]),
    row("security", "getAllCredentialFields", Anyone, handler!(security::all_credential_fields), &[(Get, "/credentials/_fields")]),
    // security: roles and profiles.
    row("security", "createRole", Anyone, handler!(roles::create_role), &[(Post, "/roles/:_id/_create")]),
    row("security", "createOrReplaceRole", Anyone, handler!(roles::create_or_replace_role), &[(Put, "/roles/:_id")]),
    row("security", "updateRole", Anyone, handler!(roles::update_role), &[(Put, "/roles/:_id/_update")]),
    row("security", "getRole", Anyone, handler!(roles::get_role), &[(Get, "/roles/:_id")]),
    row("security", "mGetRoles", Anyone, handler!(roles::m_get_roles), &[(Post, "/roles/_mGet")]),
    row("security", "searchRoles", Anyone, handler!(roles::search_roles), &[(Post, "/roles/_search")]),
    row("security", "deleteRole", Anyone, handler!(roles::delete_role), &[(Delete, "/roles/:_id")]),
    row("security", "mDeleteRoles", Anyone, handler!(roles::m_delete_roles), &[(Post, "/roles/_mDelete")]),
    row("security", "getRoleMapping", Anyone, handler!(roles::get_role_mapping), &[(Get, "/roles/_mapping")]),
    row("security", "createProfile", Anyone, handler!(roles::create_profile), &[(Post, "/profiles/:_id/_create")]),
    row("security", "createOrReplaceProfile", Anyone, handler!(roles::create_or_replace_profile), &[(Put, "/profiles/:_id")]),
    row("security", "updateProfile", Anyone, handler!(roles::update_profile), &[(Put, "/profiles/:_id/_update")]),
    row("security", "getProfile", Anyone, handler!(roles::get_profile), &[(Get, "/profiles/:_id")]),
    row("security", "mGetProfiles", Anyone, handler!(roles::m_get_profiles), &[(Post, "/profiles/_mGet")]),
    row("security", "searchProfiles", Anyone, handler!(roles::search_profiles), &[(Post, "/profiles/_search")]),
    row("security", "deleteProfile", Anyone, handler!(roles::delete_profile), &[(Delete, "/profiles/:_id")]),
    row("security", "mDeleteProfiles", Anyone, handler!(roles::m_delete_profiles), &[(Post, "/profiles/_mDelete")]),
    row("security", "getProfileMapping", Anyone, handler!(roles::get_profile_mapping), &[(Get, "/profiles/_mapping")]),
    row("security", "getProfileRights", Anyone, handler!(roles::get_profile_rights), &[(Get, "/profiles/:_id/_rights")]),
    // strategies: upload, inspect, remove (`GET /strategies` is auth:getStrategies).
    row("strategies", "register", Anyone, handler!(strategies::register), &[(Put, "/strategies/:name")]).upload(),
    row("strategies", "info", Anyone, handler!(strategies::info), &[(Get, "/strategies/:name")]),
    row("strategies", "unregister", Anyone, handler!(strategies::unregister), &[(Delete, "/strategies/:name")]),
    // server
    row("server", "info", Anyone, handler!(server::info), &[(Get, "/"), (Get, "/_serverInfo")]),
    row("server", "publicApi", Anyone, handler!(server::public_api), &[(Get, "/_publicApi")]),
    row("server", "now", User, handler!(server::now), &[(Get, "/_now")]),
    row("server", "healthCheck", Anyone, handler!(server::health_check), &[(Get, "/_healthcheck"), (Get, "/_healthCheck")]),
];

pub fn find(controller: &str, action: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.controller == controller && a.action == action)
}

/// One HTTP route of the table, split once.
struct Route {
    verb: Verb,
    /// `Ok(literal)` or `Err(placeholder name)`.
    segments: Vec<Result<&'static str, &'static str>>,
    literals: usize,
    action: &'static Action,
}

/// Every route of the table, in table order, split at first use.
fn routes() -> &'static [Route] {
    static ROUTES: std::sync::OnceLock<Vec<Route>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| {
        let mut out = Vec::new();
        for action in ACTIONS {
            for (verb, pattern) in action.http {
                let trimmed = pattern.trim_end_matches('/');
                let segments: Vec<_> = trimmed
                    .split('/')
                    .skip(1)
                    .map(|p| match p.strip_prefix(':') {
                        Some(name) => Err(name),
                        None => Ok(p),
                    })
                    .collect();
                let literals = segments.iter().filter(|s| s.is_ok()).count();
                out.push(Route { verb: *verb, segments, literals, action });
            }
        }
        out
    })
}

/// Finds the action for `verb path`, with its placeholders bound. Among matches, the route
/// with the most literal segments wins (`/users/_me` over `/users/:_id`); among those, the
/// first in the table.
pub fn route(verb: Verb, path: &str) -> Option<(&'static Action, Map<String, Value>)> {
    let path = path.trim_end_matches('/');
    let segments: Vec<&str> = if path.is_empty() { Vec::new() } else { path[1..].split('/').collect() };
    let mut best: Option<(&Route, Map<String, Value>)> = None;
    for r in routes() {
        if r.verb != verb
            || r.segments.len() != segments.len()
            || best.as_ref().is_some_and(|(b, _)| r.literals <= b.literals)
        {
            continue;
        }
        if let Some(params) = matches(r, &segments) {
            best = Some((r, params));
        }
    }
    best.map(|(r, params)| (r.action, params))
}

/// The placeholders, if the route matches: its literals compared first (nothing is
/// allocated for a route that does not match), then each placeholder decoded.
fn matches(route: &Route, segments: &[&str]) -> Option<Map<String, Value>> {
    if !route.segments.iter().zip(segments).all(|(p, s)| p.is_err() || *p == Ok(*s)) {
        return None;
    }
    let mut params = Map::new();
    for (p, s) in route.segments.iter().zip(segments) {
        if let Err(name) = p {
            let value = decode_segment(s).filter(|v| !v.is_empty())?;
            params.insert(name.to_string(), Value::String(value));
        }
    }
    Some(params)
}

/// Whether some route has this path with another verb (for a 400 unsupported verb vs 404).
pub fn path_exists(path: &str) -> bool {
    [Verb::Get, Verb::Post, Verb::Put, Verb::Delete].iter().any(|v| route(*v, path).is_some())
}

/// A path segment, percent-decoded; `None` if it is not UTF-8.
fn decode_segment(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

/// The table as the service layer sees it ([`Catalog`]).
pub struct Api;

impl Catalog for Api {
    /// Shaped as the SDK reads it: `{controller: {action: {controller, action, http: [...]}}}`.
    fn public_api(&self) -> Value {
        let mut api = Map::new();
        for a in ACTIONS {
            let http: Vec<Value> =
                a.http.iter().map(|(verb, url)| json!({ "verb": verb.name(), "url": url })).collect();
            let controller = api.entry(a.controller).or_insert_with(|| json!({}));
            controller[a.action] = json!({ "controller": a.controller, "action": a.action, "http": http });
        }
        Value::Object(api)
    }

    fn actions(&self) -> Vec<(&'static str, &'static str, Access)> {
        ACTIONS.iter().map(|a| (a.controller, a.action, a.access)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(found: Option<(&'static Action, Map<String, Value>)>) -> (&'static str, &'static str) {
        let (a, _) = found.expect("a route");
        (a.controller, a.action)
    }

    #[test]
    fn literal_segments_win() {
        let (action, params) = route(Get, "/users/_me").unwrap();
        assert_eq!(action.action, "getCurrentUser");
        assert!(params.is_empty());
        let (action, params) = route(Get, "/users/alice").unwrap();
        assert_eq!((action.controller, action.action), ("security", "getUser"));
        assert_eq!(params["_id"], "alice");
        let (action, params) = route(Post, "/_login/local").unwrap();
        assert_eq!(action.action, "login");
        assert_eq!(params["strategy"], "local");
        assert_eq!(route(Post, "/_login").unwrap().1.len(), 0);
        assert!(route(Get, "/nope").is_none());
        assert!(route(Put, "/_login/local").is_none() && path_exists("/_login/local"));
        assert_eq!(route(Get, "/users/a%20b").unwrap().1["_id"], "a b");
        assert!(route(Get, "/users/%FF").is_none(), "not UTF-8");
        assert_eq!(name(route(Get, "/")), ("server", "info"));
    }

    #[test]
    fn every_route_is_reachable_and_none_is_ambiguous() {
        for action in ACTIONS {
            for (verb, pattern) in action.http {
                let path = pattern
                    .replace(":strategy", "local")
                    .replace(":_id", "someone")
                    .replace(":name", "x")
                    .replace(":userId", "u");
                assert_eq!(name(route(*verb, &path)), (action.controller, action.action), "{pattern}");
                // Another route matching the same path with as many literals would be a tie,
                // decided by the table's order: there must be none.
                let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
                let pattern = pattern.trim_end_matches('/');
                let split = |p: &str| routes().iter().find(|r| r.verb == *verb && http_pattern(r) == p).unwrap();
                let best = split(pattern).literals;
                for other in routes().iter().filter(|r| r.verb == *verb && http_pattern(r) != pattern) {
                    if other.segments.len() == segments.len() && matches(other, &segments).is_some() {
                        assert!(other.literals != best, "{} {pattern} and {} tie", verb.name(), http_pattern(other));
                    }
                }
            }
        }
    }

    /// A split route written back as its pattern.
    fn http_pattern(r: &Route) -> String {
        r.segments
            .iter()
            .map(|s| match s {
                Ok(lit) => format!("/{lit}"),
                Err(name) => format!("/:{name}"),
            })
            .collect::<String>()
    }

    #[test]
    fn one_row_per_action() {
        for (i, a) in ACTIONS.iter().enumerate() {
            assert!(!a.http.is_empty(), "{}:{} has no HTTP route", a.controller, a.action);
            assert!(
                ACTIONS[..i].iter().all(|b| (b.controller, b.action) != (a.controller, a.action)),
                "{}:{} twice",
                a.controller,
                a.action
            );
        }
    }

    #[test]
    fn public_api_lists_routes() {
        let api = Api.public_api();
        assert_eq!(api["auth"]["login"]["http"][0], json!({"verb": "POST", "url": "/_login/:strategy"}));
        assert_eq!(api["auth"]["getCurrentUser"]["http"].as_array().unwrap().len(), 2);
    }
}
