//! The chaos strategy's outbound requests: each reports what happened as text (the isolation
//! tests read it in the refusal's message), never panics.

use sandgate_strategy::http;

/// `GET url`: `status=<code> bytes=<n> location=<…>` or `error=<what the host said>`.
pub fn fetch(url: &str) -> String {
    match http::get(url) {
        Ok(r) => format!("status={} bytes={} location={}", r.status, r.body.len(), r.header("location").unwrap_or("-")),
        Err(e) => format!("error={e}"),
    }
}

/// `POST url` with a body of `bytes` bytes: as [`fetch`].
pub fn post(url: &str, bytes: usize) -> String {
    match http::send("POST", url, &[("content-type", "application/octet-stream")], &vec![b'x'; bytes]) {
        Ok(r) => format!("status={} bytes={} location={}", r.status, r.body.len(), r.header("location").unwrap_or("-")),
        Err(e) => format!("error={e}"),
    }
}

/// `GET url` until a request fails: `sent=<n> then error=<…>` (10,000 at most).
pub fn fetch_loop(url: &str) -> String {
    for sent in 0..10_000u32 {
        if let Err(e) = http::get(url) {
            return format!("sent={sent} then error={e}");
        }
    }
    "sent=10000 then nothing stopped it".into()
}
