//! How the generated code spells what comes from Rust: identifiers made from Rust names, string
//! literals, and the names the generated module and its clients keep for themselves.
//!
//! The model checks names against these lists and the renderer writes with them, so both read
//! them from here.

use std::fmt::Write as _;

/// Names the runtime declares at the top level of the module.
pub(super) const RUNTIME_NAMES: &[&str] = &[
    "DEFAULT_BASE_URL",
    "SseAbortController",
    "SseAuthRetry",
    "SseDeliver",
    "SseError",
    "SseEventSourceConstructor",
    "SseEventSourceLike",
    "SseGap",
    "SseGlobals",
    "SseHandlers",
    "SseHeaders",
    "SseHttpError",
    "SseListenable",
    "SseMember",
    "SseMessageEventLike",
    "SseMux",
    "SseMuxChannel",
    "SseMuxHandlers",
    "SseOptions",
    "SseParsedEvent",
    "SsePresenceHandlers",
    "SseReader",
    "SseResponse",
    "SseStatus",
    "SseSubscription",
    "SseTransportHandlers",
    "events",
    "sseConnect",
    "sseOpen",
    "sseParser",
    "ssePresence",
    "sseRetryAfter",
    "subscribeMux",
];

/// Handlers every stream accepts; an enum stream's variant handlers must not take these names.
pub(super) const COMMON_HANDLERS: &[&str] = &[
    "onAuthError",
    "onError",
    "onEvent",
    "onGap",
    "onOpen",
    "onSnapshot",
    "onStatusChange",
];

/// Handlers a presence type's stream accepts besides the common ones; its variant handlers must
/// not take these names either.
pub(super) const PRESENCE_HANDLERS: &[&str] = &["onJoin", "onLeave", "onPresence"];

/// Names a key parameter must not take (JavaScript reserved words and the names a client's body
/// uses); such a parameter gets a `Key` suffix.
pub(super) const RESERVED_PARAMS: &[&str] = &[
    "DEFAULT_BASE_URL",
    "arguments",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "encodeURIComponent",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "handlers",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "options",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "sseOpen",
    "ssePresence",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// `player-joined`, `player_joined` and `PlayerJoined` all give `PlayerJoined`; the result is a
/// valid identifier.
pub(super) fn pascal_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for part in text
        .split(|c: char| !(c.is_alphanumeric() || c == '$'))
        .filter(|part| !part.is_empty())
    {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Event");
    }
    out
}

/// The client's parameter for a key field: `game_id` gives `gameId`.
pub(super) fn key_param_name(field: &str) -> String {
    let field = field.strip_prefix("r#").unwrap_or(field);
    let pascal = pascal_case(field);
    let mut chars = pascal.chars();
    let mut name: String = chars
        .next()
        .map(|c| c.to_lowercase().collect())
        .unwrap_or_default();
    name.push_str(chars.as_str());
    if RESERVED_PARAMS.contains(&name.as_str()) {
        name.push_str("Key");
    }
    name
}

/// A JavaScript (and JSON) string literal of `text`, ASCII only, so it never contains a marker
/// or a line terminator.
pub(super) fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0_u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pascal_case_makes_identifiers() {
        assert_eq!(pascal_case("PlayerJoined"), "PlayerJoined");
        assert_eq!(pascal_case("player-joined"), "PlayerJoined");
        assert_eq!(pascal_case("game_over"), "GameOver");
        assert_eq!(pascal_case("2fa"), "Event2fa");
        assert_eq!(pascal_case("--"), "Event");
    }

    #[test]
    fn key_params_are_camel_case_and_never_reserved() {
        assert_eq!(key_param_name("game_id"), "gameId");
        assert_eq!(key_param_name("room"), "room");
        assert_eq!(key_param_name("r#type"), "type");
        assert_eq!(key_param_name("class"), "classKey");
        assert_eq!(key_param_name("handlers"), "handlersKey");
    }

    #[test]
    fn strings_are_ascii_and_escaped() {
        assert_eq!(string("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(
            string("é«😀\u{2028}"),
            r#""\u00e9\u00ab\ud83d\ude00\u2028""#
        );
    }
}
