//! axum SSE routes: `E::sse_route()` streams one event type's channels to browsers.
//!
//! ```no_run
//! use axum::Router;
//! use statelesse::prelude::*;
//!
//! #[derive(Clone, Serialize, Deserialize, SseEvent)]
//! # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
//! #[sse(domain = "game", key = "game_id")]
//! pub struct PlayerJoined {
//!     pub game_id: u64,
//!     pub player_name: String,
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> std::io::Result<()> {
//! // GET /sse/game/{game_id}/player-joined
//! let app: Router = Router::new()
//!     .merge(PlayerJoined::sse_route())
//!     .with_state(Backplane::in_memory());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! [`SseRouteExt`] (in the prelude) gives every event type `sse_route()`, the route with default
//! settings, and `sse_routes()`, a builder ([`SseRoutes`]) for hooks and limits. The router works
//! with any app state `S` from which a [`Backplane`] is taken (`Backplane: FromRef<S>`); a
//! `Backplane` is itself such a state.
//!
//! # Routes
//!
//! One `GET` route per event type, at the event's [`SseEvent::PATH`]: by default
//! `/sse/{domain}/{key}/{event-name}` for a keyed event, `/sse/{domain}/{event-name}` for a
//! keyless (broadcast) event, and `/sse/{domain}/{key}` for an enum domain stream, which carries
//! every variant. The key segment is percent-decoded and parsed as the event's key type. The
//! route also works nested (`Router::nest("/api", ..)`).
//!
//! What a client author or an operator needs beyond this reference (the browser's connection
//! limit, resuming after a page reload, what to do with each response, proxies) is in
//! [`docs/routes.md`](https://github.com/statelesse/statelesse/blob/main/docs/routes.md).
//!
//! # Frames
//!
//! The response is `text/event-stream` with `Cache-Control: no-cache` and
//! `X-Accel-Buffering: no` (so nginx does not buffer it). It starts with a `retry` hint (default
//! 3 s, [`SseRoutes::retry`]), then one frame per event:
//!
//! ```text
//! retry: 3000
//!
//! id: 1700000000000-0
//! event: PlayerJoined
//! data: {"game_id":42,"player_name":"ada"}
//!
//! ```
//!
//! `id` is the event's [`EventId`] on its channel, `event` its SSE event name (the
//! variant's name on an enum stream) and `data` one line of compact JSON. Each event is framed
//! once per instance and the same bytes go to every subscriber. When no frame was sent for half to
//! one keep-alive interval (default 15 s, [`SseRoutes::keep_alive`]), a `: keep-alive` comment is:
//! a stream is never silent longer than the interval. The events a connection has ready go out
//! together, as one HTTP chunk (at most 64 KiB or 256 events), which SSE parsers do not see.
//!
//! # Resume
//!
//! A client that reconnects with the last id it saw, in the `Last-Event-ID` header (as
//! `EventSource` does on its own reconnects) or the `lastEventId` query parameter (for a page
//! reload, where `EventSource` cannot set headers), gets every event after that id still in the
//! channel's history, then live events, with no gap and no duplicate at the seam, on this
//! instance or any other one on the same backplane. The header wins over the query parameter; an
//! empty value means no id.
//!
//! # Gaps
//!
//! When history cannot cover what a client missed (the id is older than history, unknown, or the
//! client fell further behind than history reaches), the stream sends a [`GAP_EVENT`] before the
//! events it still has, never a silent skip:
//!
//! ```text
//! event: gap
//! data: {"missed":null}
//!
//! ```
//!
//! `missed` is how many events were lost when known, else `null`. A client that keeps state should
//! refetch it, for example by reconnecting without an id to get a fresh [snapshot](#initial-state).
//!
//! When the stream knows the position it goes on after, the gap carries it as its `id`, which
//! `EventSource` adopts like any event's: after a resume id ahead of the channel's last id
//! (forged, or from a channel since deleted) that is the channel's last id, so a client that
//! reconnects before the next event does not send the future id again and get a second gap.
//!
//! Only the SSE event names of the route's type are forwarded ([`EventKind::has_event`](crate::EventKind::has_event): the
//! struct's name, or the enum's variant names). Any other event on the channel (a `snapshot` or a
//! `gap` published by another client of the transport, for example) is dropped and counted in
//! [`Diagnostics::malformed_events`](crate::Diagnostics::malformed_events); so is an event of the
//! route's type that cannot be framed (data that is not UTF-8, published raw), for which the
//! client gets a `gap` of `{"missed":1}` with that event's id.
//!
//! # Initial state
//!
//! With [`SseRoutes::initial_state`], a connection without a last id first receives a
//! [`SNAPSHOT_EVENT`] whose `data` is the hook's value as JSON, then live events. The route
//! subscribes *before* calling the hook, so nothing published meanwhile is lost: such events
//! follow the snapshot, which may already reflect them, so apply events idempotently. A resuming
//! connection gets no snapshot: history brings it up to date.
//!
//! # Authorization
//!
//! With [`SseRoutes::authorize`], a hook receives the request parts, the parsed key and the state
//! and answers `Ok(())` or a denial, any `IntoResponse` such as [`Denied::Forbidden`]; a denial is
//! the response, and no stream is opened or subscribed.
//!
//! # Presence
//!
//! For an event type with `#[sse(presence = Member)]`, [`SseRoutes::member`] names the member
//! each connection is (an authorization hook returning the identity; without it connections
//! are spectators). Each connection then starts with a [`PRESENCE_EVENT`] frame, after the
//! `retry` hint and before any snapshot, listing the channel's members on every instance
//! (`[{"member":..,"connections":n,"since":ms}]`, no id), and receives the channel's
//! [`JOIN_EVENT`] and [`LEAVE_EVENT`] events. The connection enters before it subscribes, so
//! it is in its own list and does not receive its own member's `join` live (a resuming one
//! finds it in the history it replays: apply joins and leaves idempotently). See
//! [`docs/presence.md`](https://github.com/statelesse/statelesse/blob/main/docs/presence.md).
//!
//! # Bad input and limits
//!
//! Each failure is a response with a fixed status and a plain text body, before any stream opens:
//!
//! | failure | response | rejection |
//! |---|---|---|
//! | the key segment does not parse as the key type | 400 | [`InvalidKey`] |
//! | malformed `Last-Event-ID` / `lastEventId` | 400 | [`InvalidLastEventId`] |
//! | denied by the authorization hook | the hook's (401/403 with [`Denied`]) | |
//! | denied by the member hook of a presence route (which runs after it) | the hook's | |
//! | the member identity does not serialize, or exceeds 1 KiB | 500 | [`MemberFailed`] |
//! | past the [`ConnectionLimit`] | 503 + `Retry-After` | [`TooManyConnections`] |
//! | the backplane cannot subscribe, or enter or read a presence route's members, or cannot read a resume's first page of history (server down, or this instance at its budget of concurrent reads: [`ErrorKind::Busy`](crate::ErrorKind::Busy)) | 503 + `Retry-After` | [`BackplaneUnavailable`] |
//! | the initial state does not serialize | 500 | [`SnapshotFailed`] |
//!
//! Checks run in that order; the connection slot is taken before the authorization hook runs.
//!
//! # Slow clients
//!
//! Each connection's response body is pulled by its own connection task: a client that stops
//! reading stops only its own stream, never a publisher or another client. Its subscription
//! buffers a bounded number of events (the transport's subscriber buffer); past that it is
//! refilled from the channel's history when it reads again, or, when history does not reach back
//! far enough, sent a `gap` event and the events history still has. Memory per connection stays
//! bounded by that buffer, one history read, and the socket's buffers.
//!
//! A client that stops reading altogether is closed by the [write
//! timeout](SseRoutes::write_timeout) (default 30 s): once a frame waited that long for its
//! socket, the connection's subscription and [`ConnectionLimit`] slot are released and its
//! stream ends. The socket itself closes then only if the server gives its writes a deadline, by
//! serving through [`WriteDeadline`]; otherwise it stays open, holding its kernel buffers, until
//! the client reads or goes away. A client that comes back resumes with `Last-Event-ID`.
//!
//! # Shutdown
//!
//! axum's graceful shutdown waits for every response body, and an SSE body never ends by itself.
//! Give the routes a [`Shutdown`] and trigger it when shutting down: every open stream sends a
//! final `: shutdown` comment and ends. When the backplane shuts down, streams end with `: closed`.
//!
//! # Diagnostics
//!
//! Each open connection holds one subscription, so
//! [`Backplane::diagnostics`] counts it as a local subscriber of its
//! channel, from the moment the route subscribes until the stream ends, the client goes away, or
//! its write timeout releases it. Events a route drops are counted in
//! [`Diagnostics::malformed_events`](crate::Diagnostics::malformed_events).
//!
//! # Observability
//!
//! Each request runs in an `sse_connection` span (route, domain, event, resume) recording its
//! rejection, resume, gaps and close with its reason; with the `metrics` feature each route counts
//! its open connections, rejections by reason and bytes written. [`readiness`] is a probe route
//! over [`Backplane::health`]. The series, spans and probes are listed in
//! [`docs/observability.md`](https://github.com/statelesse/statelesse/blob/main/docs/observability.md).

mod cursor;
mod error;
pub(crate) mod frame;
mod health;
mod limit;
mod mux;
mod serve;
mod shutdown;
pub(crate) mod stream;
mod write_deadline;

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRef, FromRequestParts, Query, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tracing::{Instrument as _, Span};

use crate::backplane::transport::{BoxFuture, Interest};
use crate::protocol::{LAST_EVENT_ID_HEADER, LAST_EVENT_ID_QUERY};
use crate::telemetry::{EventMetrics, Rejection, RouteMetrics};
use crate::{Backplane, Channel, ChannelKey, EventId, SseEvent};
use bytes::Bytes;
use stream::{Cancelled, EventStream, Events, Feed, Source, Watchdog};
use tokio::sync::OwnedSemaphorePermit;

pub use cursor::CursorError;
pub use error::{
    BackplaneUnavailable, Denied, InvalidChannels, InvalidCursor, InvalidKey, InvalidLastEventId,
    MemberFailed, MissingKeyParam, SnapshotFailed, TooManyConnections,
};
pub use health::readiness;
pub use limit::ConnectionLimit;
pub use mux::{DEFAULT_MAX_CHANNELS, MuxRoutes};
pub use serve::{serve, serve_with_write_deadline};
pub use shutdown::Shutdown;
pub use write_deadline::{WriteDeadline, WriteDeadlineIo};

pub use crate::protocol::{GAP_EVENT, JOIN_EVENT, LEAVE_EVENT, PRESENCE_EVENT, SNAPSHOT_EVENT};

/// The default interval of keep-alive comments: 15 seconds.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The default `retry` hint, and `Retry-After` of 503 answers: 3 seconds.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// The default write timeout of a connection: 30 seconds (see [`SseRoutes::write_timeout`]).
///
/// Twice the keep-alive interval: a client that reads at all takes a keep-alive comment long
/// before it, while a stalled one gives its slot back within half a minute.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The SSE routes of an event type: `E::sse_route()` and `E::sse_routes()`.
///
/// Implemented for every [`SseEvent`]; in the [prelude](crate::prelude). See the
/// [module documentation](self) for what the route does.
///
/// # Examples
///
/// ```
/// use axum::Router;
/// use axum::extract::FromRef;
/// use statelesse::prelude::*;
///
/// #[derive(Clone, Serialize, Deserialize, SseEvent)]
/// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
/// #[sse(domain = "game", key = "game_id")]
/// pub struct PlayerJoined {
///     pub game_id: u64,
///     pub player_name: String,
/// }
///
/// #[derive(Clone)]
/// struct AppState {
///     backplane: Backplane,
/// }
///
/// impl FromRef<AppState> for Backplane {
///     fn from_ref(state: &AppState) -> Self {
///         state.backplane.clone()
///     }
/// }
///
/// let state = AppState { backplane: Backplane::in_memory() };
/// let app: Router = Router::new()
///     .merge(PlayerJoined::sse_route::<AppState>())
///     .with_state(state);
/// # drop(app);
/// ```
pub trait SseRouteExt: SseEvent + Sized {
    /// The route of this event type at [`SseEvent::PATH`], with default settings.
    fn sse_route<S>() -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        Backplane: FromRef<S>,
    {
        Self::sse_routes().into_router()
    }

    /// A builder of this event type's route, for hooks and limits; see [`SseRoutes`].
    #[must_use]
    fn sse_routes<S>() -> SseRoutes<Self, S>
    where
        S: Clone + Send + Sync + 'static,
        Backplane: FromRef<S>,
    {
        SseRoutes::new()
    }
}

impl<E: SseEvent> SseRouteExt for E {}

type AuthorizeHook<K, S> =
    dyn Fn(Parts, &K, &S) -> BoxFuture<'static, Result<(), Response>> + Send + Sync;
type InitialStateHook<K, S> =
    dyn Fn(&K, &S) -> BoxFuture<'static, Result<String, Response>> + Send + Sync;
/// The member identity of a request, as JSON; `None` for a spectator.
type MemberHook<K, S> =
    dyn Fn(Parts, &K, &S) -> BoxFuture<'static, Result<Option<Bytes>, Response>> + Send + Sync;

/// A builder of an event type's SSE route, from [`SseRouteExt::sse_routes`].
///
/// Finish with [`into_router`](Self::into_router), or hand the builder to `Router::merge`
/// directly (it converts into a `Router<S>`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use axum::Router;
/// use statelesse::prelude::*;
/// use statelesse::routes::{Denied, Shutdown};
///
/// #[derive(Clone, Serialize, Deserialize, SseEvent)]
/// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
/// #[sse(domain = "user", key = "user_id")]
/// pub struct Notification {
///     pub user_id: String,
///     pub text: String,
/// }
///
/// let shutdown = Shutdown::new();
/// let app: Router = Router::new()
///     .merge(
///         Notification::sse_routes()
///             // Only the user themself may open their stream.
///             .authorize(|parts, user_id: String, _state: Backplane| async move {
///                 match parts.headers.get("x-user").and_then(|v| v.to_str().ok()) {
///                     None => Err(Denied::Unauthorized),
///                     Some(user) if user == user_id => Ok(()),
///                     Some(_) => Err(Denied::Forbidden),
///                 }
///             })
///             .keep_alive(Duration::from_secs(20))
///             .max_connections(10_000)
///             .shutdown(&shutdown),
///     )
///     .with_state(Backplane::in_memory());
/// # drop(app);
/// ```
pub struct SseRoutes<E: SseEvent, S> {
    authorize: Option<Arc<AuthorizeHook<E::Key, S>>>,
    initial_state: Option<Arc<InitialStateHook<E::Key, S>>>,
    identify: Option<Arc<MemberHook<E::Key, S>>>,
    settings: Settings,
    event: PhantomData<fn() -> E>,
}

/// What every SSE route, single or multiplexed, does the same way around its frames: keep-alive,
/// retry hint, write timeout, connection limit and shutdown.
#[derive(Clone, Debug)]
struct Settings {
    keep_alive: Duration,
    retry: Duration,
    write_timeout: Duration,
    limit: Option<ConnectionLimit>,
    shutdown: Option<Shutdown>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            keep_alive: DEFAULT_KEEP_ALIVE,
            retry: DEFAULT_RETRY,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            limit: None,
            shutdown: None,
        }
    }
}

