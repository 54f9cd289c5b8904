//! Multiplexed routes ([`MuxRoutes`]): the channels of several event types on one connection,
//! resumed together by one cursor.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Query, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_core::Stream;
use tracing::Span;

use super::cursor::{self, Cursor, Encoder};
use super::error::{ChannelsProblem, InvalidChannels, InvalidCursor};
use super::stream::{Chunk, Feed, Source, Watchdog};
use super::{
    ConnectionLimit, Rejected, SNAPSHOT_EVENT, Settings, Shutdown, SseRoutes, frame, observed,
};
use crate::backplane::subscription::RawSubscription;
use crate::backplane::transport::BoxFuture;
use crate::backplane::transport::Interest;
use crate::protocol::{CURSOR_EVENT, GAP_EVENT, LAST_EVENT_ID_QUERY, PRESENCE_EVENT};
use crate::telemetry::{Rejection, RouteMetrics};
use crate::{Backplane, BackplaneError, Channel, ChannelKey, EventId, EventKind, Gap, SseEvent};

/// The default maximum number of channels on one connection of a multiplexed route: 32.
pub const DEFAULT_MAX_CHANNELS: usize = 32;

/// The longest body of a denial kept when naming the channel it concerns: the hook's own text.
const MAX_DENIAL_BODY: usize = 4096;

/// A route carrying the channels of several event types on one connection, resumed by one
/// cursor.
///
/// A browser holds six HTTP/1.1 connections per origin; a page that follows five games and its
/// user's notifications through [single routes](super::SseRouteExt) spends all six. A
/// multiplexed route carries them on one.
///
/// # Requests
///
/// `GET <path>?<Type>=<key>&<Type>=<key>&<Keyless>`: each query parameter names one channel, by
/// its event type's name ([`EventKind::name`]: the struct's, or the enum's for a domain stream)
/// and, for a keyed type, the key (percent-encoded, parsed as the type's key). A keyless
/// (broadcast) type takes no value. Channels are numbered from 0 in the order the query gives
/// them. The query may also hold `lastEventId`.
///
/// # Frames
///
/// Each frame's `event` says which channel it belongs to and which event it is:
/// `<n>:<Type>.<event>`, where `<n>` is the channel's number, `<Type>` its event type's name and
/// `<event>` the SSE event name of a single route (the struct's name, the variant's, `gap` or
/// `snapshot`); `data` is the single route's:
///
/// ```text
/// id: 1765123456789-0.<cursor>
/// event: 1:GameEvent.RoundStarted
/// data: {"game_id":7,"round":2}
///
/// ```
///
/// # Cursor
///
/// The stream starts, after its `retry` hint, with a [`CURSOR_EVENT`] frame (`event: cursor`,
/// `data: {}`) whose `id` is the cursor of the positions the channels start from, then the
/// snapshots of the channels that start fresh.
///
/// Every `id` is the event's own id (as a single route would send it), a `.`, and a cursor: the
/// position of every channel of the connection, compact (about 17 characters a channel),
/// versioned, URL-safe and bounded by [`max_channels`](Self::max_channels).
/// A client that reconnects with it, in `Last-Event-ID` (as `EventSource` does itself) or
/// `lastEventId`, on this instance or any other one, resumes every channel after its position,
/// with the paged replay of single routes: no loss and no duplicate per channel. A channel the
/// cursor does not hold (one added on reconnect) starts live, with its initial state; one the
/// cursor holds but the request does not name is dropped. So changing the set of channels is a
/// reconnect with the last cursor. A cursor this route did not write, truncated or altered is a
/// 400 ([`InvalidCursor`]); so is a cursor written before the route's set of event types
/// changed. A position older than its channel's history gets a `gap` for that channel only.
///
/// # Everything else
///
/// Authorization and initial state are per channel, with the hooks of each type's
/// [`SseRoutes`] (given to [`event`](Self::event)): the request is refused if any channel is
/// denied, with the denial's status and the channel named in its body. Keep-alive, retry hint,
/// write timeout, connection limit (one connection, however many channels) and shutdown work as
/// on single routes, and are this route's own settings. Bad requests are 400
/// ([`InvalidChannels`], [`InvalidCursor`]).
///
/// # Examples
///
/// ```
/// use axum::Router;
/// use statelesse::prelude::*;
/// use statelesse::routes::MuxRoutes;
///
/// #[derive(Clone, Serialize, Deserialize, SseEvent)]
/// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
/// #[sse(domain = "game", key = "game_id")]
/// pub struct PlayerJoined {
///     pub game_id: u64,
///     pub player_name: String,
/// }
///
/// #[derive(Clone, Serialize, Deserialize, SseEvent)]
/// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
/// #[sse(domain = "site")]
/// pub struct Announcement {
///     pub text: String,
/// }
///
/// // GET /sse/page?PlayerJoined=1&PlayerJoined=2&Announcement
/// let app: Router = Router::new()
///     .merge(
///         MuxRoutes::new("/sse/page")
///             .event(PlayerJoined::sse_routes())
///             .event(Announcement::sse_routes())
///             .max_channels(16),
///     )
///     .with_state(Backplane::in_memory());
/// # drop(app);
/// ```
pub struct MuxRoutes<S> {
    path: String,
    types: Vec<Arc<dyn MuxType<S>>>,
    max_channels: usize,
    settings: Settings,
}

