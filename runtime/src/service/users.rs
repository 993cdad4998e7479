//! Users: created with their credentials in one atomic step, deleted with their credentials
//! and their tokens, and shown as Kuzzle shows them.

use super::context::Ctx;
use super::errors::{answer, call_error};
use super::strategy::{call, changes, commit, named, permit};
use crate::core::errors::{KError, defs};
use crate::sandbox::CallError;
use crate::sandbox::host::Overlay;
use crate::store::{Change, User};
use crate::tokens::Tokens;
use serde_json::{Map, Value, json};

/// A user as Kuzzle returns one: `{_id, _source}`.
pub fn user_json(user: &User) -> Value {
    json!({ "_id": user.kuid, "_source": Value::Object(user.content.clone()) })
}

pub fn anonymous() -> Value {
    json!({ "_id": "-1", "_source": { "name": "Anonymous", "profileIds": ["anonymous"] }, "strategies": [] })
}

/// The user `kuid`, or 404 `security.user.not_found`.
pub async fn load(ctx: &Ctx<'_>, kuid: &str) -> Result<User, KError> {
    ctx.app.store.get_user(kuid).await?.ok_or_else(|| KError::new(defs::SECURITY_USER_NOT_FOUND, &[kuid]))
}

/// Runs `validate` then `create` of every strategy in `credentials`, and commits the user,
/// the strategies' storage writes and the links in one transaction: on any failure, nothing
/// is left behind.
pub async fn create(
    ctx: &Ctx<'_>,
    kuid: String,
    content: Map<String, Value>,
    credentials: Option<&Map<String, Value>>,
    first_admin: bool,
) -> Result<Value, KError> {
    // -1 is the anonymous user: whoever took it would share the anonymous kuid.
    if kuid == "-1" {
        return Err(KError::new(
            defs::API_ASSERT_INVALID_ARGUMENT,
            &["_id", "a user id other than -1 (the anonymous user)"],
        ));
    }
    // PostgreSQL's text cannot hold NUL, and its index cannot hold a long key: the same rules
    // on SQLite, so a user moves between them. 512 bytes is Kuzzle's own limit (an
    // Elasticsearch document id).
    if !crate::core::ids::storable(&kuid) {
        return Err(KError::new(
            defs::API_ASSERT_INVALID_ARGUMENT,
            &["_id", "a user id of at most 512 bytes, without NUL characters"],
        ));
    }
    let user = User { kuid: kuid.clone(), content };
    let mut changes_ = vec![Change::InsertUser { user: user.clone(), first_admin }];
    if ctx.app.store.get_user(&kuid).await?.is_some() {
        return Err(KError::new(defs::SECURITY_USER_ALREADY_EXISTS, &[&kuid]));
    }
    let calls = ctx.app.sandbox.calls();
    let mut overlay = Overlay::default();
    for (name, creds) in credentials.into_iter().flatten() {
        let s = named(ctx, name)?;
        let Value::Object(_) = creds else {
            return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&format!("body.credentials.{name}"), "object"]));
        };
        let p = permit(ctx, &s).await?;
        // Leftover credentials for a kuid that has no user: refuse rather than adopt them.
        if calls.exists(&s, call(ctx, &p, &mut overlay, None), &kuid).await.map_err(|e| call_error(name, e))? {
            return Err(KError::new(defs::SECURITY_CREDENTIALS_DATABASE_INCONSISTENCY, &[&kuid]));
        }
        super::credentials::write(ctx, &s, &p, &mut overlay, &kuid, &creds.to_string(), false).await?;
        changes_.push(Change::Link { strategy: name.clone(), kuid: kuid.clone() });
    }
    changes_.extend(changes(&overlay));
    commit(ctx, changes_).await?;
    Ok(user_json(&user))
}