impl Settings {
    /// The connection's slot, or the answer when there is none: a stream of only the retry hint
    /// and the shutdown comment while shutting down, 503 past the connection limit.
    #[expect(
        clippy::result_large_err,
        reason = "the refusal is the response, returned at once by its only callers"
    )]
    fn admit(&self) -> Result<Option<OwnedSemaphorePermit>, Rejected> {
        if self.shutdown.as_ref().is_some_and(Shutdown::is_triggered) {
            let head = VecDeque::from([frame::retry(self.retry), frame::shutdown()]);
            let stream = EventStream::new(head, None, None, Duration::ZERO, None, None);
            return Err(Rejected(Rejection::ShuttingDown, event_stream(stream)));
        }
        match &self.limit {
            None => Ok(None),
            Some(limit) => limit.try_acquire().map(Some).ok_or_else(|| {
                Rejected(
                    Rejection::TooManyConnections,
                    TooManyConnections::new(self.retry).into_response(),
                )
            }),
        }
    }

    /// The answer when the backplane could not subscribe.
    fn unavailable(&self, err: crate::BackplaneError) -> Rejected {
        Rejected(
            Rejection::BackplaneUnavailable,
            BackplaneUnavailable::new(err, self.retry).into_response(),
        )
    }

    /// The head every stream starts with, the retry hint, with room for `more` frames.
    fn head(&self, more: usize) -> VecDeque<Bytes> {
        let mut head = VecDeque::with_capacity(1 + more);
        head.push_back(frame::retry(self.retry));
        head
    }

    /// The `200 OK` response streaming `head`, then `feed`.
    fn stream(
        &self,
        head: VecDeque<Bytes>,
        feed: Feed,
        watchdog: Option<&Watchdog>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Response {
        let shutdown = self
            .shutdown
            .as_ref()
            .map(|shutdown| -> Cancelled { Box::pin(shutdown.clone().triggered_owned()) });
        event_stream(EventStream::new(
            head,
            Some(feed),
            shutdown,
            self.keep_alive,
            watchdog,
            permit,
        ))
    }
}

