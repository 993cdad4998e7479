//! `sandgate strategy run`: a strategy author's calls, run one after the other on a scratch
//! store, each in a fresh instance exactly as the server runs it (the same sandbox, calls and
//! limits), with what each one cost. Nothing of a running server or of the operator's data is
//! touched: the store is a temporary SQLite file.
//!
//! The cases are a JSON array, one object per call:
//!
//! ```json
//! [
//!   { "call": "create", "kuid": "alice", "credentials": { "username": "alice", "password": "pw" } },
//!   { "call": "verify", "credentials": { "username": "alice", "password": "pw" },
//!     "expect": { "answer": { "kuid": "alice" } } },
//!   { "call": "verify", "credentials": { "username": "alice", "password": "no" },
//!     "expect": { "error": "plugin.strategy.missing_user" } }
//! ]
//! ```
//!
//! `call` is one of `verify`, `validate`, `create`, `update`, `delete`, `exists`, `get-info`,
//! `get-by-id`, `fields`; `kuid` for the calls about a user, `id` for `get-by-id`,
//! `credentials` (an object) for `verify`, `validate`, `create`, `update`, and for `verify`
//! optionally `query` (an object of strings), `client_ip` and `client_binding`; `is_update`
//! for `validate`. `expect`, if given, is checked: `answer` (the call's answer, as printed)
//! or `error` (the Kuzzle error id the server would answer). Every case is checked before any
//! runs.

use super::app::offline::{Scratch, scratch};
use super::errors::{call_error, strategy_error};
use super::strategy::{changes, public_info};
use crate::config::Config;
use crate::core::errors::KError;
use crate::sandbox::bindings::{Login, LoginRequest, StrategyError};
use crate::sandbox::host::Overlay;
use crate::sandbox::{CallCtx, CallError, CallReport, Grants, Strategy};
use crate::store::front::Db;
use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// One call to make.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub call: String,
    #[serde(default)]
    pub kuid: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub credentials: Option<Value>,
    #[serde(default)]
    pub query: Option<Map<String, Value>>,
    #[serde(default)]
    pub client_ip: Option<String>,
    #[serde(default)]
    pub client_binding: Option<String>,
    #[serde(default)]
    pub is_update: bool,
    #[serde(default)]
    pub expect: Option<Expect>,
}

/// What a case expects: its answer (any JSON, `null` included), or the id of the error the
/// server would give. Exactly one of the two.
#[derive(Debug)]
pub enum Expect {
    Answer(Value),
    Error(String),
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = Map::<String, Value>::deserialize(d)?;
        match (map.remove("answer"), map.remove("error"), map.keys().next()) {
            (_, _, Some(other)) => Err(D::Error::custom(format!("unknown field `{other}` in expect"))),
            (Some(answer), None, None) => Ok(Expect::Answer(answer)),
            (None, Some(Value::String(id)), None) => Ok(Expect::Error(id)),
            (None, Some(_), None) => Err(D::Error::custom("expect.error is a Kuzzle error id (a string)")),
            _ => Err(D::Error::custom("expect takes either \"answer\" or \"error\"")),
        }
    }
}

/// What became of one case.
#[derive(Debug)]
pub struct Ran {
    pub call: String,
    pub outcome: Result<Value, KError>,
    /// None when the call never reached the sandbox (its input was refused first).
    pub report: Option<CallReport>,
    /// The `limits.*` key the call ran into, if it did.
    pub limit: Option<String>,
    /// Whether it met its `expect` (None: it had none).
    pub met: Option<bool>,
}

/// Parses the cases file's text.
/// Parses the cases file's text, and checks every case before anything runs.
pub fn parse_cases(text: &str) -> anyhow::Result<Vec<Case>> {
    let cases: Vec<Case> = serde_json::from_str(text)
        .context("the cases are a JSON array of calls (see `sandgate strategy run --help`)")?;
    for (i, case) in cases.iter().enumerate() {
        check_case(case).with_context(|| format!("case {}", i + 1))?;
    }
    Ok(cases)
}

const CALLS: &[&str] =
    &["verify", "validate", "create", "update", "delete", "exists", "get-info", "get-by-id", "fields"];

fn check_case(case: &Case) -> anyhow::Result<()> {
    if !CALLS.contains(&case.call.as_str()) {
        bail!("unknown call {:?}: one of {}", case.call, CALLS.join(", "));
    }
    if matches!(case.call.as_str(), "verify" | "validate" | "create" | "update") {
        credentials(case)?;
    }
    if matches!(case.call.as_str(), "validate" | "create" | "update" | "delete" | "exists" | "get-info") {
        kuid(case)?;
    }
    if case.call == "get-by-id" && case.id.is_none() {
        bail!("a get-by-id call needs \"id\"");
    }
    Ok(())
}

