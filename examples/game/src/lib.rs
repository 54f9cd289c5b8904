//! The game example's server: an HTTP API whose every change is published as a typed event, the
//! SSE routes generated for those events, and a page that uses the generated TypeScript client,
//! its game, the announcements and its user's notifications on one multiplexed connection
//! ([`PAGE_STREAM`]).
//!
//! A game's state is not stored anywhere but in its event stream: the snapshot sent first on the
//! game stream (and answered by `GET /api/games/{id}`) is the fold of the game's events still in
//! history, so every instance on one Redis computes the same state with no database.
//!
//! Who the browser's user is lives in a signed cookie: `POST /api/login` sets it, the user's
//! notification stream checks it, and a cookie changed or made up by the browser is refused.
//!
//! A game keeps presence (`#[sse(presence = Player)]`): its lobby lists who is connected to it,
//! across instances. The page's stream counts a logged-in user, named by the cookie, as connected
//! to the game while one of their pages follows it; a page without a login (or with a cookie the
//! browser made up) follows the game as a spectator, who sees the lobby without being in it, as
//! every connection of the game's own route (`/sse/game/{id}`) does. The
//! signing key comes from `--cookie-key` (or `GAME_COOKIE_KEY`); without one each process makes a
//! random key, and a login is then good on that process only. Instances behind one load balancer
//! must therefore be given the same key, or a browser logged in on one is refused by the others.
//!
//! For operators: `GET /metrics` serves statelesse's series in the Prometheus text format, and
//! `GET /ready` is a readiness probe (`200` when the backplane is ready, `503` when not).

pub mod metrics;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use example_game_events::{
    GameEvent, GameId, GameSnapshot, Notification, Player, PlayerJoined, PlayerLeft, RoundStarted,
    ScoreChanged, SystemAnnouncement,
};
use serde::Deserialize;
use serde::Serialize;
use statelesse::RedisDiagnostics;
use statelesse::prelude::*;
use statelesse::routes::{
    ConnectionLimit, DEFAULT_WRITE_TIMEOUT, Denied, MuxRoutes, Shutdown, SseRoutes, WriteDeadline,
    readiness,
};

/// How the game runs, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(about = "A multiplayer lobby on statelesse")]
pub struct Options {
    /// The Redis URL; without it the game runs on the in-memory backplane, in one process.
    #[arg(long, env = "GAME_REDIS")]
    pub redis: Option<String>,
    /// The port to listen on, on 127.0.0.1.
    #[arg(long, env = "GAME_PORT", default_value_t = 3000)]
    pub port: u16,
    /// The prefix of every Redis key and channel: instances with the same prefix share events.
    #[arg(long, env = "GAME_PREFIX", default_value = "statelesse")]
    pub prefix: String,
    /// The secret that signs the login cookie: at least 64 bytes, the same on every instance
    /// behind one load balancer (e.g. from `openssl rand -base64 48`). Without it each process
    /// makes a random one, and its logins end with it.
    #[arg(long, env = "GAME_COOKIE_KEY", hide_env_values = true)]
    pub cookie_key: Option<Secret>,
    /// The most event streams open at once on this instance; past it, a stream request is
    /// answered 503 with `Retry-After`.
    #[arg(long, env = "GAME_MAX_STREAMS", default_value_t = 10_000)]
    pub max_streams: usize,
    /// The `retry` hint of every stream, in milliseconds: how long a client waits (at most, with
    /// the generated client) before reconnecting; also the `Retry-After` of a 503.
    #[arg(long, env = "GAME_RETRY_MS", default_value_t = 3_000)]
    pub retry_ms: u64,
}

/// A secret from the command line or the environment, which `Debug` does not show.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(secret: &str) -> Result<Self, Self::Err> {
        Ok(Self(secret.to_owned()))
    }
}

/// Why the game could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The backplane could not be connected.
    #[error(transparent)]
    Backplane(#[from] BackplaneError),
    /// The cookie key given is too short to sign with.
    #[error("the cookie key is {0} bytes long; it needs at least 64")]
    CookieKeyTooShort(usize),
    /// No key was given and the system had no randomness to make one.
    #[error("no cookie key was given and none could be generated (no system randomness)")]
    NoRandomKey,
}

