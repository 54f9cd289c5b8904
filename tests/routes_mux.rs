//! The multiplexed route end to end: many channels of several event types on one connection,
//! resumed by one cursor, on the same instance or another one on Redis.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;

use axum::Router;
use axum::http::StatusCode;
use statelesse::prelude::*;
use statelesse::routes::{ConnectionLimit, Denied, MuxRoutes, Shutdown};
use statelesse::{MemoryConfig, RedisConfig};
use statelesse_test_redis::RedisServer;
use statelesse_tests::app::{spawn_app, spawn_app_with_shutdown};
use statelesse_tests::sse::{Frame, SseClient};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
enum GameEvent {
    Joined {
        game_id: u64,
        player: String,
    },
    #[sse(name = "score")]
    Scored {
        game_id: u64,
        score: i64,
    },
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
#[sse(domain = "site")]
struct Announcement {
    text: String,
}

/// The route under test: games, notifications and announcements on `/sse/page`.
fn routes() -> MuxRoutes<Backplane> {
    MuxRoutes::new("/sse/page")
        .event(GameEvent::sse_routes())
        .event(Notification::sse_routes())
        .event(Announcement::sse_routes())
}

fn app(bp: &Backplane) -> Router {
    Router::new().merge(routes()).with_state(bp.clone())
}

/// Ten channels of three types: games 1 to 4, users a to e, and the announcements.
const TEN: &str = "/sse/page?GameEvent=1&GameEvent=2&GameEvent=3&GameEvent=4\
    &Notification=a&Notification=b&Notification=c&Notification=d&Notification=e&Announcement";

/// Publishes `round` on every channel of [`TEN`]: the score of each game, a note to each user,
/// one announcement.
async fn publish_round(bp: &Backplane, round: i64) {
    for game_id in 1..=4 {
        let score = round * 10 + i64::try_from(game_id).unwrap();
        GameEvent::publish(bp, GameEvent::Scored { game_id, score })
            .await
            .unwrap();
    }
    for user in ["a", "b", "c", "d", "e"] {
        let note = Notification {
            user_id: user.into(),
            text: format!("{user}{round}"),
        };
        Notification::publish(bp, note).await.unwrap();
    }
    let announcement = Announcement {
        text: format!("round {round}"),
    };
    Announcement::publish(bp, announcement).await.unwrap();
}

/// What a frame of [`TEN`] says, as `(channel, event, round)`.
fn read(frame: &Frame) -> (usize, String, i64) {
    let (channel, event) = frame.event().split_once(':').unwrap();
    let channel: usize = channel.parse().unwrap();
    let json = frame.json();
    let round = match event {
        "GameEvent.score" => json["score"].as_i64().unwrap() / 10,
        "Notification.Notification" => json["text"].as_str().unwrap()[1..].parse().unwrap(),
        "Announcement.Announcement" => json["text"].as_str().unwrap()[6..].parse().unwrap(),
        other => panic!("unexpected event {other}: {frame:?}"),
    };
    (channel, event.to_owned(), round)
}

/// The next `n` events, grouped by channel: the rounds each channel got, in order.
async fn rounds(client: &mut SseClient, n: usize) -> (BTreeMap<usize, Vec<i64>>, String) {
    let mut seen: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    let mut last = String::new();
    for _ in 0..n {
        let frame = client.next_event().await.unwrap();
        let (channel, _, round) = read(&frame);
        seen.entry(channel).or_default().push(round);
        frame.id().clone_into(&mut last);
    }
    (seen, last)
}

/// Opens the multiplexed stream at `url`, resuming after `last` if given, and reads its first two
/// frames, the `retry` hint and the starting cursor: once they are read, every channel is
/// subscribed.
async fn connect(url: &str, last: Option<&str>) -> SseClient {
    let mut request = SseClient::request(url);
    if let Some(last) = last {
        request = request.last_event_id(last);
    }
    let mut client = request.open().await;
    assert!(client.next_frame().await.unwrap().retry.is_some());
    let cursor = client.next_frame().await.unwrap();
    assert_eq!(cursor.event(), "cursor", "{cursor:?}");
    client
}

fn every_channel(rounds: &[i64]) -> BTreeMap<usize, Vec<i64>> {
    (0..10).map(|channel| (channel, rounds.to_vec())).collect()
}

#[tokio::test]
async fn ten_channels_of_three_types_share_one_connection_in_publish_order_per_channel() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let mut client = connect(&app.url(TEN), None).await;
    for round in 1..=3 {
        publish_round(&bp, round).await;
    }
    let (seen, _) = rounds(&mut client, 30).await;
    assert_eq!(seen, every_channel(&[1, 2, 3]));
    assert_eq!(bp.diagnostics().total_local_subscribers, 10);
}

