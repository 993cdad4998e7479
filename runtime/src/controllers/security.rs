//! The `security` controller: users, their credentials and their API keys (roles and
//! profiles are in `roles.rs`).

use crate::core::errors::{KError, defs};
use crate::protocol::Reply;
use crate::service::context::Ctx;
use crate::service::search::{DEFAULT_SIZE, MAX_SIZE, MAX_WRITES, Query, paging};
use crate::service::strategy::{commit, credentials_text, from_arg};
use crate::service::{api_keys, credentials, rights, roles, users};
use crate::tokens::Tokens;
use serde_json::{Map, Value, json};

/// A kuid when the caller gives none: 128 random bits, uuid-shaped.
fn new_kuid() -> String {
    crate::core::ids::uuid()
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

fn target_kuid<'a>(ctx: &'a Ctx) -> Result<&'a str, KError> {
    ctx.req.id_arg().ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["_id"]))
}

pub async fn create_first_admin(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    use std::sync::atomic::Ordering::Relaxed;
    // Outside the rights (the action guards itself), so it must stay cheap for anyone: once
    // an admin was created, the answer is known without the database.
    if ctx.app.first_admin_done.load(Relaxed) || ctx.app.store.read(|s| s.admin_exists()).await? {
        ctx.app.first_admin_done.store(true, Relaxed);
        return Err(KError::new(defs::API_PROCESS_ADMIN_EXISTS, &[]));
    }
    let empty = Map::new();
    let body = ctx.req.body_object().unwrap_or(&empty);
    let mut content = object_field(body, "content", "body.content")?.cloned().unwrap_or_default();
    if content.contains_key("profileIds") {
        return Err(KError::new(defs::API_ASSERT_FORBIDDEN_ARGUMENT, &["body.content.profileIds"]));
    }
    content.insert("profileIds".into(), json!(["admin"]));
    content.insert("_kuzzle_info".into(), ctx.kuzzle_info(None));
    let credentials = object_field(body, "credentials", "body.credentials")?;
    let kuid = ctx.req.id_arg().map(str::to_string).unwrap_or_else(new_kuid);
    let created = users::create(ctx, kuid, content, credentials, true).await?;
    // `reset`: the built-in roles and profiles back to the standard set.
    if ctx.req.flag("reset") {
        commit(ctx, roles::reset_changes()).await?;
        ctx.app.rights.reload(&ctx.app.store).await;
    }
    Ok(created.into())
}

pub async fn create_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let body = ctx.req.required_body()?;
    let content = object_field(body, "content", "body.content")?
        .cloned()
        .ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["body.content"]))?;
    create_with(ctx, body, content).await
}

/// `profileIds` forced to `[security] restricted_profile_ids`: what a sign-up page may call.
pub async fn create_restricted_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let empty = Map::new();
    let body = ctx.req.body_object().unwrap_or(&empty);
    let mut content = object_field(body, "content", "body.content")?.cloned().unwrap_or_default();
    if content.contains_key("profileIds") {
        return Err(KError::new(defs::API_ASSERT_FORBIDDEN_ARGUMENT, &["body.content.profileIds"]));
    }
    content.insert("profileIds".into(), json!(ctx.app.config.restricted_profile_ids));
    create_with(ctx, body, content).await
}

/// A user with `content` (its profiles checked) and the body's `credentials`, under the `_id`
/// argument or a new kuid.
async fn create_with(
    ctx: &Ctx<'_>,
    body: &Map<String, Value>,
    mut content: Map<String, Value>,
) -> Result<Reply, KError> {
    users::check_profile_ids(ctx, &content)?;
    content.insert("_kuzzle_info".into(), ctx.kuzzle_info(None));
    let credentials = object_field(body, "credentials", "body.credentials")?;
    let kuid = ctx.req.id_arg().map(str::to_string).unwrap_or_else(new_kuid);
    users::create(ctx, kuid, content, credentials, false).await.map(Reply::new)
}

pub async fn get_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let kuid = target_kuid(ctx)?;
    if kuid == "-1" || kuid == "anonymous" {
        let mut anonymous = users::anonymous();
        anonymous.as_object_mut().map(|o| o.remove("strategies"));
        return Ok(anonymous.into());
    }
    Ok(users::user_json(&users::load(ctx, kuid).await?).into())
}

/// The body's fields over the user's (`profileIds` included: an admin action).
pub async fn update_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, target_kuid(ctx)?).await?;
    let changes = ctx.req.required_body()?;
    let mut content = user.content.clone();
    let kept = changes.iter().filter(|(k, _)| *k != "_kuzzle_info" && *k != "_id");
    content.extend(kept.map(|(k, v)| (k.clone(), v.clone())));
    users::check_profile_ids(ctx, &content)?;
    users::write(ctx, &user, content).await.map(Reply::new)
}

/// The body replaces the user's content; it must give `profileIds`.
pub async fn replace_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, target_kuid(ctx)?).await?;
    let mut content = ctx.req.required_body()?.clone();
    content.remove("_kuzzle_info");
    content.remove("_id");
    users::check_profile_ids(ctx, &content)?;
    users::write(ctx, &user, content).await.map(Reply::new)
}

/// `{hits, total}`; the query language is a subset (see `service::search`).
pub async fn search_users(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let query = Query::parse(ctx.req.body.as_ref())?;
    let (from, size) = paging(ctx, DEFAULT_SIZE)?;
    let (found, total) = users::window(ctx, move |u| query.matches(u), from, size, false).await?;
    let hits: Vec<Value> = found.iter().map(users::user_json).collect();
    Ok(json!({ "hits": hits, "total": total }).into())
}