impl<S> MuxRoutes<S>
where
    S: Clone + Send + Sync + 'static,
    Backplane: FromRef<S>,
{
    /// A multiplexed route at `path` with no event type yet, at most [`DEFAULT_MAX_CHANNELS`]
    /// channels per connection, and the default settings of single routes.
    #[must_use]
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            types: Vec::new(),
            max_channels: DEFAULT_MAX_CHANNELS,
            settings: Settings::default(),
        }
    }

    /// Carries the channels of `E`, with the authorization and initial-state hooks of `routes`
    /// (its other settings are this route's own).
    ///
    /// # Panics
    ///
    /// If the route already carries a type of the same name ([`EventKind::name`]): the query
    /// could not tell them apart.
    #[must_use]
    pub fn event<E: SseEvent>(mut self, routes: SseRoutes<E, S>) -> Self {
        let name = E::KIND.name();
        assert!(
            self.types.iter().all(|other| other.kind().name() != name),
            "a multiplexed route carries one event type named `{name}` at most"
        );
        self.types.push(Arc::new(Typed(Arc::new(routes))));
        self
    }

    /// Sets the most channels one connection may ask for; more is a 400. Defaults to
    /// [`DEFAULT_MAX_CHANNELS`]. It also bounds the cursor: about 17 characters a channel, 28
    /// bytes at most.
    #[must_use]
    pub fn max_channels(mut self, max: usize) -> Self {
        self.max_channels = max;
        self
    }

    /// Sets the keep-alive interval, as [`SseRoutes::keep_alive`] does.
    #[must_use]
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.settings.keep_alive = interval;
        self
    }

    /// Sets the `retry` hint, as [`SseRoutes::retry`] does.
    #[must_use]
    pub fn retry(mut self, after: Duration) -> Self {
        self.settings.retry = after;
        self
    }

    /// Sets the write timeout, as [`SseRoutes::write_timeout`] does.
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.settings.write_timeout = timeout;
        self
    }

    /// Limits this route to `max` open connections on this instance, as
    /// [`SseRoutes::max_connections`] does.
    #[must_use]
    pub fn max_connections(self, max: usize) -> Self {
        self.connection_limit(&ConnectionLimit::new(max))
    }

    /// Counts this route's connections against `limit`, as [`SseRoutes::connection_limit`] does:
    /// one slot per connection, however many channels it carries.
    #[must_use]
    pub fn connection_limit(mut self, limit: &ConnectionLimit) -> Self {
        self.settings.limit = Some(limit.clone());
        self
    }

    /// Ends every open stream of this route when `shutdown` is triggered; see [`Shutdown`].
    #[must_use]
    pub fn shutdown(mut self, shutdown: &Shutdown) -> Self {
        self.settings.shutdown = Some(shutdown.clone());
        self
    }

    /// The router serving `GET` at the route's path, to merge into the app.
    pub fn into_router(self) -> Router<S> {
        let path = self.path.clone();
        let route = Arc::new(Route {
            // One watchdog task for all the route's connections, not one each.
            watchdog: Watchdog::new(self.settings.write_timeout),
            fingerprint: cursor::route_fingerprint(self.types.iter().map(|ty| ty.kind().name())),
            metrics: RouteMetrics::multiplexed(&self.path),
            config: self,
        });
        let handler = move |State(state): State<S>, request: Request| {
            let route = Arc::clone(&route);
            async move { route.serve(state, request).await }
        };
        Router::new().route(&path, get(handler))
    }

    /// The channels the query asks for, parsed and checked, in its order.
    fn channels(&self, parts: &Parts) -> Result<Vec<Wanted<S>>, ChannelsProblem> {
        let Query(params) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ChannelsProblem::Query)?;
        let params: Vec<_> = params
            .into_iter()
            .filter(|(name, _)| name != LAST_EVENT_ID_QUERY)
            .collect();
        if params.is_empty() {
            return Err(ChannelsProblem::NoChannel);
        }
        // Counted before any key is parsed: a long query costs no more than the maximum.
        if params.len() > self.max_channels {
            return Err(ChannelsProblem::TooMany {
                max: self.max_channels,
            });
        }
        let mut wanted: Vec<Wanted<S>> = Vec::with_capacity(params.len());
        for (name, key) in params {
            let Some(ty) = self.types.iter().find(|ty| ty.kind().name() == name) else {
                return Err(ChannelsProblem::UnknownType {
                    name: name.chars().take(64).collect(),
                });
            };
            let event = ty.kind().name();
            let channel = ty.want(&key)?;
            if wanted
                .iter()
                .any(|other| other.channel.name() == channel.name())
            {
                return Err(ChannelsProblem::Duplicate {
                    event,
                    key: key.chars().take(64).collect(),
                });
            }
            wanted.push(Wanted {
                event,
                key,
                channel,
            });
        }
        Ok(wanted)
    }
}

