//! The axum SSE routes end to end: a real server on `127.0.0.1:0`, real HTTP clients.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt as _;
use statelesse::backplane::replay::ReplayConfig;
use statelesse::backplane::transport::{BoxFuture, HistoryPage, LiveFeed, PageLimits, Transport};
use statelesse::prelude::*;
use statelesse::routes::{ConnectionLimit, Denied, Shutdown};
use statelesse::{
    BackplaneError, Diagnostics, MemoryConfig, MemoryTransport, RedisConfig, SubscriptionError,
};
use statelesse_test_redis::RedisServer;
use statelesse_tests::app::{spawn_app, spawn_app_with_shutdown};
use statelesse_tests::sse::{Frame, RawClient, SseClient};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
struct PlayerJoined {
    game_id: u64,
    player_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
struct ScoreChanged {
    game_id: u64,
    score: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
enum GameEvent {
    Joined(PlayerJoined),
    #[sse(name = "score")]
    Scored {
        game_id: u64,
        score: i64,
    },
    Ended {
        game_id: u64,
        winner: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "system")]
struct Announcement {
    text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "user", key = "user_id")]
struct Notification {
    user_id: String,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "load", key = "room")]
struct Tick {
    room: u32,
    seq: u64,
    sent_at_us: u64,
    pad: String,
}

/// An app state holding more than the backplane, as real apps do.
#[derive(Clone)]
struct AppState {
    backplane: Backplane,
    motd: &'static str,
}

impl FromRef<AppState> for Backplane {
    fn from_ref(state: &AppState) -> Self {
        state.backplane.clone()
    }
}

fn joined(game_id: u64, name: &str) -> PlayerJoined {
    PlayerJoined {
        game_id,
        player_name: name.to_owned(),
    }
}

/// Publishes `event` and returns its SSE id as text.
async fn publish<E: SseEvent>(bp: &Backplane, event: E) -> String {
    E::publish(bp, event).await.unwrap().to_string()
}

/// Waits, at most 2 s, until `check` holds for the backplane's diagnostics.
async fn eventually(bp: &Backplane, what: &str, check: impl Fn(&Diagnostics) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !check(&bp.diagnostics()) {
        assert!(Instant::now() < deadline, "{what}: {:?}", bp.diagnostics());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn headers_and_exact_frame_bytes() {
    let bp = Backplane::in_memory();
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .with_state(bp.clone()),
    )
    .await;

    let mut client = SseClient::connect(&app.url("/sse/game/7/player-joined")).await;
    let headers = client.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert_eq!(client.next_frame().await.unwrap().raw, "retry: 3000\n\n");

    let id = publish(&bp, joined(7, "ada")).await;
    let frame = client.next_frame().await.unwrap();
    assert_eq!(
        frame.raw,
        format!(
            "id: {id}\nevent: PlayerJoined\ndata: {{\"game_id\":7,\"player_name\":\"ada\"}}\n\n"
        )
    );

    let id = publish(&bp, joined(7, "line\nbreak \"quoted\" ünïcode")).await;
    let frame = client.next_frame().await.unwrap();
    assert_eq!(
        frame.raw,
        format!(
            "id: {id}\nevent: PlayerJoined\ndata: {{\"game_id\":7,\"player_name\":\"line\\nbreak \\\"quoted\\\" ünïcode\"}}\n\n"
        )
    );
}

#[tokio::test(start_paused = true)]
async fn idle_streams_get_keep_alive_comments_on_the_interval() {
    let bp = Backplane::in_memory();
    let router = Router::new()
        // Shorter than the test client's 5 s read timeout, which paused time would otherwise
        // reach in the same step as the keep-alive.
        .merge(PlayerJoined::sse_routes().keep_alive(Duration::from_secs(2)))
        .with_state(bp.clone());
    let app = spawn_app(router).await;
    let mut client = SseClient::subscribe(&app.url("/sse/game/1/player-joined")).await;

    let start = tokio::time::Instant::now();
    for n in 1..=3 {
        assert_eq!(client.next_frame().await.unwrap().raw, ": keep-alive\n\n");
        assert_eq!(start.elapsed().as_secs(), 2 * n);
    }
    publish(&bp, joined(1, "ada")).await;
    assert_eq!(client.next_frame().await.unwrap().event(), "PlayerJoined");
}

#[tokio::test]
async fn the_retry_hint_is_configurable() {
    let bp = Backplane::in_memory();
    let router = Router::new()
        .merge(PlayerJoined::sse_routes().retry(Duration::from_millis(1500)))
        .with_state(bp);
    let app = spawn_app(router).await;
    let mut client = SseClient::connect(&app.url("/sse/game/1/player-joined")).await;
    assert_eq!(client.next_frame().await.unwrap().raw, "retry: 1500\n\n");
}

/// The events a client reads up to and including the first whose data satisfies `is_end`.
async fn read_until(
    client: &mut SseClient,
    is_end: impl Fn(&serde_json::Value) -> bool,
) -> Vec<(String, serde_json::Value)> {
    let mut seen = Vec::new();
    loop {
        let frame = client.next_event().await.unwrap();
        let data = frame.json();
        let end = is_end(&data);
        seen.push((frame.event().to_owned(), data));
        if end {
            return seen;
        }
    }
}

#[tokio::test]
async fn events_reach_only_the_subscribers_of_their_channel() {
    let bp = Backplane::in_memory();
    let state = AppState {
        backplane: bp.clone(),
        motd: "hi",
    };
    let router = Router::new()
        .merge(PlayerJoined::sse_route())
        .merge(ScoreChanged::sse_route())
        .with_state(state);
    let app = spawn_app(router).await;

    let mut joined_1 = SseClient::subscribe(&app.url("/sse/game/1/player-joined")).await;
    let mut joined_2 = SseClient::subscribe(&app.url("/sse/game/2/player-joined")).await;
    let mut score_1 = SseClient::subscribe(&app.url("/sse/game/1/score-changed")).await;

    publish(&bp, joined(2, "bob")).await;
    publish(
        &bp,
        ScoreChanged {
            game_id: 1,
            score: 10,
        },
    )
    .await;
    publish(&bp, joined(1, "ada")).await;
    publish(
        &bp,
        ScoreChanged {
            game_id: 2,
            score: 99,
        },
    )
    .await;
    // A last event on each channel: whatever a client reads before it is all it was sent.
    publish(&bp, joined(1, "end")).await;
    publish(&bp, joined(2, "end")).await;
    publish(
        &bp,
        ScoreChanged {
            game_id: 1,
            score: -1,
        },
    )
    .await;

    let name_end = |data: &serde_json::Value| data["player_name"] == "end";
    let score_end = |data: &serde_json::Value| data["score"] == -1;

    let seen = read_until(&mut joined_1, name_end).await;
    assert_eq!(
        seen,
        [
            (
                "PlayerJoined".to_owned(),
                serde_json::json!({"game_id": 1, "player_name": "ada"})
            ),
            (
                "PlayerJoined".to_owned(),
                serde_json::json!({"game_id": 1, "player_name": "end"})
            ),
        ]
    );
    let seen = read_until(&mut joined_2, name_end).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].1["player_name"], "bob");
    let seen = read_until(&mut score_1, score_end).await;
    assert_eq!(
        seen,
        [
            (
                "ScoreChanged".to_owned(),
                serde_json::json!({"game_id": 1, "score": 10})
            ),
            (
                "ScoreChanged".to_owned(),
                serde_json::json!({"game_id": 1, "score": -1})
            ),
        ]
    );
}

