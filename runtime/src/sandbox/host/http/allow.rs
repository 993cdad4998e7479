//! The origins a strategy may reach (`outbound` at registration), and how a request's
//! authority is matched against them.
//!
//! An origin is `scheme://host[:port]`: scheme `http` or `https`; host a DNS name, an IP
//! literal (`127.0.0.1`, `[::1]`), or `*.` and a domain (any name under it, not the domain
//! itself); port a number or `*` (any), the scheme's own when left out. Nothing else: no path,
//! no user, no `*` host (a strategy that may reach anything is not what an allow list is for).

use std::net::IpAddr;

/// At most this many origins per strategy.
pub const MAX_ORIGINS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    /// `*.example.com`, kept as `.example.com`.
    Under(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    https: bool,
    host: Host,
    /// `None`: any port.
    port: Option<u16>,
    /// As the operator wrote it (shown by `GET /strategies/:name`).
    text: String,
}

/// A strategy's allowed origins; empty, it reaches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(Vec<Origin>);

/// What a request asks to reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// Lower case; an IPv6 literal without its brackets.
    pub host: String,
    pub port: u16,
}

impl Target {
    /// The host as an IP literal, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

fn default_port(https: bool) -> u16 {
    if https { 443 } else { 80 }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `host[:port]` of an authority or an origin: the host (IPv6 without brackets) and the port text.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((authority, None)),
    }
}

impl Origin {
    fn parse(text: &str) -> Result<Origin, String> {
        let bad = |why: &str| format!("outbound origin {text:?}: {why} (scheme://host[:port], see the README)");
        let (scheme, authority) = text.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let https = match scheme {
            "https" => true,
            "http" => false,
            _ => return Err(bad("the scheme must be http or https")),
        };
        if authority.contains(['/', '?', '#', '@']) {
            return Err(bad("only an origin: no path, query or user"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("the host is not valid"))?;
        let port = match port {
            None => Some(default_port(https)),
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("the port is not valid"))?),
        };
        let lower = host.to_ascii_lowercase();
        let host = if authority.starts_with('[') {
            Host::Ip(IpAddr::V6(lower.parse().map_err(|_| bad("not an IPv6 address"))?))
        } else if let Ok(ip) = lower.parse::<std::net::Ipv4Addr>() {
            Host::Ip(IpAddr::V4(ip))
        } else if let Some(domain) = lower.strip_prefix("*.") {
            if !valid_name(domain) || !domain.contains('.') {
                return Err(bad("`*.` must be followed by a domain with a dot (*.example.com)"));
            }
            Host::Under(format!(".{domain}"))
        } else if valid_name(&lower) {
            Host::Name(lower)
        } else {
            return Err(bad("the host is not a DNS name or an IP literal (`*` only as `*.domain`)"));
        };
        Ok(Origin { https, host, port, text: text.to_string() })
    }

    fn matches(&self, t: &Target) -> bool {
        let host = match &self.host {
            Host::Name(name) => *name == t.host,
            Host::Under(suffix) => t.host.ends_with(suffix.as_str()) && t.host.len() > suffix.len(),
            Host::Ip(ip) => t.ip() == Some(*ip),
        };
        self.https == t.https && host && self.port.is_none_or(|p| p == t.port)
    }
}

impl AllowList {
    /// From the JSON array given at registration (`[]` or nothing: no network).
    pub fn parse(json: &str) -> Result<AllowList, String> {
        if json.trim().is_empty() {
            return Ok(AllowList::default());
        }
        let items: Vec<String> = serde_json::from_str(json)
            .map_err(|_| "outbound must be a JSON array of origins, e.g. [\"https://id.example.com\"]".to_string())?;
        if items.len() > MAX_ORIGINS {
            return Err(format!("outbound lists more than {MAX_ORIGINS} origins"));
        }
        items.iter().map(|o| Origin::parse(o)).collect::<Result<_, _>>().map(AllowList)
    }

