//! HTTP: turns a request into a [`Request`] (route table, query string, headers, JSON body)
//! and the [`Response`] envelope back into HTTP. Nothing here knows what an action does.

use super::dispatch::{self, next_connection_id};
use super::table::{self, Body, Verb};
use crate::core::errors::{KError, defs};
use crate::protocol::{Protocol, Request, Response};
use crate::service::app::App;
use crate::service::{authn, rights};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode};

/// The warp filter for every HTTP route (the WebSocket upgrade is added by [`super::serve`]).
pub fn filter(app: Arc<App>) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::addr::remote())
        .and(warp::body::stream())
        .and(warp::any().map(move || app.clone()))
        .then(
            |method: Method,
             path: warp::path::FullPath,
             query: String,
             headers: HeaderMap,
             addr: Option<SocketAddr>,
             body,
             app: Arc<App>| async move {
                serve_http(app, method, path.as_str().to_string(), query, headers, addr, body).await
            },
        )
}

async fn serve_http<S, B>(
    app: Arc<App>,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    addr: Option<SocketAddr>,
    body: S,
) -> warp::reply::Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    // The client's `X-Kuzzle-Request-Id`, else a random uuid.
    let request_id = header(&headers, "x-kuzzle-request-id").map(str::to_string).unwrap_or_else(crate::core::ids::uuid);
    if method == Method::OPTIONS {
        return to_http(
            &app,
            Response::bare_error(request_id, KError::new(defs::NETWORK_HTTP_URL_NOT_FOUND, &[&path])),
            true,
        );
    }
    if method == Method::GET && path == "/metrics" {
        // In memory only: rendered here.
        let mut out = warp::reply::Response::new(app.metrics_text().into());
        out.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        return out;
    }
    let response = match read_request(&app, &method, &path, &query, &headers, addr, body, request_id.clone()).await {
        Ok(req) => dispatch::dispatch(app.clone(), req).await,
        // Answered before the body was read (or while reading it): the connection cannot be
        // reused for another request.
        Err(resp) => {
            let mut out = to_http(&app, resp, false);
            out.headers_mut().insert("connection", HeaderValue::from_static("close"));
            return out;
        }
    };
    to_http(&app, response, false)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[allow(clippy::too_many_arguments)]
async fn read_request<S, B>(
    app: &Arc<App>,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    addr: Option<SocketAddr>,
    body: S,
    request_id: String,
) -> Result<Request, Response>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let fail = |e: KError| Response::bare_error(request_id.clone(), e);
    if path.trim_end_matches('/') == "/_query" && *method == Method::POST {
        return read_query(app, headers, addr, body, request_id).await;
    }
    let verb = Verb::parse(method.as_str())
        .ok_or_else(|| fail(KError::new(defs::NETWORK_HTTP_UNSUPPORTED_VERB, &[method.as_str()])))?;
    let Some((action, mut args)) = table::route(verb, path) else {
        return Err(fail(if table::path_exists(path) {
            KError::new(defs::NETWORK_HTTP_UNSUPPORTED_VERB, &[method.as_str()])
        } else {
            KError::new(defs::NETWORK_HTTP_URL_NOT_FOUND, &[path])
        }));
    };
    for (k, v) in form_pairs(query) {
        // URL placeholders win over query keys of the same name.
        args.entry(k).or_insert(Value::String(v));
    }
    let mut jwt = match args.remove("jwt") {
        Some(Value::String(t)) => Some(t),
        _ => None,
    };
    if let Some(token) = bearer(headers) {
        jwt = Some(token);
    }
    let volatile = match header(headers, "x-kuzzle-volatile") {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<Value>(text)
                .map_err(|e| fail(KError::new(defs::NETWORK_HTTP_VOLATILE_PARSE_FAILED, &[&e.to_string()])))?,
        ),
    };
    // A strategy upload may be large: check the caller may upload before reading it.
    let upload = action.body == Body::Upload;
    if upload {
        let token = jwt.clone().or_else(|| cookie(headers, "authToken"));
        // Identified only: a single-use token is used up by the request itself, below.
        let caller = authn::identify(app, token.as_deref()).await.map_err(fail)?;
        let (rights, profiles) = (app.rights.current(), rights::profiles_of(&caller));
        rights::permitted(&rights, &profiles, &caller, action.controller, action.action, action.access)
            .map_err(fail)?;
    }
    let limit =
        if upload { app.config.max_upload_bytes.max(app.config.max_body_bytes) } else { app.config.max_body_bytes };
    let bytes = read_body(body, headers, limit).await.map_err(fail)?;
    let content_type =
        header(headers, "content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    let binary = matches!(content_type.as_deref(), Some("application/wasm" | "application/octet-stream"));
    let (body, raw_body) = if upload && binary {
        (None, Some(bytes))
    } else {
        (parse_body(&bytes, header(headers, "content-type")).map_err(fail)?, None)
    };
    Ok(Request {
        controller: action.controller.to_string(),
        action: action.action.to_string(),
        args,
        body,
        raw_body,
        jwt,
        volatile,
        request_id,
        protocol: Protocol::Http,
        connection_id: next_connection_id(),
        client_ip: addr.map(|a| a.ip().to_string()),
        cookie_token: cookie(headers, "authToken"),
        login_cookie: cookie(headers, crate::service::cookie::LOGIN),
    })
}