/// A multiplexed route as it serves: its settings, and what it shares among its connections.
struct Route<S> {
    config: MuxRoutes<S>,
    watchdog: Option<Watchdog>,
    /// Its event types' names, hashed: what its cursors are bound to.
    fingerprint: u32,
    /// The route's series, shared by its connections.
    metrics: RouteMetrics,
}

impl<S> Route<S>
where
    S: Clone + Send + Sync + 'static,
    Backplane: FromRef<S>,
{
    /// Serves one request, in the connection's span; counts and logs a rejection.
    async fn serve(&self, state: S, request: Request) -> Response {
        let span = tracing::info_span!(
            "sse_connection",
            route = self.config.path.as_str(),
            domain = "mux",
            channels = tracing::field::Empty,
            resume = tracing::field::Empty,
        );
        observed(&self.metrics, span.clone(), self.open(state, request, span)).await
    }

    async fn open(&self, state: S, request: Request, span: Span) -> Result<Response, Rejected> {
        let config = &self.config;
        let (parts, _body) = request.into_parts();
        let wanted = config.channels(&parts).map_err(|problem| {
            Rejected(
                Rejection::InvalidChannels,
                InvalidChannels::new(problem).into_response(),
            )
        })?;
        span.record("channels", wanted.len());
        let cursor = match super::last_event_id_text(&parts) {
            Ok(None) => None,
            Ok(Some(text)) => Some(
                cursor::decode(&text, self.fingerprint, config.max_channels).map_err(|err| {
                    Rejected(
                        Rejection::InvalidCursor,
                        InvalidCursor::new(err).into_response(),
                    )
                })?,
            ),
            Err(rejection) => {
                return Err(Rejected(
                    Rejection::InvalidLastEventId,
                    rejection.into_response(),
                ));
            }
        };
        span.record("resume", cursor.is_some());
        let permit = config.settings.admit()?;
        let members = identify(&wanted, &parts, &state).await?;
        let backplane = Backplane::from_ref(&state);
        // Entered before subscribing, as on single routes: no channel receives its own `join`.
        let leases = enter(&backplane, &wanted, members)
            .await
            .map_err(|err| config.settings.unavailable(err))?;
        let mut opened = open(&backplane, &wanted, cursor.as_ref())
            .await
            .map_err(|err| config.settings.unavailable(err))?;
        let mut presence_frames = Vec::new();
        for ((opened, wanted), lease) in opened.iter_mut().zip(&wanted).zip(leases) {
            opened.lease = lease;
            if let Some(listing) = wanted.channel.presence_list(&backplane) {
                let members = listing
                    .await
                    .map_err(|err| config.settings.unavailable(err))?;
                presence_frames.push(frame::tagged(
                    None,
                    &opened.label,
                    PRESENCE_EVENT,
                    &frame::data_line(&members),
                ));
            }
        }
        if cursor.is_some() {
            tracing::info!("SSE connection resumed");
        }
        let mut channels = Channels::new(
            opened,
            self.fingerprint,
            Arc::clone(backplane.malformed_counter()),
        );
        let mut head = config.settings.head(2 * wanted.len() + 1);
        head.push_back(channels.start());
        head.extend(presence_frames);
        for (n, wanted) in wanted.iter().enumerate() {
            // Indexed, not borrowed across the await: a subscription is `Send` but not `Sync`.
            if channels.open[n].resumed {
                continue;
            }
            if let Some(initial_state) = wanted.channel.initial_state(&state) {
                let json = initial_state
                    .await
                    .map_err(|response| Rejected(Rejection::SnapshotFailed, response))?;
                head.push_back(frame::tagged(
                    None,
                    &channels.open[n].label,
                    SNAPSHOT_EVENT,
                    &frame::data_line(&json),
                ));
            }
        }
        Ok(config.settings.stream(
            head,
            Feed {
                source: Source::Many(channels),
                metrics: self.metrics.clone(),
                span,
            },
            self.watchdog.as_ref(),
            permit,
        ))
    }
}

