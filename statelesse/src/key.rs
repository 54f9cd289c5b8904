//! Channel keys: how a key value is rendered into a channel name and parsed back from a URL segment.
//!
//! A key is rendered with [`Display`](std::fmt::Display) and then escaped, so that no key can forge
//! another channel: `%`, `:`, `{`, `}` and control characters are percent-encoded (as is any
//! non-ASCII byte). Escaping is injective, and [`unescape_key`] is its inverse.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The bytes escaped in a rendered key: our separator `:`, the Redis Cluster hash-tag braces,
/// the escape character itself and control characters (non-ASCII is always encoded).
const KEY_ESCAPES: &AsciiSet = &CONTROLS.add(b'%').add(b':').add(b'{').add(b'}');

/// A type whose values select one channel of an event type.
///
/// Implemented for [`String`], the integer types, `uuid::Uuid` (feature `uuid`) and `()` (the key
/// of keyless, broadcast events). Implement it for your own key types, usually newtypes, in one
/// line with [`channel_key!`](crate::channel_key), which uses their `Display` and `FromStr`.
///
/// Two rules make channel names safe: [`write_key`](ChannelKey::write_key) must render distinct
/// keys as distinct text, and [`parse_key`](ChannelKey::parse_key) must parse that text back to
/// the same key.
///
/// # Examples
///
/// ```
/// use statelesse::ChannelKey;
///
/// #[derive(Debug, PartialEq)]
/// struct GameId(u64);
///
/// impl std::fmt::Display for GameId {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         self.0.fmt(f)
///     }
/// }
///
/// impl std::str::FromStr for GameId {
///     type Err = std::num::ParseIntError;
///     fn from_str(s: &str) -> Result<Self, Self::Err> {
///         s.parse().map(GameId)
///     }
/// }
///
/// statelesse::channel_key!(GameId);
///
/// assert_eq!(GameId::parse_key("42").unwrap(), GameId(42));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a channel key: it does not implement `statelesse::ChannelKey`",
    label = "this key type does not implement `ChannelKey`",
    note = "implement it with `statelesse::channel_key!({Self});` (needs `Display` and `FromStr`), or use `String`, an integer or `uuid::Uuid` as the key"
)]
pub trait ChannelKey: Send + Sync + 'static {
    /// How the key is typed in the generated TypeScript client: `"string"` or `"number"`.
    const TS_TYPE: &'static str = "string";

    /// Writes the key's text (before escaping) into `out`.
    ///
    /// # Errors
    ///
    /// Only when the key's `Display` implementation fails.
    fn write_key(&self, out: &mut dyn fmt::Write) -> fmt::Result;

    /// Parses a key from its text, as found in a URL path segment (already percent-decoded).
    ///
    /// # Errors
    ///
    /// A [`KeyParseError`] naming the expected type when the text is not a valid key.
    fn parse_key(text: &str) -> Result<Self, KeyParseError>
    where
        Self: Sized;
}

/// The text of a URL segment did not parse as a channel key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key `{text}`: expected {expected}")]
pub struct KeyParseError {
    text: String,
    expected: &'static str,
}

impl KeyParseError {
    /// Creates an error for `text`, which is not a valid `expected` (a short type description).
    #[must_use]
    pub fn new(text: impl Into<String>, expected: &'static str) -> Self {
        Self {
            text: text.into(),
            expected,
        }
    }

    /// The text that did not parse.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Implements [`ChannelKey`] for a type through its `Display` and `FromStr` implementations.
///
/// `Display` must render distinct keys as distinct text and `FromStr` must parse it back.
///
/// # Examples
///
/// ```
/// #[derive(Debug, Clone, PartialEq)]
/// pub struct UserId(String);
/// # impl std::fmt::Display for UserId {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0) }
/// # }
/// # impl std::str::FromStr for UserId {
/// #     type Err = std::convert::Infallible;
/// #     fn from_str(s: &str) -> Result<Self, Self::Err> { Ok(UserId(s.to_owned())) }
/// # }
/// statelesse::channel_key!(UserId);
/// # let _ = UserId(String::new());
/// ```
///
/// Add `as number` for a numeric key, so that the TypeScript client types it as `number`:
///
/// ```
/// # #[derive(Debug)] pub struct GameId(u64);
/// # impl std::fmt::Display for GameId {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { self.0.fmt(f) }
/// # }
/// # impl std::str::FromStr for GameId {
/// #     type Err = std::num::ParseIntError;
/// #     fn from_str(s: &str) -> Result<Self, Self::Err> { s.parse().map(GameId) }
/// # }
/// statelesse::channel_key!(GameId as number);
/// # let _ = GameId(7);
/// ```
#[macro_export]
macro_rules! channel_key {
    ($ty:ty) => {
        $crate::channel_key!(@impl $ty, "string");
    };
    ($ty:ty as number) => {
        $crate::channel_key!(@impl $ty, "number");
    };
    (@impl $ty:ty, $ts:literal) => {
        impl $crate::ChannelKey for $ty {
            const TS_TYPE: &'static str = $ts;

            fn write_key(&self, out: &mut dyn ::core::fmt::Write) -> ::core::fmt::Result {
                ::core::write!(out, "{}", self)
            }

            fn parse_key(text: &str) -> ::core::result::Result<Self, $crate::KeyParseError> {
                text.parse::<$ty>()
                    .map_err(|_| $crate::KeyParseError::new(text, ::core::stringify!($ty)))
            }
        }
    };
}

impl ChannelKey for String {
    fn write_key(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        out.write_str(self)
    }

