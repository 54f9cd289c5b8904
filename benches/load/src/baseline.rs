//! The baseline: the server a user writes by hand without statelesse, about a hundred lines of
//! axum + Redis pub/sub + one `tokio::sync::broadcast` channel per key, in the style of axum's
//! own chat example. It serves the same routes and JSON as the statelesse server.
//!
//! One Redis pub/sub connection SUBSCRIBEs to `room:<key>` when the first SSE client of a key
//! arrives (and, like most hand-written versions, never unsubscribes); a reader task hands each
//! message to the key's broadcast channel as a `String`; each SSE connection turns every
//! message it receives into an axum `Event`. Publishes are a plain `PUBLISH` on one multiplexed
//! connection. No event ids, no history, no resume: a client that reconnects loses what was
//! published meanwhile.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use futures_util::{Stream, StreamExt as _};
use redis::AsyncCommands as _;
use redis::aio::{MultiplexedConnection, PubSubSink};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::{BoxError, Tick};

#[derive(Clone)]
struct AppState {
    publisher: MultiplexedConnection,
    subscriber: PubSubSink,
    rooms: Arc<Mutex<HashMap<u32, broadcast::Sender<String>>>>,
}

/// The baseline's router, connected to the Redis at `url`.
pub(crate) async fn app(url: &str) -> Result<Router, BoxError> {
    let client = redis::Client::open(url)?;
    let publisher = client.get_multiplexed_async_connection().await?;
    let (subscriber, mut messages) = client.get_async_pubsub().await?.split();
    let rooms = Arc::new(Mutex::new(HashMap::<u32, broadcast::Sender<String>>::new()));
    let state = AppState {
        publisher,
        subscriber,
        rooms: Arc::clone(&rooms),
    };
    tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let Some(room) = message
                .get_channel_name()
                .strip_prefix("room:")
                .and_then(|room| room.parse().ok())
            else {
                continue;
            };
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            let rooms = rooms.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(sender) = rooms.get(&room) {
                let _ = sender.send(payload);
            }
        }
    });
    Ok(Router::new()
        .route("/sse/bench/{room}/tick", get(sse))
        .route("/publish", post(publish))
        .with_state(state))
}

async fn sse(
    Path(room): Path<u32>,
    State(mut state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, StatusCode> {
    let (receiver, first) = {
        let mut rooms = state.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = rooms
            .entry(room)
            .or_insert_with(|| broadcast::channel(1024).0);
        (sender.subscribe(), sender.receiver_count() == 1)
    };
    if first {
        state
            .subscriber
            .subscribe(format!("room:{room}"))
            .await
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    }
    let events = BroadcastStream::new(receiver).filter_map(|message| async move {
        // A lagging client silently skips what it missed.
        let json = message.ok()?;
        Some(Ok(Event::default().event("Tick").data(json)))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

async fn publish(State(mut state): State<AppState>, Json(tick): Json<Tick>) -> StatusCode {
    let Ok(json) = serde_json::to_string(&tick) else {
        return StatusCode::BAD_REQUEST;
    };
    let published: redis::RedisResult<i64> = state
        .publisher
        .publish(format!("room:{}", tick.room), json)
        .await;
    match published {
        Ok(_) => StatusCode::NO_CONTENT,
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}
