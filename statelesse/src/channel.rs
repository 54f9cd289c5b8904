//! [`Channel<E>`]: the only place that builds channel names.
//!
//! | event | channel name |
//! |---|---|
//! | struct with `key` | `{domain}:{key}:{EventName}` |
//! | struct without `key` | `{domain}:{EventName}` |
//! | enum | `{domain}:{key}` |
//!
//! Keys are escaped (see [`ChannelKey`]) so that no key can forge another channel.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::event::{EventKind, SseEvent};
use crate::key::write_escaped_key;

/// The channel of events of type `E` for one key.
///
/// Cheap to clone. The type parameter makes it impossible to publish or subscribe with the
/// channel of another event type.
///
/// # Examples
///
/// ```
/// use statelesse::prelude::*;
/// # use ts_rs::TS;
///
/// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
/// #[sse(domain = "chat", key = "room")]
/// pub struct Message {
///     pub room: String,
///     pub text: String,
/// }
///
/// let channel = Message::channel(&"lobby:1".to_owned());
/// assert_eq!(channel.name(), "chat:lobby%3A1:Message");
/// ```
pub struct Channel<E> {
    name: Arc<str>,
    event: PhantomData<fn() -> E>,
}

impl<E: SseEvent> Channel<E> {
    /// The channel of `E` for `key`.
    #[must_use]
    pub fn new(key: &E::Key) -> Self {
        Self {
            name: name_of::<E>(key).into(),
            event: PhantomData,
        }
    }
}

/// The name of `E`'s channel for `key`, without the shared allocation of a [`Channel`]: what a
/// publish needs for the moment it runs.
pub(crate) fn name_of<E: SseEvent>(key: &E::Key) -> String {
    let mut name = String::with_capacity(E::DOMAIN.len() + 24);
    name.push_str(E::DOMAIN);
    match E::KIND {
        EventKind::Keyed { name: event } => {
            name.push(':');
            write_escaped_key(key, &mut name);
            name.push(':');
            name.push_str(event);
        }
        EventKind::Broadcast { name: event } => {
            name.push(':');
            name.push_str(event);
        }
        EventKind::Stream { .. } => {
            name.push(':');
            write_escaped_key(key, &mut name);
        }
    }
    name
}

impl<E> Channel<E> {
    /// The channel's name, without any transport prefix.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<E> Clone for Channel<E> {
    fn clone(&self) -> Self {
        Self {
            name: Arc::clone(&self.name),
            event: PhantomData,
        }
    }
}

impl<E> PartialEq for Channel<E> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl<E> Eq for Channel<E> {}

impl<E> std::hash::Hash for Channel<E> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl<E> fmt::Debug for Channel<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Channel").field(&self.name).finish()
    }
}

impl<E> fmt::Display for Channel<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