#[tokio::test]
async fn event_names_say_the_channel_the_type_and_the_event() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let mut client = connect(&app.url(TEN), None).await;
    publish_round(&bp, 1).await;
    let mut names: Vec<String> = Vec::new();
    for _ in 0..10 {
        let frame = client.next_event().await.unwrap();
        names.push(frame.event().to_owned());
    }
    names.sort_by_key(|name| name.split_once(':').unwrap().0.parse::<usize>().unwrap());
    let expected: Vec<String> = (0..4)
        .map(|n| format!("{n}:GameEvent.score"))
        .chain((4..9).map(|n| format!("{n}:Notification.Notification")))
        .chain(["9:Announcement.Announcement".to_owned()])
        .collect();
    assert_eq!(names, expected);
}

/// The scenario: drop the connection, publish on every channel, resume on another
/// instance with the last id: every missed event exactly once, then live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_every_channel_on_another_instance_exactly_once() {
    let server = RedisServer::start();
    let config = || RedisConfig::new(&server.url()).unwrap().with_prefix("mux");
    let bp_a = Backplane::redis(config()).await.unwrap();
    let bp_b = Backplane::redis(config()).await.unwrap();
    let app_a = spawn_app(app(&bp_a)).await;
    let app_b = spawn_app(app(&bp_b)).await;

    let mut client = connect(&app_a.url(TEN), None).await;
    publish_round(&bp_b, 1).await;
    let (seen, last) = rounds(&mut client, 10).await;
    assert_eq!(seen, every_channel(&[1]));
    drop(client);
    publish_round(&bp_a, 2).await;
    publish_round(&bp_b, 3).await;

    let mut client = connect(&app_b.url(TEN), Some(&last)).await;
    let (seen, _) = rounds(&mut client, 20).await;
    assert_eq!(seen, every_channel(&[2, 3]));
    publish_round(&bp_a, 4).await;
    let (seen, _) = rounds(&mut client, 10).await;
    assert_eq!(seen, every_channel(&[4]));
}

/// The events one `publish_many` stores together in one Redis stream entry have ids of three
/// parts: a client that stopped inside the entry resumes through the cursor exactly after its
/// last event, the rest of the entry then what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_inside_a_redis_stream_entry_is_exact() {
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url()).unwrap().with_prefix("mux");
    let bp = Backplane::redis(config).await.unwrap();
    let app = spawn_app(app(&bp)).await;
    let url = app.url("/sse/page?GameEvent=1");
    let mut client = connect(&url, None).await;
    let scores: Vec<GameEvent> = (1..=5)
        .map(|score| GameEvent::Scored { game_id: 1, score })
        .collect();
    for published in bp.publish_many(&scores).await.unwrap() {
        published.unwrap();
    }
    client.next_event().await.unwrap();
    let second = client.next_event().await.unwrap();
    let (event_id, _cursor) = second.id().split_once('.').unwrap();
    assert_eq!(
        event_id.split('-').count(),
        3,
        "inside an entry: {event_id}"
    );
    drop(client);
    GameEvent::publish(
        &bp,
        GameEvent::Scored {
            game_id: 1,
            score: 6,
        },
    )
    .await
    .unwrap();

    let mut client = connect(&url, Some(second.id())).await;
    let mut resumed = Vec::new();
    for _ in 0..4 {
        let frame = client.next_event().await.unwrap();
        assert_eq!(frame.event(), "0:GameEvent.score", "{frame:?}");
        resumed.push(frame.json()["score"].as_i64().unwrap());
    }
    assert_eq!(resumed, [3, 4, 5, 6]);
}

#[tokio::test]
async fn resuming_from_any_frame_misses_and_repeats_nothing() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let mut client = connect(&app.url(TEN), None).await;
    publish_round(&bp, 1).await;
    publish_round(&bp, 2).await;
    // Stop after 13 of 20 events: some channels have had round 2, others not.
    let (before, last) = rounds(&mut client, 13).await;
    drop(client);
    let mut client = connect(&app.url(TEN), Some(&last)).await;
    let (after, _) = rounds(&mut client, 7).await;
    let mut seen = before;
    for (channel, rounds) in after {
        seen.entry(channel).or_default().extend(rounds);
    }
    assert_eq!(seen, every_channel(&[1, 2]));
}

#[tokio::test]
async fn a_reconnect_before_any_event_resumes_from_the_starting_cursor() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let url = app.url(TEN);
    let mut client = SseClient::request(&url).open().await;
    client.next_frame().await.unwrap();
    let start = client.next_frame().await.unwrap().id().to_owned();
    drop(client);
    publish_round(&bp, 1).await;
    let mut client = connect(&url, Some(&start)).await;
    let (seen, _) = rounds(&mut client, 10).await;
    assert_eq!(seen, every_channel(&[1]));
}

