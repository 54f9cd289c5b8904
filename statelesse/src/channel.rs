//! [`Channel<E>`]: the only place that builds channel names.
//!
//! | event | channel name |
//! |---|---|
//! | struct with `key` | `{domain}:{key}:{EventName}` |
//! | struct without `key` | `{domain}:{EventName}` |
//! | enum | `{domain}:{key}:{EnumName}` |
//!
//! Why no two event types share a channel: domains and names hold no `:` (the derive checks
//! them), and keys are escaped (see [`ChannelKey`](crate::ChannelKey)) so that an escaped key holds none either.
//! So a broadcast name has two segments and the others three, and a keyed event and an enum
//! stream differ by their last segment, provided names are unique within a domain, across every
//! shape: [`registry::collisions`](crate::registry::collisions) finds two types that break this
//! rule, and a [`Backplane`](crate::Backplane) refuses them (`ErrorKind::ChannelCollision`).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::event::{EventKind, SseEvent};
use crate::key::{ChannelKey, write_escaped_key};

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
    build_name(E::DOMAIN, E::KIND, key)
}

/// The channel name of an event type of `domain` and `kind`, for `key`: the table at the top of
/// this module.
fn build_name<K: ChannelKey + ?Sized>(domain: &str, kind: EventKind, key: &K) -> String {
    let mut name = String::with_capacity(domain.len() + 24);
    name.push_str(domain);
    match kind {
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
        EventKind::Stream { name: stream, .. } => {
            name.push(':');
            write_escaped_key(key, &mut name);
            name.push(':');
            name.push_str(stream);
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// One channel of an event type: its shape, domain, name and key (none for a broadcast).
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Place {
        shape: u8,
        domain: &'static str,
        name: &'static str,
        key: Option<String>,
    }

    impl Place {
        fn kind(&self) -> EventKind {
            match self.shape {
                0 => EventKind::Keyed { name: self.name },
                1 => EventKind::Broadcast { name: self.name },
                _ => EventKind::Stream {
                    name: self.name,
                    variants: &[],
                },
            }
        }

        fn channel(&self) -> String {
            match &self.key {
                Some(key) => build_name(self.domain, self.kind(), key),
                None => build_name(self.domain, self.kind(), &()),
            }
        }
    }

    /// A valid domain or name (what the derive accepts), from a small alphabet so that two
    /// draws are often equal; leaked because `EventKind` holds `&'static str`, as the derive's
    /// constants are.
    fn identifier() -> impl Strategy<Value = &'static str> {
        prop_oneof![4 => "[ab]", 1 => "[A-Za-z0-9_-]{1,12}"]
            .prop_map(|text| &*Box::leak(text.into_boxed_str()))
    }

    /// Any key text, often a short one equal to a drawn name, or holding the separator or its
    /// escape.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![4 => "(a|b|:|%3A|%){0,2}", 1 => ".*"]
    }

    fn place() -> impl Strategy<Value = Place> {
        (0u8..3, identifier(), identifier(), key()).prop_map(|(shape, domain, name, key)| Place {
            shape,
            domain,
            name,
            key: (shape != 1).then_some(key),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Two channels are the same name exactly when they are the same place, for every pair
        /// of types the registry accepts: one domain holds one type of each name, so two
        /// places of one domain and name have one shape.
        #[test]
        fn distinct_places_never_share_a_channel_name(a in place(), b in place()) {
            let mut b = b;
            if (a.domain, a.name) == (b.domain, b.name) {
                b.shape = a.shape;
                b.key = match (&a.key, b.key) {
                    (None, _) => None,
                    (Some(a_key), None) => Some(a_key.clone()),
                    (Some(_), Some(b_key)) => Some(b_key),
                };
            }
            prop_assert_eq!(a.channel() == b.channel(), a == b, "{} / {}", a.channel(), b.channel());
        }
    }

    /// The collision of wire version 1: a stream keyed by user name and a broadcast event of the
    /// domain, with a user named after the event.
    #[test]
    fn a_stream_keyed_by_a_broadcast_events_name_has_its_own_channel() {
        let stream = EventKind::Stream {
            name: "UserEvent",
            variants: &[],
        };
        let broadcast = EventKind::Broadcast {
            name: "Maintenance",
        };
        assert_eq!(
            build_name("user", stream, &"Maintenance".to_owned()),
            "user:Maintenance:UserEvent"
        );
        assert_eq!(build_name("user", broadcast, &()), "user:Maintenance");
    }

    #[test]
    fn two_streams_of_one_domain_have_their_own_channels() {
        let stream = |name| EventKind::Stream {
            name,
            variants: &[],
        };
        assert_eq!(
            build_name("game", stream("GameEvent"), &42_u64),
            "game:42:GameEvent"
        );
        assert_eq!(
            build_name("game", stream("Presence"), &42_u64),
            "game:42:Presence"
        );
    }
}
