//! SSE frames as bytes: written by `axum::response::sse::Event`, once, then shared.
//!
//! axum's `Event` copies its buffer on every clone, so handing one `Event` to each subscriber
//! would copy every message once per connection. Instead each message is framed by axum once per
//! instance, through a one-event `Sse` body, and the finished [`Bytes`] are cached in the message:
//! one more subscriber costs a reference count.

use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::Duration;

use axum::response::IntoResponse as _;
use axum::response::sse::{Event, Sse};
use bytes::Bytes;
use futures_util::FutureExt as _;

use crate::{EventId, Gap, Message};

/// The frame sent every keep-alive interval: an SSE comment, which clients ignore.
pub(crate) fn keep_alive() -> Bytes {
    static FRAME: LazyLock<Bytes> = LazyLock::new(|| comment("keep-alive"));
    FRAME.clone()
}

/// The last frame of a stream ended by [`Shutdown`](super::Shutdown).
pub(crate) fn shutdown() -> Bytes {
    static FRAME: LazyLock<Bytes> = LazyLock::new(|| comment("shutdown"));
    FRAME.clone()
}

/// The last frame of a stream whose backplane closed.
pub(crate) fn closed() -> Bytes {
    static FRAME: LazyLock<Bytes> = LazyLock::new(|| comment("closed"));
    FRAME.clone()
}

/// The last frame of a stream closed by its write timeout, if its client ever reads it.
pub(crate) fn timed_out() -> Bytes {
    static FRAME: LazyLock<Bytes> = LazyLock::new(|| comment("write timeout"));
    FRAME.clone()
}

/// The frame of `message`, built on first use and cached in the message for every other
/// subscriber of this instance; `None` when it cannot be framed (logged once).
pub(crate) fn message(message: &Message) -> Option<Bytes> {
    message_ref(message).cloned()
}

/// [`message`], borrowed: for a frame that is copied into a larger chunk, whose reference count
/// need not change.
pub(crate) fn message_ref(message: &Message) -> Option<&Bytes> {
    message
        .frame
        .get_or_init(|| {
            // SSE cannot carry a CR in data (clients read it as a line break, so `a\rb` would
            // arrive as `a\nb`), nor empty data (clients dispatch no event without data); JSON
            // holds neither, so only a foreign or hostile publisher sends them.
            let data = std::str::from_utf8(message.data())
                .ok()
                .filter(|data| !data.is_empty() && !data.contains('\r'));
            let event = Event::default().id(message.id().to_string());
            let frame = data
                .zip(named(event, message.event()))
                .map(|(data, event)| render(event.data(data)));
            if frame.is_none() {
                tracing::warn!(
                    id = %message.id(),
                    event = ?message.event(),
                    "dropping a message that cannot be sent over SSE (bad event name or data)"
                );
            }
            frame
        })
        .as_ref()
}

/// The `data:` line of `message`'s frame and the blank line ending it, sliced from the cached
/// frame (shared, not copied); `None` when the message cannot be framed.
pub(crate) fn data_of(message: &Message) -> Option<Bytes> {
    let frame = message_ref(message)?;
    // The frame is `id: ..\nevent: ..\ndata: ..\n\n`, and neither an id nor a checked event name
    // holds a line break: the data line starts after the second.
    let start = frame
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(1)
        .map(|(at, _)| at + 1)?;
    Some(frame.slice(start..))
}

/// A frame of a multiplexed stream: `id: <cursor>` when given, `event: <label><event>` (the
/// label says which channel of the connection, see [`MuxRoutes`](super::MuxRoutes)), then
/// `data`, the data line(s) and the blank line ending the frame.
pub(crate) fn tagged(cursor: Option<&[u8]>, label: &str, event: &str, data: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(
        cursor.map_or(0, |cursor| cursor.len() + 5) + label.len() + event.len() + data.len() + 8,
    );
    if let Some(cursor) = cursor {
        frame.extend_from_slice(b"id: ");
        frame.extend_from_slice(cursor);
        frame.push(b'\n');
    }
    frame.extend_from_slice(b"event: ");
    frame.extend_from_slice(label.as_bytes());
    frame.extend_from_slice(event.as_bytes());
    frame.push(b'\n');
    frame.extend_from_slice(data);
    Bytes::from(frame)
}

/// The data of a `gap` event: `{"missed":n}`, or `{"missed":null}` when unknown.
pub(crate) fn gap_json(gap: Gap) -> String {
    match gap.missed {
        Some(missed) => format!("{{\"missed\":{missed}}}"),
        None => "{\"missed\":null}".to_owned(),
    }
}

/// `json` (compact, so on one line) as a data line, with the blank line ending the frame.
pub(crate) fn data_line(json: &str) -> Vec<u8> {
    [b"data: ", json.as_bytes(), b"\n\n"].concat()
}