impl<E, S> SseRoutes<E, S>
where
    E: SseEvent,
    S: Clone + Send + Sync + 'static,
    Backplane: FromRef<S>,
{
    /// A builder with default settings: no hooks, keep-alive every 15 s, a 3 s retry hint, a
    /// 30 s write timeout, no connection limit, no shutdown signal.
    #[must_use]
    pub fn new() -> Self {
        Self {
            authorize: None,
            initial_state: None,
            identify: None,
            settings: Settings::default(),
            event: PhantomData,
        }
    }

    /// Authorizes each request with `hook` before any stream opens.
    ///
    /// The hook receives the request's parts (headers, URI, extensions: run your own
    /// `FromRequestParts` extractors on them), the parsed key and the app state, and returns
    /// `Ok(())` to open the stream or an error, any [`IntoResponse`] such as [`Denied`], which is
    /// the response. Nothing is subscribed before it says yes.
    ///
    /// # Examples
    ///
    /// ```
    /// use statelesse::prelude::*;
    /// use statelesse::routes::Denied;
    ///
    /// #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// #[sse(domain = "user", key = "user_id")]
    /// pub struct Notification {
    ///     pub user_id: u64,
    ///     pub text: String,
    /// }
    ///
    /// let route = Notification::sse_routes().authorize(|parts, user_id: u64, _: Backplane| async move {
    ///     let token = parts.headers.get("authorization").ok_or(Denied::Unauthorized)?;
    ///     if token.as_bytes() == format!("Bearer user-{user_id}").as_bytes() {
    ///         Ok(())
    ///     } else {
    ///         Err(Denied::Forbidden)
    ///     }
    /// });
    /// # let _: axum::Router<Backplane> = route.into_router();
    /// ```
    #[must_use]
    pub fn authorize<F, Fut, R>(mut self, hook: F) -> Self
    where
        F: Fn(Parts, E::Key, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), R>> + Send + 'static,
        R: IntoResponse,
        E::Key: Clone,
    {
        self.authorize = Some(Arc::new(move |parts: Parts, key: &E::Key, state: &S| {
            let decision = hook(parts, key.clone(), state.clone());
            Box::pin(async move { decision.await.map_err(IntoResponse::into_response) })
        }));
        self
    }

    /// Sends each new connection a snapshot of the current state first, from `hook`.
    ///
    /// The hook receives the parsed key and the app state and returns the state to send, any
    /// `Serialize` value, which goes out as a [`SNAPSHOT_EVENT`] with that value as JSON data;
    /// or an error, any [`IntoResponse`] (say, 404 for an unknown game), which is the response.
    /// The route subscribes before calling the hook, so events published meanwhile follow the
    /// snapshot. Connections resuming with a last id get no snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use statelesse::prelude::*;
    ///
    /// #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// #[sse(domain = "game", key = "game_id")]
    /// pub struct PlayerJoined {
    ///     pub game_id: u64,
    ///     pub player_name: String,
    /// }
    ///
    /// #[derive(Serialize)]
    /// struct Lobby {
    ///     players: Vec<String>,
    /// }
    ///
    /// let route = PlayerJoined::sse_routes().initial_state(|game_id: u64, _: Backplane| async move {
    ///     // Read the game's current players from your store here.
    ///     Ok::<_, Infallible>(Lobby { players: vec![format!("host of {game_id}")] })
    /// });
    /// # let _: axum::Router<Backplane> = route.into_router();
    /// ```
    #[must_use]
    pub fn initial_state<F, Fut, T, R>(mut self, hook: F) -> Self
    where
        F: Fn(E::Key, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, R>> + Send + 'static,
        T: Serialize,
        R: IntoResponse,
        E::Key: Clone,
    {
        self.initial_state = Some(Arc::new(move |key: &E::Key, state: &S| {
            let snapshot = hook(key.clone(), state.clone());
            Box::pin(async move {
                let value = snapshot.await.map_err(IntoResponse::into_response)?;
                serde_json::to_string(&value)
                    .map_err(|err| error::SnapshotFailed::new(err).into_response())
            })
        }));
        self
    }

    /// Sets the interval of keep-alive comments sent when no other frame was; `Duration::ZERO`
    /// turns them off. Defaults to 15 seconds.
    ///
    /// A comment follows half to one interval without any frame (the timer ticks every half
    /// interval, so that sending an event costs no timer update): a stream is never silent
    /// longer than the interval, and gets no comment while events come more often than every
    /// half interval.
    ///
    /// Keep it below the idle timeout of every proxy between the server and its clients.
    ///
    /// ```
    /// # use statelesse::prelude::*;
    /// # #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// # #[sse(domain = "game", key = "game_id")]
    /// # pub struct PlayerJoined { pub game_id: u64 }
    /// use std::time::Duration;
    /// let route = PlayerJoined::sse_routes::<Backplane>().keep_alive(Duration::from_secs(30));
    /// # drop(route);
    /// ```
    #[must_use]
    pub fn keep_alive(mut self, interval: Duration) -> Self {
        self.settings.keep_alive = interval;
        self
    }

    /// Sets the `retry` hint, how long a client waits before reconnecting, also sent as
    /// `Retry-After` (rounded up to whole seconds) on 503 answers. Defaults to 3 seconds.
    ///
    /// ```
    /// # use statelesse::prelude::*;
    /// # #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// # #[sse(domain = "game", key = "game_id")]
    /// # pub struct PlayerJoined { pub game_id: u64 }
    /// use std::time::Duration;
    /// let route = PlayerJoined::sse_routes::<Backplane>().retry(Duration::from_secs(1));
    /// # drop(route);
    /// ```
    #[must_use]
    pub fn retry(mut self, after: Duration) -> Self {
        self.settings.retry = after;
        self
    }

    /// Sets how long a connection may take no bytes before it is closed; `Duration::ZERO` turns
    /// the timeout off. Defaults to 30 seconds ([`DEFAULT_WRITE_TIMEOUT`]).
    ///
    /// A client that stops reading (a frozen tab, a dead network path) would otherwise hold its
    /// subscription and its [`ConnectionLimit`] slot for as long as its TCP connection lives.
    /// Once a frame waited this long for the client's socket to take it, the stream releases the
    /// subscription and the slot, and ends: the check runs four times per timeout, so the
    /// release comes between one and 1.25 timeouts after the frame was handed out. The socket itself closes only when the
    /// server gives its writes a deadline, as [`WriteDeadline`] does: without one, it stays
    /// open, holding only its kernel buffers, until the client reads or goes away. A client that
    /// comes back resumes with `Last-Event-ID` like any other.
    ///
    /// Keep it above the keep-alive interval, so an idle client that reads is never closed,
    /// and above the time a slow but live client needs to take one frame.
    ///
    /// ```
    /// # use statelesse::prelude::*;
    /// # #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// # #[sse(domain = "game", key = "game_id")]
    /// # pub struct PlayerJoined { pub game_id: u64 }
    /// use std::time::Duration;
    /// let route = PlayerJoined::sse_routes::<Backplane>().write_timeout(Duration::from_secs(60));
    /// # drop(route);
    /// ```
    #[must_use]
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.settings.write_timeout = timeout;
        self
    }

    /// Limits this route to `max` open connections on this instance; past it, requests are
    /// answered 503 with `Retry-After`. To share one limit among several routes, use
    /// [`connection_limit`](Self::connection_limit).
    ///
    /// ```
    /// # use statelesse::prelude::*;
    /// # #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// # #[sse(domain = "game", key = "game_id")]
    /// # pub struct PlayerJoined { pub game_id: u64 }
    /// let route = PlayerJoined::sse_routes::<Backplane>().max_connections(5_000);
    /// # drop(route);
    /// ```
    #[must_use]
    pub fn max_connections(self, max: usize) -> Self {
        self.connection_limit(&ConnectionLimit::new(max))
    }

    /// Counts this route's connections against `limit`, shared with every route given it.
    ///
    /// ```
    /// # use statelesse::prelude::*;
    /// # #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// # #[sse(domain = "game", key = "game_id")]
    /// # pub struct PlayerJoined { pub game_id: u64 }
    /// # #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// # #[sse(domain = "game", key = "game_id")]
    /// # pub struct PlayerLeft { pub game_id: u64 }
    /// use axum::Router;
    /// use statelesse::routes::ConnectionLimit;
    ///
    /// let limit = ConnectionLimit::new(10_000);
    /// let app: Router = Router::new()
    ///     .merge(PlayerJoined::sse_routes().connection_limit(&limit))
    ///     .merge(PlayerLeft::sse_routes().connection_limit(&limit))
    ///     .with_state(Backplane::in_memory());
    /// # drop(app);
    /// ```
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

    /// The router serving `GET` at [`SseEvent::PATH`], to merge into the app.
    pub fn into_router(self) -> Router<S> {
        const {
            assert!(
                is_route_path(E::PATH),
                "the event's `PATH` must start with `/`"
            );
        }
        let route = Arc::new(Route {
            // One watchdog task for all the route's connections, not one each.
            watchdog: Watchdog::new(self.settings.write_timeout),
            metrics: EventMetrics::of::<E>().route(),
            config: self,
        });
        let handler = move |State(state): State<S>, request: Request| {
            let route = Arc::clone(&route);
            async move { route.serve(state, request).await }
        };
        Router::new().route(E::PATH, get(handler))
    }
}