    /// As given (normalized JSON), for the store and `GET /strategies/:name`.
    pub fn to_json(&self) -> String {
        serde_json::Value::from(self.0.iter().map(|o| o.text.clone()).collect::<Vec<_>>()).to_string()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an origin of the list admits `target`.
    pub fn admits(&self, target: &Target) -> bool {
        self.0.iter().any(|o| o.matches(target))
    }

    /// Whether an origin admitting `target` names its host as that very IP literal: the
    /// operator's explicit choice, which private-address filtering respects.
    pub fn lists_ip_literal(&self, target: &Target) -> bool {
        self.0.iter().any(|o| matches!(o.host, Host::Ip(_)) && o.matches(target))
    }
}

/// The target of a request's scheme and authority (`host[:port]`), or why there is none.
pub fn target(https: bool, authority: &str) -> Result<Target, String> {
    let invalid = || format!("invalid authority {authority:?}");
    // No user, no zone id, no percent-encoding: a host is a name or an address, plainly.
    if authority.contains(['@', '%', '/', '\\']) {
        return Err(invalid());
    }
    let (host, port) = split_host_port(authority).ok_or_else(invalid)?;
    let lower = host.to_ascii_lowercase();
    let plain = if authority.starts_with('[') {
        lower.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        lower.parse::<std::net::Ipv4Addr>().is_ok() || valid_name(&lower)
    };
    if !plain {
        return Err(invalid());
    }
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(invalid());
    }
    let port = match port {
        None => default_port(https),
        Some(p) => p.parse::<u16>().map_err(|_| format!("invalid port in {authority:?}"))?,
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err(format!("no host in {authority:?}"));
    }
    Ok(Target { https, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(origins: &[&str]) -> AllowList {
        AllowList::parse(&serde_json::to_string(origins).unwrap()).unwrap()
    }
    fn t(https: bool, authority: &str) -> Target {
        target(https, authority).unwrap()
    }

    #[test]
    fn the_grammar() {
        for ok in [
            "https://id.example.com",
            "http://127.0.0.1:8080",
            "https://[::1]:8443",
            "https://*.example.com",
            "https://api.example.com:*",
            "http://localhost",
            "HTTPS://ID.Example.COM".to_lowercase().as_str(),
        ] {
            assert!(AllowList::parse(&serde_json::to_string(&[ok]).unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "id.example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://user@example.com",
            "https://*",
            "https://*:*",
            "*://example.com",
            "https://*.com",
            "https://a.*.example.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://exa mple.com",
            "https://[::1",
            "https://::1",
            "https://example.com?x",
        ] {
            assert!(AllowList::parse(&serde_json::to_string(&[bad]).unwrap()).is_err(), "{bad}");
        }
        assert!(AllowList::parse("{}").is_err());
        assert!(AllowList::parse("").unwrap().is_empty());
        assert!(AllowList::parse("[]").unwrap().is_empty());
        let many: Vec<String> = (0..=MAX_ORIGINS).map(|i| format!("https://h{i}.example.com")).collect();
        assert!(AllowList::parse(&serde_json::to_string(&many).unwrap()).is_err());
    }

    #[test]
    fn matching() {
        let l = list(&["https://id.example.com", "http://127.0.0.1:8080", "https://*.corp.example:*", "https://[::1]"]);
        assert!(l.admits(&t(true, "id.example.com")));
        assert!(l.admits(&t(true, "ID.EXAMPLE.COM:443")));
        assert!(!l.admits(&t(false, "id.example.com")), "the scheme is part of the origin");
        assert!(!l.admits(&t(true, "id.example.com:8443")), "the default port only");
        assert!(!l.admits(&t(true, "evil-id.example.com")));
        assert!(!l.admits(&t(true, "id.example.com.evil.net")));
        assert!(l.admits(&t(false, "127.0.0.1:8080")));
        assert!(!l.admits(&t(false, "127.0.0.1:8081")));
        assert!(!l.admits(&t(false, "[::ffff:127.0.0.1]:8080")), "another spelling of a listed IP is not listed");
        assert!(!l.admits(&t(false, "2130706433:8080")));
        assert!(l.admits(&t(true, "a.corp.example:1234")));
        assert!(l.admits(&t(true, "a.b.corp.example")));
        assert!(!l.admits(&t(true, "corp.example")), "`*.` is for names under the domain");
        assert!(!l.admits(&t(true, "xcorp.example")));
        assert!(l.admits(&t(true, "[::1]")));
        assert!(l.lists_ip_literal(&t(false, "127.0.0.1:8080")));
        assert!(!l.lists_ip_literal(&t(true, "id.example.com")));
        assert!(!AllowList::default().admits(&t(true, "id.example.com")));
        for odd in ["x@a.corp.example", "[v1.a.corp.example]", "a.corp.example:+443", "[fe80::1%25eth0]", "a b", ""] {
            assert!(target(true, odd).is_err(), "{odd}");
        }
    }
}
