//! The `security` controller's roles and profiles actions.

use crate::core::errors::{KError, defs};
use crate::protocol::Reply;
use crate::service::context::Ctx;
use crate::service::rights::rights_reply;
use crate::service::roles::{self, Write, doc_json};
use crate::service::search::{DEFAULT_SIZE, MAX_SIZE, MAX_WRITES, paging};
use serde_json::{Value, json};

fn id(ctx: &Ctx) -> Result<String, KError> {
    ctx.req.id_arg().map(str::to_string).ok_or_else(|| KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["_id"]))
}

async fn put_role(ctx: &Ctx<'_>, write: Write) -> Result<Reply, KError> {
    roles::put_role(ctx, &id(ctx)?, ctx.req.required_body()?, write, ctx.req.flag("force")).await.map(Reply::new)
}

pub async fn create_role(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    put_role(ctx, Write::Create).await
}

pub async fn create_or_replace_role(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    put_role(ctx, Write::CreateOrReplace).await
}

pub async fn update_role(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    put_role(ctx, Write::Update).await
}

pub async fn get_role(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let id = id(ctx)?;
    let rights = ctx.app.rights.current();
    Ok(doc_json(&id, &rights.role(&id)?.body).into())
}

/// `{hits}`; a missing id is an error (Kuzzle's).
pub async fn m_get_roles(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let rights = ctx.app.rights.current();
    let mut hits = Vec::new();
    for id in ctx.req.body_ids()? {
        hits.push(doc_json(&id, &rights.role(&id)?.body));
    }
    Ok(json!({ "hits": hits }).into())
}

/// `body.controllers`: the roles that name one of them (or `*`); no body: every role.
pub async fn search_roles(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let wanted = name_filter(ctx, "controllers")?;
    let (from, size) = paging(ctx, MAX_SIZE)?;
    let rights = ctx.app.rights.current();
    let found: Vec<Value> = rights
        .roles
        .values()
        .filter(|r| {
            let controllers = r.body.get("controllers").and_then(Value::as_object);
            wanted.as_ref().is_none_or(|w| {
                controllers.is_some_and(|c| c.contains_key("*") || w.iter().any(|name| c.contains_key(name)))
            })
        })
        .map(|r| doc_json(&r.id, &r.body))
        .collect();
    Ok(page(found, from, size))
}

/// An optional array of names in the body (`controllers`, `roles`); a `query` other than
/// "everything" is not supported for roles and profiles.
fn name_filter(ctx: &Ctx, field: &str) -> Result<Option<Vec<String>>, KError> {
    let Some(body) = ctx.req.body_object() else { return Ok(None) };
    if let Some(q) = body.get("query").filter(|q| !q.is_null())
        && q.as_object().is_none_or(|m| !(m.is_empty() || m.contains_key("match_all")))
    {
        return Err(KError::new(
            defs::API_ASSERT_INVALID_ARGUMENT,
            &["body.query", &format!("nothing, {{}} or match_all (filter with body.{field})")],
        ));
    }
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(names)) if names.iter().all(Value::is_string) => {
            Ok(Some(names.iter().filter_map(Value::as_str).map(str::to_string).collect()))
        }
        Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &[&format!("body.{field}"), "string[]"])),
    }
}

fn page(found: Vec<Value>, from: usize, size: usize) -> Reply {
    let total = found.len();
    let hits: Vec<Value> = found.into_iter().skip(from).take(size).collect();
    json!({ "hits": hits, "total": total }).into()
}

pub async fn delete_role(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let id = id(ctx)?;
    roles::delete_role(ctx, &id).await?;
    Ok(json!({ "_id": id }).into())
}

/// Every id is checked before any is deleted: one that cannot be (missing, built in, in
/// use) refuses the whole call, rather than Kuzzle's partial success.
async fn m_delete(ctx: &Ctx<'_>, profiles: bool) -> Result<Reply, KError> {
    let ids = ctx.req.body_ids()?;
    if ids.len() > MAX_WRITES {
        return Err(KError::new(defs::SERVICES_STORAGE_WRITE_LIMIT_EXCEEDED, &[]));
    }
    for id in &ids {
        if profiles {
            roles::check_profile_deletable(ctx, id).await?;
        } else {
            roles::check_role_deletable(ctx, id)?;
        }
    }
    for id in &ids {
        if profiles {
            roles::delete_profile(ctx, id).await?;
        } else {
            roles::delete_role(ctx, id).await?;
        }
    }
    Ok(json!(ids).into())
}

pub async fn m_delete_roles(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    m_delete(ctx, false).await
}

pub async fn get_role_mapping(_ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(json!({ "mapping": { "controllers": { "dynamic": "false", "properties": {} } } }).into())
}

async fn put_profile(ctx: &Ctx<'_>, write: Write) -> Result<Reply, KError> {
    roles::put_profile(ctx, &id(ctx)?, ctx.req.required_body()?, write).await.map(Reply::new)
}

pub async fn create_profile(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    put_profile(ctx, Write::Create).await
}

pub async fn create_or_replace_profile(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    put_profile(ctx, Write::CreateOrReplace).await
}

pub async fn update_profile(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    put_profile(ctx, Write::Update).await
}

pub async fn get_profile(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let id = id(ctx)?;
    let rights = ctx.app.rights.current();
    Ok(doc_json(&id, &rights.profile(&id)?.body).into())
}

pub async fn m_get_profiles(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let rights = ctx.app.rights.current();
    let mut hits = Vec::new();
    for id in ctx.req.body_ids()? {
        hits.push(doc_json(&id, &rights.profile(&id)?.body));
    }
    Ok(json!({ "hits": hits }).into())
}

/// `body.roles`: the profiles with a policy on one of them; no body: every profile.
pub async fn search_profiles(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let wanted = name_filter(ctx, "roles")?;
    let (from, size) = paging(ctx, DEFAULT_SIZE)?;
    let rights = ctx.app.rights.current();
    let found: Vec<Value> = rights
        .profiles
        .values()
        .filter(|p| wanted.as_ref().is_none_or(|w| p.role_ids().iter().any(|r| w.contains(r))))
        .map(|p| doc_json(&p.id, &p.body))
        .collect();
    Ok(page(found, from, size))
}

pub async fn delete_profile(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let id = id(ctx)?;
    roles::delete_profile(ctx, &id).await?;
    Ok(json!({ "_id": id }).into())
}

pub async fn m_delete_profiles(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    m_delete(ctx, true).await
}

pub async fn get_profile_mapping(_ctx: &Ctx<'_>) -> Result<Reply, KError> {
    Ok(json!({ "mapping": {
        "policies": { "properties": { "roleId": { "type": "keyword" }, "restrictedTo": {
            "properties": { "index": { "type": "keyword" }, "collections": { "type": "keyword" } } } } },
        "rateLimit": { "type": "integer" },
    } })
    .into())
}

/// `{hits, total}`, as getMyRights.
pub async fn get_profile_rights(ctx: &Ctx<'_>) -> Result<Reply, KError> {
    let id = id(ctx)?;
    let rights = ctx.app.rights.current();
    Ok(rights_reply(rights.list_profile(rights.profile(&id)?)))
}