/// One route as it serves: its settings, and what it shares among its connections.
struct Route<E: SseEvent, S> {
    config: SseRoutes<E, S>,
    watchdog: Option<Watchdog>,
    /// The route's series, shared by its connections.
    metrics: RouteMetrics,
}

/// A request answered without a stream: why, and the answer.
pub(crate) struct Rejected(pub(crate) Rejection, pub(crate) Response);

/// Serves one request of a route, single or multiplexed, in the connection's `span`: runs
/// `open` in it, and counts and logs a rejection by its reason.
async fn observed(
    metrics: &RouteMetrics,
    span: Span,
    open: impl Future<Output = Result<Response, Rejected>>,
) -> Response {
    match open.instrument(span.clone()).await {
        Ok(response) => response,
        Err(Rejected(reason, response)) => {
            metrics.rejected(reason);
            tracing::info!(
                parent: &span,
                reason = reason.label(),
                status = response.status().as_u16(),
                "SSE connection rejected"
            );
            response
        }
    }
}

impl<E, S> Route<E, S>
where
    E: SseEvent,
    S: Clone + Send + Sync + 'static,
    Backplane: FromRef<S>,
{
    /// Serves one request, in the connection's span; counts and logs a rejection.
    async fn serve(&self, state: S, request: Request) -> Response {
        let span = tracing::info_span!(
            "sse_connection",
            route = E::PATH,
            domain = E::DOMAIN,
            event = E::KIND.name(),
            resume = tracing::field::Empty,
        );
        observed(&self.metrics, span.clone(), self.open(state, request, span)).await
    }

    async fn open(&self, state: S, request: Request, span: Span) -> Result<Response, Rejected> {
        let config = &self.config;
        let (mut parts, _body) = request.into_parts();
        let key = key_of::<E>(&mut parts)
            .await
            .map_err(|rejection| Rejected(Rejection::InvalidKey, rejection))?;
        let last_id = last_event_id(&parts).map_err(|rejection| {
            Rejected(Rejection::InvalidLastEventId, rejection.into_response())
        })?;
        span.record("resume", last_id.is_some());
        let permit = config.settings.admit()?;
        let mut parts = Some(parts);
        if let Some(authorize) = &config.authorize {
            // Cloned only when the member hook needs them too.
            let given = match config.identify {
                Some(_) => parts.clone(),
                None => parts.take(),
            };
            if let Some(given) = given {
                authorize(given, &key, &state)
                    .await
                    .map_err(|denied| Rejected(Rejection::Denied, denied))?;
            }
        }
        let member = match (&config.identify, parts) {
            (Some(hook), Some(parts)) => hook(parts, &key, &state).await.map_err(|denied| {
                let reason = if denied.status().is_server_error() {
                    Rejection::MemberFailed
                } else {
                    Rejection::Denied
                };
                Rejected(reason, denied)
            })?,
            _ => None,
        };
        let backplane = Backplane::from_ref(&state);
        let channel = Channel::<E>::new(&key);
        // Entered before subscribing, so the connection does not receive its own `join`.
        let lease = enter_presence(&backplane, &channel, member)
            .await
            .map_err(|err| config.settings.unavailable(err))?;
        let subscription = backplane
            .subscribe_raw(&channel, last_id)
            .await
            .map_err(|err| config.settings.unavailable(err))?;
        if let Some(id) = last_id {
            tracing::info!(after = %id, "SSE connection resumed");
        }
        let mut head = config.settings.head(2);
        if E::PRESENCE {
            let members = presence_list(&backplane, &channel)
                .await
                .map_err(|err| config.settings.unavailable(err))?;
            head.push_back(frame::presence(&members));
        }
        if last_id.is_none()
            && let Some(initial_state) = &config.initial_state
        {
            let data = initial_state(&key, &state)
                .await
                .map_err(|response| Rejected(Rejection::SnapshotFailed, response))?;
            head.push_back(frame::snapshot(&data));
        }
        let events = Events {
            subscription,
            kind: E::KIND,
            presence: E::PRESENCE,
            lease,
            malformed: Arc::clone(backplane.malformed_counter()),
        };
        Ok(config.settings.stream(
            head,
            Feed {
                source: Source::One(events),
                metrics: self.metrics.clone(),
                span,
            },
            self.watchdog.as_ref(),
            permit,
        ))
    }
}

