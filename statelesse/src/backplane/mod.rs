//! [`Backplane`]: the cheap-to-clone handle that publishes and subscribes typed events.
//!
//! A backplane carries events between server instances through a [`Transport`]: in memory (the
//! default, one process) or Redis (many instances). Each publish serializes its event once; every
//! local subscriber then shares the same bytes.
//!
//! [`SseEventExt`] gives every event type its typed `channel`, `publish` and `stream` functions over a
//! backplane; the [prelude](crate::prelude) brings it into scope.

pub(crate) mod error;
pub(crate) mod hub;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub mod replay;
pub mod subscription;
pub mod transport;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::channel::{self, Channel};
use crate::diagnostics::Diagnostics;
use crate::event::SseEvent;
use crate::health::Health;
#[cfg(doc)]
use crate::health::HealthStatus;
use crate::id::EventId;
use crate::registry::{self, ChannelCollision};
use crate::telemetry::{EventMetrics, EventMetricsCache, Started};
use error::{BackplaneError, ErrorKind};
use memory::{MemoryConfig, MemoryTransport};
use replay::Replayer;
use subscription::{RawSubscription, Received, Subscription};
use tracing::Instrument as _;
use transport::{OutgoingEvent, Transport};

/// The default largest serialized event accepted by [`Backplane::publish`]: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

/// Publishes and subscribes typed events over a transport.
///
/// Cloning is cheap (a reference count); every clone shares the same transport.
///
/// # Examples
///
/// ```
/// use statelesse::prelude::*;
/// # use ts_rs::TS;
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
/// #[sse(domain = "game", key = "game_id")]
/// pub struct ScoreChanged {
///     pub game_id: u32,
///     pub score: i64,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BackplaneError> {
/// let bp = Backplane::in_memory();
/// let mut scores = bp.subscribe(&ScoreChanged::channel(&1)).await?;
/// let id = bp.publish(&ScoreChanged { game_id: 1, score: 10 }).await?;
///
/// let received = scores.next().await.unwrap().unwrap();
/// assert_eq!((received.id, received.event.score), (id, 10));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Backplane {
    transport: Arc<dyn Transport>,
    replayer: Arc<Replayer>,
    max_payload: usize,
    /// [`Diagnostics::malformed_events`]: shared with every route and subscription of this
    /// backplane, which count what they drop.
    malformed: Arc<AtomicU64>,
    /// The program's colliding event types (see [`registry::collisions`]), `None` when there are
    /// none: then the check each operation makes is one branch.
    collisions: Option<&'static [ChannelCollision]>,
    /// The series of each event type used on this backplane (see `docs/observability.md`).
    metrics: Arc<EventMetricsCache>,
}

impl Backplane {
    /// A backplane over the in-memory transport with default settings.
    #[must_use]
    pub fn in_memory() -> Self {
        Self::new(MemoryTransport::default())
    }

    /// A backplane over the in-memory transport with `config`.
    #[must_use]
    pub fn in_memory_with(config: MemoryConfig) -> Self {
        Self::new(MemoryTransport::new(config))
    }

    /// A backplane over any transport.
    ///
    /// It cannot fail: if two registered event types take the same name in one domain (see
    /// [`registry::collisions`]), it logs them once, and every operation on either type fails
    /// with [`ErrorKind::ChannelCollision`]. `Backplane::redis` refuses them at start-up.
    #[must_use]
    pub fn new(transport: impl Transport) -> Self {
        let config = transport.replay_config();
        let transport: Arc<dyn Transport> = Arc::new(transport);
        Self {
            replayer: Arc::new(Replayer::new(Arc::clone(&transport), config)),
            transport,
            max_payload: DEFAULT_MAX_PAYLOAD,
            malformed: Arc::default(),
            collisions: registry::program_collisions(),
            metrics: Arc::default(),
        }
    }