#[tokio::test]
async fn an_enum_stream_carries_every_variant_under_its_event_name() {
    let bp = Backplane::in_memory();
    let router = Router::new()
        .merge(GameEvent::sse_route())
        .merge(Announcement::sse_route())
        .with_state(bp.clone());
    let app = spawn_app(router).await;
    let mut game = SseClient::subscribe(&app.url("/sse/game/3")).await;
    let mut system = SseClient::subscribe(&app.url("/sse/system/announcement")).await;

    let ids = [
        publish(&bp, GameEvent::Joined(joined(3, "ada"))).await,
        publish(
            &bp,
            GameEvent::Scored {
                game_id: 3,
                score: 5,
            },
        )
        .await,
        publish(
            &bp,
            GameEvent::Ended {
                game_id: 3,
                winner: Some("ada".into()),
            },
        )
        .await,
    ];
    let expected = [
        (
            "Joined",
            serde_json::json!({"game_id": 3, "player_name": "ada"}),
        ),
        ("score", serde_json::json!({"game_id": 3, "score": 5})),
        ("Ended", serde_json::json!({"game_id": 3, "winner": "ada"})),
    ];
    for (id, (event, data)) in ids.iter().zip(expected) {
        let frame = game.next_event().await.unwrap();
        assert_eq!(
            (frame.id(), frame.event(), frame.json()),
            (id.as_str(), event, data)
        );
    }

    // A keyless (broadcast) event has its own route without a key.
    publish(
        &bp,
        Announcement {
            text: "maintenance".into(),
        },
    )
    .await;
    let frame = system.next_event().await.unwrap();
    assert_eq!(
        (frame.event(), frame.json()),
        ("Announcement", serde_json::json!({"text": "maintenance"}))
    );
}

#[tokio::test]
async fn a_nested_route_still_finds_its_key() {
    let bp = Backplane::in_memory();
    let router = Router::new()
        .nest(
            "/api/{tenant}",
            Router::new().merge(PlayerJoined::sse_route()),
        )
        .with_state(bp.clone());
    let app = spawn_app(router).await;
    let mut client = SseClient::subscribe(&app.url("/api/acme/sse/game/5/player-joined")).await;
    publish(&bp, joined(5, "ada")).await;
    assert_eq!(client.next_event().await.unwrap().json()["game_id"], 5);
}