/// The `gap` event: events were lost before the next one (see the module docs of `routes`).
///
/// `resume_after` is the position the stream goes on after, when known: sent as the frame's
/// `id`, so a client that reconnects before the next event resumes from there, not from an id
/// the stream moved away from (one ahead of the channel would be a gap on every reconnect).
pub(crate) fn gap(gap: Gap, resume_after: Option<EventId>) -> Bytes {
    let data = gap_json(gap);
    let event = match resume_after {
        Some(id) => Event::default().id(id.to_string()),
        None => Event::default(),
    };
    render(event.event(super::GAP_EVENT).data(data))
}

/// The `snapshot` event carrying the initial state, compact JSON.
pub(crate) fn snapshot(data: &str) -> Bytes {
    render(Event::default().event(super::SNAPSHOT_EVENT).data(data))
}

/// The `presence` frame: the channel's members as JSON.
pub(crate) fn presence(data: &str) -> Bytes {
    render(
        Event::default()
            .event(crate::protocol::PRESENCE_EVENT)
            .data(data),
    )
}

/// The `retry` hint: how long a client waits before reconnecting.
pub(crate) fn retry(after: Duration) -> Bytes {
    render(Event::default().retry(after))
}

fn comment(text: &str) -> Bytes {
    render(Event::default().comment(text))
}

/// `event` named `name`; `None` when the name is empty or holds a line break or NUL, which
/// axum refuses (by panicking) because they would forge fields.
fn named(event: Event, name: &str) -> Option<Event> {
    if name.is_empty() || name.contains(['\r', '\n', '\0']) {
        None
    } else {
        Some(event.event(name))
    }
}

/// The bytes axum writes for `event`: the body of a one-event `Sse` response, which is ready at
/// once (its stream is), so no runtime is involved.
fn render(event: Event) -> Bytes {
    let stream = futures_util::stream::iter([Ok::<_, Infallible>(event)]);
    let body = Sse::new(stream).into_response().into_body();
    axum::body::to_bytes(body, usize::MAX)
        .now_or_never()
        .and_then(Result::ok)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message::new(
            EventId::new(1_700_000_000_000, 2),
            "PlayerJoined",
            Bytes::from_static(br#"{"game_id":7,"player_name":"ada"}"#),
        )
    }

    #[test]
    fn message_frame_is_id_event_and_one_data_line() {
        assert_eq!(
            message(&sample()).unwrap(),
            "id: 1700000000000-2\nevent: PlayerJoined\ndata: {\"game_id\":7,\"player_name\":\"ada\"}\n\n"
        );
    }

    #[test]
    fn retry_is_in_milliseconds() {
        assert_eq!(retry(Duration::from_millis(1500)), "retry: 1500\n\n");
    }

    #[test]
    fn a_gap_carries_the_id_it_resumes_after_when_known() {
        assert_eq!(
            gap(Gap { missed: Some(3) }, Some(EventId::new(5, 1))),
            "id: 5-1\nevent: gap\ndata: {\"missed\":3}\n\n"
        );
        assert_eq!(
            gap(Gap { missed: None }, None),
            "event: gap\ndata: {\"missed\":null}\n\n"
        );
    }

    #[test]
    fn a_snapshot_is_a_named_event_without_id() {
        assert_eq!(
            snapshot(r#"{"players":[]}"#),
            "event: snapshot\ndata: {\"players\":[]}\n\n"
        );
    }

    #[test]
    fn comments_are_sse_comments() {
        assert_eq!(keep_alive(), ": keep-alive\n\n");
        assert_eq!(shutdown(), ": shutdown\n\n");
        assert_eq!(closed(), ": closed\n\n");
        assert_eq!(timed_out(), ": write timeout\n\n");
    }

    #[test]
    fn event_names_with_line_breaks_are_not_framed() {
        for bad in ["", "a\nb", "a\r", "\nid: 9", "nul\0"] {
            let forged = Message::new(
                EventId::new(1, 0),
                bad.to_owned(),
                Bytes::from_static(b"{}"),
            );
            assert_eq!(message(&forged), None, "{bad:?}");
        }
    }

    #[test]
    fn data_that_is_not_utf8_is_not_framed() {
        let bad = Message::new(EventId::new(1, 0), "E", Bytes::from_static(b"\xff"));
        assert_eq!(message(&bad), None);
    }

    #[test]
    fn data_with_a_carriage_return_is_not_framed() {
        // Framed, `\r` became `data: \rdata: ` and reached clients as `\n`.
        for data in ["\r", "{\"a\":1}\r", "[1,\r\n2]"] {
            let bad = Message::new(EventId::new(1, 0), "E", Bytes::from(data));
            assert_eq!(message(&bad), None, "{data:?}");
        }
    }

    #[test]
    fn empty_data_is_not_framed() {
        // Framed, it had no `data` line, so clients dispatched no event.
        let bad = Message::new(EventId::new(1, 0), "E", Bytes::new());
        assert_eq!(message(&bad), None);
    }

    #[test]
    fn a_message_is_framed_once_and_shared() {
        let message_ = sample();
        let first = message(&message_).unwrap();
        let second = message(&message_).unwrap();
        assert_eq!(first.as_ptr(), second.as_ptr());
    }
}
