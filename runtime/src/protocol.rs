//! The protocol: one request and one response, whatever the transport. HTTP, `POST /_query`
//! and WebSocket all build a [`Request`] and send back the same [`Response`] envelope.

use crate::core::errors::KError;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// A REST route: arguments come from the URL and query string (strings only).
    Http,
    /// A JSON query (Kuzzle's "other protocols" format) sent to `POST /_query`.
    Query,
    /// A JSON query on a WebSocket: responses carry `room`.
    WebSocket,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub controller: String,
    pub action: String,
    /// URL placeholders, query-string keys, or the extra top-level keys of a JSON query.
    pub args: Map<String, Value>,
    pub body: Option<Value>,
    /// A binary body (a component upload, `application/wasm`), kept as bytes.
    pub raw_body: Option<bytes::Bytes>,
    pub jwt: Option<String>,
    pub volatile: Option<Value>,
    pub request_id: String,
    pub protocol: Protocol,
    /// Identifies the network connection (one per HTTP request, one per WebSocket).
    pub connection_id: u64,
    pub client_ip: Option<String>,
    /// The `authToken` cookie (HTTP only), for `cookieAuth` mode.
    pub cookie_token: Option<String>,
    /// The `sandgate-login` cookie (HTTP): what ties a multi-step login's steps to one browser.
    pub login_cookie: Option<String>,
}

impl Request {
    /// Builds a request from Kuzzle's JSON query format: `controller`, `action`, `requestId`,
    /// `jwt`, `volatile`, `body` are typed; every other top-level key is an argument.
    pub fn from_json(
        value: Value,
        protocol: Protocol,
        connection_id: u64,
        client_ip: Option<String>,
    ) -> Result<Request, (String, KError)> {
        use crate::core::errors::defs;
        let Value::Object(mut map) = value else {
            return Err((String::new(), KError::new(defs::API_ASSERT_INVALID_TYPE, &["request", "object"])));
        };
        let request_id = match map.remove("requestId") {
            Some(Value::String(id)) if !id.is_empty() => id,
            Some(Value::Number(n)) => n.to_string(),
            _ => crate::core::ids::uuid(),
        };
        let fail =
            |arg: &str, ty: &str| Err((request_id.clone(), KError::new(defs::API_ASSERT_INVALID_TYPE, &[arg, ty])));
        let text = |v: Option<Value>| match v {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(()),
        };
        let Ok(controller) = text(map.remove("controller")) else { return fail("controller", "string") };
        let Ok(action) = text(map.remove("action")) else { return fail("action", "string") };
        let jwt = match map.remove("jwt") {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(t),
            Some(_) => return fail("jwt", "string"),
        };
        let body = match map.remove("body") {
            None | Some(Value::Null) => None,
            Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v),
            Some(_) => return fail("body", "object"),
        };
        let volatile = match map.remove("volatile") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v),
            Some(_) => return fail("volatile", "object"),
        };
        Ok(Request {
            controller,
            action,
            args: map,
            body,
            raw_body: None,
            jwt,
            volatile,
            request_id,
            protocol,
            connection_id,
            client_ip,
            cookie_token: None,
            login_cookie: None,
        })
    }

    pub fn arg_str(&self, name: &str) -> Option<&str> {
        self.args.get(name).and_then(Value::as_str)
    }

    /// Boolean options: over HTTP a present query key is `true` whatever its value (Kuzzle's
    /// flags); over JSON the value must be `true`.
    pub fn flag(&self, name: &str) -> bool {
        match (self.protocol, self.args.get(name)) {
            (_, None) | (_, Some(Value::Null)) => false,
            (Protocol::Http, Some(Value::String(_))) => true,
            (_, Some(Value::Bool(b))) => *b,
            (_, Some(Value::String(s))) => s == "true",
            _ => false,
        }
    }

    /// `_id` from the args, or None.
    pub fn id_arg(&self) -> Option<&str> {
        self.arg_str("_id").filter(|s| !s.is_empty())
    }

    pub fn body_object(&self) -> Option<&Map<String, Value>> {
        self.body.as_ref().and_then(Value::as_object)
    }

    /// The body, which the action requires to be an object.
    pub fn required_body(&self) -> Result<&Map<String, Value>, KError> {
        use crate::core::errors::defs;
        match &self.body {
            None | Some(Value::Null) => Err(KError::new(defs::API_ASSERT_BODY_REQUIRED, &[])),
            Some(Value::Object(m)) => Ok(m),
            Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["body", "object"])),
        }
    }

    /// `body.ids`: the ids an mGet or an mDelete names.
    pub fn body_ids(&self) -> Result<Vec<String>, KError> {
        use crate::core::errors::defs;
        match self.required_body()?.get("ids") {
            Some(Value::Array(ids)) if ids.iter().all(Value::is_string) => {
                Ok(ids.iter().filter_map(Value::as_str).map(str::to_string).collect())
            }
            None => Err(KError::new(defs::API_ASSERT_MISSING_ARGUMENT, &["body.ids"])),
            Some(_) => Err(KError::new(defs::API_ASSERT_INVALID_TYPE, &["body.ids", "string[]"])),
        }
    }
}