/// `POST /_query`: the body is one request in Kuzzle's JSON query format.
async fn read_query<S, B>(
    app: &App,
    headers: &HeaderMap,
    addr: Option<SocketAddr>,
    body: S,
    request_id: String,
) -> Result<Request, Response>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let fail = |e: KError| Response::bare_error(request_id.clone(), e);
    let bytes = read_body(body, headers, app.config.max_body_bytes).await.map_err(fail)?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| fail(KError::new(defs::NETWORK_HTTP_BODY_PARSE_FAILED, &[&e.to_string()])))?;
    let mut req = Request::from_json(value, Protocol::Query, next_connection_id(), addr.map(|a| a.ip().to_string()))
        .map_err(|(id, e)| Response::bare_error(if id.is_empty() { request_id.clone() } else { id }, e))?;
    if req.jwt.is_none() {
        req.jwt = bearer(headers);
    }
    req.cookie_token = cookie(headers, "authToken");
    req.login_cookie = cookie(headers, crate::service::cookie::LOGIN);
    Ok(req)
}

/// `a=1&b=x%20y` (a query string or a urlencoded form), decoded.
pub fn form_pairs(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(text.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// `Authorization: Bearer <token>` (the scheme is matched case-insensitively, as Kuzzle does).
fn bearer(headers: &HeaderMap) -> Option<String> {
    let auth = header(headers, "authorization")?;
    (auth.len() > 7 && auth[..7].eq_ignore_ascii_case("bearer ")).then(|| auth[7..].trim().to_string())
}

/// A cookie's value; `authToken=null` (what logout sets) counts as none.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all("cookie").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty() && v != "null").then(|| v.to_string())
    })
}

/// The body, up to `limit` bytes; beyond it, 413 without reading the rest.
async fn read_body<S, B>(mut body: S, headers: &HeaderMap, limit: usize) -> Result<Bytes, KError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let too_large = || KError::new(defs::NETWORK_HTTP_REQUEST_TOO_LARGE, &[]);
    if header(headers, "content-length").and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| KError::new(defs::NETWORK_HTTP_BODY_PARSE_FAILED, &[&e.to_string()]))?;
        if buf.len() + chunk.remaining() > limit {
            return Err(too_large());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            buf.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    Ok(buf.freeze())
}

/// JSON (the default), or a urlencoded form; an empty body is no body.
pub fn parse_body(bytes: &[u8], content_type: Option<&str>) -> Result<Option<Value>, KError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let mime = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase()).unwrap_or_default();
    // `curl -d '{...}'` labels JSON as a form; a real form never starts with `{` or `[`.
    let looks_json = matches!(bytes.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['));
    match mime.as_str() {
        "application/x-www-form-urlencoded" if looks_json => serde_json::from_slice(bytes)
            .map(Some)
            .map_err(|e| KError::new(defs::NETWORK_HTTP_BODY_PARSE_FAILED, &[&e.to_string()])),
        "" | "application/json" => serde_json::from_slice(bytes)
            .map(Some)
            .map_err(|e| KError::new(defs::NETWORK_HTTP_BODY_PARSE_FAILED, &[&e.to_string()])),
        "application/x-www-form-urlencoded" => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| KError::new(defs::NETWORK_HTTP_BODY_PARSE_FAILED, &[&e.to_string()]))?;
            let form: Map<String, Value> = form_pairs(text).map(|(k, v)| (k, Value::String(v))).collect();
            Ok(Some(Value::Object(form)))
        }
        other => Err(KError::new(defs::NETWORK_HTTP_UNSUPPORTED_CONTENT, &[other])),
    }
}

pub fn to_http(app: &App, response: Response, preflight: bool) -> warp::reply::Response {
    let mut out = if preflight {
        warp::reply::Response::new(Vec::<u8>::new().into())
    } else {
        let body = serde_json::to_vec(&response.envelope(&app.node, false)).unwrap_or_default();
        warp::reply::Response::new(body.into())
    };
    *out.status_mut() = if preflight {
        StatusCode::OK
    } else {
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    };
    let h = out.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&response.request_id) {
        h.insert("x-kuzzle-request-id", v);
    }
    // Busy (a strategy's permits, the instance pool): worth trying again in a moment.
    if response.status == 503 {
        h.insert("retry-after", HeaderValue::from_static("1"));
    }
    h.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    h.insert("access-control-allow-methods", HeaderValue::from_static("GET,POST,PUT,DELETE,OPTIONS,HEAD"));
    h.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("authorization,content-type,content-length,x-kuzzle-request-id,x-kuzzle-volatile"),
    );
    for (name, value) in response.headers() {
        if let (Ok(n), Ok(v)) =
            (warp::http::header::HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            h.append(n, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms() {
        let pairs: Vec<(String, String)> = super::form_pairs("a=1&b=x%20y+z&flag").collect();
        assert_eq!(pairs, [("a".into(), "1".into()), ("b".into(), "x y z".into()), ("flag".into(), "".into())]);
    }
}