#[tokio::test]
async fn a_reconnecting_client_resumes_after_its_last_id_without_gap_or_duplicate() {
    let bp = Backplane::in_memory();
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .with_state(bp.clone()),
    )
    .await;
    let url = app.url("/sse/game/1/player-joined");

    let mut client = SseClient::subscribe(&url).await;
    for name in ["a", "b", "c"] {
        publish(&bp, joined(1, name)).await;
    }
    let mut last = String::new();
    for name in ["a", "b", "c"] {
        let frame = client.next_event().await.unwrap();
        assert_eq!(frame.json()["player_name"], name);
        last = frame.id().to_owned();
    }
    drop(client);
    for name in ["d", "e"] {
        publish(&bp, joined(1, name)).await;
    }

    // EventSource's own reconnect: the header.
    let mut client = SseClient::request(&url).last_event_id(&last).open().await;
    assert_eq!(client.next_frame().await.unwrap().raw, "retry: 3000\n\n");
    let mut names = Vec::new();
    for _ in 0..2 {
        names.push(client.next_event().await.unwrap().json()["player_name"].clone());
    }
    publish(&bp, joined(1, "f")).await;
    names.push(client.next_event().await.unwrap().json()["player_name"].clone());
    assert_eq!(names, ["d", "e", "f"]);

    // A page reload: the query parameter, same result.
    let mut client = SseClient::connect(&format!("{url}?lastEventId={last}")).await;
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(client.next_event().await.unwrap().json()["player_name"].clone());
    }
    assert_eq!(names, ["d", "e", "f"]);
}

/// Two instances on one Redis: a client of instance A sees events published on B, and when it
/// drops it resumes on B, with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_another_instance_sharing_one_redis() {
    let server = RedisServer::start();
    let config = || {
        RedisConfig::new(&server.url())
            .unwrap()
            .with_prefix("routes")
    };
    let bp_a = Backplane::redis(config()).await.unwrap();
    let bp_b = Backplane::redis(config()).await.unwrap();
    let app_a = spawn_app(
        Router::new()
            .merge(GameEvent::sse_route())
            .with_state(bp_a.clone()),
    )
    .await;
    let app_b = spawn_app(
        Router::new()
            .merge(GameEvent::sse_route())
            .with_state(bp_b.clone()),
    )
    .await;
    let score = |score| GameEvent::Scored { game_id: 8, score };

    let mut client = SseClient::subscribe(&app_a.url("/sse/game/8")).await;
    for n in 1..=3 {
        publish(&bp_b, score(n)).await;
    }
    let mut last = String::new();
    for n in 1..=3 {
        let frame = client.next_event().await.unwrap();
        assert_eq!(
            (frame.event(), &frame.json()["score"]),
            ("score", &n.into())
        );
        last = frame.id().to_owned();
    }
    drop(client);
    for n in 4..=5 {
        publish(&bp_a, score(n)).await;
    }

    let mut client = SseClient::request(&app_b.url("/sse/game/8"))
        .last_event_id(&last)
        .open()
        .await;
    let mut scores = Vec::new();
    for _ in 0..2 {
        scores.push(client.next_event().await.unwrap().json()["score"].clone());
    }
    publish(&bp_a, score(6)).await;
    scores.push(client.next_event().await.unwrap().json()["score"].clone());
    assert_eq!(scores, [4, 5, 6]);
    assert_eq!(bp_b.local_subscriber_count(&GameEvent::channel(&8)), 1);
    eventually(&bp_a, "the departed client is unsubscribed on A", |d| {
        d.total_local_subscribers == 0
    })
    .await;
}

#[tokio::test]
async fn an_id_older_than_history_yields_a_gap_event_then_what_history_has() {
    let bp = Backplane::in_memory_with(MemoryConfig::default().with_history_len(3));
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .with_state(bp.clone()),
    )
    .await;
    let url = app.url("/sse/game/1/player-joined");

    let first = publish(&bp, joined(1, "1")).await;
    for n in 2..=6 {
        publish(&bp, joined(1, &n.to_string())).await;
    }
    let mut client = SseClient::request(&url).last_event_id(&first).open().await;
    assert_eq!(client.next_frame().await.unwrap().raw, "retry: 3000\n\n");
    // The gap's id is where the stream goes on from: after `first`, with what history has.
    assert_eq!(
        client.next_frame().await.unwrap().raw,
        format!("id: {first}\nevent: gap\ndata: {{\"missed\":null}}\n\n")
    );
    for name in ["4", "5", "6"] {
        assert_eq!(
            client.next_event().await.unwrap().json()["player_name"],
            name
        );
    }
    publish(&bp, joined(1, "7")).await;
    assert_eq!(
        client.next_event().await.unwrap().json()["player_name"],
        "7"
    );

    // An id this channel never gave (another backplane's, or made up) is a gap too.
    let mut client = SseClient::request(&url).last_event_id("1-0").open().await;
    client.next_frame().await.unwrap();
    assert_eq!(client.next_frame().await.unwrap().event(), "gap");
}

/// A client that holds an id from the future (forged, or from a channel since deleted) gets one
/// `gap` whose `id` is the channel's end, so reconnecting with the id it now holds gets no second
/// gap: `EventSource` and the generated client adopt a gap's id like any event's.
#[tokio::test]
async fn a_resume_id_from_the_future_gets_a_gap_carrying_the_channels_end_once() {
    let bp = Backplane::in_memory();
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .with_state(bp.clone()),
    )
    .await;
    let url = app.url("/sse/game/1/player-joined");
    publish(&bp, joined(1, "1")).await;
    let end = publish(&bp, joined(1, "2")).await;

    let mut client = SseClient::connect(&format!("{url}?lastEventId=18446744073709551615-0")).await;
    assert_eq!(client.next_frame().await.unwrap().raw, "retry: 3000\n\n");
    assert_eq!(
        client.next_frame().await.unwrap().raw,
        format!("id: {end}\nevent: gap\ndata: {{\"missed\":null}}\n\n")
    );
    drop(client);

    let mut client = SseClient::request(&url).last_event_id(&end).open().await;
    let third = publish(&bp, joined(1, "3")).await;
    let frame = client.next_event().await.unwrap();
    assert_eq!(
        (frame.event(), frame.id()),
        ("PlayerJoined", third.as_str())
    );
}

