//! A server for the TypeScript client: the SSE routes of the events of `example-ts-events`, an
//! HTTP API that publishes them, and a page (`web/`) that uses the client generated at build time
//! by `build.rs`, in its `.js` + `.d.ts` form.
//!
//! Run with: cargo run -p example-ts-server
//!
//! then open <http://127.0.0.1:3000/> and publish, e.g.
//!
//! ```sh
//! curl -X POST localhost:3000/publish/game-event -H 'content-type: application/json' \
//!      -d '{"playerJoined":{"gameId":7,"playerName":"ada"}}'
//! ```
//!
//! `ADDR` sets the address (default `127.0.0.1:3000`; `127.0.0.1:0` picks a free port); the first
//! line on standard output is `listening on http://{address}`. `POST /drop` ends every open
//! stream, as a lost connection would, so that tests can watch the client resume.
//!
//! The TypeScript and browser tests (`npm test`, see `tests/ts/`) start this binary.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use example_ts_events::{Announcement, ChatMessage, GameEvent, GameSnapshot, PlayerJoined};
use futures_util::StreamExt as _;
use statelesse::prelude::*;
use tokio::sync::watch;

/// The state of the app: the backplane, the players of each game (for the snapshot), and the
/// signal that drops every open stream.
#[derive(Clone)]
struct App {
    backplane: Backplane,
    players: Arc<Mutex<HashMap<u64, Vec<String>>>>,
    drops: watch::Sender<u64>,
}

impl FromRef<App> for Backplane {
    fn from_ref(app: &App) -> Self {
        app.backplane.clone()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(Backplane::in_memory())).await?;
    Ok(())
}

fn app(backplane: Backplane) -> Router {
    let app = App {
        backplane,
        players: Arc::default(),
        drops: watch::Sender::new(0),
    };
    let streams = Router::new()
        .merge(PlayerJoined::sse_route())
        .merge(
            GameEvent::sse_routes()
                .initial_state(|game_id: u64, app: App| async move {
                    let players = app.players(game_id);
                    Ok::<_, Infallible>(GameSnapshot { game_id, players })
                })
                .into_router(),
        )
        .merge(ChatMessage::sse_route())
        .merge(Announcement::sse_route())
        .layer(middleware::from_fn_with_state(app.clone(), droppable));

    Router::new()
        .merge(streams)
        .route("/publish/player-joined", post(publish::<PlayerJoined>))
        .route("/publish/game-event", post(publish::<GameEvent>))
        .route("/publish/chat-message", post(publish::<ChatMessage>))
        .route("/publish/announcement", post(publish::<Announcement>))
        .route("/drop", post(drop_streams))
        .route("/", get(|| file(HTML, include_str!("../web/index.html"))))
        .route("/app.js", get(|| file(JS, include_str!("../web/app.js"))))
        .route(
            "/events.js",
            get(|| file(JS, include_str!("../web/events.js"))),
        )
        .with_state(app)
}

impl App {
    fn players(&self, game_id: u64) -> Vec<String> {
        let players = self
            .players
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        players.get(&game_id).cloned().unwrap_or_default()
    }

    fn joined(&self, joined: &PlayerJoined) {
        let mut players = self
            .players
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        players
            .entry(joined.game_id)
            .or_default()
            .push(joined.player_name.clone());
    }
}

/// `POST /publish/{event}`: publishes the JSON body, answers the event's id.
async fn publish<E: SseEvent + Remember>(
    State(app): State<App>,
    Json(event): Json<E>,
) -> Result<String, (StatusCode, String)> {
    event.remember(&app);
    match E::publish(&app.backplane, event).await {
        Ok(id) => Ok(id.to_string()),
        Err(error) => Err((StatusCode::SERVICE_UNAVAILABLE, error.to_string())),
    }
}

/// What publishing an event changes in the app's own state (the snapshot's players).
trait Remember {
    fn remember(&self, _app: &App) {}
}

impl Remember for PlayerJoined {
    fn remember(&self, app: &App) {
        app.joined(self);
    }
}

impl Remember for GameEvent {
    fn remember(&self, app: &App) {
        if let GameEvent::PlayerJoined(joined) = self {
            app.joined(joined);
        }
    }
}

impl Remember for ChatMessage {}
impl Remember for Announcement {}

/// `POST /drop`: ends every open stream, as a lost connection would.
async fn drop_streams(State(app): State<App>) -> StatusCode {
    app.drops.send_modify(|generation| *generation += 1);
    StatusCode::NO_CONTENT
}

/// Ends the response body of a stream when `POST /drop` is called.
async fn droppable(State(app): State<App>, request: Request, next: Next) -> Response {
    let mut drops = app.drops.subscribe();
    let (parts, body) = next.run(request).await.into_parts();
    let body = body.into_data_stream().take_until(async move {
        let _ = drops.changed().await;
    });
    Response::from_parts(parts, Body::from_stream(body))
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// A handler that answers a file embedded in the binary.
fn file(
    content_type: &'static str,
    content: &'static str,
) -> impl Future<Output = impl IntoResponse> {
    std::future::ready(([(header::CONTENT_TYPE, content_type)], content))
}