#[tokio::test]
async fn a_position_older_than_history_gets_a_gap_for_that_channel_only() {
    let bp = Backplane::in_memory_with(MemoryConfig::default().with_history_len(2));
    let app = spawn_app(app(&bp)).await;
    let url = app.url("/sse/page?GameEvent=1&Notification=a");
    let score = |score| GameEvent::Scored { game_id: 1, score };
    let note = |text: &str| Notification {
        user_id: "a".into(),
        text: text.into(),
    };
    Notification::publish(&bp, note("hi")).await.unwrap();
    let last = {
        let mut client = connect(&url, None).await;
        GameEvent::publish(&bp, score(7)).await.unwrap();
        let frame = client.next_event().await.unwrap();
        assert_eq!(frame.event(), "0:GameEvent.score");
        frame.id().to_owned()
    };
    // Five scores, of which history keeps the last two; one note, which it keeps.
    for n in 8..=12 {
        GameEvent::publish(&bp, score(n)).await.unwrap();
    }
    Notification::publish(&bp, note("again")).await.unwrap();

    let mut client = connect(&url, Some(&last)).await;
    let mut game = Vec::new();
    let mut notes = Vec::new();
    for _ in 0..4 {
        let frame = client.next_event().await.unwrap();
        match frame.event() {
            "0:GameEvent.gap" => game.push("gap".to_owned()),
            "0:GameEvent.score" => game.push(frame.json()["score"].to_string()),
            "1:Notification.Notification" => notes.push(frame.json()["text"].clone()),
            other => panic!("unexpected {other}: {frame:?}"),
        }
    }
    assert_eq!(game, ["gap", "11", "12"]);
    assert_eq!(notes, ["again"]);
}

#[tokio::test]
async fn a_channel_added_on_reconnect_starts_live_with_its_initial_state() {
    let bp = Backplane::in_memory();
    let routes = MuxRoutes::new("/sse/page")
        .event(
            GameEvent::sse_routes().initial_state(|game_id: u64, _: Backplane| async move {
                Ok::<_, Infallible>(serde_json::json!({ "game": game_id }))
            }),
        )
        .event(Announcement::sse_routes());
    let app = spawn_app(Router::new().merge(routes).with_state(bp.clone())).await;
    let mut client = connect(&app.url("/sse/page?GameEvent=1"), None).await;
    let snapshot = client.next_event().await.unwrap();
    assert_eq!(snapshot.event(), "0:GameEvent.snapshot");
    assert_eq!(snapshot.json(), serde_json::json!({ "game": 1 }));
    GameEvent::publish(
        &bp,
        GameEvent::Scored {
            game_id: 1,
            score: 1,
        },
    )
    .await
    .unwrap();
    let last = client.next_event().await.unwrap().id().to_owned();
    drop(client);
    GameEvent::publish(
        &bp,
        GameEvent::Scored {
            game_id: 1,
            score: 2,
        },
    )
    .await
    .unwrap();
    GameEvent::publish(
        &bp,
        GameEvent::Scored {
            game_id: 2,
            score: 20,
        },
    )
    .await
    .unwrap();

    // Game 1 kept (first now), game 2 added, announcements added.
    let url = app.url("/sse/page?Announcement&GameEvent=2&GameEvent=1");
    let mut client = connect(&url, Some(&last)).await;
    let snapshot = client.next_event().await.unwrap();
    assert_eq!(snapshot.event(), "1:GameEvent.snapshot");
    assert_eq!(snapshot.json(), serde_json::json!({ "game": 2 }));
    let missed = client.next_event().await.unwrap();
    assert_eq!(missed.event(), "2:GameEvent.score");
    assert_eq!(missed.json()["score"], 2);
    // Game 2's event before the reconnect is not replayed: the channel started live.
    GameEvent::publish(
        &bp,
        GameEvent::Scored {
            game_id: 2,
            score: 21,
        },
    )
    .await
    .unwrap();
    let live = client.next_event().await.unwrap();
    assert_eq!(
        (live.event(), &live.json()["score"]),
        ("1:GameEvent.score", &21.into())
    );
}

async fn status_and_body(url: &str, last_event_id: Option<&str>) -> (StatusCode, String) {
    let mut request = SseClient::request(url);
    if let Some(id) = last_event_id {
        request = request.last_event_id(id);
    }
    let client = request.send().await;
    (client.status(), client.text().await)
}