/// Another client of the same Redis publishes a `snapshot`, a `gap` and names of no route's type
/// on the channels of a struct route and of an enum route: no browser sees them, as if they were
/// the route's own, and the instance counts every one in its diagnostics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_names_not_of_the_routes_type_never_reach_its_clients_and_are_counted() {
    let server = RedisServer::start();
    let config = || {
        RedisConfig::new(&server.url())
            .unwrap()
            .with_prefix("foreign")
    };
    let bp = Backplane::redis(config()).await.unwrap();
    let other = Backplane::redis(config()).await.unwrap();
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .merge(GameEvent::sse_route())
            .with_state(bp.clone()),
    )
    .await;
    let mut struct_client = SseClient::subscribe(&app.url("/sse/game/1/player-joined")).await;
    let mut enum_client = SseClient::subscribe(&app.url("/sse/game/1")).await;

    let data = Bytes::from_static(br#"{"game_id":1,"player_name":"mallory"}"#);
    let foreign = [
        (
            PlayerJoined::channel(&1).name().to_owned(),
            ["snapshot", "gap", "Joined"].as_slice(),
        ),
        (
            GameEvent::channel(&1).name().to_owned(),
            ["snapshot", "gap", "PlayerJoined", "GameEvent"].as_slice(),
        ),
    ];
    for (channel, names) in &foreign {
        for name in *names {
            other
                .transport()
                .publish(channel, Cow::Owned((*name).to_owned()), data.clone())
                .await
                .unwrap();
        }
    }
    publish(&other, joined(1, "ada")).await;
    publish(&other, GameEvent::Joined(joined(1, "bob"))).await;

    let frame = struct_client.next_event().await.unwrap();
    assert_eq!(
        (frame.event(), &frame.json()["player_name"]),
        ("PlayerJoined", &"ada".into())
    );
    let frame = enum_client.next_event().await.unwrap();
    assert_eq!(
        (frame.event(), &frame.json()["player_name"]),
        ("Joined", &"bob".into())
    );
    assert_eq!(bp.diagnostics().malformed_events, 7);
}

/// An event of the route's type whose data cannot be sent over SSE (not UTF-8, published raw by
/// another client) is not skipped silently: the client gets a gap of one, resuming after it.
#[tokio::test]
async fn an_event_that_cannot_be_framed_is_a_gap_for_the_client() {
    let bp = Backplane::in_memory();
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .with_state(bp.clone()),
    )
    .await;
    let mut client = SseClient::subscribe(&app.url("/sse/game/1/player-joined")).await;
    let bad = bp
        .transport()
        .publish(
            PlayerJoined::channel(&1).name(),
            "PlayerJoined".into(),
            Bytes::from_static(b"\xff"),
        )
        .await
        .unwrap();
    publish(&bp, joined(1, "ada")).await;

    assert_eq!(
        client.next_event().await.unwrap().raw,
        format!("id: {bad}\nevent: gap\ndata: {{\"missed\":1}}\n\n")
    );
    assert_eq!(client.next_event().await.unwrap().event(), "PlayerJoined");
    assert_eq!(bp.diagnostics().malformed_events, 1);
}

/// A typed subscription does not take an event of another name for one of its type, even when
/// its data would decode: it yields a decode error naming it, and counts it as the routes do;
/// `history` skips it as undecodable.
#[tokio::test]
async fn typed_readers_do_not_take_foreign_event_names_for_their_type() {
    let bp = Backplane::in_memory();
    let mut subscription = bp.subscribe(&PlayerJoined::channel(&1)).await.unwrap();
    bp.transport()
        .publish(
            PlayerJoined::channel(&1).name(),
            "snapshot".into(),
            Bytes::from_static(br#"{"game_id":1,"player_name":"mallory"}"#),
        )
        .await
        .unwrap();
    publish(&bp, joined(1, "ada")).await;

    let first = subscription.next().await.unwrap();
    assert!(
        matches!(&first, Err(SubscriptionError::Decode { event, .. }) if event == "snapshot"),
        "{first:?}"
    );
    let second = subscription.next().await.unwrap().unwrap();
    assert_eq!(second.event, joined(1, "ada"));
    assert_eq!(bp.diagnostics().malformed_events, 1);

    let history = bp.history(&PlayerJoined::channel(&1), None).await.unwrap();
    let events: Vec<_> = history.events.into_iter().map(|r| r.event).collect();
    assert_eq!((events, history.complete), (vec![joined(1, "ada")], false));
}

#[derive(Serialize)]
struct Lobby {
    players: Vec<String>,
    motd: &'static str,
}

#[tokio::test]
async fn the_initial_state_comes_first_and_nothing_published_meanwhile_is_lost() {
    let bp = Backplane::in_memory();
    let state = AppState {
        backplane: bp.clone(),
        motd: "welcome",
    };
    let route =
        PlayerJoined::sse_routes().initial_state(|game_id: u64, state: AppState| async move {
            if game_id == 404 {
                return Err((StatusCode::NOT_FOUND, "no such game"));
            }
            // Someone joins while the snapshot is being read: the route already subscribed.
            PlayerJoined::publish(&state.backplane, joined(game_id, "racer"))
                .await
                .unwrap();
            Ok(Lobby {
                players: vec!["host".into()],
                motd: state.motd,
            })
        });
    let app = spawn_app(Router::new().merge(route).with_state(state)).await;
    let url = app.url("/sse/game/1/player-joined");

    let mut client = SseClient::connect(&url).await;
    assert_eq!(client.next_frame().await.unwrap().raw, "retry: 3000\n\n");
    let snapshot = client.next_frame().await.unwrap();
    assert_eq!(
        snapshot.raw,
        "event: snapshot\ndata: {\"players\":[\"host\"],\"motd\":\"welcome\"}\n\n"
    );
    let racer = client.next_event().await.unwrap();
    assert_eq!(racer.json()["player_name"], "racer");
    publish(&bp, joined(1, "late")).await;
    assert_eq!(
        client.next_event().await.unwrap().json()["player_name"],
        "late"
    );

    // A resuming client is brought up to date by history, not by a snapshot.
    let mut resumed = SseClient::request(&url)
        .last_event_id(racer.id())
        .open()
        .await;
    let frame = resumed.next_event().await.unwrap();
    assert_eq!(
        (frame.event(), &frame.json()["player_name"]),
        ("PlayerJoined", &"late".into())
    );

    // The hook's error is the response, and no stream stays open.
    let missing = SseClient::request(&app.url("/sse/game/404/player-joined"))
        .send()
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.text().await, "no such game");
    eventually(&bp, "the failed request's subscription is released", |d| {
        !d.channels.contains_key("game:404:PlayerJoined")
    })
    .await;
}