/// Runs every channel's authorization and member hooks, in the query's order: the member
/// identity of each channel (`None` where the connection is a spectator), or the first refusal.
async fn identify<S>(
    wanted: &[Wanted<S>],
    parts: &Parts,
    state: &S,
) -> Result<Vec<Option<Bytes>>, Rejected> {
    let mut members = Vec::with_capacity(wanted.len());
    for wanted in wanted {
        if let Some(decision) = wanted.channel.authorize(parts.clone(), state)
            && let Err(denied) = decision.await
        {
            return Err(Rejected(
                Rejection::Denied,
                name_denied(denied, wanted).await,
            ));
        }
        let member = match wanted.channel.member(parts, state) {
            None => None,
            Some(identity) => match identity.await {
                Ok(member) => member,
                Err(denied) => {
                    let reason = if denied.status().is_server_error() {
                        Rejection::MemberFailed
                    } else {
                        Rejection::Denied
                    };
                    return Err(Rejected(reason, name_denied(denied, wanted).await));
                }
            },
        };
        members.push(member);
    }
    Ok(members)
}

/// Counts the connection as the member of each channel that named one: the leases, one per
/// channel.
async fn enter<S>(
    backplane: &Backplane,
    wanted: &[Wanted<S>],
    members: Vec<Option<Bytes>>,
) -> Result<Vec<Option<Interest>>, BackplaneError> {
    let mut leases = Vec::with_capacity(wanted.len());
    for (wanted, member) in wanted.iter().zip(members) {
        leases.push(match member {
            Some(member) => Some(wanted.channel.enter_presence(backplane, member).await?),
            None => None,
        });
    }
    Ok(leases)
}

