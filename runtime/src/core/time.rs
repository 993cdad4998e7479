//! Time: the clock in epoch milliseconds, and `expiresIn`, Kuzzle's grammar for durations:
//! the npm `ms` 2.1.3 parser for strings and plain milliseconds for numbers (reference §4).
//! The config's durations (`lockout = "1m"`) use the same grammar.

use serde_json::Value;

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

const MAX_LEN: usize = 100;

/// `ms(str)` exactly: `None` where `ms` returns `undefined`.
///
/// Grammar: `-?(\d+)?\.?\d+ *(unit)?`, case-insensitive unit, no leading or trailing
/// whitespace, no `+`, no exponent, at most 100 characters.
pub fn parse_ms(input: &str) -> Option<f64> {
    if input.len() > MAX_LEN {
        return None;
    }
    let bytes = input.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        // `\.?\d+`: a dot must be followed by at least one digit ("1." is rejected).
        if i == frac_start {
            return None;
        }
    } else if int_digits == 0 {
        return None;
    }
    let number: f64 = input[..i].parse().ok()?;
    while i < bytes.len() && bytes[i] == b' ' {
        i += 1;
    }
    let unit = input[i..].to_ascii_lowercase();
    let factor = match unit.as_str() {
        "" | "milliseconds" | "millisecond" | "msecs" | "msec" | "ms" => 1.0,
        "seconds" | "second" | "secs" | "sec" | "s" => 1_000.0,
        "minutes" | "minute" | "mins" | "min" | "m" => 60_000.0,
        "hours" | "hour" | "hrs" | "hr" | "h" => 3_600_000.0,
        "days" | "day" | "d" => 86_400_000.0,
        "weeks" | "week" | "w" => 604_800_000.0,
        "years" | "year" | "yrs" | "yr" | "y" => 31_557_600_000.0,
        _ => return None,
    };
    Some(number * factor)
}

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Requested {
    /// Absent or falsy (`0`, `""`, `false`, `null`): the configured default.
    Default,
    /// Milliseconds; `-1` means "never expires".
    Ms(f64),
    /// Present but not a number of milliseconds nor a parsable timespan.
    Invalid,
}

/// Kuzzle's reading of `args.expiresIn` in `auth:login`: falsy means the default, a number is
/// milliseconds, a string goes through `ms`, anything else is invalid.
pub fn requested(value: Option<&Value>) -> Requested {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Requested::Default,
        Some(Value::String(s)) if s.is_empty() => Requested::Default,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(0.0) => Requested::Default,
            Some(ms) => Requested::Ms(ms),
            None => Requested::Invalid,
        },
        Some(Value::String(s)) => parse_ms(s).map_or(Requested::Invalid, Requested::Ms),
        Some(_) => Requested::Invalid,
    }
}

/// A token lifetime after the checks: milliseconds, or infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Ms(i64),
    Infinite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlError {
    /// 400 `api.assert.invalid_argument`
    Invalid,
    /// 400 `security.token.ttl_exceeded`
    Exceeded,
}