fn notifications_app(bp: &Backplane) -> Router {
    let route =
        Notification::sse_routes().authorize(|parts, user_id: String, _: Backplane| async move {
            match parts.headers.get("x-user").and_then(|v| v.to_str().ok()) {
                None => Err(Denied::Unauthorized),
                Some(user) if user == user_id => Ok(()),
                Some(_) => Err(Denied::Forbidden),
            }
        });
    Router::new().merge(route).with_state(bp.clone())
}

#[tokio::test]
async fn a_denied_request_is_401_or_403_and_opens_no_stream() {
    let bp = Backplane::in_memory();
    let app = spawn_app(notifications_app(&bp)).await;
    let url = app.url("/sse/user/ada/notification");

    let anonymous = SseClient::request(&url).send().await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.text().await, "unauthorized");

    let intruder = SseClient::request(&url)
        .header("x-user", "eve")
        .send()
        .await;
    assert_eq!(intruder.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        intruder.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(intruder.text().await, "forbidden");

    let diagnostics = bp.diagnostics();
    assert_eq!(diagnostics.total_local_subscribers, 0, "{diagnostics:?}");
    assert!(diagnostics.channels.is_empty(), "{diagnostics:?}");

    let mut owner = SseClient::request(&url)
        .header("x-user", "ada")
        .open()
        .await;
    owner.next_frame().await.unwrap();
    assert_eq!(
        bp.local_subscriber_count(&Notification::channel(&"ada".to_owned())),
        1
    );
    publish(
        &bp,
        Notification {
            user_id: "ada".into(),
            text: "hello".into(),
        },
    )
    .await;
    assert_eq!(owner.next_event().await.unwrap().json()["text"], "hello");
}

#[tokio::test]
async fn a_percent_encoded_key_is_decoded_before_parsing() {
    let bp = Backplane::in_memory();
    let app = spawn_app(notifications_app(&bp)).await;
    let user = "a:b/c d";
    let mut client = SseClient::request(&app.url("/sse/user/a%3Ab%2Fc%20d/notification"))
        .header("x-user", user)
        .open()
        .await;
    client.next_frame().await.unwrap();
    assert_eq!(bp.local_channels(), ["user:a%3Ab/c d:Notification"]);
    publish(
        &bp,
        Notification {
            user_id: user.into(),
            text: "hi".into(),
        },
    )
    .await;
    assert_eq!(client.next_event().await.unwrap().json()["user_id"], user);
}

#[tokio::test]
async fn a_bad_key_or_last_event_id_is_400_with_a_plain_message() {
    let bp = Backplane::in_memory();
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .with_state(bp.clone()),
    )
    .await;

    let bad_key = SseClient::request(&app.url("/sse/game/abc/player-joined"))
        .send()
        .await;
    assert_eq!(bad_key.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_key.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(bad_key.text().await, "invalid key `abc`: expected u64");

    let url = app.url("/sse/game/1/player-joined");
    let bad_header = SseClient::request(&url)
        .last_event_id("yesterday")
        .send()
        .await;
    assert_eq!(bad_header.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_header.text().await,
        "invalid Last-Event-ID `yesterday`: expected `<milliseconds>-<sequence>`"
    );
    let bad_query = SseClient::request(&format!("{url}?lastEventId=1-x"))
        .send()
        .await;
    assert_eq!(bad_query.status(), StatusCode::BAD_REQUEST);

    assert_eq!(bp.diagnostics().total_local_subscribers, 0);
}

