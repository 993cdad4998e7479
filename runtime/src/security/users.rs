//! Users: created with their credentials in one atomic step, deleted with their credentials
//! and their tokens.

use crate::actions::Ctx;
use crate::api::errors::{KError, defs};
use crate::api::request::Reply;
use crate::auth::session::user_json;
use crate::auth::{answer, commit, internal, public_info, strategy};
use crate::sandbox::host::Overlay;
use crate::store::{Change, User};
use crate::tokens::{Tokens, now_ms};
use serde_json::{Map, Value, json};

/// A kuid when the caller gives none: 128 random bits, uuid-shaped.
fn new_kuid() -> String {
    crate::ids::uuid()
}

fn object_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<Option<&'a Map<String, Value>>, KError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[what, "object"])),
    }
}

/// Runs `validate` then `create` of every strategy in `credentials`, and commits the user,
/// the strategies' storage writes and the links in one transaction: on any failure, nothing
/// is left behind.
fn create_with_credentials(
    ctx: &Ctx,
    kuid: String,
    content: Map<String, Value>,
    credentials: Option<&Map<String, Value>>,
    first_admin: bool,
) -> Result<Reply, KError> {
    // -1 is the anonymous user: whoever took it would share the anonymous kuid.
    if kuid == "-1" {
        return Err(KError::new(
            defs::API_ASSERT_INVALID_ARGUMENT,
            &["_id", "a user id other than -1 (the anonymous user)"],
        ));
    }
    let user = User { kuid: kuid.clone(), content };
    let mut changes = vec![Change::InsertUser { user: user.clone(), first_admin }];
    if ctx.app.store.get_user(&kuid).map_err(|e| internal(&e.to_string()))?.is_some() {
        return Err(KError::new(defs::SECURITY_USER_ALREADY_EXISTS, &[&kuid]));
    }
    let mut overlay = Overlay::default();
    let rid = &ctx.req.request_id;
    for (name, creds) in credentials.into_iter().flatten() {
        let s = strategy(ctx, name)?;
        let Value::Object(_) = creds else {
            return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&format!("body.credentials.{name}"), "object"]));
        };
        // Leftover credentials for a kuid that has no user: refuse rather than adopt them.
        if ctx.app.sandbox.exists(&s, &kuid, &mut overlay, rid).map_err(|e| crate::auth::call_error(name, e))? {
            return Err(KError::new(defs::SECURITY_CREDENTIALS_DATABASE_INCONSISTENCY, &[&kuid]));
        }
        let text = creds.to_string();
        answer(&s, ctx.app.sandbox.validate(&s, &kuid, &text, false, &mut overlay, rid, None))?;
        let info = answer(&s, ctx.app.sandbox.create(&s, &kuid, &text, &mut overlay, rid))?;
        public_info(&s, &info)?;
        changes.push(Change::Link { strategy: name.clone(), kuid: kuid.clone() });
    }
    changes.extend(overlay.changes());
    commit(ctx, &changes)?;
    Ok(user_json(&user).into())
}

fn kuzzle_info(ctx: &Ctx) -> Value {
    let author = ctx.caller.user.as_ref().map(|u| Value::String(u.kuid.clone())).unwrap_or(Value::Null);
    json!({ "author": author, "createdAt": now_ms(), "updatedAt": null, "updater": null })
}

pub fn create_first_admin(ctx: &Ctx) -> Result<Reply, KError> {
    if ctx.app.store.admin_exists().map_err(|e| internal(&e.to_string()))? {
        return Err(KError::new(defs::API_PROCESS_ADMIN_EXISTS, &[]));
    }
    let empty = Map::new();
    let body = ctx.req.body_object().unwrap_or(&empty);
    let mut content = object_field(body, "content", "body.content")?.cloned().unwrap_or_default();
    if content.contains_key("profileIds") {
        return Err(KError::new(defs::API_ASSERT_FORBIDDEN_ARGUMENT, &["body.content.profileIds"]));
    }
    content.insert("profileIds".into(), json!(["admin"]));
    content.insert("_kuzzle_info".into(), kuzzle_info(ctx));
    let credentials = object_field(body, "credentials", "body.credentials")?;
    let kuid = ctx.req.id_arg().map(str::to_string).unwrap_or_else(new_kuid);
    create_with_credentials(ctx, kuid, content, credentials, true)
}