    /// Sets the largest serialized event [`publish`](Self::publish) accepts, in bytes.
    #[must_use]
    pub fn with_max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// The transport underneath: the escape hatch to raw, untyped channel names.
    #[must_use]
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Publishes `event` on the channel of its key; returns the id it was given.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Encode`] if it does not serialize, [`ErrorKind::PayloadTooLarge`] past the
    /// maximum payload, [`ErrorKind::Closed`] after [`shutdown`](Self::shutdown), and
    /// [`ErrorKind::Unavailable`] or [`ErrorKind::Timeout`] when the transport's server is down:
    /// an event is never dropped silently. [`ErrorKind::ChannelCollision`] when another event
    /// type takes `E`'s name in its domain.
    pub async fn publish<E: SseEvent>(&self, event: &E) -> Result<EventId, BackplaneError> {
        let metrics = self.metrics.get::<E>();
        let started = Started::now();
        let span = tracing::debug_span!("publish", domain = E::DOMAIN, event = event.event_name());
        let result = async {
            // The name alone: a publish has no use for a shareable `Channel`.
            let channel = channel::name_of::<E>(event.key());
            self.refuse_collision::<E>(&channel)?;
            let data = self.encode(event, &channel)?;
            self.transport
                .publish(&channel, event.event_name().into(), data)
                .await
        }
        .instrument(span)
        .await;
        metrics.published(started, [&result]);
        result
    }

    /// Publishes `event` on each of `channels`, serialized once and sent all at once (on Redis,
    /// batched into as few script calls as it takes); returns each channel's outcome, in the order
    /// of `channels`.
    ///
    /// The channels are independent: a failure on one (its server down, a timeout) says nothing
    /// of the others, so a caller retries exactly the channels whose result is an error. A
    /// `Timeout` may still have been published, as for [`publish`](Self::publish).
    ///
    /// # Errors
    ///
    /// The outer error, [`ErrorKind::Encode`], [`ErrorKind::PayloadTooLarge`] or
    /// [`ErrorKind::ChannelCollision`], means nothing was published.
    ///
    /// ```
    /// use statelesse::prelude::*;
    /// # use ts_rs::TS;
    ///
    /// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
    /// #[sse(domain = "user", key = "user_id")]
    /// pub struct Mentioned {
    ///     pub user_id: u32,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), BackplaneError> {
    /// let bp = Backplane::in_memory();
    /// let channels = [Mentioned::channel(&1), Mentioned::channel(&2)];
    /// let results = bp.publish_to(&channels, &Mentioned { user_id: 0 }).await?;
    /// assert!(results.iter().all(Result::is_ok));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish_to<E: SseEvent>(
        &self,
        channels: &[Channel<E>],
        event: &E,
    ) -> Result<Vec<Result<EventId, BackplaneError>>, BackplaneError> {
        let Some(first) = channels.first() else {
            return Ok(Vec::new());
        };
        let metrics = self.metrics.get::<E>();
        let started = Started::now();
        let span = tracing::debug_span!(
            "publish",
            domain = E::DOMAIN,
            event = event.event_name(),
            channels = channels.len()
        );
        let results = async {
            self.refuse_collision::<E>(first.name())?;
            let data = self.encode(event, first.name())?;
            let publishes = channels.iter().map(|channel| {
                self.transport
                    .publish(channel.name(), event.event_name().into(), data.clone())
            });
            Ok(futures_util::future::join_all(publishes).await)
        }
        .instrument(span)
        .await;
        record_batch(&metrics, started, &results);
        results
    }

    /// Publishes `events`, in order, each on the channel of its key: the bulk publisher's call.
    /// Returns each event's outcome, in the order of `events`.
    ///
    /// Every event is serialized first; then, on Redis, they all go in one script call (one
    /// round trip) when they fit in one batch (256 events and 512 KiB), else in consecutive
    /// batches, in order; in memory it is a loop. Events on one channel are delivered in the
    /// order given, with increasing ids.
    ///
    /// Each result is that event's own: an event whose append failed on Redis (its stream key
    /// holds another type, say) fails alone. A failure of the connection fails every event of
    /// the batch it was in, and the later batches fail or succeed on their own, so after an
    /// error retry that event and, to keep a channel's order, those after it on its channel.
    /// A `Timeout` may still have been published, as for [`publish`](Self::publish).
    ///
    /// # Errors
    ///
    /// The outer error, [`ErrorKind::Encode`] or [`ErrorKind::PayloadTooLarge`] for any of the
    /// events, means nothing was published.
    ///
    /// ```
    /// use statelesse::prelude::*;
    /// # use ts_rs::TS;
    ///
    /// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
    /// #[sse(domain = "game", key = "game_id")]
    /// pub struct Scored {
    ///     pub game_id: u32,
    ///     pub points: u32,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), BackplaneError> {
    /// let bp = Backplane::in_memory();
    /// let events: Vec<Scored> = (1..=3).map(|points| Scored { game_id: 7, points }).collect();
    /// let ids = bp.publish_many(&events).await?;
    /// let ids: Vec<EventId> = ids.into_iter().collect::<Result<_, _>>()?;
    /// assert!(ids[0] < ids[1] && ids[1] < ids[2]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish_many<E: SseEvent>(
        &self,
        events: &[E],
    ) -> Result<Vec<Result<EventId, BackplaneError>>, BackplaneError> {
        let metrics = self.metrics.get::<E>();
        let started = Started::now();
        let span = tracing::debug_span!("publish", domain = E::DOMAIN, events = events.len());
        let results = async {
            let mut outgoing = Vec::with_capacity(events.len());
            for event in events {
                let channel = channel::name_of::<E>(event.key());
                let data = self.encode(event, &channel)?;
                outgoing.push(OutgoingEvent::new(channel, event.event_name().into(), data));
            }
            Ok(self.transport.publish_many(outgoing).await)
        }
        .instrument(span)
        .await;
        record_batch(&metrics, started, &results);
        results
    }

    /// Subscribes to `channel`; the stream yields every event published after this returns.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] after shutdown; [`ErrorKind::Unavailable`] or
    /// [`ErrorKind::Timeout`] when the transport's server cannot confirm the subscription;
    /// [`ErrorKind::ChannelCollision`] when another event type takes `E`'s name in its domain.
    pub async fn subscribe<E: SseEvent>(
        &self,
        channel: &Channel<E>,
    ) -> Result<Subscription<E>, BackplaneError> {
        self.subscribe_after(channel, None).await
    }

    /// Subscribes to `channel`, first replaying the events after `last_id` from history.
    ///
    /// With `Some(id)`, the stream yields the events after `id` still in history, then live
    /// events, with no gap and no duplicate at the seam; if history no longer covers everything
    /// after `id`, it yields a [`Gap`](transport::Gap) first. With `None` it is
    /// [`subscribe`](Self::subscribe).
    ///
    /// # Errors
    ///
    /// As [`subscribe`](Self::subscribe).
    pub async fn subscribe_after<E: SseEvent>(
        &self,
        channel: &Channel<E>,
        last_id: Option<EventId>,
    ) -> Result<Subscription<E>, BackplaneError> {
        let raw = self.subscribe_raw(channel, last_id).await?;
        Ok(Subscription::new(raw, Arc::clone(&self.malformed)))
    }

    /// The events of `channel` still in history after `after` (all of them with `None`), oldest
    /// first: for building a snapshot, or catching up without subscribing.
    ///
    /// History is read a page at a time through the instance's shared reader (see
    /// [`replay`]), so Redis never buffers more than a page for it; the result holds every
    /// event, decoded, so its size is bounded by the channel's history length.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] or [`ErrorKind::Timeout`] when the transport's server cannot
    /// be read, [`ErrorKind::Busy`] when the instance's read budget stays exhausted,
    /// [`ErrorKind::ChannelCollision`] when another event type takes `E`'s name in its domain.
    pub async fn history<E: SseEvent>(
        &self,
        channel: &Channel<E>,
        after: Option<EventId>,
    ) -> Result<Replay<E>, BackplaneError> {
        self.refuse_collision::<E>(channel.name())?;
        let since = tokio::time::Instant::now();
        let mut cursor = after.unwrap_or_default();
        let mut complete = None;
        let mut events = Vec::new();
        loop {
            let page = self.replayer.page(channel.name(), cursor, since).await?;
            // Whether history reached back to `after` is the first page's to say.
            let complete = complete.get_or_insert(page.complete);
            for message in &page.events {
                cursor = message.id();
                if subscription::is_presence_change_of::<E>(message.event()) {
                    continue;
                }
                match subscription::decode::<E>(message) {
                    Ok(event) => events.push(Received {
                        id: message.id(),
                        event,
                    }),
                    Err(err) => {
                        *complete = false;
                        tracing::warn!(channel = channel.name(), id = %message.id(), error = %err, "skipping an undecodable event in history");
                    }
                }
            }
            if !page.more || page.events.is_empty() {
                let complete = *complete;
                return Ok(Replay { events, complete });
            }
        }
    }

    /// The untyped subscription behind [`subscribe_after`](Self::subscribe_after) and the routes:
    /// typed by its channel, so that no caller can skip the collision check.
    pub(crate) async fn subscribe_raw<E: SseEvent>(
        &self,
        channel: &Channel<E>,
        last_id: Option<EventId>,
    ) -> Result<RawSubscription, BackplaneError> {
        self.refuse_collision::<E>(channel.name())?;
        RawSubscription::open(
            Arc::clone(&self.replayer),
            channel.name(),
            last_id,
            self.metrics.get::<E>(),
        )
        .await
    }

    /// A subscription to a channel by name, for unit tests of what consumes one.
    #[cfg(all(test, feature = "axum"))]
    pub(crate) async fn subscribe_name(&self, channel: &str) -> RawSubscription {
        let metrics = EventMetrics::new("test", "test");
        RawSubscription::open(Arc::clone(&self.replayer), channel, None, metrics)
            .await
            .expect("subscribe")
    }

    /// The members of `channel` on every instance, as the transport stores them (identities as
    /// JSON bytes), oldest first, at most
    /// [`MAX_PRESENCE_MEMBERS`](crate::presence::MAX_PRESENCE_MEMBERS). The typed read is
    /// [`PresenceExt::presence`](crate::PresenceExt::presence).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unavailable`] or [`ErrorKind::Timeout`] when the transport's server cannot
    /// be read, [`ErrorKind::Unsupported`] on a transport that keeps no presence,
    /// [`ErrorKind::ChannelCollision`] when another event type takes `E`'s name in its domain.
    pub async fn presence<E: SseEvent>(
        &self,
        channel: &Channel<E>,
    ) -> Result<Vec<crate::PresenceEntry>, BackplaneError> {
        self.refuse_collision::<E>(channel.name())?;
        self.transport.presence(channel.name()).await
    }

    /// The number of members of `channel` on every instance.
    ///
    /// # Errors
    ///
    /// As [`presence`](Self::presence).
    pub async fn presence_count<E: SseEvent>(
        &self,
        channel: &Channel<E>,
    ) -> Result<usize, BackplaneError> {
        self.refuse_collision::<E>(channel.name())?;
        self.transport.presence_count(channel.name()).await
    }

    /// Counts one connection of `member` on `channel` until the returned interest is dropped:
    /// what a presence route does for each connection with an identity.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) async fn presence_enter<E: SseEvent>(
        &self,
        channel: &Channel<E>,
        member: Bytes,
    ) -> Result<transport::Interest, BackplaneError> {
        self.refuse_collision::<E>(channel.name())?;
        self.transport.presence_enter(channel.name(), member).await
    }

    /// Decodes `entries` as members of type `M`, skipping (and counting as malformed) those
    /// that do not decode.
    pub(crate) fn decode_members<M: serde::de::DeserializeOwned>(
        &self,
        channel: &str,
        entries: &[crate::PresenceEntry],
    ) -> Vec<crate::Member<M>> {
        entries
            .iter()
            .filter_map(|entry| match serde_json::from_slice(&entry.member) {
                Ok(member) => Some(crate::Member {
                    member,
                    connections: entry.connections,
                    since: entry.since,
                }),
                Err(err) => {
                    self.malformed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(channel, error = %err, "skipping a member identity that does not decode");
                    None
                }
            })
            .collect()
    }

    /// The number of local subscribers of `channel` on this instance.
    #[must_use]
    pub fn local_subscriber_count<E>(&self, channel: &Channel<E>) -> usize {
        self.transport.local_subscriber_count(channel.name())
    }

    /// The names of the channels with local subscribers on this instance, sorted.
    #[must_use]
    pub fn local_channels(&self) -> Vec<String> {
        self.diagnostics().channels.into_keys().collect()
    }

    /// A snapshot of this instance's channels, subscribers and transport state.
    #[must_use]
    pub fn diagnostics(&self) -> Diagnostics {
        let mut diagnostics = self.transport.diagnostics();
        diagnostics.malformed_events = self.malformed.load(Ordering::Relaxed);
        diagnostics
    }

    /// Whether this backplane can serve: [`Ready`](HealthStatus::Ready),
    /// [`Degraded`](HealthStatus::Degraded) (on Redis: the pub/sub connection is lost and being
    /// re-established) or [`Down`](HealthStatus::Down) (shut down, or a lazily built Redis
    /// backplane that has not connected yet), with the reasons. Cheap: a few atomic loads, for a
    /// probe as often as wanted. `routes::readiness` serves it over HTTP.
    #[must_use]
    pub fn health(&self) -> Health {
        self.transport.health()
    }

    /// The counter of [`Diagnostics::malformed_events`], for the routes.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn malformed_counter(&self) -> &Arc<AtomicU64> {
        &self.malformed
    }

    /// Ends every local subscription cleanly and releases the transport (for Redis: unsubscribes
    /// and closes its connections); later publishes and subscribes fail with [`ErrorKind::Closed`].
    pub async fn shutdown(&self) {
        self.transport.shutdown().await;
    }

    /// Fails when `E` is one of the program's colliding event types: its channels may be another
    /// type's, and serving them would deliver one type's events as the other's.
    #[inline]
    fn refuse_collision<E: SseEvent>(&self, channel: &str) -> Result<(), BackplaneError> {
        match self.collisions {
            None => Ok(()),
            Some(collisions) => refuse_colliding::<E>(collisions, channel),
        }
    }

    fn encode<E: SseEvent>(&self, event: &E, channel: &str) -> Result<Bytes, BackplaneError> {
        let data = event.to_data().map_err(|err| {
            BackplaneError::with_source(ErrorKind::Encode, err).on_channel(channel)
        })?;
        if data.len() > self.max_payload {
            return Err(BackplaneError::with_source(
                ErrorKind::PayloadTooLarge,
                format!("{} bytes, the maximum is {}", data.len(), self.max_payload),
            )
            .on_channel(channel));
        }
        Ok(Bytes::from(data))
    }
}