#[tokio::test]
async fn past_the_connection_limit_requests_get_503_with_retry_after() {
    let bp = Backplane::in_memory();
    let limit = ConnectionLimit::new(2);
    let router = Router::new()
        // Two routes share one limit; a short keep-alive notices departed clients quickly.
        .merge(
            PlayerJoined::sse_routes()
                .connection_limit(&limit)
                .keep_alive(Duration::from_millis(50)),
        )
        .merge(ScoreChanged::sse_routes().connection_limit(&limit))
        .with_state(bp.clone());
    let app = spawn_app(router).await;

    let first = SseClient::subscribe(&app.url("/sse/game/1/player-joined")).await;
    let _second = SseClient::subscribe(&app.url("/sse/game/2/score-changed")).await;
    assert_eq!(limit.active(), 2);

    let refused = SseClient::request(&app.url("/sse/game/3/player-joined"))
        .send()
        .await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "3");
    assert_eq!(refused.text().await, "too many open event streams");
    assert_eq!(bp.diagnostics().total_local_subscribers, 2);

    // A client that leaves frees its slot.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(2);
    while limit.active() > 1 {
        assert!(
            Instant::now() < deadline,
            "the departed client's slot was not released"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    SseClient::subscribe(&app.url("/sse/game/3/player-joined")).await;
}

/// A memory transport whose history reads wait while a test holds `gate`.
#[derive(Debug)]
struct SlowHistory {
    inner: MemoryTransport,
    gate: Arc<tokio::sync::RwLock<()>>,
}

impl Transport for SlowHistory {
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Cow<'static, str>,
        data: Bytes,
    ) -> BoxFuture<'a, Result<EventId, BackplaneError>> {
        self.inner.publish(channel, event, data)
    }

    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<LiveFeed, BackplaneError>> {
        self.inner.subscribe(channel)
    }

    fn history_page<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        limits: PageLimits,
    ) -> BoxFuture<'a, Result<HistoryPage, BackplaneError>> {
        Box::pin(async move {
            let _pass = self.gate.read().await;
            self.inner.history_page(channel, after, limits).await
        })
    }

    fn replay_config(&self) -> ReplayConfig {
        ReplayConfig::default()
            .with_concurrent_reads(NonZeroUsize::MIN)
            .with_read_wait(Duration::from_millis(100))
    }

    fn local_subscriber_count(&self, channel: &str) -> usize {
        self.inner.local_subscriber_count(channel)
    }

    fn diagnostics(&self) -> Diagnostics {
        self.inner.diagnostics()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.inner.shutdown()
    }
}

#[tokio::test]
async fn a_resume_beyond_the_read_budget_gets_503_with_retry_after_then_succeeds() {
    let gate = Arc::new(tokio::sync::RwLock::new(()));
    let bp = Backplane::new(SlowHistory {
        inner: MemoryTransport::default(),
        gate: Arc::clone(&gate),
    });
    let mut ids = Vec::new();
    for name in ["ada", "bob", "cy"] {
        ids.push(publish(&bp, joined(1, name)).await);
    }
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .with_state(bp.clone()),
    )
    .await;

    // One read in flight (held at the gate) is the whole budget of this instance.
    let held = gate.write().await;
    let first = tokio::spawn(
        SseClient::request(&app.url("/sse/game/1/player-joined"))
            .last_event_id(&ids[0])
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let refused = SseClient::request(&app.url("/sse/game/1/player-joined"))
        .last_event_id(&ids[1])
        .send()
        .await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "3");
    drop(held);
    assert_eq!(first.await.unwrap().status(), StatusCode::OK);

    // With the budget free again, the same resume is served.
    let mut retried = SseClient::request(&app.url("/sse/game/1/player-joined"))
        .last_event_id(&ids[0])
        .open()
        .await;
    let frame = retried.next_event().await.unwrap();
    assert_eq!(frame.id(), ids[1]);
}

#[tokio::test]
async fn diagnostics_count_each_open_connection_as_a_local_subscriber() {
    let bp = Backplane::in_memory();
    let router = Router::new()
        .merge(PlayerJoined::sse_routes().keep_alive(Duration::from_millis(50)))
        .with_state(bp.clone());
    let app = spawn_app(router).await;
    let channel = PlayerJoined::channel(&9);

    let a = SseClient::subscribe(&app.url("/sse/game/9/player-joined")).await;
    let b = SseClient::subscribe(&app.url("/sse/game/9/player-joined")).await;
    assert_eq!(bp.local_subscriber_count(&channel), 2);
    assert_eq!(bp.local_channels(), ["game:9:PlayerJoined"]);
    drop((a, b));
    eventually(&bp, "departed clients are unsubscribed", |d| {
        d.total_local_subscribers == 0
    })
    .await;
}

#[tokio::test]
async fn shutdown_ends_every_open_stream_within_a_second() {
    let bp = Backplane::in_memory();
    let shutdown = Shutdown::new();
    let router = Router::new()
        .merge(PlayerJoined::sse_routes().shutdown(&shutdown))
        .merge(GameEvent::sse_routes().shutdown(&shutdown))
        .with_state(bp.clone());
    let app = spawn_app_with_shutdown(router, shutdown).await;
    let mut clients = vec![
        SseClient::subscribe(&app.url("/sse/game/1/player-joined")).await,
        SseClient::subscribe(&app.url("/sse/game/2/player-joined")).await,
        SseClient::subscribe(&app.url("/sse/game/1")).await,
    ];
    assert_eq!(bp.diagnostics().total_local_subscribers, 3);

    let start = Instant::now();
    let took = app.stop().await;
    assert!(
        took < Duration::from_secs(1),
        "graceful shutdown took {took:?}"
    );
    for client in &mut clients {
        assert_eq!(client.next_frame().await.unwrap().raw, ": shutdown\n\n");
        assert_eq!(client.next_frame().await, None);
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "streams ended after {:?}",
        start.elapsed()
    );
    assert_eq!(bp.diagnostics().total_local_subscribers, 0);
}