pub fn create_user(ctx: &Ctx) -> Result<Reply, KError> {
    let Some(body) = ctx.req.body_object() else {
        return Err(KError::new(defs::API_ASSERT_BODY_REQUIRED, &[]));
    };
    let mut content = object_field(body, "content", "body.content")?
        .cloned()
        .ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["body.content"]))?;
    match content.get("profileIds") {
        Some(Value::Array(ids)) if !ids.is_empty() && ids.iter().all(Value::is_string) => {}
        None => {
            return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["body.content.profileIds"]));
        }
        Some(_) => {
            return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["body.content.profileIds", "string[]"]));
        }
    }
    content.insert("_kuzzle_info".into(), kuzzle_info(ctx));
    let credentials = object_field(body, "credentials", "body.credentials")?;
    let kuid = ctx.req.id_arg().map(str::to_string).unwrap_or_else(new_kuid);
    create_with_credentials(ctx, kuid, content, credentials, false)
}

fn load(ctx: &Ctx) -> Result<User, KError> {
    let kuid = ctx.req.id_arg().ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["_id"]))?;
    ctx.app
        .store
        .get_user(kuid)
        .map_err(|e| internal(&e.to_string()))?
        .ok_or_else(|| KError::new(defs::SECURITY_USER_NOT_FOUND, &[kuid]))
}

pub fn get_user(ctx: &Ctx) -> Result<Reply, KError> {
    Ok(user_json(&load(ctx)?).into())
}

pub fn get_user_strategies(ctx: &Ctx) -> Result<Reply, KError> {
    let user = load(ctx)?;
    let linked = ctx.app.store.linked_strategies(&user.kuid).map_err(|e| internal(&e.to_string()))?;
    Ok(json!(linked).into())
}

/// The user, their credentials in every strategy, and every token they hold: one transaction.
/// The admin's deletion wins over the strategies: one whose `delete` fails (or is stopped)
/// keeps whatever it stored, but the user, their tokens and their links go all the same; the
/// failure is logged and counted (`sandgate_strategy_forced_deletes_total`).
pub fn delete_user(ctx: &Ctx) -> Result<Reply, KError> {
    let user = load(ctx)?;
    let mut overlay = Overlay::default();
    for name in ctx.app.store.linked_strategies(&user.kuid).map_err(|e| internal(&e.to_string()))? {
        if let Some(s) = ctx.app.sandbox.get(&name) {
            // A failed call adds nothing to the overlay: the other strategies' deletes stand.
            // Busy is no misbehaviour, only a moment: try again later (503), the user stays whole.
            let outcome = ctx.app.sandbox.delete(&s, &user.kuid, &mut overlay, &ctx.req.request_id);
            if let Err(e @ crate::sandbox::CallError::Busy { .. }) = outcome {
                return Err(crate::auth::call_error(&name, e));
            }
            if let Err(e) = answer(&s, outcome) {
                s.metrics.forced_delete();
                tracing::warn!(strategy = %name, kuid = %user.kuid, "user deleted although the strategy's delete failed: {}", e.message);
            }
        }
    }
    let mut changes = overlay.changes();
    changes.push(Change::DeleteUser(user.kuid.clone()));
    changes.push(Tokens::revoke_user_change(&user.kuid));
    commit(ctx, &changes)?;
    Ok(json!({ "_id": user.kuid }).into())
}

pub fn revoke_tokens(ctx: &Ctx) -> Result<Reply, KError> {
    let user = load(ctx)?;
    commit(ctx, &[Tokens::revoke_user_change(&user.kuid)])?;
    Ok(Value::Null.into())
}
