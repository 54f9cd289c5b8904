//! SSE frames as bytes: the wire format of the routes, written once and shared.
//!
//! Every frame is what `axum::response::sse::Event` writes for the same fields (the unit tests
//! compare the bytes), but finished as [`Bytes`] so that one message framed once is handed to
//! every subscriber by reference count: axum's `Event` copies its buffer on every clone.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::{Gap, Message};

/// The frame sent every keep-alive interval: an SSE comment, which clients ignore.
pub(crate) const KEEP_ALIVE: Bytes = Bytes::from_static(b": keep-alive\n\n");

/// The last frame of a stream ended by [`Shutdown`](super::Shutdown).
pub(crate) const SHUTDOWN: Bytes = Bytes::from_static(b": shutdown\n\n");

/// The last frame of a stream whose backplane closed.
pub(crate) const CLOSED: Bytes = Bytes::from_static(b": closed\n\n");

/// The frame of `message`, built on first use and cached in the message for every other
/// subscriber of this instance; `None` when it cannot be framed (logged once).
pub(crate) fn message(message: &Message) -> Option<Bytes> {
    message
        .frame
        .get_or_init(|| {
            let frame = encode(
                Some(&message.id().to_string()),
                message.event(),
                message.data(),
            );
            if frame.is_none() {
                tracing::warn!(
                    id = %message.id(),
                    event = ?message.event(),
                    "dropping a message whose event name cannot be sent over SSE"
                );
            }
            frame
        })
        .clone()
}

/// The `gap` event: events were lost before the next one (see the module docs of `routes`).
pub(crate) fn gap(gap: Gap) -> Bytes {
    let mut data = String::with_capacity(24);
    match gap.missed {
        Some(missed) => {
            let _ = write!(data, "{{\"missed\":{missed}}}");
        }
        None => data.push_str("{\"missed\":null}"),
    }
    encode(None, super::GAP_EVENT, data.as_bytes()).unwrap_or_default()
}

/// The `snapshot` event carrying the initial state, compact JSON.
pub(crate) fn snapshot(data: &[u8]) -> Bytes {
    encode(None, super::SNAPSHOT_EVENT, data).unwrap_or_default()
}

/// The `retry` hint: how long a client waits before reconnecting, in milliseconds.
pub(crate) fn retry(after: Duration) -> Bytes {
    let millis = after.as_millis();
    let mut frame = BytesMut::with_capacity(20);
    let _ = write!(Writer(&mut frame), "retry: {millis}\n\n");
    frame.freeze()
}

/// `id: <id>\nevent: <event>\ndata: <line>\n..\n`; `None` when `event` is empty or contains a
/// line break, which would forge fields. Line breaks in `data` (never in compact JSON) start a new
/// `data:` line, which clients join with `\n`, as axum does.
fn encode(id: Option<&str>, event: &str, data: &[u8]) -> Option<Bytes> {
    if event.is_empty() || event.contains(['\r', '\n']) {
        return None;
    }
    let mut frame = BytesMut::with_capacity(data.len() + event.len() + 48);
    if let Some(id) = id {
        frame.put_slice(b"id: ");
        frame.put_slice(id.as_bytes());
        frame.put_u8(b'\n');
    }
    frame.put_slice(b"event: ");
    frame.put_slice(event.as_bytes());
    frame.put_u8(b'\n');
    for line in lines(data) {
        frame.put_slice(b"data: ");
        frame.put_slice(line);
        frame.put_u8(b'\n');
    }
    frame.put_u8(b'\n');
    Some(frame.freeze())
}

/// Splits `data` at `\r\n`, `\n` and `\r`, the SSE line ends.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.iter().position(|&b| b == b'\n' || b == b'\r') {
            None => {
                rest = None;
                Some(current)
            }
            Some(end) => {
                let skip = if current[end] == b'\r' && current.get(end + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                rest = Some(&current[end + skip..]);
                Some(&current[..end])
            }
        }
    })
}

/// `fmt::Write` into a `BytesMut`, which implements only `bytes::BufMut`.
struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::response::IntoResponse;
    use axum::response::sse::{Event, Sse};

    use super::*;
    use crate::EventId;

    /// The bytes axum writes for `event`.
    async fn axum_bytes(event: Event) -> Bytes {
        let stream = futures_util::stream::iter([Ok::<_, Infallible>(event)]);
        let body = Sse::new(stream).into_response().into_body();
        axum::body::to_bytes(body, usize::MAX).await.unwrap()
    }

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

    #[tokio::test]
    async fn message_frame_matches_axum_event() {
        let expected = Event::default()
            .id("1700000000000-2")
            .event("PlayerJoined")
            .data(r#"{"game_id":7,"player_name":"ada"}"#);
        assert_eq!(message(&sample()).unwrap(), axum_bytes(expected).await);
    }

    #[tokio::test]
    async fn retry_matches_axum_event() {
        for after in [
            Duration::from_secs(3),
            Duration::from_millis(250),
            Duration::from_millis(1500),
        ] {
            let expected = axum_bytes(Event::default().retry(after)).await;
            assert_eq!(retry(after), expected, "{after:?}");
        }
    }

    #[tokio::test]
    async fn gap_and_snapshot_match_axum_events() {
        let expected = Event::default().event("gap").data(r#"{"missed":3}"#);
        assert_eq!(gap(Gap { missed: Some(3) }), axum_bytes(expected).await);
        assert_eq!(
            gap(Gap { missed: None }),
            "event: gap\ndata: {\"missed\":null}\n\n"
        );

        let expected = Event::default().event("snapshot").data(r#"{"players":[]}"#);
        assert_eq!(snapshot(br#"{"players":[]}"#), axum_bytes(expected).await);
    }

    #[tokio::test]
    async fn comments_match_axum_comments() {
        let expected = axum_bytes(Event::default().comment("keep-alive")).await;
        assert_eq!(KEEP_ALIVE, expected);
        assert_eq!(
            SHUTDOWN,
            axum_bytes(Event::default().comment("shutdown")).await
        );
        assert_eq!(CLOSED, axum_bytes(Event::default().comment("closed")).await);
    }

    #[test]
    fn line_breaks_in_data_start_new_data_lines() {
        let frame = encode(None, "e", b"a\nb\r\nc\rd").unwrap();
        assert_eq!(frame, "event: e\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
        assert_eq!(encode(None, "e", b"").unwrap(), "event: e\ndata: \n\n");
        assert_eq!(
            encode(None, "e", b"x\n").unwrap(),
            "event: e\ndata: x\ndata: \n\n"
        );
    }

    #[test]
    fn event_names_with_line_breaks_are_not_framed() {
        for bad in ["", "a\nb", "a\r", "\nid: 9"] {
            let forged = Message::new(
                EventId::new(1, 0),
                bad.to_owned(),
                Bytes::from_static(b"{}"),
            );
            assert_eq!(message(&forged), None, "{bad:?}");
        }
    }

    #[test]
    fn a_message_is_framed_once_and_shared() {
        let message_ = sample();
        let first = message(&message_).unwrap();
        let second = message(&message_).unwrap();
        assert_eq!(first.as_ptr(), second.as_ptr());
    }
}