#[tokio::test]
async fn a_request_after_shutdown_gets_a_short_stream_telling_it_to_reconnect() {
    let bp = Backplane::in_memory();
    let shutdown = Shutdown::new();
    let router = Router::new()
        .merge(PlayerJoined::sse_routes().shutdown(&shutdown))
        .with_state(bp.clone());
    // The server keeps serving (its own signal is not triggered): a request still arrives.
    let app = spawn_app(router).await;
    shutdown.trigger();

    let mut late = SseClient::connect(&app.url("/sse/game/1/player-joined")).await;
    assert_eq!(late.next_frame().await.unwrap().raw, "retry: 3000\n\n");
    assert_eq!(late.next_frame().await.unwrap().raw, ": shutdown\n\n");
    assert_eq!(late.next_frame().await, None);
    assert!(bp.diagnostics().channels.is_empty());
}

#[tokio::test]
async fn a_closed_backplane_ends_streams_and_refuses_new_ones_with_503() {
    let bp = Backplane::in_memory();
    let app = spawn_app(
        Router::new()
            .merge(PlayerJoined::sse_route())
            .with_state(bp.clone()),
    )
    .await;
    let url = app.url("/sse/game/1/player-joined");
    let mut open = SseClient::subscribe(&url).await;

    bp.shutdown().await;
    assert_eq!(open.next_frame().await.unwrap().raw, ": closed\n\n");
    assert_eq!(open.next_frame().await, None);

    let refused = SseClient::request(&url).send().await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "3");
    assert_eq!(refused.text().await, "event backplane unavailable");
}

/// A [`Tick`] without its padding, quicker to decode.
#[derive(Deserialize)]
struct TickHead {
    seq: u64,
    sent_at_us: u64,
}

impl TickHead {
    /// Decodes the fields before the padding only: a debug build would spend seconds on 16 MB.
    fn of(frame: &Frame) -> Self {
        let data = frame.data.as_deref().unwrap();
        let head = &data[..data.find(",\"pad\"").unwrap()];
        serde_json::from_str(&format!("{head}}}")).unwrap()
    }
}

fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_micros()).unwrap()
}

/// One client stops reading while 16 MB are published: the other clients still get every event
/// with a p99 latency under 1 s (a generous bound: tens of milliseconds in a debug build), and the
/// stalled client's queue stays bounded: when it reads again it gets what the sockets held (the
/// kernel caps a socket's send buffer at 4 MB here), a gap, then the tail of history, not 16 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_delays_no_one_and_stays_bounded() {
    const EVENTS: u64 = 4000;
    const READERS: usize = 4;
    let bp = Backplane::in_memory_with(
        MemoryConfig::default()
            .with_subscriber_buffer(128)
            .with_history_len(512),
    );
    let app = spawn_app(
        Router::new()
            .merge(Tick::sse_route())
            .with_state(bp.clone()),
    )
    .await;
    let path = "/sse/load/1/tick";

    let mut stalled = RawClient::connect(app.addr(), path).await;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut client = SseClient::subscribe(&app.url(path)).await;
        readers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(usize::try_from(EVENTS).unwrap());
            for expected in 0..EVENTS {
                let frame = client.next_event().await.unwrap();
                assert_eq!(frame.event(), "Tick", "a healthy reader lagged: {frame:?}");
                let tick = TickHead::of(&frame);
                assert_eq!(tick.seq, expected);
                latencies.push(now_us() - tick.sent_at_us);
            }
            latencies
        }));
    }
    eventually(&bp, "all clients subscribed", |d| {
        d.total_local_subscribers == READERS + 1
    })
    .await;

    let pad = "x".repeat(4000);
    for seq in 0..EVENTS {
        let tick = Tick {
            room: 1,
            seq,
            sent_at_us: now_us(),
            pad: pad.clone(),
        };
        Tick::publish(&bp, tick).await.unwrap();
        if seq % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    let mut latencies = Vec::new();
    for reader in readers {
        latencies.extend(reader.await.unwrap());
    }
    latencies.sort_unstable();
    let p99 = Duration::from_micros(latencies[latencies.len() * 99 / 100]);
    println!("p99 latency of {READERS} readers beside a stalled one: {p99:?}");
    assert!(p99 < Duration::from_secs(1), "p99 latency {p99:?}");

    // The stalled client reads at last: what the socket held, a gap, then the tail of history.
    let mut seqs = Vec::new();
    let mut gaps = 0;
    loop {
        let frame: Frame = stalled.next_frame().await.unwrap();
        match frame.event() {
            "gap" => gaps += 1,
            "Tick" => {
                seqs.push(TickHead::of(&frame).seq);
                if seqs.last() == Some(&(EVENTS - 1)) {
                    break;
                }
            }
            _ => {}
        }
    }
    println!(
        "the stalled client got {} of {EVENTS} events and {gaps} gap",
        seqs.len()
    );
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "out of order: {seqs:?}"
    );
    assert_eq!(gaps, 1);
    let held = seqs.len();
    assert!(
        held < 2000,
        "the stalled client was buffered {held} of {EVENTS} events"
    );
    assert!(seqs.ends_with(&((EVENTS - 512)..EVENTS).collect::<Vec<_>>()));
}