/// Records a batch publish: each event's outcome, or one error when the batch was refused whole.
fn record_batch(
    metrics: &EventMetrics,
    started: Started,
    results: &Result<Vec<Result<EventId, BackplaneError>>, BackplaneError>,
) {
    match results {
        Ok(results) => metrics.published(started, results),
        Err(err) => {
            metrics.published(started, std::iter::empty());
            metrics.publish_error(err.kind());
        }
    }
}

/// The slow path of [`Backplane::refuse_collision`], out of line: a program with colliding types.
#[cold]
#[inline(never)]
fn refuse_colliding<E: SseEvent>(
    collisions: &[ChannelCollision],
    channel: &str,
) -> Result<(), BackplaneError> {
    match registry::collision_of::<E>(collisions) {
        None => Ok(()),
        Some(collision) => Err(BackplaneError::with_source(
            ErrorKind::ChannelCollision,
            collision.clone(),
        )
        .on_channel(channel)),
    }
}

/// The typed `publish` and `stream` functions of every [`SseEvent`], over a [`Backplane`].
///
/// Implemented for every event type and brought into scope by `statelesse::prelude::*`, so that
/// `PlayerJoined::publish(&bp, event)` and `PlayerJoined::stream(&bp, &key)` read as functions of
/// the event type. It lives here rather than on [`SseEvent`] so that the trait the derive
/// implements does not depend on the runtime.
///
/// # Examples
///
/// ```rust,standalone_crate
/// # // Alone: merged with the other examples, its `PlayerJoined` would collide with theirs.
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
/// let mut joined = PlayerJoined::stream(&bp, &7).await?;
/// PlayerJoined::publish(&bp, PlayerJoined { game_id: 7, player_name: "ada".into() }).await?;
///
/// let received = joined.next().await.unwrap()?;
/// assert_eq!(received.event.player_name, "ada");
/// # Ok(())
/// # }
/// ```
pub trait SseEventExt: SseEvent {
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

impl<E: SseEvent> SseEventExt for E {}

/// The result of [`Backplane::history`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Replay<E> {
    /// The events found, oldest first.
    pub events: Vec<Received<E>>,
    /// `false` when events in the requested range are no longer in history (trimmed, expired,
    /// unknown id, or undecodable), so the events are not everything that was published.
    pub complete: bool,
}

impl Default for Backplane {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl fmt::Debug for Backplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backplane")
            .field("transport", &self.transport)
            .field("max_payload", &self.max_payload)
            .finish_non_exhaustive()
    }
}