#[tokio::test]
async fn a_cursor_of_another_route_truncated_or_tampered_is_a_400() {
    let bp = Backplane::in_memory();
    let other = MuxRoutes::new("/sse/other").event(Announcement::sse_routes());
    let app = spawn_app(
        Router::new()
            .merge(routes())
            .merge(other)
            .with_state(bp.clone()),
    )
    .await;
    let cursor_of = |path: &'static str| {
        let url = app.url(path);
        let bp = bp.clone();
        async move {
            let mut client = connect(&url, None).await;
            let announcement = Announcement { text: "x".into() };
            Announcement::publish(&bp, announcement).await.unwrap();
            client.next_event().await.unwrap().id().to_owned()
        }
    };
    let url = app.url("/sse/page?Announcement");
    let good = cursor_of("/sse/page?Announcement").await;
    connect(&url, Some(&good)).await;

    let foreign = cursor_of("/sse/other?Announcement").await;
    let truncated = good[..good.len() - 4].to_owned();
    let mut tampered = good.clone().into_bytes();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (cursor, why) in [
        (foreign.as_str(), "from another route"),
        (&truncated, "damaged"),
        (&tampered, "damaged"),
        ("1700000000000-0", "invalid Last-Event-ID"),
        ("a+b/c=", "not URL-safe base64"),
    ] {
        let (status, body) = status_and_body(&url, Some(cursor)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{cursor}");
        assert!(body.contains(why), "{cursor}: {body}");
    }
}

#[tokio::test]
async fn bad_channel_requests_are_a_400_naming_what_is_wrong() {
    let bp = Backplane::in_memory();
    let app = spawn_app(Router::new().merge(routes().max_channels(3)).with_state(bp)).await;
    for (query, body) in [
        ("", "no channel requested"),
        (
            "?GameEvent=1&GameEvent=2&GameEvent=3&GameEvent=4",
            "at most 3",
        ),
        ("?GameEvent=x", "`GameEvent`: invalid key `x`"),
        ("?Unknown=1", "unknown event type `Unknown`"),
        ("?Announcement=1", "`Announcement` is keyless"),
        ("?GameEvent=1&GameEvent=1", "requested twice"),
    ] {
        let (status, text) = status_and_body(&app.url(&format!("/sse/page{query}")), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(text.contains(body), "{query}: {text}");
    }
}

#[tokio::test]
async fn a_denied_channel_refuses_the_request_naming_it() {
    let bp = Backplane::in_memory();
    let routes = MuxRoutes::new("/sse/page")
        .event(GameEvent::sse_routes())
        .event(Notification::sse_routes().authorize(
            |parts, user_id: String, _: Backplane| async move {
                let user = parts.headers.get("x-user").and_then(|v| v.to_str().ok());
                if user == Some(user_id.as_str()) {
                    Ok(())
                } else {
                    Err(Denied::Forbidden)
                }
            },
        ));
    let app = spawn_app(Router::new().merge(routes).with_state(bp.clone())).await;
    let url = app.url("/sse/page?GameEvent=1&Notification=ada&Notification=bob");
    let client = SseClient::request(&url)
        .header("x-user", "ada")
        .send()
        .await;
    assert_eq!(client.status(), StatusCode::FORBIDDEN);
    assert_eq!(client.text().await, "Notification bob: forbidden");
    assert_eq!(bp.diagnostics().total_local_subscribers, 0);
    let url = app.url("/sse/page?GameEvent=1&Notification=ada");
    SseClient::request(&url)
        .header("x-user", "ada")
        .open()
        .await;
}

#[tokio::test]
async fn a_connection_takes_one_slot_of_the_limit_however_many_channels_it_carries() {
    let bp = Backplane::in_memory();
    let limit = ConnectionLimit::new(1);
    let app = spawn_app(
        Router::new()
            .merge(routes().connection_limit(&limit))
            .with_state(bp),
    )
    .await;
    let _client = connect(&app.url(TEN), None).await;
    assert_eq!(limit.active(), 1);
    let (status, _) = status_and_body(&app.url("/sse/page?Announcement"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn shutdown_ends_a_multiplexed_stream_with_a_final_comment() {
    let bp = Backplane::in_memory();
    let shutdown = Shutdown::new();
    let app = spawn_app_with_shutdown(
        Router::new()
            .merge(routes().shutdown(&shutdown))
            .with_state(bp.clone()),
        shutdown,
    )
    .await;
    let mut client = connect(&app.url(TEN), None).await;
    app.shutdown().trigger();
    let last = client.next_frame().await.unwrap();
    assert_eq!(last.comments, ["shutdown"]);
    assert!(client.next_frame().await.is_none());
    app.stop().await;
}