/// `body.ids`, or the `ids` argument (`a,b` or an array); missing users are left out.
fn user_ids(ctx: &Ctx) -> Result<Vec<String>, KError> {
    let from_args = ctx.req.args.get("ids").map(|v| match v {
        Value::String(s) => serde_json::from_str::<Vec<String>>(s)
            .unwrap_or_else(|_| s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()),
        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    });
    match from_args {
        Some(ids) => Ok(ids),
        None => ctx.req.body_ids(),
    }
}

pub async fn m_get_users(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let mut hits = Vec::new();
    for kuid in user_ids(ctx)?.into_iter().take(MAX_SIZE) {
        if let Some(user) = ctx.app.store.get_user(&kuid).await? {
            hits.push(users::user_json(&user));
        }
    }
    Ok(json!({ "hits": hits }).into())
}

/// Every user is checked to exist before any is deleted; the ids deleted.
pub async fn m_delete_users(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let ids = user_ids(ctx)?;
    if ids.len() > MAX_WRITES {
        return Err(KError::new(defs::SERVICES_STORAGE_WRITE_LIMIT_EXCEEDED, &[]));
    }
    let mut found = Vec::new();
    for kuid in &ids {
        found.push(users::load(ctx, kuid).await?);
    }
    for user in &found {
        users::delete(ctx, user).await?;
    }
    Ok(json!(ids).into())
}

pub async fn get_user_rights(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, target_kuid(ctx)?).await?;
    Ok(rights::rights_reply(ctx.app.rights.current().list(&user.profile_ids())))
}

pub async fn get_user_mapping(_ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(json!({ "mapping": { "profileIds": { "type": "keyword" } } }).into())
}

/// `POST /_checkRights/:userId`: whether that user may run `body.controller:body.action`.
pub async fn check_rights(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, user_id_arg(ctx)?).await?;
    let (controller, action) = rights::asked_action(ctx)?;
    let allowed = ctx.app.rights.current().allows(&user.profile_ids(), &controller, &action);
    Ok(json!({ "allowed": allowed }).into())
}

fn user_id_arg<'a>(ctx: &'a Ctx) -> Result<&'a str, KError> {
    ctx.req
        .arg_str("userId")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["userId"]))
}

/// An API key for any user; `[tokens] api_key_max_ttl` does not apply (Kuzzle's).
pub async fn create_api_key(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, user_id_arg(ctx)?).await?;
    api_keys::create(ctx, &user.kuid, false).await.map(Reply::new)
}

pub async fn search_api_keys(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, user_id_arg(ctx)?).await?;
    api_keys::search(ctx, &user.kuid).await.map(Reply::new)
}

pub async fn delete_api_key(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let kuid = user_id_arg(ctx)?;
    api_keys::delete(ctx, kuid, target_kuid(ctx)?).await.map(Reply::new)
}

pub async fn get_user_strategies(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, target_kuid(ctx)?).await?;
    Ok(json!(*ctx.app.store.linked_strategies(&user.kuid).await?).into())
}

pub async fn delete_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, target_kuid(ctx)?).await?;
    users::delete(ctx, &user).await?;
    Ok(json!({ "_id": user.kuid }).into())
}

pub async fn revoke_tokens(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let user = users::load(ctx, target_kuid(ctx)?).await?;
    commit(ctx, vec![Tokens::revoke_user_change(&user.kuid)]).await?;
    Ok(Value::Null.into())
}

// Credentials of any user: `/credentials/:strategy/:_id...`

async fn existing_user(ctx: &Ctx<'_>, kuid: &str) -> Result<(), KError> {
    users::load(ctx, kuid).await.map(|_| ())
}

pub async fn create_credentials(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    let kuid = target_kuid(ctx)?;
    existing_user(ctx, kuid).await?;
    let creds = credentials_text(ctx.req.body.as_ref(), "body")?;
    credentials::create(ctx, &s, kuid, &creds).await.map(Reply::new)
}

pub async fn update_credentials(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    let kuid = target_kuid(ctx)?;
    existing_user(ctx, kuid).await?;
    let creds = credentials_text(ctx.req.body.as_ref(), "body")?;
    credentials::update(ctx, &s, kuid, &creds).await.map(Reply::new)
}

pub async fn delete_credentials(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::delete(ctx, &s, target_kuid(ctx)?).await.map(Reply::new)
}

pub async fn get_credentials(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::get(ctx, &s, target_kuid(ctx)?).await.map(Reply::new)
}

pub async fn get_credentials_by_id(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::get_by_id(ctx, &s, target_kuid(ctx)?).await.map(Reply::new)
}

pub async fn has_credentials(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    credentials::exists(ctx, &s, target_kuid(ctx)?).await.map(|b| Reply::new(json!(b)))
}

pub async fn validate_credentials(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    let kuid = target_kuid(ctx)?;
    let creds = credentials_text(ctx.req.body.as_ref(), "body")?;
    credentials::validate(ctx, &s, kuid, &creds).await.map(Reply::new)
}

pub async fn credential_fields(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let s = from_arg(ctx)?;
    Ok(json!(s.fields).into())
}

pub async fn all_credential_fields(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let mut out = Map::new();
    for name in ctx.app.sandbox.names() {
        if let Some(s) = ctx.app.sandbox.get(&name) {
            out.insert(name, json!(s.fields));
        }
    }
    Ok(Value::Object(out).into())
}
