//! Hooks for the criterion benchmarks in `benches/`: crate-private hot paths, reachable from
//! outside only here. Not public API: hidden, unstable, and may change in any release.

#[cfg(any(feature = "axum", feature = "redis"))]
use bytes::Bytes;

#[cfg(any(feature = "axum", feature = "redis"))]
use crate::Message;

/// The SSE frame of `message`, as the routes send it: built by the first call and cached in the
/// message, so later calls (one per further subscriber) are a reference count.
#[cfg(feature = "axum")]
#[must_use]
pub fn sse_frame(message: &Message) -> Option<Bytes> {
    crate::routes::frame::message(message)
}

/// Parses a Redis envelope into its events, as an instance does once for each message it
/// receives.
#[cfg(feature = "redis")]
#[must_use]
pub fn decode_envelope(payload: &Bytes) -> Option<Vec<Message>> {
    crate::backplane::redis::envelope::decode(payload).ok()
}

/// Builds a Redis envelope of `events` (name, data) for the stream entry `id` the way the
/// publisher and the publish script do together: the reference for what [`decode_envelope`]
/// reads.
#[cfg(feature = "redis")]
#[must_use]
pub fn encode_envelope(id: crate::EventId, events: &[(&str, &[u8])]) -> Vec<u8> {
    crate::backplane::redis::envelope::encode(id, events)
}

/// The Lua script every Redis publish runs (`EVALSHA`), a batch of one or more channels, for
/// measuring it alone on a server. KEYS: the stream of each channel. ARGV: history length, ttl
/// in ms (0 = none), one `0`/`1` per channel (refresh its TTL), then per channel: pub/sub
/// channel, body (see [`publish_batch_body`]).
#[cfg(feature = "redis")]
pub const PUBLISH_SCRIPT: &str = crate::backplane::redis::envelope::PUBLISH_LUA;

/// The body of a channel batch of `events` (name, data), as the publisher writes it for the
/// publish script: one argument carrying every event of one channel.
#[cfg(feature = "redis")]
#[must_use]
pub fn publish_batch_body(events: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    crate::backplane::redis::envelope::write_body(&mut body, events);
    body
}

/// Builds the `EVALSHA` command of one publish batch of `events` (channel, event name, data)
/// under the prefix `bench`, as the publisher does before sending it (the events of one channel
/// in one entry); returns its encoded size.
#[cfg(feature = "redis")]
#[must_use]
pub fn publish_batch_command(events: &[(&str, &str, &[u8])]) -> usize {
    crate::backplane::redis::envelope::bench_publish_command(events)
}

/// The body of an SSE route's connection streaming `subscription`'s events of `kind`, as the
/// route builds it but with no head (retry hint, snapshot): each poll hands out every frame
/// ready, as one chunk. `keep_alive` and `write_timeout` as the route's settings (`ZERO`: off);
/// with a write timeout it must be created within a Tokio runtime.
#[cfg(feature = "axum")]
pub fn sse_body(
    subscription: crate::backplane::subscription::RawSubscription,
    kind: crate::EventKind,
    keep_alive: std::time::Duration,
    write_timeout: std::time::Duration,
) -> impl futures_core::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + Unpin {
    use crate::routes::stream::{EventStream, Events, Feed, Source, Watchdog};
    let events = Events {
        subscription,
        kind,
        presence: false,
        lease: None,
        malformed: std::sync::Arc::default(),
    };
    let feed = Feed {
        source: Source::One(events),
        metrics: crate::telemetry::EventMetrics::new("bench", kind.name()).route(),
        span: tracing::Span::none(),
    };
    EventStream::new(
        std::collections::VecDeque::new(),
        Some(feed),
        None,
        keep_alive,
        Watchdog::new(write_timeout).as_ref(),
        None,
    )
}
