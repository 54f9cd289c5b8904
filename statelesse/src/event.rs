//! The [`SseEvent`] trait: what `#[derive(SseEvent)]` implements for an event type.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Backplane, BackplaneError, Channel, ChannelKey, EventId, Subscription};

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
    /// An enum: one domain stream per key, `{domain}:{key}`, each variant its own SSE event name.
    Stream {
        /// The name of the enum type.
        name: &'static str,
        /// The SSE event name of every variant, in declaration order.
        variants: &'static [&'static str],
    },
}

impl EventKind {
    /// The type's name as used in routes and the manifest: the event name, or the enum's name.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Keyed { name } | Self::Broadcast { name } | Self::Stream { name, .. } => name,
        }
    }
}

/// An event type that travels over a [`Backplane`] and an SSE route.
///
/// Do not implement this trait by hand: derive it, which checks the attribute at compile time
/// and registers the event for the TypeScript manifest. The derive's documentation is the
/// reference of the `#[sse(..)]` attribute.
///
/// The provided functions are the typed API, usable once `statelesse::prelude::*` is imported:
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
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bp = Backplane::in_memory();
/// assert_eq!(PlayerJoined::channel(&7).name(), "game:7:PlayerJoined");
///
/// let mut joined = PlayerJoined::stream(&bp, &7).await?;
/// PlayerJoined::publish(&bp, PlayerJoined { game_id: 7, player_name: "ada".into() }).await?;
///
/// let received = joined.next().await.unwrap()?;
/// assert_eq!(received.event.player_name, "ada");
/// # Ok(())
/// # }
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

    /// The channel of this type for `key`.
    #[must_use]
    fn channel(key: &Self::Key) -> Channel<Self> {
        Channel::new(key)
    }

    /// Publishes `event` on the channel of its key; returns the id it was given.
    ///
    /// # Errors
    ///
    /// See [`Backplane::publish`].
    fn publish(
        backplane: &Backplane,
        event: Self,
    ) -> impl Future<Output = Result<EventId, BackplaneError>> + Send + '_ {
        async move { backplane.publish(&event).await }
    }

    /// Subscribes to the channel of `key` on `backplane`.
    ///
    /// # Errors
    ///
    /// See [`Backplane::subscribe`].
    fn stream<'a>(
        backplane: &'a Backplane,
        key: &Self::Key,
    ) -> impl Future<Output = Result<Subscription<Self>, BackplaneError>> + Send + 'a {
        let channel = Self::channel(key);
        async move { backplane.subscribe(&channel).await }
    }
}
