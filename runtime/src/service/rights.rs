//! Who may run what: the check every request passes, on the rights in force
//! (`rights::live`), then the per-profile rate limit.

use super::context::{Access, Caller, Ctx};
use crate::core::errors::{KError, defs};
use crate::protocol::Reply;
use crate::rights::Rights;
use crate::rights::live::Live;
use serde_json::{Value, json};

/// The profiles a caller holds: its user's, or `anonymous`.
pub fn profiles_of(caller: &Caller) -> Vec<&str> {
    match &caller.user {
        Some(user) => user.profile_ids(),
        None => vec!["anonymous"],
    }
}

/// Whether `caller` may run `controller:action` (named as the request names them): its
/// rights, then whether the action needs a logged-in caller, then its profiles' rate limit
/// (Kuzzle's order). An anonymous caller refused gets 401, a user 403.
pub fn check(live: &Live, caller: &Caller, controller: &str, action: &str, access: Access) -> Result<(), KError> {
    if access == Access::Open {
        return Ok(());
    }
    let rights = live.current();
    let profiles = profiles_of(caller);
    permitted(&rights, &profiles, caller, controller, action, access)?;
    // Logging in is limited per connection instead (`login.logins_per_second`), and logging
    // out is never refused to a user (Kuzzle's rate limiter).
    let exempt = match (controller, action) {
        ("auth", "login") => true,
        ("auth", "logout") => caller.user.is_some(),
        _ => false,
    };
    if !exempt && !live.admit(caller.kuid(), rights.rate_limit(&profiles), crate::core::time::now_ms()) {
        return Err(KError::new(defs::API_PROCESS_TOO_MANY_REQUESTS, &[]));
    }
    Ok(())
}

/// The rights alone (no rate limit): what an upload is checked against before its body is
/// read, and the first half of [`check`].
pub fn permitted(
    rights: &Rights,
    profiles: &[&str],
    caller: &Caller,
    controller: &str,
    action: &str,
    access: Access,
) -> Result<(), KError> {
    if access == Access::Open {
        return Ok(());
    }
    if !rights.allows(profiles, controller, action) {
        return Err(refused(caller, controller, action));
    }
    if access == Access::User && caller.user.is_none() {
        return Err(KError::new(defs::SECURITY_RIGHTS_UNAUTHORIZED, &[controller, action]));
    }
    Ok(())
}

/// `{hits, total}`: a rights listing as getMyRights, getUserRights and getProfileRights
/// answer it.
pub fn rights_reply(hits: Vec<Value>) -> Reply {
    let total = hits.len();
    json!({ "hits": hits, "total": total }).into()
}

/// 401 for an anonymous caller, 403 for a user without the right.
pub fn refused(caller: &Caller, controller: &str, action: &str) -> KError {
    match &caller.user {
        None => KError::new(defs::SECURITY_RIGHTS_UNAUTHORIZED, &[controller, action]),
        Some(user) => KError::new(defs::SECURITY_RIGHTS_FORBIDDEN, &[controller, action, &user.kuid]),
    }
}

/// The `{controller, action}` a checkRights body names.
pub fn asked_action(ctx: &Ctx) -> Result<(String, String), KError> {
    let body = ctx.req.required_body()?;
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &[&format!("body.{name}")]))
    };
    Ok((field("controller")?, field("action")?))
}