/// One channel a request asks for.
struct Wanted<S> {
    event: &'static str,
    /// The key as the query gave it, for messages.
    key: String,
    channel: Box<dyn WantedChannel<S>>,
}

/// A denial of `wanted`, with the channel named before the hook's own body.
async fn name_denied<S>(denied: Response, wanted: &Wanted<S>) -> Response {
    let (mut head, body) = denied.into_parts();
    let body = axum::body::to_bytes(body, MAX_DENIAL_BODY)
        .await
        .unwrap_or_default();
    let channel = if wanted.key.is_empty() {
        wanted.event.to_owned()
    } else {
        format!("{} {}", wanted.event, wanted.key.escape_debug())
    };
    let text = format!("{channel}: {}", String::from_utf8_lossy(&body));
    head.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(head, Body::from(text))
}

/// What a channel of the connection starts with.
struct Opened {
    subscription: RawSubscription,
    kind: EventKind,
    /// `<n>:<Type>.`, the start of its frames' event names.
    label: Box<str>,
    fingerprint: u64,
    /// Whether the cursor held its position.
    resumed: bool,
    /// Whether `join` and `leave` are the channel's too (a presence type).
    presence: bool,
    /// The connection's place among the channel's members, released with the stream.
    lease: Option<Interest>,
}

/// Subscribes to every channel of `wanted`, after its position in `cursor` if it has one.
async fn open<S>(
    backplane: &Backplane,
    wanted: &[Wanted<S>],
    cursor: Option<&Cursor>,
) -> Result<Vec<Opened>, BackplaneError> {
    let mut opened = Vec::with_capacity(wanted.len());
    for (n, wanted) in wanted.iter().enumerate() {
        let fingerprint = cursor::channel_fingerprint(wanted.channel.name());
        let after = cursor.and_then(|cursor| cursor.position(fingerprint));
        let subscription = wanted.channel.subscribe(backplane, after).await?;
        opened.push(Opened {
            subscription,
            kind: wanted.channel.kind(),
            label: format!("{n}:{}.", wanted.event).into(),
            fingerprint,
            resumed: after.is_some(),
            presence: wanted.channel.presence(),
            lease: None,
        });
    }
    Ok(opened)
}

/// An event type of a multiplexed route, with its type erased.
trait MuxType<S>: Send + Sync {
    fn kind(&self) -> EventKind;

    /// The channel of `key` (empty for a keyless type).
    fn want(&self, key: &str) -> Result<Box<dyn WantedChannel<S>>, ChannelsProblem>;
}

/// One channel of a request, with its key typed, its type erased.
trait WantedChannel<S>: Send + Sync {
    fn name(&self) -> &str;

    fn kind(&self) -> EventKind;

    fn authorize(
        &self,
        parts: Parts,
        state: &S,
    ) -> Option<BoxFuture<'static, Result<(), Response>>>;

    fn subscribe<'a>(
        &'a self,
        backplane: &'a Backplane,
        after: Option<EventId>,
    ) -> BoxFuture<'a, Result<RawSubscription, BackplaneError>>;

    fn initial_state(&self, state: &S) -> Option<BoxFuture<'static, Result<String, Response>>>;

    /// Whether the channel keeps presence.
    fn presence(&self) -> bool;

    /// The member hook's identity of the request, for a presence route that has one.
    fn member(
        &self,
        parts: &Parts,
        state: &S,
    ) -> Option<BoxFuture<'static, Result<Option<Bytes>, Response>>>;

    /// Counts the connection as `member` of the channel, until the lease is dropped.
    fn enter_presence<'a>(
        &'a self,
        backplane: &'a Backplane,
        member: Bytes,
    ) -> BoxFuture<'a, Result<Interest, BackplaneError>>;

    /// For a presence channel, the data of its `presence` frame.
    fn presence_list<'a>(
        &'a self,
        backplane: &'a Backplane,
    ) -> Option<BoxFuture<'a, Result<String, BackplaneError>>>;
}

