//! [`Message`]: one published event as every transport carries it, serialized once.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use crate::id::EventId;

/// A published event: its id, its SSE event name and its JSON data.
///
/// Built once per publish (or once per instance, when it arrives from Redis) and shared by
/// every local subscriber behind an `Arc`: one more subscriber costs a reference count.
pub struct Message {
    id: EventId,
    event: Cow<'static, str>,
    data: Bytes,
    /// The message framed as SSE bytes, built once per instance by the first route that sends it
    /// and shared by every other subscriber (a reference count, not a copy); `None` when the
    /// message cannot be framed (an event name with a line break, data that is not UTF-8, is
    /// empty or holds a CR).
    #[cfg(feature = "axum")]
    pub(crate) frame: std::sync::OnceLock<Option<Bytes>>,
}

impl Message {
    /// A message with `id`, SSE event name `event` and JSON `data`.
    #[must_use]
    pub fn new(id: EventId, event: impl Into<Cow<'static, str>>, data: Bytes) -> Self {
        Self {
            id,
            event: event.into(),
            data,
            #[cfg(feature = "axum")]
            frame: std::sync::OnceLock::new(),
        }
    }

    /// The event's id on its channel.
    #[must_use]
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The SSE event name.
    #[must_use]
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The JSON data.
    #[must_use]
    pub fn data(&self) -> &Bytes {
        &self.data
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("event", &self.event)
            .field("data", &String::from_utf8_lossy(&self.data))
            .finish_non_exhaustive()
    }
}
