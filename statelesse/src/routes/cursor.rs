//! The cursor of a multiplexed route: the position of every channel of a connection in one SSE
//! `id`, so that the browser's own `Last-Event-ID` resumes them all, on any instance.
//!
//! A frame's `id` is `<event id>.<cursor>`: the id of the frame's event on its channel (what a
//! single route would send, for clients to show or keep; a `gap` gives the position its channel
//! goes on after), then the cursor. A server reads the event id only to check it; the cursor
//! alone is also accepted. The cursor is URL-safe base64 (no padding, so no `.`) of these bytes:
//!
//! ```text
//! version    1 byte, 2
//! route      4 bytes, little-endian: the fingerprint of the route's event types
//! base       varint: the smallest millisecond part of the positions
//! count      varint: the number of channels, at most the route's channel maximum
//! count times:
//!   channel  8 bytes, little-endian: the fingerprint of the channel's name
//!   millis   varint: the position's millisecond part, minus `base`
//!   seq      varint: the position's sequence part
//!   before   varint: how many events of its stream entry follow the position's event (`0` for
//!            an id of two parts; see [`EventId`](crate::EventId))
//! check      4 bytes, little-endian: the FNV-1a hash of every byte before it
//! ```
//!
//! Varints are LEB128 (7 bits a byte, low bits first, at most 10 bytes). Positions close in
//! time cost a few bytes each: ten channels are about 170 characters. The cursor holds no
//! secret and grants nothing: every channel of a request is authorized from its query, and a
//! position is trusted only as far as the channel's history reaches (one ahead of it is a `gap`).
//! The check only tells a damaged or hand-edited cursor from a good one.

use std::fmt;
use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::EventId;

/// The cursor format's version: the first byte (2: positions with their `before` part).
const VERSION: u8 = 2;

/// The most bytes one channel takes: a fingerprint, two 10-byte varints and a 5-byte one.
const MAX_CHANNEL_BYTES: usize = 8 + 10 + 10 + 5;

/// The most bytes around the channels: version, route, base, count and check.
const MAX_FRAME_BYTES: usize = 1 + 4 + 10 + 10 + 4;

/// The longest event id before the cursor, with its `.`: two 20-digit numbers, a 10-digit one
/// and their `-`s.
const MAX_EVENT_ID_LEN: usize = 20 + 1 + 20 + 1 + 10 + 1;

/// Why a cursor was refused (the body of a 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CursorError {
    /// Longer than a cursor of the route's channel maximum can be.
    #[error("the cursor is longer than {max} characters")]
    TooLong {
        /// The longest cursor the route accepts.
        max: usize,
    },
    /// Not URL-safe base64 without padding.
    #[error("the cursor is not URL-safe base64")]
    NotBase64,
    /// A format version this server does not read.
    #[error("the cursor has an unknown version")]
    Version,
    /// The check does not match: the cursor was truncated or altered.
    #[error("the cursor is damaged")]
    Damaged,
    /// A cursor of another route, or of this route before its event types changed.
    #[error("the cursor is from another route")]
    ForeignRoute,
    /// More channels than the route allows.
    #[error("the cursor holds more than {max} channels")]
    TooManyChannels {
        /// The route's channel maximum.
        max: usize,
    },
    /// The same channel twice, or bytes after the last channel.
    #[error("the cursor is malformed")]
    Malformed,
}

/// The positions a cursor holds: each channel's fingerprint ([`channel_fingerprint`]) and the
/// id to resume after.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) positions: Vec<(u64, EventId)>,
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.positions
                    .iter()
                    .map(|(ch, id)| (format!("{ch:016x}"), id)),
            )
            .finish()
    }
}

impl Cursor {
    /// The position of the channel of fingerprint `channel`, if the cursor has it.
    pub(crate) fn position(&self, channel: u64) -> Option<EventId> {
        self.positions
            .iter()
            .find(|(fingerprint, _)| *fingerprint == channel)
            .map(|(_, id)| *id)
    }
}

/// FNV-1a, 64 bits: stable across builds and instances, unlike the standard library's hasher.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator no name holds, so that ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FNV-1a, 32 bits: the check.
fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in bytes {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The fingerprint of a channel, from its name (unique per event type and key).
pub(crate) fn channel_fingerprint(channel: &str) -> u64 {
    fnv1a64(&[channel.as_bytes()])
}

/// The fingerprint of a route's shape, from the names of its event types (in any order).
pub(crate) fn route_fingerprint<'a>(types: impl IntoIterator<Item = &'a str>) -> u32 {
    let mut names: Vec<&[u8]> = types.into_iter().map(str::as_bytes).collect();
    names.sort_unstable();
    // The low half of the 64-bit hash: FNV's low bits mix as well as its high ones.
    let [a, b, c, d, ..] = fnv1a64(&names).to_le_bytes();
    u32::from_le_bytes([a, b, c, d])
}