struct Typed<E: SseEvent, S>(Arc<SseRoutes<E, S>>);

struct TypedChannel<E: SseEvent, S> {
    routes: Arc<SseRoutes<E, S>>,
    key: E::Key,
    channel: Channel<E>,
}

impl<E: SseEvent, S: 'static> MuxType<S> for Typed<E, S> {
    fn kind(&self) -> EventKind {
        E::KIND
    }

    fn want(&self, key: &str) -> Result<Box<dyn WantedChannel<S>>, ChannelsProblem> {
        let event = E::KIND.name();
        if E::KEY_FIELD.is_none() && !key.is_empty() {
            return Err(ChannelsProblem::KeyOfKeyless { event });
        }
        let key =
            E::Key::parse_key(key).map_err(|source| ChannelsProblem::Key { event, source })?;
        let channel = Channel::<E>::new(&key);
        Ok(Box::new(TypedChannel {
            routes: Arc::clone(&self.0),
            key,
            channel,
        }))
    }
}

impl<E: SseEvent, S: 'static> WantedChannel<S> for TypedChannel<E, S> {
    fn name(&self) -> &str {
        self.channel.name()
    }

    fn kind(&self) -> EventKind {
        E::KIND
    }

    fn authorize(
        &self,
        parts: Parts,
        state: &S,
    ) -> Option<BoxFuture<'static, Result<(), Response>>> {
        let hook = self.routes.authorize.as_ref()?;
        Some(hook(parts, &self.key, state))
    }

    fn subscribe<'a>(
        &'a self,
        backplane: &'a Backplane,
        after: Option<EventId>,
    ) -> BoxFuture<'a, Result<RawSubscription, BackplaneError>> {
        Box::pin(backplane.subscribe_raw(&self.channel, after))
    }

    fn initial_state(&self, state: &S) -> Option<BoxFuture<'static, Result<String, Response>>> {
        let hook = self.routes.initial_state.as_ref()?;
        Some(hook(&self.key, state))
    }

    fn presence(&self) -> bool {
        E::PRESENCE
    }

    fn member(
        &self,
        parts: &Parts,
        state: &S,
    ) -> Option<BoxFuture<'static, Result<Option<Bytes>, Response>>> {
        let hook = self.routes.identify.as_ref()?;
        Some(hook(parts.clone(), &self.key, state))
    }

    fn enter_presence<'a>(
        &'a self,
        backplane: &'a Backplane,
        member: Bytes,
    ) -> BoxFuture<'a, Result<Interest, BackplaneError>> {
        Box::pin(backplane.presence_enter(&self.channel, member))
    }

    fn presence_list<'a>(
        &'a self,
        backplane: &'a Backplane,
    ) -> Option<BoxFuture<'a, Result<String, BackplaneError>>> {
        E::PRESENCE.then(|| -> BoxFuture<'a, _> {
            Box::pin(super::presence_list(backplane, &self.channel))
        })
    }
}

/// The channels of one multiplexed connection: what its stream sends after its head.
///
/// Each poll takes ready events from the channels in turn, so a busy channel cannot starve the
/// others, and frames each with the cursor of every channel's position up to and including it.
pub(crate) struct Channels {
    open: Vec<Opened>,
    /// Each channel's fingerprint and position, as the cursor encodes them.
    positions: Vec<(u64, EventId)>,
    encoder: Encoder,
    /// The `id` of the frame being built.
    cursor: Vec<u8>,
    /// The channel polled first next time.
    next: usize,
    malformed: Arc<AtomicU64>,
}