impl<E, S> SseRoutes<E, S>
where
    E: crate::Presence,
    S: Clone + Send + Sync + 'static,
    Backplane: FromRef<S>,
{
    /// Names the member each connection of this presence route is, with `hook`: an
    /// authorization hook that returns the member's identity.
    ///
    /// The hook receives the request's parts, the parsed key and the app state, as
    /// [`authorize`](Self::authorize)'s does (which, if set too, runs first), and returns the
    /// identity ([`Presence::Member`](crate::Presence::Member)) or an error, any
    /// [`IntoResponse`] such as [`Denied`], which is the response. Take the identity from what
    /// authenticates the request (a session, a verified token), never from what the client
    /// claims. The connection then counts as one of that member's until it ends: the member's
    /// first connection on any instance publishes a `join` on the channel, its last a `leave`.
    ///
    /// Without this hook, a presence route's connections are spectators: they receive the
    /// `presence` frame, `join` and `leave`, but are no members.
    ///
    /// # Examples
    ///
    /// ```
    /// use statelesse::prelude::*;
    /// use statelesse::routes::Denied;
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// pub struct Player {
    ///     pub name: String,
    /// }
    ///
    /// #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// #[sse(domain = "game", key = "game_id", presence = Player)]
    /// pub struct Moved {
    ///     pub game_id: u64,
    /// }
    ///
    /// let route = Moved::sse_routes().member(|parts, _game_id: u64, _: Backplane| async move {
    ///     // Stand-in for a session lookup: a real app verifies who sends the request.
    ///     let name = parts.headers.get("x-player").ok_or(Denied::Unauthorized)?;
    ///     let name = name.to_str().map_err(|_| Denied::Unauthorized)?;
    ///     Ok::<_, Denied>(Player { name: name.to_owned() })
    /// });
    /// # let _: axum::Router<Backplane> = route.into_router();
    /// ```
    #[must_use]
    pub fn member<F, Fut, R>(self, hook: F) -> Self
    where
        F: Fn(Parts, E::Key, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<E::Member, R>> + Send + 'static,
        R: IntoResponse,
        E::Key: Clone,
    {
        self.member_or_spectator(move |parts, key, state| {
            let identity = hook(parts, key, state);
            async move { identity.await.map(Some) }
        })
    }

    /// Names each connection's member, as [`member`](Self::member) does, or lets it in as a
    /// spectator: the hook's `Ok(None)` opens the stream (with the `presence` frame, `join` and
    /// `leave`) without counting the connection as anyone's. For a route that anonymous visitors
    /// may follow while signed-in ones are listed.
    ///
    /// # Examples
    ///
    /// ```
    /// use statelesse::prelude::*;
    /// use statelesse::routes::Denied;
    ///
    /// #[derive(Clone, Serialize, Deserialize)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// pub struct Player {
    ///     pub name: String,
    /// }
    ///
    /// #[derive(Clone, Serialize, Deserialize, SseEvent)]
    /// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
    /// #[sse(domain = "game", key = "game_id", presence = Player)]
    /// pub struct Moved {
    ///     pub game_id: u64,
    /// }
    ///
    /// let route = Moved::sse_routes().member_or_spectator(|parts, _: u64, _: Backplane| async move {
    ///     // Stand-in for a session lookup: no session, a spectator.
    ///     let player = parts.headers.get("x-player").and_then(|name| name.to_str().ok());
    ///     Ok::<_, Denied>(player.map(|name| Player { name: name.to_owned() }))
    /// });
    /// # let _: axum::Router<Backplane> = route.into_router();
    /// ```
    #[must_use]
    pub fn member_or_spectator<F, Fut, R>(mut self, hook: F) -> Self
    where
        F: Fn(Parts, E::Key, S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<E::Member>, R>> + Send + 'static,
        R: IntoResponse,
        E::Key: Clone,
    {
        self.identify = Some(Arc::new(move |parts: Parts, key: &E::Key, state: &S| {
            let identity = hook(parts, key.clone(), state.clone());
            Box::pin(async move {
                match identity.await.map_err(IntoResponse::into_response)? {
                    None => Ok(None),
                    Some(member) => crate::presence::encode_member(&member)
                        .map(Some)
                        .map_err(|err| error::MemberFailed::new(err).into_response()),
                }
            })
        }));
        self
    }
}

impl<E, S> Default for SseRoutes<E, S>
where
    E: SseEvent,
    S: Clone + Send + Sync + 'static,
    Backplane: FromRef<S>,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<E: SseEvent, S> Clone for SseRoutes<E, S> {
    fn clone(&self) -> Self {
        Self {
            authorize: self.authorize.clone(),
            initial_state: self.initial_state.clone(),
            identify: self.identify.clone(),
            settings: self.settings.clone(),
            event: PhantomData,
        }
    }
}

impl<E: SseEvent, S> fmt::Debug for SseRoutes<E, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseRoutes")
            .field("path", &E::PATH)
            .field("authorize", &self.authorize.is_some())
            .field("initial_state", &self.initial_state.is_some())
            .field("member", &self.identify.is_some())
            .field("keep_alive", &self.settings.keep_alive)
            .field("retry", &self.settings.retry)
            .field("write_timeout", &self.settings.write_timeout)
            .field("limit", &self.settings.limit)
            .field("shutdown", &self.settings.shutdown)
            .finish()
    }
}

