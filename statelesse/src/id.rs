//! [`EventId`]: the id of a published event, also its SSE `id` field.

use std::fmt;
use std::str::FromStr;

/// The id of an event on its channel: `{milliseconds}-{sequence}`, the format of Redis Stream ids,
/// or `{milliseconds}-{sequence}-{before}` for an event stored with others in one stream entry.
///
/// Ids increase strictly along a channel, on every transport, so a client's `Last-Event-ID` says
/// exactly where it stopped. The Redis transport stores the events that one publish call carries
/// for a channel as one stream entry: the entry's last event has the entry's id, and the one
/// `before` events earlier `{entry id}-{before}`, which sorts before the entry's id and after
/// every earlier entry's ids (ids compare by milliseconds, then sequence, then *descending*
/// `before`).
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
///
/// let earlier: EventId = "1700000000000-3-2".parse().unwrap();
/// assert!(EventId::new(1_700_000_000_000, 2) < earlier && earlier < id);
/// assert_eq!(earlier.to_string(), "1700000000000-3-2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventId {
    millis: u64,
    seq: u64,
    /// How many events of the same stream entry follow this one.
    before: u32,
}

impl Ord for EventId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.millis, self.seq)
            .cmp(&(other.millis, other.seq))
            .then(other.before.cmp(&self.before))
    }
}

impl PartialOrd for EventId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl EventId {
    /// The id `{millis}-{seq}`.
    #[must_use]
    pub const fn new(millis: u64, seq: u64) -> Self {
        Self {
            millis,
            seq,
            before: 0,
        }
    }

    /// The id of the event `before` events ahead of the last one of the stream entry `entry`.
    pub(crate) const fn in_entry(entry: Self, before: u32) -> Self {
        Self {
            millis: entry.millis,
            seq: entry.seq,
            before,
        }
    }

    /// The id of the stream entry holding this event: the id of its last event.
    #[cfg(any(test, feature = "redis"))]
    pub(crate) const fn entry(self) -> Self {
        Self::new(self.millis, self.seq)
    }

    /// How many events of its stream entry follow this one (`0` for the entry's last event).
    #[cfg(any(feature = "redis", feature = "axum"))]
    pub(crate) const fn before(self) -> u32 {
        self.before
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

    /// The smallest id of the form `{millis}-{seq}` (a stream entry's) greater than `self`.
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
        write!(f, "{}-{}", self.millis, self.seq)?;
        if self.before > 0 {
            write!(f, "-{}", self.before)?;
        }
        Ok(())
    }
}

/// A text that is not an [`EventId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event id `{0}`: expected `<milliseconds>-<sequence>[-<before>]`")]
pub struct ParseEventIdError(String);

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseEventIdError(s.chars().take(64).collect());
        let (millis, rest) = s.split_once('-').ok_or_else(invalid)?;
        let (seq, before) = match rest.split_once('-') {
            Some((seq, before)) => (seq, Some(before)),
            None => (rest, None),
        };
        let digits = |part: &str| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                part.parse::<u64>().ok()
            }
        };
        let before = match before {
            // `0` is written without its part: one text per id.
            Some(before) => digits(before)
                .filter(|&before| before > 0)
                .and_then(|before| u32::try_from(before).ok())
                .ok_or_else(invalid)?,
            None => 0,
        };
        match (digits(millis), digits(seq)) {
            (Some(millis), Some(seq)) => Ok(Self::in_entry(Self::new(millis, seq), before)),
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
        let inside = EventId::in_entry(id, 7);
        assert_eq!(inside.to_string(), "12-34-7");
        assert_eq!(inside.to_string().parse::<EventId>().unwrap(), inside);
    }

    #[test]
    fn rejects_signs_spaces_and_missing_parts() {
        for bad in [
            "",
            "1",
            "-1",
            "1-",
            "+1-2",
            "1-+2",
            " 1-2",
            "1-2\n",
            "a-b",
            "1-2-",
            "1-2-0",
            "1-2-+3",
            "1-2-3-4",
            "1-2-4294967296",
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
    fn the_events_of_an_entry_sort_after_the_entry_before_and_end_at_its_id() {
        let entry = EventId::new(2, 1);
        let (first, second) = (EventId::in_entry(entry, 2), EventId::in_entry(entry, 1));
        assert!(EventId::new(2, 0) < first);
        assert!(first < second && second < entry);
        assert!(entry < EventId::in_entry(EventId::new(2, 2), 9));
        assert_eq!(first.entry(), entry);
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