/// The settings every event stream route shares.
#[derive(Debug, Clone)]
pub struct Streams {
    /// The most event streams open at once on this instance.
    pub max: usize,
    /// The `retry` hint of every stream, also the `Retry-After` of a 503.
    pub retry: Duration,
}

impl Streams {
    /// `routes` with the shared connection limit, retry hint and shutdown signal.
    fn apply<E: SseEvent>(
        &self,
        routes: SseRoutes<E, App>,
        limit: &ConnectionLimit,
        shutdown: &Shutdown,
    ) -> SseRoutes<E, App> {
        routes
            .connection_limit(limit)
            .retry(self.retry)
            .shutdown(shutdown)
    }
}

/// Events kept per channel: a game's snapshot is the fold of its history, so keep all of it.
const HISTORY_LEN: usize = 10_000;

/// How long an idle game's history is kept: a game is gone a day after its last event.
const HISTORY_TTL: Duration = Duration::from_hours(24);

/// How long open streams may take to end once shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

/// The app state of every handler.
#[derive(Clone)]
struct App {
    backplane: Backplane,
    /// Signs and checks the login cookie.
    key: Key,
}

impl FromRef<App> for Backplane {
    fn from_ref(app: &App) -> Self {
        app.backplane.clone()
    }
}

impl FromRef<App> for Key {
    fn from_ref(app: &App) -> Self {
        app.key.clone()
    }
}

/// A running game server: its router, its backplane and its shutdown signal.
#[derive(Debug)]
pub struct Game {
    router: Router,
    backplane: Backplane,
    shutdown: Shutdown,
}

impl Game {
    /// Connects the backplane that `options` asks for and builds the server.
    ///
    /// # Errors
    ///
    /// When Redis cannot be reached or its URL is invalid, or the cookie key is too short.
    pub async fn start(options: &Options) -> Result<Self, StartError> {
        // Before the backplane: it registers its series when built.
        metrics::prometheus();
        let key = match &options.cookie_key {
            Some(Secret(secret)) => Key::try_from(secret.as_bytes())
                .map_err(|_| StartError::CookieKeyTooShort(secret.len()))?,
            None => Key::try_generate().ok_or(StartError::NoRandomKey)?,
        };
        let backplane = match &options.redis {
            None => Backplane::in_memory_with(
                statelesse::MemoryConfig::default()
                    .with_history_len(HISTORY_LEN)
                    .with_history_ttl(HISTORY_TTL),
            ),
            Some(url) => {
                let config = statelesse::RedisConfig::new(url)?
                    .with_prefix(options.prefix.clone())
                    .with_history_len(HISTORY_LEN)
                    .with_history_ttl(Some(HISTORY_TTL));
                Backplane::redis(config).await?
            }
        };
        let streams = Streams {
            max: options.max_streams,
            retry: Duration::from_millis(options.retry_ms),
        };
        Ok(Self::new(backplane, key, &streams))
    }

    /// The server over `backplane`, signing its login cookies with `key`.
    #[must_use]
    pub fn new(backplane: Backplane, key: Key, streams: &Streams) -> Self {
        // Before the routes: they register their series when built.
        metrics::prometheus();
        let shutdown = Shutdown::new();
        let router = router(
            App {
                backplane: backplane.clone(),
                key,
            },
            streams,
            &shutdown,
        );
        Self {
            router,
            backplane,
            shutdown,
        }
    }

    /// The backplane the server publishes on.
    #[must_use]
    pub fn backplane(&self) -> &Backplane {
        &self.backplane
    }