impl Channels {
    fn new(channels: Vec<Opened>, route: u32, malformed: Arc<AtomicU64>) -> Self {
        let positions = channels
            .iter()
            .map(|channel| (channel.fingerprint, channel.subscription.position()))
            .collect();
        Self {
            open: channels,
            positions,
            encoder: Encoder::new(route),
            cursor: Vec::new(),
            next: 0,
            malformed,
        }
    }

    /// Adds to `chunk` the frames the channels have ready, until the chunk is full (a frame
    /// that does not fit goes to `carry`); `true` when a subscription ended (the backplane
    /// closed).
    pub(crate) fn fill(
        &mut self,
        cx: &mut Context<'_>,
        chunk: &mut Chunk,
        carry: &mut Option<Bytes>,
    ) -> bool {
        let count = self.open.len();
        // Channels in a row found with nothing ready: all of them ends the poll.
        let mut idle = 0;
        while !chunk.is_full() && idle < count {
            let at = self.next;
            self.next = (at + 1) % count;
            let channel = &mut self.open[at];
            let frame = match Pin::new(&mut channel.subscription).poll_next(cx) {
                Poll::Pending => {
                    idle += 1;
                    continue;
                }
                Poll::Ready(None) => return true,
                Poll::Ready(Some(Ok(message))) => {
                    idle = 0;
                    if !super::stream::forwards(channel.kind, channel.presence, message.event()) {
                        // As on single routes: never let a client take it for one of the type's.
                        self.malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(channel = channel.subscription.channel(), id = %message.id(), event = ?message.event(), "dropping an event not of the channel's type");
                        continue;
                    }
                    self.positions[at].1 = message.id();
                    if let Some(data) = frame::data_of(&message) {
                        self.frame(at, message.event(), &data)
                    } else {
                        // One of the channel's events the client will not get: it must know.
                        self.malformed.fetch_add(1, Ordering::Relaxed);
                        channel.subscription.undeliverable();
                        self.frame(at, GAP_EVENT, &gap_line(Gap { missed: Some(1) }))
                    }
                }
                Poll::Ready(Some(Err(gap))) => {
                    idle = 0;
                    self.positions[at].1 = channel.subscription.position();
                    self.frame(at, GAP_EVENT, &gap_line(gap))
                }
            };
            if !chunk.push(&frame) {
                *carry = Some(frame);
                break;
            }
        }
        false
    }

    /// The [`CURSOR_EVENT`] frame: the cursor of the positions the channels start from.
    fn start(&mut self) -> Bytes {
        self.cursor.clear();
        self.encoder.encode(&self.positions, &mut self.cursor);
        frame::tagged(Some(&self.cursor), "", CURSOR_EVENT, b"data: {}\n\n")
    }

    /// The frame of `event` on channel `at`, with the id of its position and the cursor of all
    /// positions now.
    fn frame(&mut self, at: usize, event: &str, data: &[u8]) -> Bytes {
        self.cursor.clear();
        self.encoder
            .encode_id(self.positions[at].1, &self.positions, &mut self.cursor);
        frame::tagged(Some(&self.cursor), &self.open[at].label, event, data)
    }
}

fn gap_line(gap: Gap) -> Vec<u8> {
    frame::data_line(&frame::gap_json(gap))
}

impl<S> fmt::Debug for MuxRoutes<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MuxRoutes")
            .field("path", &self.path)
            .field(
                "types",
                &self
                    .types
                    .iter()
                    .map(|ty| ty.kind().name())
                    .collect::<Vec<_>>(),
            )
            .field("max_channels", &self.max_channels)
            .field("settings", &self.settings)
            .finish()
    }
}

impl<S> From<MuxRoutes<S>> for Router<S>
where
    S: Clone + Send + Sync + 'static,
    Backplane: FromRef<S>,
{
    fn from(routes: MuxRoutes<S>) -> Self {
        routes.into_router()
    }
}
