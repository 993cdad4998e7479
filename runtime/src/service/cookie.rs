//! Cookie mode (`cookieAuth`, reference §3.5): the token travels in an HttpOnly cookie
//! instead of the response body, for browsers.

use crate::core::errors::{KError, defs};
use crate::protocol::{Reply, Request};
use serde_json::Value;

pub const NAME: &str = "authToken";

/// Whether this request asks for cookie mode; an error if the server has it disabled.
pub fn requested(req: &Request, enabled: bool) -> Result<bool, KError> {
    if !req.flag("cookieAuth") {
        return Ok(false);
    }
    if !enabled {
        return Err(KError::new(defs::SECURITY_COOKIE_UNSUPPORTED, &[]));
    }
    Ok(true)
}

/// Moves the token of a login/refresh result into a `Set-Cookie` header.
pub fn into_cookie(mut reply: Reply) -> Reply {
    let token = reply.result.as_object_mut().and_then(|r| r.remove("jwt"));
    let expires_at = reply.result["expiresAt"].as_i64().unwrap_or(-1);
    if let Some(Value::String(token)) = token {
        let expires = if expires_at < 0 { String::new() } else { format!("; Expires={}", http_date(expires_at)) };
        reply
            .headers
            .push(("set-cookie".into(), format!("{NAME}={token}; Path=/{expires}; HttpOnly; SameSite=Strict")));
    }
    reply
}

/// The cookie that ties a multi-step login's steps to one browser (see `login-request`'s
/// `client-binding` in wit/strategy.wit).
pub const LOGIN: &str = "sandgate-login";

/// The client's login cookie: the one it sent (32 hex digits), or a new one to set with a
/// redirect (`true`).
pub fn login_cookie(req: &Request) -> (String, bool) {
    match &req.login_cookie {
        Some(c) if c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()) => (c.clone(), false),
        // From the thread-local CSPRNG request ids use: no system call on every login.
        _ => (uuid::Uuid::new_v4().simple().to_string(), true),
    }
}

/// What a strategy sees of the cookie: a value of its own (another strategy the browser logs
/// in with cannot learn this one's).
pub fn binding(cookie: &str, strategy: &str) -> String {
    let seen = format!("{strategy}\n{cookie}");
    crate::core::ids::hex(ring::digest::digest(&ring::digest::SHA256, seen.as_bytes()).as_ref())
}

/// Sets the login cookie on a redirect's answer (sent back on the top-level navigation from
/// the provider: SameSite=Lax).
pub fn set_login_cookie(reply: &mut Reply, cookie: &str) {
    reply
        .headers
        .push(("set-cookie".into(), format!("{LOGIN}={cookie}; Path=/_login; Max-Age=3600; HttpOnly; SameSite=Lax")));
}

/// What logout sends in cookie mode.
pub fn cleared(reply: Reply) -> Reply {
    let mut reply = reply;
    reply.headers.push(("set-cookie".into(), format!("{NAME}=null; Path=/; HttpOnly; SameSite=Strict")));
    reply
}

/// RFC 7231 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(epoch_ms: i64) -> String {
    let secs = epoch_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates() {
        assert_eq!(super::http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(super::http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(super::http_date(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
