//! Text from outside (a strategy's log message, a client's request id, a kuid a strategy
//! chose) on its way into the server's log: control characters are written as escapes, so
//! a line break or a terminal sequence in it cannot forge or hide a log line.

use std::borrow::Cow;

/// `text` with every control character (line breaks, ESC, C1…) written as `\n`, `\u{1b}`…
pub fn for_log(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(for_log("plain text, é ✓"), "plain text, é ✓");
        assert!(matches!(for_log("plain"), Cow::Borrowed(_)));
        assert_eq!(for_log("a\nINFO forged\r\t\u{1b}[2J\u{85}"), "a\\nINFO forged\\r\\t\\u{1b}[2J\\u{85}");
    }
}