/// Publishes 16 MB of ticks on room 1: more than a stalled client's socket buffers hold.
async fn fill_a_stalled_socket(bp: &Backplane) {
    let pad = "x".repeat(16_000);
    for seq in 0..1000 {
        let tick = Tick {
            room: 1,
            seq,
            sent_at_us: 0,
            pad: pad.clone(),
        };
        Tick::publish(bp, tick).await.unwrap();
        if seq % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Waits, at most `wait`, until a new client of `url` is let in (200); returns how long it took.
async fn until_let_in(url: &str, wait: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let client = SseClient::request(url).send().await;
        if client.status() == StatusCode::OK {
            return start.elapsed();
        }
        assert_eq!(client.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(start.elapsed() < wait, "still 503 after {wait:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A route limited to one connection, whose one client stops reading: once a frame waited for
/// its socket longer than the write timeout, its slot is released and a new client gets 200,
/// and a server serving through `WriteDeadline` closes the stalled client's socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_closed_after_the_write_timeout_and_frees_its_slot() {
    let timeout = Duration::from_millis(500);
    let bp = Backplane::in_memory_with(MemoryConfig::default().with_history_len(2000));
    let app = statelesse_tests::app::spawn_app_with_write_deadline(
        Router::new()
            .merge(Tick::sse_routes().max_connections(1).write_timeout(timeout))
            .with_state(bp.clone()),
        timeout,
    )
    .await;
    let path = "/sse/load/1/tick";
    let mut stalled = RawClient::connect(app.addr(), path).await;
    eventually(&bp, "the stalled client subscribed", |d| {
        d.total_local_subscribers == 1
    })
    .await;

    fill_a_stalled_socket(&bp).await;
    let waited = until_let_in(&app.url(path), Duration::from_secs(10)).await;
    println!("a new client was let in {waited:?} after the last publish");
    assert!(
        stalled.closed_within(Duration::from_secs(5)).await,
        "the stalled client's socket is still open"
    );
}

/// Without `WriteDeadline`, the route's write timeout still releases a stalled client's slot and
/// subscription; its socket stays open, and when it reads again it gets what the socket held, a
/// `: write timeout` comment, and the end of the stream, after which it would resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_timeout_alone_frees_a_stalled_clients_slot_and_ends_its_stream() {
    let bp = Backplane::in_memory_with(MemoryConfig::default().with_history_len(2000));
    let app = spawn_app(
        Router::new()
            .merge(
                Tick::sse_routes()
                    .max_connections(1)
                    .write_timeout(Duration::from_millis(500)),
            )
            .with_state(bp.clone()),
    )
    .await;
    let path = "/sse/load/1/tick";
    let mut stalled = RawClient::connect(app.addr(), path).await;
    eventually(&bp, "the stalled client subscribed", |d| {
        d.total_local_subscribers == 1
    })
    .await;

    fill_a_stalled_socket(&bp).await;
    until_let_in(&app.url(path), Duration::from_secs(10)).await;
    let mut last = None;
    while let Some(frame) = stalled.next_frame().await {
        last = Some(frame);
    }
    assert_eq!(last.unwrap().raw, ": write timeout\n\n");
}

/// `routes::serve` serves a route (a reading client gets its events) with the write deadline
/// built in: a client that stops reading has its socket closed, and its slot goes to another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_serve_streams_a_route_and_closes_a_stalled_clients_socket() {
    let timeout = Duration::from_millis(500);
    let bp = Backplane::in_memory_with(MemoryConfig::default().with_history_len(2000));
    let router = Router::new()
        .merge(Tick::sse_routes().max_connections(2).write_timeout(timeout))
        .with_state(bp.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(statelesse::routes::serve_with_write_deadline(
        listener, router, timeout,
    ));
    let path = "/sse/load/1/tick";
    let url = format!("http://{addr}{path}");
    let mut reading = SseClient::request(&url).send().await;
    assert_eq!(reading.status(), StatusCode::OK);
    let mut stalled = RawClient::connect(addr, path).await;
    eventually(&bp, "both clients subscribed", |d| {
        d.total_local_subscribers == 2
    })
    .await;

    let reader = tokio::spawn(async move {
        let mut events = 0;
        while events < 1000 {
            let event = reading.next_event().await.unwrap();
            assert_eq!(event.event.as_deref(), Some("Tick"), "{}", event.raw);
            events += 1;
        }
    });
    fill_a_stalled_socket(&bp).await;
    reader.await.unwrap();
    assert!(
        stalled.closed_within(Duration::from_secs(5)).await,
        "the stalled client's socket is still open"
    );
    server.abort();
}

#[test]
fn the_route_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<statelesse::routes::SseRoutes<PlayerJoined, AppState>>();
    assert_send_sync::<Shutdown>();
    assert_send_sync::<ConnectionLimit>();
}
