//! Kuzzle's error object: `{id, code, message, props, status}`.
//!
//! Ids, codes and message templates are Kuzzle 2's (`lib/kerror/codes/*.json`):
//! `code = (domain << 24) | (subdomain << 16) | error`. Sandgate's own errors (strategy
//! answers Kuzzle gives no id to, sandbox limits) live in the same scheme, in error numbers
//! Kuzzle does not use (strategy errors from 100, a `sandbox` subdomain numbered 64).

use serde::Serialize;

/// One kind of error: its id, HTTP status, numeric code and message template (`%s` slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Def {
    pub id: &'static str,
    pub status: u16,
    pub code: u32,
    pub template: &'static str,
}

/// An error as sent to the client.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KError {
    pub code: u32,
    pub id: &'static str,
    pub message: String,
    pub props: Vec<String>,
    pub status: u16,
}

impl KError {
    /// Fills the template's `%s` slots with `props`, in order.
    pub fn new(def: Def, props: &[&str]) -> Self {
        let mut message = String::with_capacity(def.template.len() + 32);
        let mut rest = def.template;
        let mut props_iter = props.iter();
        while let Some(at) = rest.find("%s") {
            message.push_str(&rest[..at]);
            message.push_str(props_iter.next().copied().unwrap_or(""));
            rest = &rest[at + 2..];
        }
        message.push_str(rest);
        if def.id.starts_with("plugin.") && def.status == 500 {
            message.push_str(PLUGIN_SUFFIX);
        }
        KError {
            code: def.code,
            id: def.id,
            message,
            props: props.iter().map(|p| p.to_string()).collect(),
            status: def.status,
        }
    }
}

/// What Kuzzle appends to PluginImplementationError messages.
pub const PLUGIN_SUFFIX: &str = "\nThis is probably not a Kuzzle error, but a problem with a plugin implementation.";

const fn sandgate(domain: u32, subdomain: u32, error: u32) -> u32 {
    (domain << 24) | (subdomain << 16) | error
}