impl<E, S> From<SseRoutes<E, S>> for Router<S>
where
    E: SseEvent,
    S: Clone + Send + Sync + 'static,
    Backplane: FromRef<S>,
{
    fn from(routes: SseRoutes<E, S>) -> Self {
        routes.into_router()
    }
}

/// Counts the connection as `member` (none: a spectator, who is not a member) until the returned
/// lease, which the connection holds for its life, is dropped.
async fn enter_presence<E: SseEvent>(
    backplane: &Backplane,
    channel: &Channel<E>,
    member: Option<Bytes>,
) -> Result<Option<Interest>, crate::BackplaneError> {
    match member {
        Some(member) => Ok(Some(backplane.presence_enter(channel, member).await?)),
        None => Ok(None),
    }
}

/// The data of a `presence` frame: the channel's members, read after the connection subscribed,
/// so that every change after the list reaches it as a `join` or `leave`.
async fn presence_list<E: SseEvent>(
    backplane: &Backplane,
    channel: &Channel<E>,
) -> Result<String, crate::BackplaneError> {
    let members = backplane.presence(channel).await?;
    Ok(crate::presence::list_data(&members))
}

/// The key of the request: the path parameter named after the key field, parsed.
async fn key_of<E: SseEvent>(parts: &mut Parts) -> Result<E::Key, Response> {
    let Some(name) = E::KEY_FIELD else {
        return E::Key::parse_key("").map_err(|err| InvalidKey::parse(err).into_response());
    };
    let params = match RawPathParams::from_request_parts(parts, &()).await {
        Ok(params) => params,
        Err(RawPathParamsRejection::InvalidUtf8InPathParam(_)) => {
            return Err(InvalidKey::not_utf8().into_response());
        }
        Err(_) => return Err(MissingKeyParam::new(name).into_response()),
    };
    let Some((_, text)) = params.iter().find(|(param, _)| *param == name) else {
        return Err(MissingKeyParam::new(name).into_response());
    };
    E::Key::parse_key(text).map_err(|err| InvalidKey::parse(err).into_response())
}

