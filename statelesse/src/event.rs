//! The [`SseEvent`] trait: what `#[derive(SseEvent)]` implements for an event type.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::key::ChannelKey;

/// The shape of an event type's channels, fixed by `#[derive(SseEvent)]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A struct with a `key`: one channel per key, `{domain}:{key}:{name}`.
    Keyed {
        /// The SSE event name.
        name: &'static str,
    },
    /// A struct without a `key`: one broadcast channel, `{domain}:{name}`.
    Broadcast {
        /// The SSE event name.
        name: &'static str,
    },
    /// An enum: one stream per key, `{domain}:{key}:{name}`, each variant its own SSE event name.
    ///
    /// Its name shares the namespace of the domain's event names: no other type of the domain,
    /// whatever its shape, may take it (see [`registry::collisions`](crate::registry::collisions)).
    Stream {
        /// The name of the enum type.
        name: &'static str,
        /// The SSE event name of every variant, in declaration order.
        variants: &'static [&'static str],
    },
}

impl EventKind {
    /// The type's name as used in channel names, routes and the manifest: the event name, or the
    /// enum's name. Unique within a domain, across every shape.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Keyed { name } | Self::Broadcast { name } | Self::Stream { name, .. } => name,
        }
    }

    /// Whether `event` is an SSE event name of this type: the struct's name, or one of the
    /// enum's variant names. Routes forward only these, so a `snapshot`, `gap` or any other name
    /// published on the channel by someone else never reaches a client as if it were the route's.
    ///
    /// ```
    /// use statelesse::EventKind;
    ///
    /// let kind = EventKind::Stream { name: "GameEvent", variants: &["Joined", "score"] };
    /// assert!(kind.has_event("score"));
    /// assert!(!kind.has_event("GameEvent") && !kind.has_event("snapshot"));
    /// assert!(EventKind::Keyed { name: "PlayerJoined" }.has_event("PlayerJoined"));
    /// ```
    #[must_use]
    pub fn has_event(self, event: &str) -> bool {
        match self {
            Self::Keyed { name } | Self::Broadcast { name } => name == event,
            Self::Stream { variants, .. } => variants.contains(&event),
        }
    }
}

/// An event type that travels over a [`Backplane`](crate::Backplane) and an SSE route.
///
/// Do not implement this trait by hand: derive it, which checks the attribute at compile time
/// and registers the event for the TypeScript manifest. The derive's documentation is the
/// reference of the `#[sse(..)]` attribute.
///
/// This trait describes the event: its domain, names, key and channels. Its typed `publish` and
/// `stream` functions come from [`SseEventExt`](crate::backplane::SseEventExt), implemented for
/// every event and brought into scope by `statelesse::prelude::*`.
///
/// ```
/// use statelesse::prelude::*;
/// # use ts_rs::TS;
///
/// #[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
/// #[sse(domain = "game", key = "game_id")]
/// pub struct PlayerJoined {
///     pub game_id: u64,
///     pub player_name: String,
/// }
///
/// assert_eq!(PlayerJoined::DOMAIN, "game");
/// assert_eq!(PlayerJoined::PATH, "/sse/game/{game_id}/player-joined");
/// assert_eq!(PlayerJoined::channel(&7).name(), "game:7:PlayerJoined");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an SSE event",
    label = "`{Self}` does not implement `SseEvent`",
    note = "add `#[derive(SseEvent)]` and an `#[sse(domain = \"..\")]` attribute to `{Self}`"
)]
pub trait SseEvent: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The type of the key that selects a channel; `()` for keyless (broadcast) events.
    type Key: ChannelKey;

    /// The domain, first segment of every channel name of this type.
    const DOMAIN: &'static str;

    /// The name of the key field; `None` for broadcast events.
    const KEY_FIELD: Option<&'static str>;

    /// Whether this is a keyed event, a broadcast event or an enum domain stream.
    const KIND: EventKind;

    /// The route path template, e.g. `/sse/game/{game_id}/player-joined`.
    const PATH: &'static str;

    /// Whether the type keeps presence (`#[sse(presence = Member)]`, which also implements
    /// [`Presence`](crate::Presence)): its channels then carry `join` and `leave` events and
    /// its routes send a `presence` frame first. `false` unless the derive says otherwise.
    const PRESENCE: bool = false;

    /// The key of this event's channel.
    fn key(&self) -> &Self::Key;

    /// The SSE event name of this value (the variant's name for an enum).
    fn event_name(&self) -> &'static str;

    /// Serializes the SSE `data` of this value as compact JSON.
    ///
    /// # Errors
    ///
    /// When the payload's `Serialize` implementation fails.
    fn to_data(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }

    /// Rebuilds a value from its SSE event name and `data`.
    ///
    /// # Errors
    ///
    /// When `data` is not the JSON of this type, or `event` names no variant of it.
    fn from_data(event: &str, data: &[u8]) -> serde_json::Result<Self> {
        let _ = event;
        serde_json::from_slice(data)
    }
}
