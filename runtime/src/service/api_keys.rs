//! API keys: long-lived tokens a user (or an admin for them) creates for a program.
//!
//! A key is a token like any other, signed by the host, of kind `api-key` and prefixed
//! `kapikey-`. It is shown once, when created; the store keeps only its description, its
//! lifetime, its `jti` (to revoke it) and its fingerprint (sha256, hex), never the key. It
//! outlives logouts and `revokeTokens`; deleting it (or its user) revokes its `jti`, which
//! every node hears as it hears any revocation.

use super::context::Ctx;
use super::strategy::commit;
use crate::core::errors::{KError, defs};
use crate::core::time::{self as expires_in, Ttl, TtlError};
use crate::store::{Change, Doc};
use crate::tokens::{Kind, Tokens, now_ms};
use serde_json::{Map, Value, json};

/// The `_source` of a key as stored: what is shown, plus its `jti` (never shown).
fn source_of(body: &str) -> Option<Map<String, Value>> {
    serde_json::from_str::<Value>(body).ok()?.as_object().cloned()
}

/// What a search shows of a key: all but its `jti`.
fn shown(id: &str, mut source: Map<String, Value>) -> Value {
    source.remove("jti");
    json!({ "_id": id, "_source": Value::Object(source) })
}

/// `expiresIn` for a key: absent or falsy means never (`-1`), within `api_key_max_ttl` when
/// `capped` (a user's own key; an admin's `security:createApiKey` is not capped, as in Kuzzle).
fn ttl(ctx: &Ctx<'_>, capped: bool) -> Result<Ttl, KError> {
    let max = if capped { ctx.app.tokens.settings().api_key_max_ttl_ms } else { -1 };
    expires_in::resolve(expires_in::requested(ctx.req.args.get("expiresIn")), -1.0, max).map_err(|e| match e {
        TtlError::Invalid => KError::new(
            defs::API_ASSERT_INVALID_ARGUMENT,
            &["expiresIn", "a number of milliseconds, or a parsable timespan string"],
        ),
        TtlError::Exceeded => KError::new(defs::SECURITY_TOKEN_TTL_EXCEEDED, &[]),
    })
}

/// Creates a key for `kuid`: `{_id, _source: {userId, description, expiresAt, ttl,
/// fingerprint, token}}`, the token shown this once.
pub async fn create(ctx: &Ctx<'_>, kuid: &str, capped: bool) -> Result<Value, KError> {
    let description = match ctx.req.body_object().and_then(|b| b.get("description")) {
        Some(Value::String(d)) => d.clone(),
        None => return Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["body.description"])),
        Some(_) => return Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["body.description", "string"])),
    };
    let ttl = ttl(ctx, capped)?;
    let issued = ctx.app.tokens.issue_kind(kuid, ttl, Kind::ApiKey);
    // sha256 of the whole key, prefix included; also its id unless one is given (Kuzzle's).
    let fingerprint =
        crate::core::ids::hex(ring::digest::digest(&ring::digest::SHA256, issued.token.as_bytes()).as_ref());
    let id = match ctx.req.id_arg() {
        Some(id) => {
            crate::core::ids::check_document_id(id)?;
            id.to_string()
        }
        None => fingerprint.clone(),
    };
    let mut source = json!({
        "userId": kuid,
        "description": description,
        "expiresAt": issued.expires_at,
        "ttl": issued.ttl,
        "fingerprint": fingerprint,
        "jti": issued.jti,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    let body = Value::Object(source.clone()).to_string();
    let owner = Some(kuid.to_string());
    commit(ctx, vec![Change::PutDoc { kind: Doc::ApiKey, id: id.clone(), body, owner, insert: true }]).await?;
    source.remove("jti");
    source.insert("token".into(), json!(issued.token));
    Ok(json!({ "_id": id, "_source": Value::Object(source) }))
}

/// Every key of `kuid` (id, `_source`), by id.
async fn of_user(ctx: &Ctx<'_>, kuid: &str) -> Result<Vec<(String, Map<String, Value>)>, KError> {
    let owner = kuid.to_string();
    let docs = ctx.app.store.read(move |s| s.docs_of(Doc::ApiKey, &owner)).await?;
    Ok(docs.into_iter().filter_map(|(id, body)| Some((id, source_of(&body)?))).collect())
}

/// `{hits, total}`: the keys of `kuid`, without their tokens, `from`/`size` applied.
pub async fn search(ctx: &Ctx<'_>, kuid: &str) -> Result<Value, KError> {
    let keys = of_user(ctx, kuid).await?;
    let total = keys.len();
    let (from, size) = super::search::paging(ctx, super::search::DEFAULT_SIZE)?;
    let hits: Vec<Value> = keys.into_iter().skip(from).take(size).map(|(id, source)| shown(&id, source)).collect();
    // The number of keys the user has (Kuzzle answers the page's length here).
    Ok(json!({ "hits": hits, "total": total }))
}

/// Deletes one key of `kuid` and revokes it: `{_id}`.
pub async fn delete(ctx: &Ctx<'_>, kuid: &str, id: &str) -> Result<Value, KError> {
    let keys = of_user(ctx, kuid).await?;
    let Some((_, source)) = keys.into_iter().find(|(k, _)| k == id) else {
        return Err(KError::new(defs::SERVICES_STORAGE_NOT_FOUND, &[id, "kuzzle", "api-keys"]));
    };
    commit(ctx, removal(id, &source)).await?;
    Ok(json!({ "_id": id }))
}

fn removal(id: &str, source: &Map<String, Value>) -> Vec<Change> {
    let mut changes = vec![Change::DeleteDoc { kind: Doc::ApiKey, id: id.to_string() }];
    if let Some(jti) = source.get("jti").and_then(Value::as_str) {
        let expires_at = source.get("expiresAt").and_then(Value::as_i64).unwrap_or(-1);
        changes.push(Tokens::revoke_jti_change(jti, expires_at, now_ms()));
    }
    changes
}

/// What deleting `kuid` must also do: delete and revoke each of its keys.
pub async fn deletion_changes(ctx: &Ctx<'_>, kuid: &str) -> Result<Vec<Change>, KError> {
    Ok(of_user(ctx, kuid).await?.iter().flat_map(|(id, source)| removal(id, source)).collect())
}
