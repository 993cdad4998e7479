//! HTTP routing over the action table: `verb path` to its action, with the placeholders bound.

use super::table::{ACTIONS, Action, Verb};
use serde_json::{Map, Value};

/// Finds the action for `verb path`, with its placeholders bound. Among matches, the route
/// with the most literal segments wins (`/users/_me` over `/users/:_id`).
pub fn find(verb: Verb, path: &str) -> Option<(&'static Action, Map<String, Value>)> {
    let path = path.trim_end_matches('/');
    let segments: Vec<&str> = if path.is_empty() { Vec::new() } else { path[1..].split('/').collect() };
    let mut best: Option<(&Action, Map<String, Value>, usize)> = None;
    for action in ACTIONS {
        for (v, pattern) in action.http {
            if *v != verb {
                continue;
            }
            if let Some((params, literals)) = matches(pattern, &segments)
                && best.as_ref().is_none_or(|(_, _, l)| literals > *l)
            {
                best = Some((action, params, literals));
            }
        }
    }
    best.map(|(action, params, _)| (action, params))
}

/// The placeholders and the count of literal segments, if `pattern` matches.
fn matches(pattern: &str, segments: &[&str]) -> Option<(Map<String, Value>, usize)> {
    let pattern: Vec<&str> = pattern.trim_end_matches('/').split('/').skip(1).collect();
    if pattern.len() != segments.len() {
        return None;
    }
    let mut params = Map::new();
    let mut literals = 0;
    for (p, s) in pattern.iter().zip(segments) {
        if let Some(name) = p.strip_prefix(':') {
            let value = decode_segment(s).filter(|v| !v.is_empty())?;
            params.insert(name.to_string(), Value::String(value));
        } else if p == s {
            literals += 1;
        } else {
            return None;
        }
    }
    Some((params, literals))
}

/// Whether some route has this path with another verb (for a 400 unsupported verb vs 404).
pub fn path_exists(path: &str) -> bool {
    [Verb::Get, Verb::Post, Verb::Put, Verb::Delete].iter().any(|v| find(*v, path).is_some())
}

/// A path segment, percent-decoded; `None` if it is not UTF-8.
fn decode_segment(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

/// `a=1&b=x%20y` (a query string or a urlencoded form), decoded.
pub fn form_pairs(text: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(text.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verb::*;

    fn name(found: Option<(&'static Action, Map<String, Value>)>) -> (&'static str, &'static str) {
        let (a, _) = found.expect("a route");
        (a.controller, a.action)
    }

    #[test]
    fn literal_segments_win() {
        let (action, params) = find(Get, "/users/_me").unwrap();
        assert_eq!(action.action, "getCurrentUser");
        assert!(params.is_empty());
        let (action, params) = find(Get, "/users/alice").unwrap();
        assert_eq!((action.controller, action.action), ("security", "getUser"));
        assert_eq!(params["_id"], "alice");
        let (action, params) = find(Post, "/_login/local").unwrap();
        assert_eq!(action.action, "login");
        assert_eq!(params["strategy"], "local");
        assert_eq!(find(Post, "/_login").unwrap().1.len(), 0);
        assert!(find(Get, "/nope").is_none());
        assert!(find(Put, "/_login/local").is_none() && path_exists("/_login/local"));
        assert_eq!(find(Get, "/users/a%20b").unwrap().1["_id"], "a b");
        assert!(find(Get, "/users/%FF").is_none(), "not UTF-8");
        assert_eq!(name(find(Get, "/")), ("server", "info"));
    }

    #[test]
    fn every_route_is_reachable_and_none_is_ambiguous() {
        for action in ACTIONS {
            for (verb, pattern) in action.http {
                let path = pattern.replace(":strategy", "local").replace(":_id", "someone").replace(":name", "x");
                assert_eq!(name(find(*verb, &path)), (action.controller, action.action), "{pattern}");
                // Another route matching the same path with as many literals would be a tie,
                // decided by the table's order: there must be none.
                let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
                let best = matches(pattern, &segments).unwrap().1;
                for other in ACTIONS {
                    for (v, p) in other.http.iter().filter(|(v, p)| v == verb && p != pattern) {
                        if let Some((_, l)) = matches(p, &segments) {
                            assert!(l != best, "{} {pattern} and {p} tie", v.name());
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn forms() {
        let pairs: Vec<(String, String)> = form_pairs("a=1&b=x%20y+z&flag").collect();
        assert_eq!(pairs, [("a".into(), "1".into()), ("b".into(), "x y z".into()), ("flag".into(), "".into())]);
    }
}