    /// The router, for tests that serve it themselves.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The signal that ends every open event stream.
    #[must_use]
    pub fn shutdown_signal(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Serves until `signal` completes, then ends every open stream (within a few seconds, even
    /// for clients that stopped reading) and shuts the backplane down.
    ///
    /// # Errors
    ///
    /// When the listener fails.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shutdown = self.shutdown.clone();
        // A client that takes no bytes for the routes' write timeout has its socket closed, not
        // only its stream's slot and subscription released.
        let listener = WriteDeadline::new(listener, DEFAULT_WRITE_TIMEOUT);
        let server = axum::serve(listener, self.router).with_graceful_shutdown(async move {
            signal.await;
            shutdown.trigger();
        });
        let drained = self.shutdown.clone();
        let upkeep = tokio::spawn(metrics::upkeep());
        tokio::select! {
            result = server => result?,
            () = async {
                drained.triggered().await;
                tokio::time::sleep(DRAIN).await;
            } => tracing::warn!("streams still open after {DRAIN:?}; closing them"),
        }
        upkeep.abort();
        self.backplane.shutdown().await;
        Ok(())
    }
}

/// The path of the page's one stream: its game, the announcements and its user's notifications.
pub const PAGE_STREAM: &str = "/sse/page";

/// The game stream's route: its snapshot first. Its connections are spectators: they see who is
/// in the lobby (the `presence`, `join` and `leave` events) without being listed.
fn game_routes() -> SseRoutes<GameEvent, App> {
    GameEvent::sse_routes().initial_state(|game_id: GameId, app: App| async move {
        snapshot(&app.backplane, game_id).await
    })
}

/// The game channel of the page's stream: a logged-in user is listed in the game's lobby as the
/// user the signed cookie (or bearer token) names, for as long as one of their pages follows the
/// game; a page without a valid login watches as a spectator.
fn lobby_routes() -> SseRoutes<GameEvent, App> {
    game_routes().member_or_spectator(|parts, _game_id: GameId, app: App| async move {
        Ok::<_, Infallible>(user(&parts.headers, app.key).map(|name| Player { name }))
    })
}

/// The notification stream's route: only for the user the signed cookie (or bearer token) names.
fn notification_routes() -> SseRoutes<Notification, App> {
    Notification::sse_routes().authorize(|parts, user_id: String, app: App| async move {
        match user(&parts.headers, app.key) {
            None => Err(Denied::Unauthorized),
            Some(user) if user == user_id => Ok(()),
            Some(_) => Err(Denied::Forbidden),
        }
    })
}

fn router(app: App, settings: &Streams, shutdown: &Shutdown) -> Router {
    let limit = ConnectionLimit::new(settings.max);
    let streams = Router::new()
        // What the page uses: one connection for all its channels.
        .merge(
            MuxRoutes::new(PAGE_STREAM)
                .event(lobby_routes())
                .event(SystemAnnouncement::sse_routes())
                .event(notification_routes())
                .connection_limit(&limit)
                .retry(settings.retry)
                .shutdown(shutdown),
        )
        .merge(settings.apply(game_routes(), &limit, shutdown))
        .merge(settings.apply(PlayerJoined::sse_routes(), &limit, shutdown))
        .merge(settings.apply(PlayerLeft::sse_routes(), &limit, shutdown))
        .merge(settings.apply(RoundStarted::sse_routes(), &limit, shutdown))
        .merge(settings.apply(ScoreChanged::sse_routes(), &limit, shutdown))
        .merge(settings.apply(SystemAnnouncement::sse_routes(), &limit, shutdown))
        .merge(settings.apply(notification_routes(), &limit, shutdown));
    Router::new()
        .merge(streams)
        .route("/api/login", post(login))
        .route("/api/me", get(me))
        .route("/api/games", post(create_game))
        .route("/api/games/{game_id}", get(get_game))
        .route("/api/games/{game_id}/join", post(join))
        .route("/api/games/{game_id}/leave", post(leave))
        .route("/api/games/{game_id}/rounds", post(start_round))
        .route("/api/games/{game_id}/score", post(score))
        .route("/api/announcements", post(announce))
        .route("/diagnostics", get(diagnostics))
        .route("/metrics", get(metrics::render))
        .route("/ready", get(readiness))
        .route("/", get(|| page(HTML, include_str!("../web/index.html"))))
        .route("/app.js", get(|| page(JS, include_str!("../web/app.js"))))
        .route(
            "/events.js",
            get(|| page(JS, include_str!("../web/events.js"))),
        )
        .with_state(app)
}

/// The signed cookie that says who the browser's user is (a demo login: no password).
const USER_COOKIE: &str = "user";

/// The user a request speaks for: the signed login cookie, or its value sent as
/// `Authorization: Bearer <value>` by a client that sends a token rather than cookies. A forged or
/// altered value is no login.
fn user(headers: &HeaderMap, key: Key) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let jar = match bearer
        .and_then(|token| HeaderValue::from_str(&format!("{USER_COOKIE}={token}")).ok())
    {
        Some(cookie) => {
            SignedCookieJar::from_headers(&HeaderMap::from_iter([(header::COOKIE, cookie)]), key)
        }
        None => SignedCookieJar::from_headers(headers, key),
    };
    jar.get(USER_COOKIE).map(|user| user.value().to_owned())
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

fn page(
    content_type: &'static str,
    content: &'static str,
) -> impl Future<Output = impl IntoResponse> {
    std::future::ready(([(header::CONTENT_TYPE, content_type)], content))
}

/// A game's current state: the fold of its events.
async fn snapshot(backplane: &Backplane, game_id: GameId) -> Result<GameSnapshot, ApiError> {
    let history = backplane
        .history(&GameEvent::channel(&game_id), None)
        .await?;
    if !history.complete && !history.events.is_empty() {
        // The game outlived its history (too many events, or idle past the time-to-live): the
        // snapshot shows what is left rather than failing the page. (An unknown channel is
        // incomplete too, but that is simply a game with no events yet.)
        tracing::warn!(%game_id, "the game's history is incomplete; its snapshot may miss events");
    }
    let mut game = GameSnapshot::new(game_id);
    for received in &history.events {
        game.apply(&received.event);
    }
    Ok(game)
}

/// Publishes a game event on its own channel and on the game's stream.
async fn publish<E>(backplane: &Backplane, event: E) -> Result<EventId, ApiError>
where
    E: SseEvent + Clone + Into<GameEvent>,
{
    E::publish(backplane, event.clone()).await?;
    Ok(GameEvent::publish(backplane, event.into()).await?)
}

/// The body naming a player.
#[derive(Debug, Deserialize)]
struct PlayerBody {
    player: String,
}

/// The body of `POST /api/games/{id}/score`.
#[derive(Debug, Deserialize)]
struct ScoreBody {
    player: String,
    points: i64,
}

/// The body of `POST /api/announcements`.
#[derive(Debug, Deserialize)]
struct AnnouncementBody {
    text: String,
}

/// `POST /api/login {"player": ".."}`: remembers the user in a signed cookie.
///
/// `HttpOnly`: the page has no use for the cookie itself; it asks `GET /api/me` who is logged
/// in. (Not `Secure`, as the demo is served over plain HTTP; a real deployment would add it.)
async fn login(
    jar: SignedCookieJar,
    Json(body): Json<PlayerBody>,
) -> Result<(SignedCookieJar, Json<String>), ApiError> {
    let name = valid_name(body.player)?;
    let cookie = Cookie::build((USER_COOKIE, name.clone()))
        .path("/")
        .same_site(SameSite::Lax)
        .http_only(true);
    Ok((jar.add(cookie), Json(name)))
}

/// `GET /api/me`: the logged-in user's name, from the signed cookie; `null` without a valid one
/// (not an error: a page that nobody logged in to yet asks too).
async fn me(jar: SignedCookieJar) -> Json<Option<String>> {
    Json(jar.get(USER_COOKIE).map(|user| user.value().to_owned()))
}

/// `POST /api/games`: a new game, announced to everyone.
async fn create_game(State(app): State<App>) -> Result<Json<GameSnapshot>, ApiError> {
    let game_id = GameId(rand::random_range(1..1_000_000));
    let text = format!("game {game_id} is open");
    SystemAnnouncement::publish(&app.backplane, SystemAnnouncement { text }).await?;
    Ok(Json(GameSnapshot::new(game_id)))
}

/// `GET /api/games/{id}`: the game's state.
async fn get_game(
    State(app): State<App>,
    Path(game_id): Path<GameId>,
) -> Result<Json<GameSnapshot>, ApiError> {
    Ok(Json(snapshot(&app.backplane, game_id).await?))
}

async fn join(
    State(app): State<App>,
    Path(game_id): Path<GameId>,
    Json(body): Json<PlayerBody>,
) -> Result<Json<EventId>, ApiError> {
    let player = valid_name(body.player)?;
    if snapshot(&app.backplane, game_id).await?.has(&player) {
        return Err(ApiError::Conflict(format!(
            "{player} is already in game {game_id}"
        )));
    }
    let id = publish(&app.backplane, PlayerJoined { game_id, player }).await?;
    Ok(Json(id))
}

async fn leave(
    State(app): State<App>,
    Path(game_id): Path<GameId>,
    Json(body): Json<PlayerBody>,
) -> Result<Json<EventId>, ApiError> {
    let game = snapshot(&app.backplane, game_id).await?;
    if !game.has(&body.player) {
        return Err(not_in_game(&body.player, game_id));
    }
    let id = publish(
        &app.backplane,
        PlayerLeft {
            game_id,
            player: body.player,
        },
    )
    .await?;
    Ok(Json(id))
}

async fn start_round(
    State(app): State<App>,
    Path(game_id): Path<GameId>,
) -> Result<Json<EventId>, ApiError> {
    let round = snapshot(&app.backplane, game_id).await?.round + 1;
    let id = publish(&app.backplane, RoundStarted { game_id, round }).await?;
    Ok(Json(id))
}

async fn score(
    State(app): State<App>,
    Path(game_id): Path<GameId>,
    Json(body): Json<ScoreBody>,
) -> Result<Json<EventId>, ApiError> {
    let game = snapshot(&app.backplane, game_id).await?;
    let Some(current) = game.score(&body.player) else {
        return Err(not_in_game(&body.player, game_id));
    };
    let score = current.saturating_add(body.points);
    let player = body.player;
    let id = publish(
        &app.backplane,
        ScoreChanged {
            game_id,
            player: player.clone(),
            score,
        },
    )
    .await?;
    let points = if score.abs() == 1 { "point" } else { "points" };
    let text = format!("you have {score} {points} in game {game_id}");
    Notification::publish(
        &app.backplane,
        Notification {
            user_id: player,
            text,
        },
    )
    .await?;
    Ok(Json(id))
}

async fn announce(
    State(app): State<App>,
    Json(body): Json<AnnouncementBody>,
) -> Result<Json<EventId>, ApiError> {
    let id =
        SystemAnnouncement::publish(&app.backplane, SystemAnnouncement { text: body.text }).await?;
    Ok(Json(id))
}

/// What `GET /diagnostics` shows: counts and the transport's state, never a channel's name (a
/// user's channel is named after the user).
#[derive(Debug, Serialize)]
struct Counts {
    transport: &'static str,
    total_channels: usize,
    total_local_subscribers: usize,
    published: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    redis: Option<RedisDiagnostics>,
}

/// `GET /diagnostics`: how many channels and subscribers this instance serves, and its transport's
/// state. Open to anyone, so it names no channel (the per-user ones would tell who is online);
/// the demo's login has no password, so putting the names behind it would protect nothing.
async fn diagnostics(State(app): State<App>) -> Json<Counts> {
    let diagnostics = app.backplane.diagnostics();
    Json(Counts {
        transport: diagnostics.transport,
        total_channels: diagnostics.total_channels,
        total_local_subscribers: diagnostics.total_local_subscribers,
        published: diagnostics.published,
        redis: diagnostics.redis,
    })
}

/// Player names are short words, so that they are safe in cookies and URLs alike.
fn valid_name(name: String) -> Result<String, ApiError> {
    let ok = (1..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::BadRequest(
            "a player name is 1 to 24 letters, digits, `_` or `-`".to_owned(),
        ))
    }
}

fn not_in_game(player: &str, game_id: GameId) -> ApiError {
    ApiError::NotFound(format!("{player} is not in game {game_id}"))
}

/// Why an API call failed; each answers a status and a plain text body.
#[derive(Debug)]
enum ApiError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Backplane(BackplaneError),
}

impl From<BackplaneError> for ApiError {
    fn from(error: BackplaneError) -> Self {
        Self::Backplane(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::BadRequest(text) => (StatusCode::BAD_REQUEST, text).into_response(),
            Self::NotFound(text) => (StatusCode::NOT_FOUND, text).into_response(),
            Self::Conflict(text) => (StatusCode::CONFLICT, text).into_response(),
            Self::Backplane(error) => {
                tracing::warn!(%error, "backplane call failed");
                (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response()
            }
        }
    }
}