/// What an action answers, before it is wrapped in the envelope.
#[derive(Debug, Clone)]
pub struct Reply {
    pub result: Value,
    /// Extra HTTP headers (Set-Cookie, Location); never echoed inside the JSON.
    pub headers: Vec<(String, String)>,
    /// A status other than 200 (a login's redirect: 302).
    pub status: Option<u16>,
}

impl Reply {
    pub fn new(result: Value) -> Self {
        Reply { result, headers: Vec::new(), status: None }
    }
}

impl From<Value> for Reply {
    fn from(result: Value) -> Self {
        Reply::new(result)
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub controller: Option<String>,
    pub action: Option<String>,
    pub request_id: String,
    pub volatile: Option<Value>,
    pub outcome: Result<Reply, KError>,
}

impl Response {
    pub fn new(req: &Request, outcome: Result<Reply, KError>) -> Self {
        Response {
            status: match &outcome {
                Ok(reply) => reply.status.unwrap_or(200),
                Err(e) => e.status,
            },
            controller: Some(req.controller.clone()).filter(|c| !c.is_empty()),
            action: Some(req.action.clone()).filter(|a| !a.is_empty()),
            request_id: req.request_id.clone(),
            volatile: req.volatile.clone(),
            outcome,
        }
    }

    /// An error before any request could be read (bad JSON, unknown URL).
    pub fn bare_error(request_id: String, error: KError) -> Self {
        Response {
            status: error.status,
            controller: None,
            action: None,
            request_id,
            volatile: None,
            outcome: Err(error),
        }
    }

    pub fn headers(&self) -> &[(String, String)] {
        match &self.outcome {
            Ok(reply) => &reply.headers,
            Err(_) => &[],
        }
    }

    /// Kuzzle's envelope (reference §2.1). `node` names this server. Serialized straight from
    /// the response (no intermediate JSON tree), keys in the order a JSON object has them.
    pub fn envelope<'a>(&'a self, node: &'a str, room: bool) -> Envelope<'a> {
        let (result, error) = match &self.outcome {
            Ok(reply) => (&reply.result, None),
            Err(e) => (&Value::Null, Some(e)),
        };
        Envelope {
            action: self.action.as_deref(),
            controller: self.controller.as_deref(),
            error,
            headers: Empty {},
            node,
            request_id: &self.request_id,
            result,
            room: room.then_some(self.request_id.as_str()),
            status: self.status,
            volatile: self.volatile.as_ref(),
        }
    }
}

/// The envelope of a [`Response`], as it is written (see [`Response::envelope`]).
#[derive(serde::Serialize)]
pub struct Envelope<'a> {
    action: Option<&'a str>,
    controller: Option<&'a str>,
    error: Option<&'a KError>,
    headers: Empty,
    node: &'a str,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    result: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a str>,
    status: u16,
    volatile: Option<&'a Value>,
}

/// `{}`.
#[derive(serde::Serialize)]
struct Empty {}
