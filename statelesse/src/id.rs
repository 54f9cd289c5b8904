//! [`EventId`]: the id of a published event, also its SSE `id` field.

use std::fmt;
use std::str::FromStr;

/// The id of an event on its channel: `{milliseconds}-{sequence}`, the format of Redis Stream ids.
///
/// Ids increase strictly along a channel, on every transport, so a client's `Last-Event-ID` says
/// exactly where it stopped.
///
/// # Examples
///
/// ```
/// use statelesse::EventId;
///
/// let id: EventId = "1700000000000-3".parse().unwrap();
/// assert_eq!(id, EventId::new(1_700_000_000_000, 3));
/// assert_eq!(id.to_string(), "1700000000000-3");
/// assert!(id < EventId::new(1_700_000_000_001, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    millis: u64,
    seq: u64,
}

impl EventId {
    /// The id `{millis}-{seq}`.
    #[must_use]
    pub const fn new(millis: u64, seq: u64) -> Self {
        Self { millis, seq }
    }

    /// The milliseconds part.
    #[must_use]
    pub const fn millis(self) -> u64 {
        self.millis
    }

    /// The sequence part.
    #[must_use]
    pub const fn seq(self) -> u64 {
        self.seq
    }

    /// The smallest id greater than `self`.
    #[must_use]
    pub const fn successor(self) -> Self {
        if self.seq == u64::MAX {
            Self::new(self.millis.saturating_add(1), 0)
        } else {
            Self::new(self.millis, self.seq + 1)
        }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.millis, self.seq)
    }
}

/// A text that is not an [`EventId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event id `{0}`: expected `<milliseconds>-<sequence>`")]
pub struct ParseEventIdError(String);

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseEventIdError(s.chars().take(64).collect());
        let (millis, seq) = s.split_once('-').ok_or_else(invalid)?;
        let digits = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                part.parse::<u64>().ok()
            }
        };
        match (digits(millis), digits(seq)) {
            (Some(millis), Some(seq)) => Ok(Self::new(millis, seq)),
            _ => Err(invalid()),
        }
    }
}

/// Serialized as its text, `"{millis}-{seq}"`.
impl serde::Serialize for EventId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EventId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_displays() {
        let id = EventId::new(12, 34);
        assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
    }

    #[test]
    fn rejects_signs_spaces_and_missing_parts() {
        for bad in [
            "", "1", "-1", "1-", "+1-2", "1-+2", " 1-2", "1-2\n", "a-b", "1-2-3",
        ] {
            assert!(bad.parse::<EventId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn orders_by_millis_then_sequence() {
        assert!(EventId::new(1, 9) < EventId::new(2, 0));
        assert!(EventId::new(2, 0) < EventId::new(2, 1));
    }

    #[test]
    fn serializes_as_its_text() {
        let id = EventId::new(5, 6);
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""5-6""#);
        assert_eq!(serde_json::from_str::<EventId>(r#""5-6""#).unwrap(), id);
    }

    #[test]
    fn successor_carries_into_millis() {
        assert_eq!(EventId::new(1, u64::MAX).successor(), EventId::new(2, 0));
    }
}