/// The longest `id` text of a route allowing `max_channels` channels.
pub(crate) fn max_len(max_channels: usize) -> usize {
    let bytes = MAX_FRAME_BYTES + max_channels.saturating_mul(MAX_CHANNEL_BYTES);
    bytes
        .div_ceil(3)
        .saturating_mul(4)
        .saturating_add(MAX_EVENT_ID_LEN)
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "each byte takes the low seven bits, masked"
)]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(((value & 0x7f) as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        let bits = u64::from(byte & 0x7f);
        // The tenth byte may carry one bit only: more would overflow.
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn take_array<const N: usize>(bytes: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = bytes.split_first_chunk::<N>()?;
    *bytes = rest;
    Some(*head)
}

/// A reusable cursor encoder: one per connection, so that encoding a cursor per frame allocates
/// only the text it returns.
#[derive(Debug)]
pub(crate) struct Encoder {
    route: u32,
    bytes: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new(route: u32) -> Self {
        Self {
            route,
            bytes: Vec::new(),
        }
    }

    /// The `id` of a frame of the event `event` (or a gap going on after it): `<event>.<cursor of
    /// positions>`, appended to `out`.
    pub(crate) fn encode_id(
        &mut self,
        event: EventId,
        positions: &[(u64, EventId)],
        out: &mut Vec<u8>,
    ) {
        // Writing to a `Vec` cannot fail.
        let _ = write!(out, "{event}.");
        self.encode(positions, out);
    }

    /// The cursor text of `positions`, appended to `out`.
    pub(crate) fn encode(&mut self, positions: &[(u64, EventId)], out: &mut Vec<u8>) {
        let bytes = &mut self.bytes;
        bytes.clear();
        bytes.push(VERSION);
        bytes.extend_from_slice(&self.route.to_le_bytes());
        let base = positions
            .iter()
            .map(|(_, id)| id.millis())
            .min()
            .unwrap_or(0);
        put_varint(bytes, base);
        put_varint(bytes, positions.len() as u64);
        for (channel, id) in positions {
            bytes.extend_from_slice(&channel.to_le_bytes());
            put_varint(bytes, id.millis() - base);
            put_varint(bytes, id.seq());
            put_varint(bytes, u64::from(id.before()));
        }
        let check = fnv1a32(bytes);
        bytes.extend_from_slice(&check.to_le_bytes());
        let start = out.len();
        out.resize(
            start + base64::encoded_len(bytes.len(), false).unwrap_or(0),
            0,
        );
        let written = URL_SAFE_NO_PAD
            .encode_slice(&bytes[..], &mut out[start..])
            .unwrap_or(0);
        out.truncate(start + written);
    }
}

/// The positions of `text`, a cursor of the route of fingerprint `route`, which allows
/// `max_channels` channels.
///
/// # Errors
///
/// A [`CursorError`] for anything but a cursor this route wrote; never panics, and reads at
/// most [`max_len`] characters.
pub(crate) fn decode(text: &str, route: u32, max_channels: usize) -> Result<Cursor, CursorError> {
    let max = max_len(max_channels);
    if text.len() > max {
        return Err(CursorError::TooLong { max });
    }
    let text = match text.split_once('.') {
        None => text,
        Some((event, cursor)) => {
            event
                .parse::<EventId>()
                .map_err(|_| CursorError::Malformed)?;
            cursor
        }
    };
    let raw = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| CursorError::NotBase64)?;
    let (body, check) = raw.split_last_chunk::<4>().ok_or(CursorError::Damaged)?;
    if body.first() != Some(&VERSION) {
        return Err(CursorError::Version);
    }
    if fnv1a32(body) != u32::from_le_bytes(*check) {
        return Err(CursorError::Damaged);
    }
    let mut bytes = &body[1..];
    let fingerprint = take_array::<4>(&mut bytes).ok_or(CursorError::Malformed)?;
    if u32::from_le_bytes(fingerprint) != route {
        return Err(CursorError::ForeignRoute);
    }
    let base = take_varint(&mut bytes).ok_or(CursorError::Malformed)?;
    let count = take_varint(&mut bytes).ok_or(CursorError::Malformed)?;
    let count = usize::try_from(count)
        .ok()
        .filter(|count| *count <= max_channels)
        .ok_or(CursorError::TooManyChannels { max: max_channels })?;
    let mut positions: Vec<(u64, EventId)> = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = take_array::<8>(&mut bytes).ok_or(CursorError::Malformed)?;
        let channel = u64::from_le_bytes(channel);
        let millis = take_varint(&mut bytes)
            .and_then(|delta| base.checked_add(delta))
            .ok_or(CursorError::Malformed)?;
        let seq = take_varint(&mut bytes).ok_or(CursorError::Malformed)?;
        let before = take_varint(&mut bytes)
            .and_then(|before| u32::try_from(before).ok())
            .ok_or(CursorError::Malformed)?;
        if positions.iter().any(|(seen, _)| *seen == channel) {
            return Err(CursorError::Malformed);
        }
        positions.push((
            channel,
            EventId::in_entry(EventId::new(millis, seq), before),
        ));
    }
    if !bytes.is_empty() {
        return Err(CursorError::Malformed);
    }
    Ok(Cursor { positions })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ROUTE: u32 = 0x1234_5678;

    fn encode(positions: &[(u64, EventId)]) -> String {
        let mut out = Vec::new();
        Encoder::new(ROUTE).encode(positions, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn positions() -> impl Strategy<Value = Vec<(u64, EventId)>> {
        let id = (
            any::<u64>(),
            any::<u64>(),
            prop_oneof![Just(0), any::<u32>()],
        );
        prop::collection::btree_map(any::<u64>(), id, 0..=32).prop_map(|map| {
            map.into_iter()
                .map(|(ch, (ms, seq, before))| {
                    (ch, EventId::in_entry(EventId::new(ms, seq), before))
                })
                .collect()
        })
    }

    #[test]
    fn ten_channels_of_recent_positions_take_under_two_hundred_characters() {
        let now = 1_765_000_000_000;
        let positions: Vec<_> = (0..10)
            .map(|n| {
                (
                    channel_fingerprint(&format!("game:{n}:E")),
                    EventId::new(now + n * 37, n),
                )
            })
            .collect();
        let text = encode(&positions);
        assert!(text.len() < 200, "{} characters", text.len());
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text}"
        );
    }

    #[test]
    fn an_id_is_the_event_id_then_the_cursor() {
        let positions = [(1, EventId::new(5, 0)), (2, EventId::new(7, 1))];
        let mut id = Vec::new();
        Encoder::new(ROUTE).encode_id(EventId::new(7, 1), &positions, &mut id);
        let id = String::from_utf8(id).unwrap();
        assert_eq!(id, format!("7-1.{}", encode(&positions)));
        assert_eq!(decode(&id, ROUTE, 32).unwrap().positions, positions);
        assert_eq!(
            decode(&format!("x.{}", encode(&positions)), ROUTE, 32),
            Err(CursorError::Malformed)
        );
    }

    #[test]
    fn an_id_inside_a_stream_entry_keeps_its_three_parts() {
        let inside = EventId::in_entry(EventId::new(7, 1), 2);
        let positions = [(1, EventId::new(5, 0)), (2, inside)];
        let mut id = Vec::new();
        Encoder::new(ROUTE).encode_id(inside, &positions, &mut id);
        let id = String::from_utf8(id).unwrap();
        assert!(id.starts_with("7-1-2."), "{id}");
        assert_eq!(decode(&id, ROUTE, 32).unwrap().position(2), Some(inside));
    }

    #[test]
    fn a_cursor_of_another_route_is_foreign() {
        let text = encode(&[(1, EventId::new(5, 0))]);
        assert_eq!(decode(&text, ROUTE + 1, 32), Err(CursorError::ForeignRoute));
    }

    #[test]
    fn a_cursor_of_more_channels_than_the_route_allows_is_refused() {
        let positions: Vec<_> = (0..3).map(|n| (n, EventId::new(n, 0))).collect();
        let text = encode(&positions);
        assert!(decode(&text, ROUTE, 3).is_ok());
        assert!(matches!(
            decode(&text, ROUTE, 2),
            Err(CursorError::TooLong { .. } | CursorError::TooManyChannels { .. })
        ));
    }

    #[test]
    fn route_fingerprints_ignore_order_and_tell_shapes_apart() {
        assert_eq!(route_fingerprint(["a", "b"]), route_fingerprint(["b", "a"]));
        assert_ne!(
            route_fingerprint(["ab", "c"]),
            route_fingerprint(["a", "bc"])
        );
        assert_ne!(route_fingerprint(["a"]), route_fingerprint(["a", "b"]));
    }

    proptest! {
        #[test]
        fn decoding_gives_back_what_was_encoded(positions in positions()) {
            let text = encode(&positions);
            prop_assert!(text.len() <= max_len(32));
            prop_assert_eq!(decode(&text, ROUTE, 32).unwrap().positions, positions);
        }

        #[test]
        fn random_text_is_refused_without_panicking(text in ".{0,300}") {
            prop_assert!(decode(&text, ROUTE, 32).is_err());
        }

        #[test]
        fn random_bytes_in_base64_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            prop_assert!(decode(&URL_SAFE_NO_PAD.encode(bytes), ROUTE, 32).is_err());
        }

        #[test]
        fn a_truncated_cursor_is_refused(positions in positions(), cut in any::<prop::sample::Index>()) {
            let text = encode(&positions);
            let cut = cut.index(text.len());
            prop_assert!(decode(&text[..cut], ROUTE, 32).is_err());
        }

        #[test]
        fn a_tampered_cursor_is_refused(
            positions in positions(),
            at in any::<prop::sample::Index>(),
            flip in 1..=255u8,
        ) {
            let text = encode(&positions);
            let mut raw = URL_SAFE_NO_PAD.decode(&text).unwrap();
            let at = at.index(raw.len());
            raw[at] ^= flip;
            prop_assert!(decode(&URL_SAFE_NO_PAD.encode(raw), ROUTE, 32).is_err());
        }
    }
}