/// Kuzzle's checks, in Kuzzle's order: first `max_ttl` (`-1` disables it; when enabled an
/// infinite token is refused too), then zero / garbage.
///
/// Differs from Kuzzle on purpose: negative values other than `-1`, which Kuzzle turns into
/// already-expired tokens, are refused as invalid.
pub fn resolve(requested: Requested, default_ms: f64, max_ttl_ms: i64) -> Result<Ttl, TtlError> {
    let ms = match requested {
        Requested::Default => default_ms,
        Requested::Ms(ms) => ms,
        Requested::Invalid => return Err(TtlError::Invalid),
    };
    if max_ttl_ms > -1 && (ms == -1.0 || ms > max_ttl_ms as f64) {
        return Err(TtlError::Exceeded);
    }
    if ms == -1.0 {
        return Ok(Ttl::Infinite);
    }
    if !ms.is_finite() || ms <= 0.0 || ms >= i64::MAX as f64 / 2.0 {
        return Err(TtlError::Invalid);
    }
    // Kuzzle keeps fractions of a millisecond in `ttl`; we round up so "0.5" is not zero.
    Ok(Ttl::Ms(ms.ceil() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every row of reference §4.2's table.
    #[test]
    fn ms_grammar_table() {
        let rows: &[(&str, Option<f64>)] = &[
            ("1h", Some(3_600_000.0)),
            ("1H", Some(3_600_000.0)),
            ("1 h", Some(3_600_000.0)),
            ("1   h", Some(3_600_000.0)),
            ("1hr", Some(3_600_000.0)),
            (" 1h", None),
            ("1h ", None),
            ("1.5h", Some(5_400_000.0)),
            (".5h", Some(1_800_000.0)),
            ("1.", None),
            ("-1", Some(-1.0)),
            ("-1h", Some(-3_600_000.0)),
            ("-.5s", Some(-500.0)),
            ("100", Some(100.0)),
            ("0", Some(0.0)),
            ("1e3", None),
            ("+1h", None),
            ("1d2h", None),
            ("1,5h", None),
            ("0x10", None),
            ("1_000", None),
            ("1wk", None),
            ("abc", None),
            ("2 days", Some(172_800_000.0)),
            ("1y", Some(31_557_600_000.0)),
            ("1w", Some(604_800_000.0)),
            ("3 mins", Some(180_000.0)),
            ("1msec", Some(1.0)),
            ("", None),
        ];
        for (input, expected) in rows {
            assert_eq!(parse_ms(input), *expected, "ms({input:?})");
        }
        let long = "1".repeat(101);
        assert_eq!(parse_ms(&long), None, "101-char string");
        assert!(parse_ms(&"1".repeat(100)).is_some(), "100 characters are still parsed");
    }

    #[test]
    fn every_unit_spelling() {
        for (units, factor) in [
            ("years year yrs yr y", 31_557_600_000.0),
            ("weeks week w", 604_800_000.0),
            ("days day d", 86_400_000.0),
            ("hours hour hrs hr h", 3_600_000.0),
            ("minutes minute mins min m", 60_000.0),
            ("seconds second secs sec s", 1_000.0),
            ("milliseconds millisecond msecs msec ms", 1.0),
        ] {
            for unit in units.split(' ') {
                assert_eq!(parse_ms(&format!("2{unit}")), Some(2.0 * factor), "2{unit}");
                assert_eq!(parse_ms(&format!("2 {}", unit.to_uppercase())), Some(2.0 * factor));
            }
        }
        assert_eq!(parse_ms("1\th"), None, "only spaces separate number and unit");
    }

    #[test]
    fn falsy_means_default_and_numbers_are_milliseconds() {
        for v in [json!(null), json!(false), json!(0), json!("")] {
            assert_eq!(requested(Some(&v)), Requested::Default, "{v}");
        }
        assert_eq!(requested(None), Requested::Default);
        assert_eq!(requested(Some(&json!(60000))), Requested::Ms(60000.0));
        assert_eq!(requested(Some(&json!("60000"))), Requested::Ms(60000.0));
        assert_eq!(requested(Some(&json!("2h"))), Requested::Ms(7_200_000.0));
        assert_eq!(requested(Some(&json!("0"))), Requested::Ms(0.0), "the string \"0\" is truthy");
        for v in [json!(true), json!({}), json!([1]), json!("soon")] {
            assert_eq!(requested(Some(&v)), Requested::Invalid, "{v}");
        }
    }

    #[test]
    fn resolve_follows_kuzzle_order() {
        let d = 3_600_000.0;
        assert_eq!(resolve(Requested::Default, d, -1), Ok(Ttl::Ms(3_600_000)));
        assert_eq!(resolve(Requested::Ms(-1.0), d, -1), Ok(Ttl::Infinite));
        assert_eq!(resolve(Requested::Ms(-1.0), d, 10_000), Err(TtlError::Exceeded));
        assert_eq!(resolve(Requested::Ms(10_001.0), d, 10_000), Err(TtlError::Exceeded));
        assert_eq!(resolve(Requested::Ms(10_000.0), d, 10_000), Ok(Ttl::Ms(10_000)));
        assert_eq!(resolve(Requested::Ms(0.0), d, -1), Err(TtlError::Invalid));
        assert_eq!(resolve(Requested::Ms(-5000.0), d, -1), Err(TtlError::Invalid));
        assert_eq!(resolve(Requested::Invalid, d, -1), Err(TtlError::Invalid));
        assert_eq!(resolve(Requested::Ms(1500.5), d, -1), Ok(Ttl::Ms(1501)));
    }
}
