//! The SSE wire protocol shared by routes, the TypeScript client and the derive: the event names
//! a route reserves for its own frames (and the presence frames of its channels) and how a
//! client names the last event it saw.
//!
//! Every other module takes these names from here; `#[derive(SseEvent)]` keeps its own copy of
//! [`RESERVED_EVENT_NAMES`] (a proc-macro crate cannot depend on this one), and the UI tests
//! prove the two agree by compiling an event named after each.

/// The SSE event name of the frame that reports lost events: `gap`.
///
/// Its data is `{"missed":<count or null>}`. Reserved: `#[derive(SseEvent)]` rejects an event or
/// variant so named.
pub const GAP_EVENT: &str = "gap";

/// The SSE event name of the initial state frame: `snapshot`.
///
/// Its data is a route's initial state as compact JSON. Reserved: `#[derive(SseEvent)]` rejects
/// an event or variant so named.
pub const SNAPSHOT_EVENT: &str = "snapshot";

/// The SSE event name of the first frame of a multiplexed stream, after the `retry` hint:
/// `cursor`.
///
/// Its `id` is the cursor of every channel's position when the stream opened and its data `{}`,
/// so that a client that reconnects (or changes its channels) before any event resumes every
/// channel from there. Never an event type's name on a multiplexed stream, whose event names are
/// all `<channel>:<Type>.<event>`.
pub const CURSOR_EVENT: &str = "cursor";

/// The SSE event name of a presence event: a member's first connection to the channel, on any
/// instance: `join`.
///
/// Published on the channel's stream (with an id, in its history) of an event type with
/// `#[sse(presence = ..)]`; its data is `{"member":<identity>,"since":<unix ms>}`. Reserved:
/// `#[derive(SseEvent)]` rejects an event or variant so named.
pub const JOIN_EVENT: &str = "join";

/// The SSE event name of a presence event: a member's last connection to the channel, on every
/// instance, closed or expired: `leave`.
///
/// Published like [`JOIN_EVENT`]; its data is `{"member":<identity>}`. Reserved.
pub const LEAVE_EVENT: &str = "leave";

/// The SSE event name of the frame a presence route sends first, after the `retry` hint and
/// before any snapshot: `presence`, the channel's members when the connection opened.
///
/// Its data is `[{"member":<identity>,"connections":<n>,"since":<unix ms>}, ..]`, oldest member
/// first, and it has no `id`. Reserved.
pub const PRESENCE_EVENT: &str = "presence";

/// Every SSE event name that a route sends for itself, and no event type may take.
pub const RESERVED_EVENT_NAMES: [&str; 5] = [
    GAP_EVENT,
    SNAPSHOT_EVENT,
    JOIN_EVENT,
    LEAVE_EVENT,
    PRESENCE_EVENT,
];

/// The query parameter carrying the last event id, for clients that cannot set headers (the
/// browser's `EventSource`): `lastEventId`.
pub const LAST_EVENT_ID_QUERY: &str = "lastEventId";

/// The request header carrying the last event id, lower case as HTTP/2 sends it:
/// `last-event-id`.
pub const LAST_EVENT_ID_HEADER: &str = "last-event-id";

/// Whether `name` is a presence event published on a channel: [`JOIN_EVENT`] or [`LEAVE_EVENT`].
#[must_use]
pub fn is_presence_change(name: &str) -> bool {
    name == JOIN_EVENT || name == LEAVE_EVENT
}

/// Whether `name` is one of the [`RESERVED_EVENT_NAMES`].
///
/// ```
/// use statelesse::protocol::is_reserved_event_name;
///
/// assert!(is_reserved_event_name("gap"));
/// assert!(!is_reserved_event_name("Gap"));
/// ```
#[must_use]
pub const fn is_reserved_event_name(name: &str) -> bool {
    let mut i = 0;
    while i < RESERVED_EVENT_NAMES.len() {
        if const_eq(name, RESERVED_EVENT_NAMES[i]) {
            return true;
        }
        i += 1;
    }
    false
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_are_exact_and_case_sensitive() {
        assert!(is_reserved_event_name(GAP_EVENT));
        assert!(is_reserved_event_name(SNAPSHOT_EVENT));
        assert!(is_reserved_event_name(JOIN_EVENT));
        assert!(is_reserved_event_name(LEAVE_EVENT));
        assert!(is_reserved_event_name(PRESENCE_EVENT));
        assert!(!is_reserved_event_name("Snapshot"));
        assert!(!is_reserved_event_name("gaps"));
        assert!(!is_reserved_event_name(""));
    }
}