/// The user, their credentials in every strategy, and every token they hold: one transaction.
/// The admin's deletion wins over the strategies: one whose `delete` fails (or is stopped)
/// keeps whatever it stored, but the user, their tokens and their links go all the same; the
/// failure is logged and counted (`sandgate_strategy_forced_deletes_total`).
pub async fn delete(ctx: &Ctx<'_>, user: &User) -> Result<(), KError> {
    let calls = ctx.app.sandbox.calls();
    let mut overlay = Overlay::default();
    for name in ctx.app.store.linked_strategies(&user.kuid).await?.iter() {
        let Some(s) = ctx.app.sandbox.get(name) else { continue };
        // Busy is no misbehaviour, only a moment: try again later (503), the user stays whole.
        let p = permit(ctx, &s).await?;
        // A failed call adds nothing to the overlay: the other strategies' deletes stand.
        let outcome = calls.delete(&s, call(ctx, &p, &mut overlay, None), &user.kuid).await;
        if let Err(e @ (CallError::Busy { .. } | CallError::PoolFull { .. })) = outcome {
            return Err(call_error(name, e));
        }
        if let Err(e) = answer(&s, outcome) {
            s.metrics.forced_delete();
            tracing::warn!(strategy = %name, kuid = %user.kuid, "user deleted although the strategy's delete failed: {}", e.message);
        }
    }
    let mut changes_ = changes(&overlay);
    changes_.push(Change::DeleteUser(user.kuid.clone()));
    // Every token, its API keys too: they outlive a global logout, not their user (a user
    // created again under the same kuid must not find them alive, even a key made while this
    // deletion ran). Their records go as well.
    changes_.push(Tokens::deleted_user_change(&user.kuid));
    changes_.extend(super::api_keys::deletion_changes(ctx, &user.kuid).await?);
    commit(ctx, changes_).await
}

/// Users in kuid order whose content `keep` accepts, at most `limit`, read a page at a time
/// (never the whole table in memory).
pub async fn find(
    ctx: &Ctx<'_>,
    keep: impl Fn(&User) -> bool + Send + Sync + 'static + Clone,
    limit: usize,
) -> Result<Vec<User>, KError> {
    Ok(window(ctx, keep, 0, limit, true).await?.0)
}

/// The users `keep` accepts, skipping `from` and keeping `size` (a search's page), and how
/// many it accepts in all; `early`: stop once the page is full (the total is then a floor).
pub async fn window(
    ctx: &Ctx<'_>,
    keep: impl Fn(&User) -> bool + Send + Sync + 'static + Clone,
    from: usize,
    size: usize,
    early: bool,
) -> Result<(Vec<User>, usize), KError> {
    const PAGE: u32 = 1000;
    let (mut out, mut total) = (Vec::new(), 0);
    let mut after = String::new();
    loop {
        let start = after.clone();
        let page = ctx.app.store.read(move |s| s.users_after(&start, PAGE)).await?;
        let full = page.len() == PAGE as usize;
        if let Some(last) = page.last() {
            after = last.kuid.clone();
        }
        for user in page.into_iter().filter(|u| keep(u)) {
            if total >= from && out.len() < size {
                out.push(user);
            }
            total += 1;
        }
        if !full || (early && out.len() >= size) {
            return Ok((out, total));
        }
    }
}

/// Checks a user content's `profileIds`: a non-empty array of existing profiles.
pub fn check_profile_ids(ctx: &Ctx<'_>, content: &Map<String, Value>) -> Result<(), KError> {
    match content.get("profileIds") {
        Some(Value::Array(ids)) if !ids.is_empty() && ids.iter().all(Value::is_string) => {
            // A user holding a missing profile would hold nothing through it, silently.
            let rights = ctx.app.rights.current();
            ids.iter().filter_map(Value::as_str).try_for_each(|p| rights.profile(p).map(|_| ()))
        }
        None => Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["body.content.profileIds"])),
        Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["body.content.profileIds", "string[]"])),
    }
}

/// Writes a user's new content (`updateUser`, `replaceUser`, `updateSelf`), keeping its
/// `_kuzzle_info` and recording who changed it.
pub async fn write(ctx: &Ctx<'_>, old: &User, mut content: Map<String, Value>) -> Result<Value, KError> {
    // A user from before `_kuzzle_info` gets one now, updated by the caller.
    let previous = old.content.get("_kuzzle_info").cloned().unwrap_or_else(|| json!({}));
    content.insert("_kuzzle_info".into(), ctx.kuzzle_info(Some(&previous)));
    let updated = User { kuid: old.kuid.clone(), content };
    commit(ctx, vec![Change::UpdateUser(updated.clone())]).await?;
    Ok(user_json(&updated))
}