/// The id to resume after: the `Last-Event-ID` header, else the `lastEventId` query parameter;
/// an empty value is no id.
fn last_event_id(parts: &Parts) -> Result<Option<EventId>, InvalidLastEventId> {
    let Some(text) = last_event_id_text(parts)? else {
        return Ok(None);
    };
    text.parse()
        .map(Some)
        .map_err(|_| InvalidLastEventId::new(&text))
}

/// The text of the last id (an event id, or a multiplexed route's cursor): the `Last-Event-ID`
/// header, else the `lastEventId` query parameter; an empty value is none.
fn last_event_id_text(parts: &Parts) -> Result<Option<String>, InvalidLastEventId> {
    if let Some(value) = parts.headers.get(LAST_EVENT_ID) {
        let text = value
            .to_str()
            .map_err(|_| InvalidLastEventId::new(&String::from_utf8_lossy(value.as_bytes())))?;
        if !text.is_empty() {
            return Ok(Some(text.to_owned()));
        }
    }
    let Ok(Query(params)) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) else {
        return Ok(None);
    };
    Ok(params
        .into_iter()
        .find(|(name, _)| name == LAST_EVENT_ID_QUERY)
        .map(|(_, text)| text)
        .filter(|text| !text.is_empty()))
}

const LAST_EVENT_ID: HeaderName = HeaderName::from_static(LAST_EVENT_ID_HEADER);
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// The `200 OK` SSE response streaming `stream`.
fn event_stream(stream: EventStream) -> Response {
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    response
}