/// Prepares `wasm` as an upload would, then runs `cases` in order on a scratch store.
pub fn run(
    config: &Config,
    name: &str,
    wasm: &[u8],
    strategy_config: &str,
    limits: &str,
    cases: &[Case],
) -> anyhow::Result<(Arc<Strategy>, Vec<Ran>)> {
    let work: Scratch = scratch(config, wasm)?;
    let (db, sandbox) = (&work.db, &work.sandbox);
    // One call at a time, each admitted once the previous one's aftercare (its Store dropped,
    // the next fresh instance built) is done: every call after the first finds a fresh
    // instance ready, as on a server between requests; the first builds its own.
    let limits = one_at_a_time(limits)?;
    let grants = Grants::parse("[]", "{}")?;
    // Blocking (it may make the `fields` call on a runtime of its own): before ours starts.
    let strategy = sandbox.install(sandbox.prepare(name, wasm, strategy_config, &limits, &grants, None)?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let ran = runtime.block_on(async {
        let mut ran = Vec::with_capacity(cases.len());
        for case in cases {
            ran.push(one(sandbox, db, &strategy, case).await?);
        }
        anyhow::Ok(ran)
    })?;
    Ok((strategy, ran))
}

/// The author's limit overrides with `max_concurrent_calls` set to 1.
fn one_at_a_time(limits: &str) -> anyhow::Result<String> {
    let mut overrides: Map<String, Value> = if limits.trim().is_empty() {
        Map::new()
    } else {
        serde_json::from_str(limits).context("--limits is a JSON object of [limits] keys")?
    };
    overrides.insert("max_concurrent_calls".into(), json!(1));
    Ok(Value::Object(overrides).to_string())
}

/// The credentials of `case` as the JSON text a strategy receives.
fn credentials(case: &Case) -> anyhow::Result<String> {
    match &case.credentials {
        Some(v @ Value::Object(_)) => Ok(v.to_string()),
        None => bail!("a {} call needs \"credentials\" (an object)", case.call),
        Some(_) => bail!("\"credentials\" must be an object"),
    }
}

fn kuid(case: &Case) -> anyhow::Result<&str> {
    case.kuid.as_deref().ok_or_else(|| anyhow!("a {} call needs \"kuid\"", case.call))
}

/// A strategy's JSON text answer, as JSON if it is.
fn json_text(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

async fn one(sandbox: &crate::sandbox::Sandbox, db: &Db, s: &Arc<Strategy>, case: &Case) -> anyhow::Result<Ran> {
    let calls = sandbox.calls();
    let permit = Arc::new(s.admit().await.map_err(|e| anyhow!("{e}"))?);
    let mut overlay = Overlay::default();
    let mut report = None;
    let cx =
        CallCtx { permit: &permit, overlay: &mut overlay, request_id: "run", guard: None, report: Some(&mut report) };
    fn flat<T>(
        outcome: Result<Result<T, StrategyError>, CallError>,
        f: impl FnOnce(T) -> Value,
    ) -> Result<Result<Value, StrategyError>, CallError> {
        outcome.map(|answer| answer.map(f))
    }
    let outcome = match case.call.as_str() {
        "verify" => {
            let query = case
                .query
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect();
            let req = LoginRequest {
                credentials: credentials(case)?,
                query,
                client_ip: case.client_ip.clone(),
                client_binding: case.client_binding.clone().unwrap_or_else(|| "run".into()),
            };
            flat(calls.verify(s, cx, &req).await, |login| match login {
                Login::User(kuid) => json!({ "kuid": kuid }),
                Login::Redirect(url) => json!({ "redirect": url }),
                Login::Provision(newcomer) => json!({ "provision": {
                    "credentials": json_text(newcomer.credentials),
                    "content": json_text(newcomer.content),
                } }),
            })
        }
        "validate" => {
            flat(calls.validate(s, cx, kuid(case)?, &credentials(case)?, case.is_update).await, |()| Value::Null)
        }
        "create" => flat(calls.create(s, cx, kuid(case)?, &credentials(case)?).await, Value::String),
        "update" => flat(calls.update(s, cx, kuid(case)?, &credentials(case)?).await, Value::String),
        "delete" => flat(calls.delete(s, cx, kuid(case)?).await, |()| Value::Null),
        "exists" => calls.exists(s, cx, kuid(case)?).await.map(|b| Ok(Value::Bool(b))),
        "get-info" => flat(calls.get_info(s, cx, kuid(case)?).await, Value::String),
        "get-by-id" => {
            let id = case.id.as_deref().ok_or_else(|| anyhow!("a get-by-id call needs \"id\""))?;
            flat(calls.get_by_id(s, cx, id).await, Value::String)
        }
        "fields" => flat(calls.fields(s, cx).await, |fields| json!(fields)),
        other => bail!(
            "unknown call {other:?}: one of verify, validate, create, update, delete, exists, get-info, get-by-id, fields"
        ),
    };
    // What a successful call wrote is committed, as the server does: the next call reads it.
    if matches!(outcome, Ok(Ok(_))) && !overlay.writes.is_empty() {
        db.commit(changes(&overlay)).await.map_err(|e| anyhow!("the scratch store: {e}"))?;
    }
    drop(permit);
    // Host limits name their key in their message (a trap's text is the guest's own).
    let limit = match &outcome {
        Err(e) if !matches!(e, CallError::Trap(_)) => limit_named(&e.to_string()),
        _ => None,
    };
    let outcome = match outcome {
        // Public information must be a JSON object, as the server requires of it.
        Ok(Ok(Value::String(text))) if answers_info(&case.call) => public_info(s, &text),
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(strategy_error(&s.name, e)),
        Err(e) => Err(call_error(&s.name, e)),
    };
    let met = case.expect.as_ref().map(|expect| match (&outcome, expect) {
        (Ok(value), Expect::Answer(want)) => value == want,
        (Err(e), Expect::Error(id)) => e.id == id.as_str(),
        _ => false,
    });
    Ok(Ran { call: case.call.clone(), outcome, report, limit, met })
}

/// Whether `call` answers public information (a JSON object, as text).
fn answers_info(call: &str) -> bool {
    matches!(call, "create" | "update" | "get-info" | "get-by-id")
}

/// The `limits.<key>` an error message names (every limit's message names its key).
fn limit_named(message: &str) -> Option<String> {
    let at = message.find("limits.")?;
    let key: String = message[at + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
    (!key.is_empty()).then(|| format!("limits.{key}"))
}

/// One case as JSON (`--json`).
pub fn to_json(ran: &Ran) -> Value {
    let mut out = json!({ "call": ran.call });
    match &ran.outcome {
        Ok(answer) => out["answer"] = answer.clone(),
        Err(e) => out["error"] = json!({ "id": e.id, "status": e.status, "message": e.message }),
    }
    if let Some(r) = &ran.report {
        out["wall_ms"] = json!(r.wall.as_secs_f64() * 1e3);
        out["cpu_ms"] = json!(r.cpu.as_secs_f64() * 1e3);
        out["peak_memory_bytes"] = json!(r.peak_memory_bytes);
        out["host_calls"] = Value::Object(r.host_calls.iter().map(|(k, n)| (k.to_string(), json!(n))).collect());
        out["storage_bytes_written"] = json!(r.storage_bytes_written);
    }
    out["limit"] = json!(ran.limit);
    if let Some(met) = ran.met {
        out["expected"] = json!(met);
    }
    out
}

/// One case for a person: the answer, then what it cost against the strategy's limits.
pub fn to_text(i: usize, ran: &Ran, s: &Strategy) -> String {
    let verdict = match ran.met {
        Some(true) => " (as expected)",
        Some(false) => " (NOT as expected)",
        None => "",
    };
    let answer = match &ran.outcome {
        Ok(answer) => format!("ok {answer}"),
        Err(e) => format!("error {} {}: {}", e.status, e.id, e.message),
    };
    let mut text = format!("{}. {}: {answer}{verdict}", i + 1, ran.call);
    if let Some(r) = &ran.report {
        let limits = &s.limits;
        let calls: Vec<String> = r.host_calls.iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k} {n}")).collect();
        text.push_str(&format!(
            "\n   cpu {:.2} ms of {} (limits.cpu_ms), wall {:.2} ms of {} (limits.wall_ms), memory {} KiB of {} (limits.memory_bytes)\
             \n   host calls: {}; storage written: {} bytes",
            r.cpu.as_secs_f64() * 1e3,
            limits.cpu_ms,
            r.wall.as_secs_f64() * 1e3,
            limits.wall_ms,
            r.peak_memory_bytes / 1024,
            limits.memory_bytes / 1024,
            if calls.is_empty() { "none".to_string() } else { calls.join(", ") },
            r.storage_bytes_written,
        ));
    }
    if let Some(limit) = &ran.limit {
        text.push_str(&format!("\n   hit {limit}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::limit_named;

    #[test]
    fn the_limit_a_message_names() {
        assert_eq!(
            limit_named("[s] exceeded its CPU budget of 5 ms (limits.cpu_ms)").as_deref(),
            Some("limits.cpu_ms")
        );
        assert_eq!(limit_named("wrong password"), None);
    }
}
