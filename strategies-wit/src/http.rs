//! Outbound HTTP for strategies, over `wasi:http/outgoing-handler`: blocking calls, whole
//! bodies. The host lets a strategy reach only the origins its operator listed when
//! registering it (`outbound`), refuses private addresses unless listed as such, follows no
//! redirect, and caps requests per call, their time and their sizes: each refusal comes back
//! here as an [`HttpError`] that says which.
//!
//! ```ignore
//! let discovery = http::get("https://id.example.com/.well-known/openid-configuration")?.json::<Value>()?;
//! let tokens = http::post_form(&token_endpoint, &[("grant_type", "authorization_code"), ("code", &code)], &[])?;
//! ```

use crate::{Result, internal};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON; a body that is not is an internal error naming the status.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .map_err(|e| internal(format!("the response (HTTP {}) is not the JSON expected: {e}", self.status)))
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host refused it: the origin is not in the strategy's `outbound` list, the address
    /// is a private one, or the call has made all the requests it may.
    Denied(String),
    /// The URL cannot be sent (it is not `http(s)://host[:port]/…`).
    BadUrl(String),
    /// Anything else: DNS, connection, timeout, a size cap, the protocol.
    Failed(String),
}

impl core::fmt::Display for HttpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HttpError::Denied(why) => write!(f, "request denied: {why}"),
            HttpError::BadUrl(url) => write!(f, "not an http(s) URL: {url:?}"),
            HttpError::Failed(why) => write!(f, "request failed: {why}"),
        }
    }
}

impl From<HttpError> for crate::StrategyError {
    fn from(e: HttpError) -> Self {
        internal(e.to_string())
    }
}

/// `GET url`.
pub fn get(url: &str) -> core::result::Result<Response, HttpError> {
    send("GET", url, &[], &[])
}

/// `POST url` with an `application/x-www-form-urlencoded` body (OAuth's token endpoint).
pub fn post_form(
    url: &str,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> core::result::Result<Response, HttpError> {
    let body = form(fields);
    let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    send("POST", url, &all, body.as_bytes())
}

/// `a=1&b=2`, form-encoded (spaces as `+`, the rest percent-encoded).
pub fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// One request, its response read whole.
pub fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> core::result::Result<Response, HttpError> {
    let (scheme, authority, path) = split(url).ok_or_else(|| HttpError::BadUrl(url.to_string()))?;
    let fields: Vec<(String, Vec<u8>)> =
        headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    let fields = Fields::from_list(&fields).map_err(|e| HttpError::Failed(format!("header refused: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let method = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    };
    let bad = |_| HttpError::BadUrl(url.to_string());
    request.set_method(&method).map_err(bad)?;
    request.set_scheme(Some(if scheme == "https" { &Scheme::Https } else { &Scheme::Http })).map_err(bad)?;
    request.set_authority(Some(authority)).map_err(bad)?;
    request.set_path_with_query(Some(path)).map_err(bad)?;
    let outgoing = request.body().map_err(|_| HttpError::Failed("no request body".into()))?;
    // Sent before the body is written: the host takes only a few chunks ahead.
    let pending = outgoing_handler::handle(request, None).map_err(failure)?;
    if !body.is_empty() {
        let stream = outgoing.write().map_err(|_| HttpError::Failed("no request body stream".into()))?;
        for chunk in body.chunks(4096) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                // The host stopped taking the body (a cap): its answer says why, if it has one.
                drop(stream);
                drop(outgoing);
                pending.subscribe().block();
                return Err(match pending.get() {
                    Some(Ok(Err(code))) => failure(code),
                    _ => stream_failure(e, "writing the request body"),
                });
            }
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(failure)?;
    let response = loop {
        match pending.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => return Err(failure(code)),
            Some(Err(())) => return Err(HttpError::Failed("the response was already taken".into())),
            None => pending.subscribe().block(),
        }
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|_| HttpError::Failed("no response body".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|_| HttpError::Failed("no response body stream".into()))?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_failure(e, "reading the response body")),
            }
        }
    }
    let _trailers = IncomingBody::finish(incoming);
    Ok(Response { status, headers, body })
}

/// `(scheme, authority, path-with-query)` of an absolute http(s) URL.
fn split(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let path = path.split('#').next().unwrap_or("");
    match path {
        "" => Some((scheme, authority, "/")),
        query if query.starts_with('?') => None,
        path => Some((scheme, authority, path)),
    }
}

fn failure(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied("the origin is not in this strategy's outbound list".into()),
        ErrorCode::DestinationIpProhibited => {
            HttpError::Denied("the host resolves to a private address (not listed as such)".into())
        }
        ErrorCode::ConnectionLimitReached => HttpError::Denied("this call made all the requests it may".into()),
        ErrorCode::HttpRequestBodySize(_) => {
            HttpError::Failed("the request body is larger than the host allows".into())
        }
        ErrorCode::HttpResponseBodySize(_) => {
            HttpError::Failed("the response body is larger than the host allows".into())
        }
        ErrorCode::InternalError(Some(why)) => HttpError::Failed(why),
        other => HttpError::Failed(format!("{other:?}")),
    }
}

fn stream_failure(e: StreamError, doing: &str) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Failed(format!("{doing}: the stream closed")),
        StreamError::LastOperationFailed(e) => HttpError::Failed(format!("{doing}: {}", e.to_debug_string())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls() {
        assert_eq!(super::split("https://a.example/x?y=1#f"), Some(("https", "a.example", "/x?y=1")));
        assert_eq!(super::split("http://127.0.0.1:8080"), Some(("http", "127.0.0.1:8080", "/")));
        assert_eq!(super::split("http://[::1]:80/?q"), Some(("http", "[::1]:80", "/?q")));
        assert_eq!(super::split("http://[::1]:80?q"), None);
        assert_eq!(super::split("ftp://a/b"), None);
        assert_eq!(super::split("http://user@a/b"), None);
        assert_eq!(super::split("a/b"), None);
    }
}