/// Whether `path` can be an axum route path (the derive checks the rest at compile time).
const fn is_route_path(path: &str) -> bool {
    !path.is_empty() && path.as_bytes()[0] == b'/'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, header: Option<&str>) -> Parts {
        let mut request = axum::http::Request::builder().uri(uri);
        if let Some(value) = header {
            request = request.header("last-event-id", value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn last_event_id_prefers_the_header_over_the_query() {
        let id = |uri, header| last_event_id(&parts(uri, header)).map_err(|e| e.to_string());
        assert_eq!(id("/s", None), Ok(None));
        assert_eq!(id("/s", Some("5-1")), Ok(Some(EventId::new(5, 1))));
        assert_eq!(id("/s?lastEventId=5-2", None), Ok(Some(EventId::new(5, 2))));
        assert_eq!(
            id("/s?a=1&lastEventId=5-2", Some("6-0")),
            Ok(Some(EventId::new(6, 0)))
        );
        assert_eq!(
            id("/s?lastEventId=5-2", Some("")),
            Ok(Some(EventId::new(5, 2)))
        );
        assert_eq!(id("/s?lastEventId=", None), Ok(None));
        assert!(id("/s", Some("nope")).is_err());
        assert!(id("/s?lastEventId=1-x", None).is_err());
        assert!(id("/s?lastEventId=9-9", Some("bad")).is_err());
    }

    #[test]
    fn route_paths_start_at_the_root() {
        assert!(is_route_path("/sse/x") && !is_route_path("") && !is_route_path("sse"));
    }
}
