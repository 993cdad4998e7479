//! What the search actions accept: `from`/`size`, and for users a small part of
//! Elasticsearch's query language, enough for what an administrator asks of users (all of
//! them, some ids, those holding a profile, combinations). Anything else is refused with a
//! clear error rather than answered wrongly.

use super::context::Ctx;
use crate::core::errors::{KError, defs};
use crate::store::User;
use serde_json::Value;

/// Kuzzle's `limits.documentsFetchCount`: the most one search returns.
pub const MAX_SIZE: usize = 10_000;
/// Kuzzle's `limits.documentsWriteCount`: the most ids one mDelete takes.
pub const MAX_WRITES: usize = 200;
/// Kuzzle's default page for searches of users, profiles and API keys (roles: [`MAX_SIZE`]).
pub const DEFAULT_SIZE: usize = 10;

/// `from` (default 0) and `size` (default `default_size`, at most [`MAX_SIZE`]).
pub fn paging(ctx: &Ctx<'_>, default_size: usize) -> Result<(usize, usize), KError> {
    let number = |name: &str, default: usize| -> Result<usize, KError> {
        match ctx.req.args.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) => n.as_u64().map(|n| n as usize).ok_or_else(|| bad(name)),
            Some(Value::String(s)) => s.parse().map_err(|_| bad(name)),
            Some(_) => Err(bad(name)),
        }
    };
    let size = number("size", default_size)?;
    if size > MAX_SIZE {
        return Err(KError::new(defs::API_ASSERT_INVALID_ARGUMENT, &["size", "at most 10000"]));
    }
    Ok((number("from", 0)?, size))
}

fn bad(name: &str) -> KError {
    KError::new(defs::API_ASSERT_INVALID_TYPE, &[name, "integer"])
}

/// A users query, checked once; [`Query::matches`] then runs on each user.
#[derive(Debug, Clone)]
pub enum Query {
    All,
    Ids(Vec<String>),
    /// `term`/`terms`: the field (`_id`, or a content field) equals one of the values, or,
    /// for an array field, holds one of them.
    Terms(String, Vec<Value>),
    Bool {
        must: Vec<Query>,
        should: Vec<Query>,
        must_not: Vec<Query>,
    },
}

const SUPPORTED: &str = "match_all, ids, term, terms or bool (must, filter, should, must_not) on users";

fn unsupported(what: &str) -> KError {
    KError::new(defs::API_ASSERT_INVALID_ARGUMENT, &[what, SUPPORTED])
}

impl Query {
    /// The request body's `query` (none, or `{}`: every user).
    pub fn parse(body: Option<&Value>) -> Result<Query, KError> {
        match body.and_then(|b| b.get("query")) {
            None | Some(Value::Null) => Ok(Query::All),
            Some(q) => Self::parse_clause(q, "body.query"),
        }
    }

    fn parse_clause(q: &Value, at: &str) -> Result<Query, KError> {
        let Some(map) = q.as_object() else { return Err(unsupported(at)) };
        if map.is_empty() {
            return Ok(Query::All);
        }
        if map.len() != 1 {
            return Err(unsupported(at));
        }
        let (kind, inner) = map.iter().next().expect("one entry");
        let at = format!("{at}.{kind}");
        match kind.as_str() {
            "match_all" => Ok(Query::All),
            "ids" => {
                let values = inner.get("values").and_then(Value::as_array).ok_or_else(|| unsupported(&at))?;
                Ok(Query::Ids(values.iter().filter_map(Value::as_str).map(str::to_string).collect()))
            }
            "term" | "terms" => {
                let (field, value) = inner
                    .as_object()
                    .filter(|m| m.len() == 1)
                    .and_then(|m| m.iter().next())
                    .ok_or_else(|| unsupported(&at))?;
                // `{term: {f: {value: v}}}` is the long form of `{term: {f: v}}`.
                let value = value.get("value").unwrap_or(value);
                let values = match (kind.as_str(), value) {
                    ("terms", Value::Array(values)) => values.clone(),
                    ("term", v) if !v.is_array() && !v.is_object() => vec![v.clone()],
                    _ => return Err(unsupported(&at)),
                };
                Ok(Query::Terms(field.clone(), values))
            }
            "bool" => {
                let clauses = |name: &str| -> Result<Vec<Query>, KError> {
                    match inner.get(name) {
                        None | Some(Value::Null) => Ok(Vec::new()),
                        Some(Value::Array(list)) => {
                            list.iter().map(|c| Self::parse_clause(c, &format!("{at}.{name}"))).collect()
                        }
                        Some(one) => Ok(vec![Self::parse_clause(one, &format!("{at}.{name}"))?]),
                    }
                };
                let mut must = clauses("must")?;
                must.extend(clauses("filter")?);
                Ok(Query::Bool { must, should: clauses("should")?, must_not: clauses("must_not")? })
            }
            _ => Err(unsupported(&at)),
        }
    }

    pub fn matches(&self, user: &User) -> bool {
        match self {
            Query::All => true,
            Query::Ids(ids) => ids.contains(&user.kuid),
            Query::Terms(field, values) => {
                let field_value = if field == "_id" {
                    Some(Value::String(user.kuid.clone()))
                } else {
                    user.content.get(field.as_str()).cloned()
                };
                match field_value {
                    Some(Value::Array(held)) => held.iter().any(|h| values.contains(h)),
                    Some(v) => values.contains(&v),
                    None => false,
                }
            }
            Query::Bool { must, should, must_not } => {
                must.iter().all(|q| q.matches(user))
                    && (should.is_empty() || should.iter().any(|q| q.matches(user)))
                    && !must_not.iter().any(|q| q.matches(user))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(kuid: &str, profiles: &[&str]) -> User {
        User { kuid: kuid.into(), content: json!({ "profileIds": profiles, "team": "a" }).as_object().unwrap().clone() }
    }

    #[test]
    fn the_query_subset() {
        let (alice, bob) = (user("alice", &["default"]), user("bob", &["admin", "default"]));
        let q = |v: Value| Query::parse(Some(&json!({ "query": v }))).unwrap();
        assert!(Query::parse(None).unwrap().matches(&alice));
        assert!(q(json!({})).matches(&alice));
        assert!(q(json!({ "ids": { "values": ["bob"] } })).matches(&bob));
        assert!(!q(json!({ "ids": { "values": ["bob"] } })).matches(&alice));
        assert!(q(json!({ "terms": { "profileIds": ["admin"] } })).matches(&bob));
        assert!(!q(json!({ "term": { "profileIds": "admin" } })).matches(&alice));
        assert!(q(json!({ "term": { "team": { "value": "a" } } })).matches(&alice));
        let both = q(
            json!({ "bool": { "must": [{ "term": { "team": "a" } }], "must_not": { "term": { "profileIds": "admin" } } } }),
        );
        assert!(both.matches(&alice) && !both.matches(&bob));
        for bad in [json!({ "match": { "team": "a" } }), json!({ "term": { "a": 1, "b": 2 } }), json!([1])] {
            let e = Query::parse(Some(&json!({ "query": bad }))).unwrap_err();
            assert_eq!(e.id, "api.assert.invalid_argument", "{bad}");
        }
    }
}
