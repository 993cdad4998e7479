//! Roles and profiles: written with Kuzzle's checks, then read again by every node.
//!
//! The checks that keep the server usable: the three built-in roles and profiles cannot be
//! deleted, the anonymous role keeps `auth:login` (else nobody could log in again) and the
//! anonymous profile keeps the anonymous role, a profile names roles that exist, and a role
//! or profile in use cannot be deleted. A role naming a controller or an action the server
//! does not have is refused unless `force` (a typo would silently allow nothing).

use super::context::Ctx;
use super::strategy::commit;
use crate::core::errors::{KError, defs};
use crate::rights::role::{self, Role};
use crate::rights::{BUILT_IN, profile};
use crate::store::{Change, Doc};
use serde_json::{Map, Value, json};

/// How a write treats what exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Refused if it exists.
    Create,
    CreateOrReplace,
    /// Its top-level fields replaced by the body's; refused if it does not exist.
    Update,
}

/// `{_id, _source}`.
pub fn doc_json(id: &str, body: &Map<String, Value>) -> Value {
    json!({ "_id": id, "_source": Value::Object(body.clone()) })
}

/// The body to store: `body` on its own, or over the existing one (`Update`); checks
/// existence as `write` requires.
fn merged(
    existing: Option<&Map<String, Value>>,
    body: &Map<String, Value>,
    write: Write,
    not_found: KError,
    exists: KError,
) -> Result<Map<String, Value>, KError> {
    match (write, existing) {
        (Write::Create, Some(_)) => Err(exists),
        (Write::Update, None) => Err(not_found),
        (Write::Update, Some(old)) => {
            let mut out = old.clone();
            out.extend(body.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(out)
        }
        _ => Ok(body.clone()),
    }
}

/// `body` with its `_kuzzle_info` (see `Ctx::kuzzle_info`).
fn with_info(ctx: &Ctx<'_>, existing: Option<&Map<String, Value>>, mut body: Map<String, Value>) -> Map<String, Value> {
    body.insert("_kuzzle_info".into(), ctx.kuzzle_info(existing.and_then(|e| e.get("_kuzzle_info"))));
    body
}

/// Writes a role or profile body (`insert`: only if it does not exist).
fn put_change(kind: Doc, id: &str, body: &Map<String, Value>, insert: bool) -> Change {
    Change::PutDoc { kind, id: id.to_string(), body: Value::Object(body.clone()).to_string(), owner: None, insert }
}

async fn store(ctx: &Ctx<'_>, kind: Doc, id: &str, body: &Map<String, Value>, write: Write) -> Result<(), KError> {
    commit(ctx, vec![put_change(kind, id, body, write == Write::Create)]).await?;
    ctx.app.rights.reload(&ctx.app.store).await;
    Ok(())
}

pub async fn put_role(
    ctx: &Ctx<'_>,
    id: &str,
    body: &Map<String, Value>,
    write: Write,
    force: bool,
) -> Result<Value, KError> {
    let _one_at_a_time = ctx.app.rights.writing.lock().await;
    crate::core::ids::check_document_id(id)?;
    let rights = ctx.app.rights.current();
    let existing = rights.roles.get(id).map(|r| &r.body);
    let body = merged(
        existing,
        body,
        write,
        // Kuzzle's updateRole is a storage replace: a missing role is a missing document.
        KError::new(defs::SERVICES_STORAGE_NOT_FOUND, &[id, "kuzzle", "roles"]),
        KError::new(defs::SERVICES_STORAGE_DOCUMENT_ALREADY_EXISTS, &[]),
    )?;
    role::check_shape(id, &body)?;
    let body = with_info(ctx, existing, body);
    if !force {
        let actions = ctx.api.actions();
        let known = |c: &str, a: Option<&str>| actions.iter().any(|(ac, aa, _)| *ac == c && a.is_none_or(|a| a == *aa));
        match role::unknown(&body, &known) {
            Some((controller, None)) => {
                return Err(KError::new(defs::SECURITY_ROLE_UNKNOWN_CONTROLLER, &[id, &controller, ""]));
            }
            Some((controller, Some(action))) => {
                return Err(KError::new(defs::SECURITY_ROLE_UNKNOWN_ACTION, &[id, &action, &controller, ""]));
            }
            None => {}
        }
    }
    if id == "anonymous" && !Role::new(id, Value::Object(body.clone())).allows("auth", "login") {
        return Err(KError::new(defs::SECURITY_ROLE_LOGIN_REQUIRED, &[]));
    }
    store(ctx, Doc::Role, id, &body, write).await?;
    Ok(doc_json(id, &body))
}

pub async fn put_profile(ctx: &Ctx<'_>, id: &str, body: &Map<String, Value>, write: Write) -> Result<Value, KError> {
    let _one_at_a_time = ctx.app.rights.writing.lock().await;
    crate::core::ids::check_document_id(id)?;
    let rights = ctx.app.rights.current();
    let existing = rights.profiles.get(id).map(|p| &p.body);
    let body = merged(
        existing,
        body,
        write,
        KError::new(defs::SECURITY_PROFILE_NOT_FOUND, &[id]),
        KError::new(defs::SERVICES_STORAGE_DOCUMENT_ALREADY_EXISTS, &[]),
    )?;
    profile::check_shape(id, &body)?;
    let mut body = with_info(ctx, existing, body);
    body.entry("rateLimit").or_insert(json!(0));
    let candidate = profile::Profile::new(id, Value::Object(body.clone()));
    for role in candidate.role_ids() {
        rights.role(role)?;
    }
    if id == "anonymous" && !candidate.role_ids().iter().any(|r| r == "anonymous") {
        return Err(KError::new(defs::SECURITY_PROFILE_MISSING_ANONYMOUS_ROLE, &[]));
    }
    store(ctx, Doc::Profile, id, &body, write).await?;
    Ok(doc_json(id, &body))
}

/// Why `id` cannot be deleted, if it cannot.
pub fn check_role_deletable(ctx: &Ctx<'_>, id: &str) -> Result<(), KError> {
    let rights = ctx.app.rights.current();
    rights.role(id)?;
    if BUILT_IN.contains(&id) {
        return Err(KError::new(defs::SECURITY_ROLE_CANNOT_DELETE, &[]));
    }
    if !rights.profiles_using(id).is_empty() {
        return Err(KError::new(defs::SECURITY_ROLE_IN_USE, &[id]));
    }
    Ok(())
}

pub async fn delete_role(ctx: &Ctx<'_>, id: &str) -> Result<(), KError> {
    let _one_at_a_time = ctx.app.rights.writing.lock().await;
    check_role_deletable(ctx, id)?;
    commit(ctx, vec![Change::DeleteDoc { kind: Doc::Role, id: id.into() }]).await?;
    ctx.app.rights.reload(&ctx.app.store).await;
    Ok(())
}

/// Why `id` cannot be deleted, if it cannot.
pub async fn check_profile_deletable(ctx: &Ctx<'_>, id: &str) -> Result<(), KError> {
    ctx.app.rights.current().profile(id)?;
    if BUILT_IN.contains(&id) {
        return Err(KError::new(defs::SECURITY_PROFILE_CANNOT_DELETE, &[]));
    }
    let wanted = id.to_string();
    let holder = super::users::find(ctx, move |u| u.profile_ids().contains(&wanted.as_str()), 1).await?;
    if !holder.is_empty() {
        return Err(KError::new(defs::SECURITY_PROFILE_IN_USE, &[id]));
    }
    Ok(())
}

pub async fn delete_profile(ctx: &Ctx<'_>, id: &str) -> Result<(), KError> {
    let _one_at_a_time = ctx.app.rights.writing.lock().await;
    check_profile_deletable(ctx, id).await?;
    commit(ctx, vec![Change::DeleteDoc { kind: Doc::Profile, id: id.into() }]).await?;
    ctx.app.rights.reload(&ctx.app.store).await;
    Ok(())
}

/// `createFirstAdmin` with `reset`: the built-in roles and profiles back to the standard.
pub fn reset_changes() -> Vec<Change> {
    let mut changes = Vec::new();
    for id in BUILT_IN {
        let role = crate::rights::standard::role(id).expect("built in");
        let profile = crate::rights::standard::profile(id).expect("built in");
        changes.push(put_change(Doc::Role, id, &role.body, false));
        changes.push(put_change(Doc::Profile, id, &profile.body, false));
    }
    changes
}
