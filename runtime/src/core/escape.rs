//! Text from outside (a strategy's log message, a client's request id, a kuid a strategy
//! chose) on its way into the server's log: control characters are written as escapes, so
//! a line break or a terminal sequence in it cannot forge or hide a log line.

use std::borrow::Cow;

/// Characters that break or reorder a line without being control characters: the Unicode
/// line and paragraph separators, and the bidirectional embeddings, overrides and isolates.
fn invisible_layout(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escaped(c: char) -> bool {
    c.is_control() || invisible_layout(c)
}

/// `text` with every control character (line breaks, ESC, C1…) and line-breaking or
/// reordering character written as `\n`, `\u{1b}`, `\u{2028}`…
pub fn for_log(text: &str) -> Cow<'_, str> {
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
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
        assert_eq!(for_log("x\u{2028}y\u{202e}z"), "x\\u{2028}y\\u{202e}z");
    }
}