pub mod defs {
    use super::{Def, sandgate};
    pub const API_ASSERT_MISSING_ARGUMENT: Def =
        Def { id: "api.assert.missing_argument", status: 400, code: 33619971, template: r#"Missing argument "%s"."# };
    pub const API_ASSERT_INVALID_TYPE: Def = Def {
        id: "api.assert.invalid_type",
        status: 400,
        code: 33619969,
        template: r#"Wrong type for argument "%s" (expected: %s)"#,
    };
    pub const API_ASSERT_INVALID_ARGUMENT: Def = Def {
        id: "api.assert.invalid_argument",
        status: 400,
        code: 33619970,
        template: r#"Invalid argument "%s". Expected: %s"#,
    };
    pub const API_ASSERT_FORBIDDEN_ARGUMENT: Def = Def {
        id: "api.assert.forbidden_argument",
        status: 400,
        code: 33619979,
        template: r#"The argument "%s" is not allowed by this API action."#,
    };
    pub const API_ASSERT_EMPTY_ARGUMENT: Def = Def {
        id: "api.assert.empty_argument",
        status: 400,
        code: 33619972,
        template: r#"The argument "%s" is empty."#,
    };
    pub const API_ASSERT_UNEXPECTED_ARGUMENT: Def = Def {
        id: "api.assert.unexpected_argument",
        status: 400,
        code: 33619975,
        template: r#"Unexpected argument "%s" (accepted arguments: %s)"#,
    };
    pub const API_ASSERT_BODY_REQUIRED: Def = Def {
        id: "api.assert.body_required",
        status: 400,
        code: 33619976,
        template: "The request must specify a body.",
    };
    pub const API_PROCESS_CONTROLLER_NOT_FOUND: Def = Def {
        id: "api.process.controller_not_found",
        status: 404,
        code: 33685508,
        template: r#"API controller "%s" not found."#,
    };
    pub const API_PROCESS_ACTION_NOT_FOUND: Def = Def {
        id: "api.process.action_not_found",
        status: 404,
        code: 33685509,
        template: r#"API action "%s":"%s" not found"#,
    };
    pub const API_PROCESS_TOO_MANY_LOGINS_REQUESTS: Def = Def {
        id: "api.process.too_many_logins_requests",
        status: 429,
        code: 33685517,
        template: "Rejected: Too many login attempts per second",
    };
    pub const API_PROCESS_ADMIN_EXISTS: Def =
        Def { id: "api.process.admin_exists", status: 412, code: 33685513, template: "Admin user is already set." };
    pub const NETWORK_HTTP_REQUEST_TOO_LARGE: Def = Def {
        id: "network.http.request_too_large",
        status: 413,
        code: 50397185,
        template: "Maximum HTTP request size exceeded.",
    };
    pub const NETWORK_HTTP_UNSUPPORTED_VERB: Def = Def {
        id: "network.http.unsupported_verb",
        status: 400,
        code: 50397190,
        template: r#"Unsupported HTTP verb "%s"."#,
    };
    pub const NETWORK_HTTP_UNSUPPORTED_CONTENT: Def = Def {
        id: "network.http.unsupported_content",
        status: 400,
        code: 50397192,
        template: r#"Invalid request content-type. Expected "application/json", got: "%s"."#,
    };
    pub const NETWORK_HTTP_VOLATILE_PARSE_FAILED: Def = Def {
        id: "network.http.volatile_parse_failed",
        status: 400,
        code: 50397195,
        template: r#"Unable to convert the "x-kuzzle-volatile" HTTP header to JSON: %s"#,
    };
    pub const NETWORK_HTTP_BODY_PARSE_FAILED: Def = Def {
        id: "network.http.body_parse_failed",
        status: 400,
        code: 50397196,
        template: "Unable to convert the HTTP body to JSON: %s",
    };
    pub const NETWORK_HTTP_URL_NOT_FOUND: Def =
        Def { id: "network.http.url_not_found", status: 404, code: 50397191, template: "API URL not found: %s." };
    pub const NETWORK_WEBSOCKET_UNEXPECTED_ERROR: Def = Def {
        id: "network.websocket.unexpected_error",
        status: 400,
        code: 50528257,
        template: "Caught an unexpected WebSocket error: %s",
    };
    pub const PLUGIN_RUNTIME_UNEXPECTED_ERROR: Def = Def {
        id: "plugin.runtime.unexpected_error",
        status: 500,
        code: 67239938,
        template: "Caught an unexpected plugin error: %s",
    };
    pub const PLUGIN_STRATEGY_MISSING_USER: Def =
        Def { id: "plugin.strategy.missing_user", status: 401, code: 67305492, template: "%s" };
    pub const PLUGIN_STRATEGY_UNKNOWN_KUID: Def = Def {
        id: "plugin.strategy.unknown_kuid",
        status: 500,
        code: 67305489,
        template: "%s returned an unknown Kuzzle user identifier.",
    };
    pub const SECURITY_USER_NOT_FOUND: Def =
        Def { id: "security.user.not_found", status: 404, code: 117702658, template: r#"User "%s" not found."# };
    pub const SECURITY_USER_ALREADY_EXISTS: Def =
        Def { id: "security.user.already_exists", status: 412, code: 117702657, template: "User %s already exists." };
    pub const SECURITY_RIGHTS_FORBIDDEN: Def = Def {
        id: "security.rights.forbidden",
        status: 403,
        code: 117637122,
        template: r#"Insufficient permissions to execute the action "%s:%s" (User "%s")."#,
    };
    pub const SECURITY_RIGHTS_UNAUTHORIZED: Def = Def {
        id: "security.rights.unauthorized",
        status: 401,
        code: 117637121,
        template: r#"Unauthorized: authentication required to execute the action "%s:%s"."#,
    };
    pub const SECURITY_CREDENTIALS_UNKNOWN_STRATEGY: Def = Def {
        id: "security.credentials.unknown_strategy",
        status: 400,
        code: 117571585,
        template: r#"Unknown authentication strategy "%s""#,
    };
    pub const SECURITY_CREDENTIALS_DATABASE_INCONSISTENCY: Def = Def {
        id: "security.credentials.database_inconsistency",
        status: 500,
        code: 117571586,
        template: "Internal database inconsistency detected: existing credentials found on non-existing user %s.",
    };
    pub const SECURITY_TOKEN_INVALID: Def =
        Def { id: "security.token.invalid", status: 401, code: 117506049, template: "Invalid token." };
    pub const SECURITY_TOKEN_EXPIRED: Def =
        Def { id: "security.token.expired", status: 401, code: 117506054, template: "Token expired" };
    pub const SECURITY_TOKEN_TTL_EXCEEDED: Def = Def {
        id: "security.token.ttl_exceeded",
        status: 400,
        code: 117506052,
        template: "expiresIn value exceeds maximum allowed value",
    };
    pub const SECURITY_TOKEN_INVALID_EXPIRATION: Def = Def {
        id: "security.token.invalid_expiration",
        status: 400,
        code: 117506057,
        template: "Token can not be created with this expiration time: %s",
    };
    pub const API_PROCESS_TOO_MANY_REQUESTS: Def = Def {
        id: "api.process.too_many_requests",
        status: 429,
        code: 33685512,
        template: "Rejected: requests rate limit exceeded for this user.",
    };
    pub const SERVICES_STORAGE_NOT_FOUND: Def = Def {
        id: "services.storage.not_found",
        status: 404,
        code: 16842763,
        template: r#"Document "%s" not found in "%s":"%s"."#,
    };
    pub const SERVICES_STORAGE_DOCUMENT_ALREADY_EXISTS: Def = Def {
        id: "services.storage.document_already_exists",
        status: 400,
        code: 0x0101_0011,
        template: "Document already exists.",
    };
    pub const SERVICES_STORAGE_WRITE_LIMIT_EXCEEDED: Def = Def {
        id: "services.storage.write_limit_exceeded",
        status: 413,
        code: 0x0101_0004,
        template: "The number of documents edited by this request exceeds the configured server limit.",
    };
    pub const SECURITY_ROLE_NOT_FOUND: Def =
        Def { id: "security.role.not_found", status: 404, code: 117768193, template: r#"Role "%s" not found."# };
    pub const SECURITY_ROLE_LOGIN_REQUIRED: Def = Def {
        id: "security.role.login_required",
        status: 400,
        code: 117768194,
        template: r#"Cannot remove the "login" action from the anonymous role."#,
    };
    pub const SECURITY_ROLE_CANNOT_DELETE: Def = Def {
        id: "security.role.cannot_delete",
        status: 400,
        code: 117768195,
        template: "The following roles are protected and cannot be deleted: anonymous, default, admin",
    };
    pub const SECURITY_ROLE_IN_USE: Def = Def {
        id: "security.role.in_use",
        status: 412,
        code: 117768196,
        template: r#"The role "%s" is still used and cannot be deleted."#,
    };
    pub const SECURITY_ROLE_UNKNOWN_CONTROLLER: Def = Def {
        id: "security.role.unknown_controller",
        status: 400,
        code: 117768201,
        template: "Trying to set role %s with a non-existing controller '%s'. %s",
    };
    pub const SECURITY_ROLE_UNKNOWN_ACTION: Def = Def {
        id: "security.role.unknown_action",
        status: 400,
        code: 117768202,
        template: "Trying to set role %s with a non-existing action '%s' in controller '%s'. %s",
    };
    pub const SECURITY_PROFILE_NOT_FOUND: Def =
        Def { id: "security.profile.not_found", status: 404, code: 117833729, template: r#"Profile "%s" not found."# };
    pub const SECURITY_PROFILE_CANNOT_DELETE: Def = Def {
        id: "security.profile.cannot_delete",
        status: 400,
        code: 117833730,
        template: "The following profiles are protected and cannot be deleted: anonymous, default, admin",
    };
    pub const SECURITY_PROFILE_IN_USE: Def = Def {
        id: "security.profile.in_use",
        status: 412,
        code: 117833731,
        template: r#"The profile "%s" is still used and cannot be deleted."#,
    };
    pub const SECURITY_PROFILE_MISSING_ANONYMOUS_ROLE: Def = Def {
        id: "security.profile.missing_anonymous_role",
        status: 400,
        code: 117833733,
        template: "The anonymous profile must include the anonymous role",
    };
    pub const SECURITY_TOKEN_REFRESH_FORBIDDEN: Def = Def {
        id: "security.token.refresh_forbidden",
        status: 401,
        code: 117506056,
        template: "%s cannot be refreshed.",
    };
    pub const SECURITY_TOKEN_VERIFICATION_ERROR: Def = Def {
        id: "security.token.verification_error",
        status: 500,
        code: 117506055,
        template: "Error verifying token: %s",
    };
    pub const SECURITY_COOKIE_UNSUPPORTED: Def = Def {
        id: "security.cookie.unsupported",
        status: 500,
        code: 117899266,
        template: "Cookie authentication not supported.",
    };

    // Sandgate: what strategies answer through `strategy-error` (Kuzzle gives these no id).
    pub const PLUGIN_STRATEGY_BAD_REQUEST: Def =
        Def { id: "plugin.strategy.bad_request", status: 400, code: sandgate(4, 3, 100), template: "%s" };
    pub const PLUGIN_STRATEGY_PRECONDITION: Def =
        Def { id: "plugin.strategy.precondition", status: 412, code: sandgate(4, 3, 101), template: "%s" };
    pub const PLUGIN_STRATEGY_NOT_FOUND: Def =
        Def { id: "plugin.strategy.not_found", status: 404, code: sandgate(4, 3, 102), template: "%s" };
    /// Sandgate: a strategy asked to provision a newcomer it was not allowed to.
    pub const PLUGIN_STRATEGY_PROVISIONING_DISABLED: Def = Def {
        id: "plugin.strategy.provisioning_disabled",
        status: 401,
        code: sandgate(4, 3, 103),
        template: r#"Strategy "%s" vouches for someone who has no account, and may not create accounts (register it with provision={"profileIds":[...]} to allow it)."#,
    };
    // Sandgate: the sandbox stopped a strategy, or refused to run or register it.
    pub const PLUGIN_SANDBOX_LIMIT_EXCEEDED: Def = Def {
        id: "plugin.sandbox.limit_exceeded",
        status: 500,
        code: sandgate(4, 64, 1),
        template: r#"Strategy "%s" %s"#,
    };
    pub const PLUGIN_SANDBOX_CRASHED: Def =
        Def { id: "plugin.sandbox.crashed", status: 500, code: sandgate(4, 64, 2), template: r#"Strategy "%s" %s"# };
    pub const PLUGIN_SANDBOX_BUSY: Def = Def {
        id: "plugin.sandbox.busy",
        status: 503,
        code: sandgate(4, 64, 3),
        template: r#"Strategy "%s" %s; try again shortly"#,
    };
    /// Replacing a strategy hands its users to new code: the uploader must say so.
    pub const PLUGIN_SANDBOX_REPLACE_UNCONFIRMED: Def = Def {
        id: "plugin.sandbox.replace_unconfirmed",
        status: 412,
        code: sandgate(4, 64, 6),
        template: r#"Strategy "%s" holds users' credentials: the new component would log them in. Send the upload again with the "replace" argument (?replace) to confirm."#,
    };
    pub const PLUGIN_SANDBOX_INVALID_COMPONENT: Def =
        Def { id: "plugin.sandbox.invalid_component", status: 400, code: sandgate(4, 64, 4), template: "%s" };
    /// Sandgate: an account name is locked after repeated failed logins.
    pub const SECURITY_CREDENTIALS_TOO_MANY_FAILURES: Def = Def {
        id: "security.credentials.too_many_failures",
        status: 429,
        code: sandgate(7, 2, 100),
        template: "Too many failed login attempts for this account: try again in %s seconds.",
    };
    /// Kuzzle's: a failure that is nobody's input (a worker thread lost, a bug).
    pub const CORE_FATAL_UNEXPECTED_ERROR: Def =
        Def { id: "core.fatal.unexpected_error", status: 500, code: 1, template: "Caught an unexpected error: %s" };
    /// Sandgate: the store failed (disk full, database locked for too long…).
    pub const CORE_STORE_FAILURE: Def = Def {
        id: "core.store.unexpected_error",
        status: 500,
        code: sandgate(0, 64, 1),
        template: "Storage failure: %s",
    };
    /// Sandgate: the shared database cannot be reached now (restarting, the network); the
    /// request may be retried.
    pub const CORE_STORE_UNAVAILABLE: Def = Def {
        id: "core.store.unavailable",
        status: 503,
        code: sandgate(0, 64, 2),
        template: "The database is unavailable, try again shortly.",
    };
    pub const PLUGIN_SANDBOX_INPUT_TOO_LARGE: Def = Def {
        id: "plugin.sandbox.input_too_large",
        status: 413,
        code: sandgate(4, 64, 5),
        template: r#"Strategy "%s": %s"#,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes() {
        let e = KError::new(defs::PLUGIN_STRATEGY_MISSING_USER, &["wrong username or password"]);
        assert_eq!((e.id, e.code, e.status), ("plugin.strategy.missing_user", 67305492, 401));
        assert_eq!(e.message, "wrong username or password");
        let e = KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["strategy"]);
        assert_eq!(e.message, r#"Missing argument "strategy"."#);
        assert_eq!(e.code, 33619971);
        let e = KError::new(defs::PLUGIN_RUNTIME_UNEXPECTED_ERROR, &["boom"]);
        assert_eq!(e.message, format!("Caught an unexpected plugin error: boom{PLUGIN_SUFFIX}"));
        assert_eq!(defs::SECURITY_TOKEN_INVALID.code, 117506049);
        assert_eq!(defs::NETWORK_HTTP_URL_NOT_FOUND.code, 50397191);
        assert_eq!(defs::SECURITY_USER_ALREADY_EXISTS.code, 117702657);
    }
}
