//! The `security` controller: users and their credentials, for administrators.

use crate::core::errors::{KError, defs};
use crate::protocol::Reply;
use crate::service::context::Ctx;
use crate::service::strategy::{commit, credentials_text, from_arg};
use crate::service::{credentials, users};
use crate::tokens::{Tokens, now_ms};
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

fn kuzzle_info(ctx: &Ctx) -> Value {
    let author = ctx.caller.user.as_ref().map(|u| Value::String(u.kuid.clone())).unwrap_or(Value::Null);
    json!({ "author": author, "createdAt": now_ms(), "updatedAt": null, "updater": null })
}

fn target_kuid<'a>(ctx: &'a Ctx) -> Result<&'a str, KError> {
    ctx.req.id_arg().ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["_id"]))
}

pub async fn create_first_admin(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    if ctx.app.store.read(|s| s.admin_exists()).await? {
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
    users::create(ctx, kuid, content, credentials, true).await.map(Reply::new)
}

pub async fn create_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let Some(body) = ctx.req.body_object() else {
        return Err(KError::new(defs::API_ASSERT_BODY_REQUIRED, &[]));
    };
    let mut content = object_field(body, "content", "body.content")?
        .cloned()
        .ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["body.content"]))?;
    match content.get("profileIds") {
        Some(Value::Array(ids)) if !ids.is_empty() && ids.iter().all(Value::is_string) => {}
        None => return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["body.content.profileIds"])),
        Some(_) => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["body.content.profileIds", "string[]"])),
    }
    content.insert("_kuzzle_info".into(), kuzzle_info(ctx));
    let credentials = object_field(body, "credentials", "body.credentials")?;
    let kuid = ctx.req.id_arg().map(str::to_string).unwrap_or_else(new_kuid);
    users::create(ctx, kuid, content, credentials, false).await.map(Reply::new)
}

pub async fn get_user(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(users::user_json(&users::load(ctx, target_kuid(ctx)?).await?).into())
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