    fn parse_key(text: &str) -> Result<Self, KeyParseError> {
        Ok(text.to_owned())
    }
}

/// The key of keyless (broadcast) events: it renders as nothing and the channel name leaves it out.
impl ChannelKey for () {
    fn write_key(&self, _out: &mut dyn fmt::Write) -> fmt::Result {
        Ok(())
    }

    fn parse_key(text: &str) -> Result<Self, KeyParseError> {
        if text.is_empty() {
            Ok(())
        } else {
            Err(KeyParseError::new(text, "no key"))
        }
    }
}

macro_rules! integer_keys {
    ($($ty:ty),*) => {$(
        impl ChannelKey for $ty {
            const TS_TYPE: &'static str = "number";

            fn write_key(&self, out: &mut dyn fmt::Write) -> fmt::Result {
                write!(out, "{self}")
            }

            fn parse_key(text: &str) -> Result<Self, KeyParseError> {
                text.parse().map_err(|_| KeyParseError::new(text, stringify!($ty)))
            }
        }
    )*};
}

integer_keys!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

#[cfg(feature = "uuid")]
impl ChannelKey for uuid::Uuid {
    fn write_key(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        write!(out, "{}", self.hyphenated())
    }

    fn parse_key(text: &str) -> Result<Self, KeyParseError> {
        text.parse().map_err(|_| KeyParseError::new(text, "a UUID"))
    }
}

/// Appends the escaped text of `key` to `out`.
pub(crate) fn write_escaped_key<K: ChannelKey + ?Sized>(key: &K, out: &mut String) {
    // A `Display` that fails leaves a partial key; the channel name stays well-formed and
    // distinct keys with working `Display`s are unaffected.
    let _ = key.write_key(&mut Escaping(out));
}

/// Percent-encodes what is written to it into a `String`, piece by piece: the escape is per byte,
/// so it needs no intermediate copy of the whole key.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend(utf8_percent_encode(s, KEY_ESCAPES));
        Ok(())
    }
}

/// Escapes raw key text for use inside a channel name.
#[must_use]
pub fn escape_key(raw: &str) -> String {
    utf8_percent_encode(raw, KEY_ESCAPES).to_string()
}

/// Reverses [`escape_key`]; `None` when the text is not the escape of any UTF-8 key.
#[must_use]
pub fn unescape_key(escaped: &str) -> Option<String> {
    percent_decode_str(escaped)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn separators_and_braces_are_escaped() {
        assert_eq!(escape_key("a:b{c}%"), "a%3Ab%7Bc%7D%25");
    }

    #[test]
    fn integer_keys_render_plainly() {
        let mut out = String::new();
        write_escaped_key(&42_u64, &mut out);
        assert_eq!(out, "42");
    }

    #[test]
    fn integer_key_rejects_text() {
        let err = u32::parse_key("abc").unwrap_err();
        assert_eq!(err.to_string(), "invalid key `abc`: expected u32");
    }

    proptest! {
        #[test]
        fn distinct_keys_never_share_an_escape(a in ".*", b in ".*") {
            prop_assume!(a != b);
            prop_assert_ne!(escape_key(&a), escape_key(&b));
        }

        #[test]
        fn escaped_key_never_contains_a_separator(a in ".*") {
            let escaped = escape_key(&a);
            let forbidden = [':', '{', '}', '\r', '\n', '\0'];
            prop_assert!(!escaped.contains(forbidden), "{} contains a separator", escaped);
        }

        #[test]
        fn string_key_round_trips(a in ".*") {
            let mut out = String::new();
            write_escaped_key(&a, &mut out);
            let back = String::parse_key(&unescape_key(&out).unwrap()).unwrap();
            prop_assert_eq!(back, a);
        }

        #[test]
        fn integer_key_round_trips(n in any::<i64>()) {
            let mut out = String::new();
            write_escaped_key(&n, &mut out);
            prop_assert_eq!(i64::parse_key(&unescape_key(&out).unwrap()).unwrap(), n);
        }
    }
}
