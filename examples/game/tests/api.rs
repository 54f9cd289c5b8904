//! The game example end to end: its HTTP API and event streams on a real socket, in memory and as
//! two instances sharing one private `redis-server`.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use example_game::{Game, Options, Secret, StartError};
use example_game_events::{GameEvent, GameId};
use reqwest::StatusCode;
use serde_json::{Value, json};
use statelesse::{Backplane, PresenceExt as _};
use statelesse_test_redis::RedisServer;
use statelesse_tests::sse::{Frame, SseClient, SseRequest};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A game server on `127.0.0.1:0`, run by [`Game::serve`]; aborted on drop.
struct Server {
    addr: SocketAddr,
    /// The server's backplane, to read what it stores.
    backplane: Backplane,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// An HTTP answer: its status and body.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// The game in memory, as `cargo run -p example-game` runs it.
async fn in_memory() -> Server {
    start(None).await
}

/// The game on `redis`, as `cargo run -p example-game -- --redis URL` runs it.
async fn on_redis(redis: &RedisServer) -> Server {
    start(Some(redis.url())).await
}

/// The game in memory, signing its login cookies with `secret`.
async fn in_memory_with_key(secret: &str) -> Server {
    serve(options(None, Some(Secret(secret.to_owned())))).await
}

fn options(redis: Option<String>, cookie_key: Option<Secret>) -> Options {
    Options {
        redis,
        port: 0,
        prefix: "game-test".to_owned(),
        cookie_key,
        max_streams: 10_000,
        retry_ms: 3_000,
    }
}

async fn start(redis: Option<String>) -> Server {
    serve(options(redis, None)).await
}

async fn serve(options: Options) -> Server {
    let game = Game::start(&options).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backplane = game.backplane().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(game.serve(listener, async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        backplane,
        stop: Some(stop),
        task,
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> Reply {
        reply(reqwest::Client::new().get(self.url(path))).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        let request = reqwest::Client::new()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        reply(request).await
    }

    /// Creates a game; returns its id.
    async fn create_game(&self) -> u64 {
        let created = self.post("/api/games", &json!({})).await;
        assert_eq!(created.status, StatusCode::OK, "{created:?}");
        created.json()["gameId"].as_u64().unwrap()
    }

    async fn join(&self, game: u64, player: &str) -> Reply {
        let body = json!({ "player": player });
        self.post(&format!("/api/games/{game}/join"), &body).await
    }

    async fn leave(&self, game: u64, player: &str) -> Reply {
        let body = json!({ "player": player });
        self.post(&format!("/api/games/{game}/leave"), &body).await
    }

    async fn start_round(&self, game: u64) -> Reply {
        self.post(&format!("/api/games/{game}/rounds"), &json!({}))
            .await
    }

    async fn score(&self, game: u64, player: &str, points: i64) -> Reply {
        let body = json!({ "player": player, "points": points });
        self.post(&format!("/api/games/{game}/score"), &body).await
    }

    /// The game's state, from `GET /api/games/{id}`.
    async fn game(&self, game: u64) -> Value {
        let reply = self.get(&format!("/api/games/{game}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.json()
    }

    /// A request to an SSE route of this server, sent the way `EventSource` sends it.
    fn sse(&self, path: &str) -> SseRequest {
        SseClient::request(&self.url(path)).header("accept", "text/event-stream")
    }

    /// Opens an SSE route and reads its `retry` hint.
    async fn subscribe(&self, path: &str) -> SseClient {
        let mut client = self.sse(path).open().await;
        assert!(client.next_frame().await.unwrap().retry.is_some());
        client
    }

    /// Opens the game's stream and reads its `retry` hint, who is in the lobby (the stream
    /// connects as a spectator, not listed) and its snapshot; returns the snapshot.
    async fn watch(&self, game: u64) -> (SseClient, Value) {
        let (client, _lobby, snapshot) = self.watch_lobby(game).await;
        (client, snapshot)
    }

    /// As [`watch`](Self::watch); returns the lobby's members too.
    async fn watch_lobby(&self, game: u64) -> (SseClient, Value, Value) {
        let mut client = self.subscribe(&format!("/sse/game/{game}")).await;
        let lobby = client.next_event().await.unwrap();
        assert_eq!(lobby.event(), "presence");
        let snapshot = client.next_event().await.unwrap();
        assert_eq!(snapshot.event(), "snapshot");
        (client, lobby.json(), snapshot.json())
    }

    /// Opens the page's stream for game `game` with `cookie`, and reads its head up to the
    /// game's presence frame; returns the stream and the lobby's members.
    async fn open_page(&self, game: u64, cookie: &str) -> (SseClient, Value) {
        let mut page = self
            .sse(&format!("/sse/page?GameEvent={game}"))
            .header("cookie", cookie)
            .open()
            .await;
        assert!(page.next_frame().await.unwrap().retry.is_some());
        assert_eq!(page.next_event().await.unwrap().event(), "cursor");
        let lobby = page.next_event().await.unwrap();
        assert_eq!(lobby.event(), "0:GameEvent.presence");
        (page, lobby.json())
    }

    /// Signals shutdown and waits, at most 5 seconds, for `serve` to return.
    async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .unwrap()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn reply(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// The next event of `client`, asserting its SSE event name; returns its data.
async fn expect_event(client: &mut SseClient, name: &str) -> Value {
    let frame = client.next_event().await.unwrap();
    assert_eq!(frame.event(), name, "{frame:?}");
    assert!(!frame.id().is_empty(), "{frame:?}");
    frame.json()
}

/// A secret of 64 bytes, as `--cookie-key` takes.
const SECRET: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The `name=value` pair of the `user` cookie that `POST /api/login` sets.
async fn login(server: &Server, player: &str) -> String {
    let reply = server
        .post("/api/login", &json!({ "player": player }))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

fn players(game: &Value) -> Vec<(&str, i64)> {
    game["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["player"].as_str().unwrap(), p["score"].as_i64().unwrap()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The HTTP API, in memory

#[tokio::test]
async fn a_new_game_is_empty() {
    let server = in_memory().await;
    let game = server.create_game().await;
    assert!(game > 0);
    assert_eq!(
        server.game(game).await,
        json!({ "gameId": game, "round": 0, "players": [] })
    );
}

#[tokio::test]
async fn joining_adds_the_player_in_joining_order() {
    let server = in_memory().await;
    let game = server.create_game().await;
    for player in ["ada", "grace"] {
        assert_eq!(server.join(game, player).await.status, StatusCode::OK);
    }
    assert_eq!(
        players(&server.game(game).await),
        [("ada", 0), ("grace", 0)]
    );
}

#[tokio::test]
async fn joining_twice_is_409() {
    let server = in_memory().await;
    let game = server.create_game().await;
    server.join(game, "ada").await;
    let again = server.join(game, "ada").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body, format!("ada is already in game {game}"));
    assert_eq!(players(&server.game(game).await), [("ada", 0)]);
}

#[tokio::test]
async fn joining_with_a_bad_name_is_400() {
    let server = in_memory().await;
    let game = server.create_game().await;
    for name in ["", "two words", "a/b", "é", &"x".repeat(25)] {
        let reply = server.join(game, name).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name:?}");
        assert_eq!(
            reply.body,
            "a player name is 1 to 24 letters, digits, `_` or `-`"
        );
    }
    assert_eq!(players(&server.game(game).await), []);
}

#[tokio::test]
async fn leaving_removes_the_player() {
    let server = in_memory().await;
    let game = server.create_game().await;
    server.join(game, "ada").await;
    server.join(game, "grace").await;
    assert_eq!(server.leave(game, "ada").await.status, StatusCode::OK);
    assert_eq!(players(&server.game(game).await), [("grace", 0)]);
}

#[tokio::test]
async fn leaving_a_game_one_is_not_in_is_404() {
    let server = in_memory().await;
    let game = server.create_game().await;
    server.join(game, "ada").await;
    let reply = server.leave(game, "grace").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, format!("grace is not in game {game}"));
}

#[tokio::test]
async fn rounds_count_up_from_one() {
    let server = in_memory().await;
    let game = server.create_game().await;
    for round in 1..=3 {
        assert_eq!(server.start_round(game).await.status, StatusCode::OK);
        assert_eq!(server.game(game).await["round"], round);
    }
}

#[tokio::test]
async fn scoring_adds_points_to_the_player() {
    let server = in_memory().await;
    let game = server.create_game().await;
    server.join(game, "ada").await;
    server.join(game, "grace").await;
    server.score(game, "ada", 5).await;
    server.score(game, "ada", -2).await;
    server.score(game, "grace", 1).await;
    assert_eq!(
        players(&server.game(game).await),
        [("ada", 3), ("grace", 1)]
    );
}

#[tokio::test]
async fn scoring_a_player_not_in_the_game_is_404() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let reply = server.score(game, "ada", 1).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, format!("ada is not in game {game}"));
}

/// `GET /api/me` with `cookie`: the name it logs in, if any.
async fn me(server: &Server, cookie: &str) -> Value {
    let request = reqwest::Client::new()
        .get(server.url("/api/me"))
        .header("cookie", cookie);
    let reply = reply(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    reply.json()
}

#[tokio::test]
async fn login_sets_a_signed_http_only_cookie() {
    let server = in_memory().await;
    let reply = server.post("/api/login", &json!({ "player": "ada" })).await;
    assert_eq!(reply.status, StatusCode::OK);
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("user="), "{cookie}");
    assert!(
        !cookie.starts_with("user=ada;"),
        "signed, not in clear: {cookie}"
    );
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let bad = server.post("/api/login", &json!({ "player": "a b" })).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(!bad.headers.contains_key("set-cookie"));
}

#[tokio::test]
async fn me_names_the_user_of_a_login_cookie_and_nobody_otherwise() {
    let server = in_memory().await;
    let cookie = login(&server, "ada").await;
    assert_eq!(me(&server, &cookie).await, json!("ada"));
    assert_eq!(me(&server, "user=ada").await, Value::Null);
    assert_eq!(server.get("/api/me").await.json(), Value::Null);
}

#[tokio::test]
async fn a_short_cookie_key_is_refused_at_start() {
    let short = options(None, Some(Secret("too short".to_owned())));
    assert!(matches!(
        Game::start(&short).await,
        Err(StartError::CookieKeyTooShort(9))
    ));
}

#[tokio::test]
async fn the_page_and_its_generated_client_are_served() {
    let server = in_memory().await;
    let page = server.get("/").await;
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(page.body.contains(r#"src="/app.js""#));
    let client = server.get("/events.js").await;
    assert_eq!(
        client.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(client.body.contains("subscribeGameEvent"));
    assert_eq!(server.get("/app.js").await.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// The streams, in memory

#[tokio::test]
async fn the_game_stream_sends_the_snapshot_first_then_every_event_by_name() {
    let server = in_memory().await;
    let game = server.create_game().await;
    server.join(game, "ada").await;
    server.score(game, "ada", 2).await;

    let (mut stream, snapshot) = server.watch(game).await;
    assert_eq!(
        snapshot,
        json!({ "gameId": game, "round": 0, "players": [{ "player": "ada", "score": 2 }] })
    );

    server.join(game, "grace").await;
    server.start_round(game).await;
    server.score(game, "grace", 4).await;
    server.leave(game, "ada").await;
    assert_eq!(
        expect_event(&mut stream, "PlayerJoined").await,
        json!({ "gameId": game, "player": "grace" })
    );
    assert_eq!(
        expect_event(&mut stream, "RoundStarted").await,
        json!({ "gameId": game, "round": 1 })
    );
    assert_eq!(
        expect_event(&mut stream, "ScoreChanged").await,
        json!({ "gameId": game, "player": "grace", "score": 4 })
    );
    assert_eq!(
        expect_event(&mut stream, "PlayerLeft").await,
        json!({ "gameId": game, "player": "ada" })
    );
}

#[tokio::test]
async fn a_resuming_game_stream_gets_the_missed_events_and_no_snapshot() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let (mut stream, _) = server.watch(game).await;
    server.join(game, "ada").await;
    let seen = stream.next_event().await.unwrap();
    drop(stream);

    server.join(game, "grace").await;
    server.start_round(game).await;
    let mut resumed = server
        .sse(&format!("/sse/game/{game}"))
        .last_event_id(seen.id())
        .open()
        .await;
    assert!(resumed.next_frame().await.unwrap().retry.is_some());
    assert_eq!(resumed.next_event().await.unwrap().event(), "presence");
    assert_eq!(
        expect_event(&mut resumed, "PlayerJoined").await["player"],
        "grace"
    );
    assert_eq!(expect_event(&mut resumed, "RoundStarted").await["round"], 1);
}

#[tokio::test]
async fn each_game_event_also_has_a_route_of_its_own() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let mut scores = server
        .subscribe(&format!("/sse/game/{game}/score-changed"))
        .await;
    server.join(game, "ada").await;
    server.start_round(game).await;
    server.score(game, "ada", 7).await;
    assert_eq!(
        expect_event(&mut scores, "ScoreChanged").await,
        json!({ "gameId": game, "player": "ada", "score": 7 })
    );
}

#[tokio::test]
async fn announcements_reach_every_subscriber() {
    let server = in_memory().await;
    let mut first = server.subscribe("/sse/system/system-announcement").await;
    let mut second = server.subscribe("/sse/system/system-announcement").await;
    let text = json!({ "text": "maintenance at noon" });
    assert_eq!(
        server.post("/api/announcements", &text).await.status,
        StatusCode::OK
    );
    for client in [&mut first, &mut second] {
        assert_eq!(expect_event(client, "SystemAnnouncement").await, text);
    }
}

#[tokio::test]
async fn a_new_game_is_announced() {
    let server = in_memory().await;
    let mut announcements = server.subscribe("/sse/system/system-announcement").await;
    let game = server.create_game().await;
    assert_eq!(
        expect_event(&mut announcements, "SystemAnnouncement").await,
        json!({ "text": format!("game {game} is open") })
    );
}

#[tokio::test]
async fn the_notification_stream_without_a_user_cookie_is_401() {
    let server = in_memory().await;
    let denied = server.sse("/sse/user/ada/notification").send().await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_notification_stream_with_an_unsigned_user_cookie_is_401() {
    let server = in_memory().await;
    let denied = server
        .sse("/sse/user/ada/notification")
        .header("cookie", "user=ada")
        .send()
        .await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_notification_stream_with_a_tampered_login_cookie_is_401() {
    let server = in_memory().await;
    // The signature of `grace`, the name of `ada`.
    let cookie = login(&server, "grace").await;
    let tampered = format!("{}ada", cookie.strip_suffix("grace").unwrap());
    let denied = server
        .sse("/sse/user/ada/notification")
        .header("cookie", &tampered)
        .send()
        .await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_login_cookie_value_is_also_a_bearer_token() {
    let server = in_memory().await;
    let cookie = login(&server, "ada").await;
    let token = cookie.strip_prefix("user=").unwrap();
    let bearer = |user: &str, token: &str| {
        server
            .sse(&format!("/sse/user/{user}/notification"))
            .header("authorization", &format!("Bearer {token}"))
            .send()
    };
    assert_eq!(bearer("ada", token).await.status(), StatusCode::OK);
    assert_eq!(bearer("bob", token).await.status(), StatusCode::FORBIDDEN);
    let tampered = format!("{}bob", token.strip_suffix("ada").unwrap());
    assert_eq!(
        bearer("bob", &tampered).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The names of a `presence` frame's members, oldest first.
fn lobby_names(lobby: &Value) -> Vec<&str> {
    lobby
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["member"]["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn the_page_stream_lists_its_logged_in_user_in_the_game_lobby() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let (ada, bob) = (login(&server, "ada").await, login(&server, "bob").await);
    let (_ada_page, lobby) = server.open_page(game, &ada).await;
    assert_eq!(lobby_names(&lobby), ["ada"]);
    assert_eq!(lobby[0]["connections"], 1);

    let (mut spectator, lobby, _) = server.watch_lobby(game).await;
    assert_eq!(lobby_names(&lobby), ["ada"], "a spectator is not listed");
    let (bob_page, lobby) = server.open_page(game, &bob).await;
    assert_eq!(lobby_names(&lobby), ["ada", "bob"]);
    assert_eq!(
        expect_event(&mut spectator, "join").await["member"],
        json!({ "name": "bob" })
    );
    drop(bob_page);
    assert_eq!(
        expect_event(&mut spectator, "leave").await,
        json!({ "member": { "name": "bob" } })
    );
}

#[tokio::test]
async fn a_user_with_two_pages_on_a_game_is_in_its_lobby_once_until_both_close() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let ada = login(&server, "ada").await;
    let (mut spectator, _, _) = server.watch_lobby(game).await;
    let (first, _) = server.open_page(game, &ada).await;
    assert_eq!(
        expect_event(&mut spectator, "join").await["member"]["name"],
        "ada"
    );
    let (second, lobby) = server.open_page(game, &ada).await;
    assert_eq!(lobby_names(&lobby), ["ada"]);
    assert_eq!(lobby[0]["connections"], 2);

    drop(first);
    // Once the server has counted the closed page out, ada is still listed, with one connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    let members = loop {
        let members = GameEvent::presence(&server.backplane, &GameId(u32::try_from(game).unwrap()))
            .await
            .unwrap();
        if members.iter().map(|m| m.connections).sum::<u64>() == 1 {
            break members;
        }
        assert!(
            Instant::now() < deadline,
            "the closed page is still counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(members.len(), 1, "one page closed, ada stays");
    assert_eq!(members[0].member.name, "ada");
    drop(second);
    // The spectator's next event after ada's one join is her leave: no join or leave between.
    assert_eq!(
        expect_event(&mut spectator, "leave").await["member"]["name"],
        "ada"
    );
}

#[tokio::test]
async fn a_page_without_a_valid_login_follows_a_game_unlisted() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let ada = login(&server, "ada").await;
    let (_ada_page, _) = server.open_page(game, &ada).await;
    // No login, and a cookie the browser made up: both watch as spectators.
    for cookie in ["", "user=ada"] {
        let (_page, lobby) = server.open_page(game, cookie).await;
        assert_eq!(lobby_names(&lobby), ["ada"], "{cookie:?}");
        assert_eq!(lobby[0]["connections"], 1, "{cookie:?} is not ada");
    }
}

#[tokio::test]
async fn past_max_streams_a_stream_request_is_503_with_the_retry_hint_as_retry_after() {
    let server = serve(Options {
        max_streams: 1,
        retry_ms: 1_500,
        ..options(None, None)
    })
    .await;
    let _open = server.subscribe("/sse/system/system-announcement").await;
    let refused = server.sse("/sse/system/system-announcement").send().await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers()["retry-after"], "2");
}

#[tokio::test]
async fn a_login_is_good_on_every_instance_that_shares_the_cookie_key() {
    let (a, b) = (
        in_memory_with_key(SECRET).await,
        in_memory_with_key(SECRET).await,
    );
    let cookie = login(&a, "ada").await;
    let opened = b
        .sse("/sse/user/ada/notification")
        .header("cookie", &cookie)
        .send()
        .await;
    assert_eq!(opened.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_login_is_refused_by_an_instance_with_its_own_random_key() {
    let (a, b) = (in_memory().await, in_memory().await);
    let cookie = login(&a, "ada").await;
    let denied = b
        .sse("/sse/user/ada/notification")
        .header("cookie", &cookie)
        .send()
        .await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_notification_stream_of_another_user_is_403() {
    let server = in_memory().await;
    let cookie = login(&server, "grace").await;
    let denied = server
        .sse("/sse/user/ada/notification")
        .header("cookie", &cookie)
        .send()
        .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_notification_stream_delivers_to_its_owner() {
    let server = in_memory().await;
    let cookie = login(&server, "ada").await;
    let mut notifications = server
        .sse("/sse/user/ada/notification")
        .header("cookie", &cookie)
        .open()
        .await;
    assert!(notifications.next_frame().await.unwrap().retry.is_some());
    let game = server.create_game().await;
    server.join(game, "ada").await;
    server.score(game, "ada", 3).await;
    assert_eq!(
        expect_event(&mut notifications, "Notification").await,
        json!({ "userId": "ada", "text": format!("you have 3 points in game {game}") })
    );
}

#[tokio::test]
async fn diagnostics_count_open_streams() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let _watchers = [server.watch(game).await, server.watch(game).await];
    let _announcements = server.subscribe("/sse/system/system-announcement").await;
    let cookie = login(&server, "ada").await;
    let _denied = server
        .sse("/sse/user/grace/notification")
        .header("cookie", &cookie)
        .send()
        .await;

    let diagnostics = server.get("/diagnostics").await.json();
    assert_eq!(diagnostics["transport"], "memory");
    assert_eq!(diagnostics["total_channels"], 2);
    assert_eq!(diagnostics["total_local_subscribers"], 3);
}

#[tokio::test]
async fn diagnostics_name_no_user() {
    let server = in_memory().await;
    let cookie = login(&server, "ada").await;
    let _notifications = server
        .sse("/sse/user/ada/notification")
        .header("cookie", &cookie)
        .open()
        .await;
    let reply = server.get("/diagnostics").await;
    assert_eq!(reply.json()["total_local_subscribers"], 1);
    assert!(!reply.body.contains("ada"), "{}", reply.body);
}

#[tokio::test]
async fn stopping_the_server_ends_open_streams() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let (mut stream, _) = server.watch(game).await;
    let started = Instant::now();
    server.stop().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(stream.next_frame().await.unwrap().raw, ": shutdown\n\n");
    assert_eq!(stream.next_frame().await, None::<Frame>);
}

// ---------------------------------------------------------------------------------------------
// Two instances on one Redis

#[tokio::test]
async fn redis_a_browser_on_one_instance_sees_api_calls_made_on_another() {
    let redis = RedisServer::start();
    let (a, b) = (on_redis(&redis).await, on_redis(&redis).await);
    let game = b.create_game().await;
    let cookie = login(&a, "ada").await;
    let mut stream = a
        .sse(&format!("/sse/game/{game}"))
        .header("cookie", &cookie)
        .open()
        .await;
    assert!(stream.next_frame().await.unwrap().retry.is_some());
    assert_eq!(stream.next_event().await.unwrap().event(), "presence");
    let snapshot = stream.next_event().await.unwrap();
    assert_eq!(snapshot.event(), "snapshot");
    assert_eq!(snapshot.json()["players"], json!([]));

    b.join(game, "ada").await;
    b.start_round(game).await;
    b.score(game, "ada", 10).await;
    b.leave(game, "ada").await;
    assert_eq!(
        expect_event(&mut stream, "PlayerJoined").await["player"],
        "ada"
    );
    assert_eq!(expect_event(&mut stream, "RoundStarted").await["round"], 1);
    assert_eq!(expect_event(&mut stream, "ScoreChanged").await["score"], 10);
    assert_eq!(
        expect_event(&mut stream, "PlayerLeft").await["player"],
        "ada"
    );
}

#[tokio::test]
async fn redis_the_snapshot_on_one_instance_includes_players_who_joined_on_another() {
    let redis = RedisServer::start();
    let (a, b) = (on_redis(&redis).await, on_redis(&redis).await);
    let game = a.create_game().await;
    a.join(game, "ada").await;
    a.join(game, "grace").await;
    a.score(game, "grace", 2).await;

    assert_eq!(players(&b.game(game).await), [("ada", 0), ("grace", 2)]);
    let (_stream, snapshot) = b.watch(game).await;
    assert_eq!(players(&snapshot), [("ada", 0), ("grace", 2)]);
    assert_eq!(b.join(game, "ada").await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn redis_announcements_on_one_instance_reach_subscribers_of_another() {
    let redis = RedisServer::start();
    let (a, b) = (on_redis(&redis).await, on_redis(&redis).await);
    let mut announcements = a.subscribe("/sse/system/system-announcement").await;
    let text = json!({ "text": "hello from b" });
    b.post("/api/announcements", &text).await;
    assert_eq!(
        expect_event(&mut announcements, "SystemAnnouncement").await,
        text
    );
}

#[tokio::test]
async fn redis_a_notification_caused_on_one_instance_reaches_its_owner_on_another() {
    let redis = RedisServer::start();
    let (a, b) = (on_redis(&redis).await, on_redis(&redis).await);
    let cookie = login(&a, "ada").await;
    let mut notifications = a
        .sse("/sse/user/ada/notification")
        .header("cookie", &cookie)
        .open()
        .await;
    assert!(notifications.next_frame().await.unwrap().retry.is_some());
    let game = b.create_game().await;
    b.join(game, "ada").await;
    b.score(game, "ada", 1).await;
    assert_eq!(
        expect_event(&mut notifications, "Notification").await["text"],
        format!("you have 1 point in game {game}")
    );
}

#[tokio::test]
async fn redis_a_game_stream_resumes_on_another_instance_without_missing_events() {
    let redis = RedisServer::start();
    let (a, b) = (on_redis(&redis).await, on_redis(&redis).await);
    let game = a.create_game().await;
    let (mut stream, _) = a.watch(game).await;
    a.join(game, "ada").await;
    let seen = stream.next_event().await.unwrap();
    drop(stream);

    a.join(game, "grace").await;
    a.start_round(game).await;
    let mut resumed = b
        .sse(&format!("/sse/game/{game}"))
        .last_event_id(seen.id())
        .open()
        .await;
    assert!(resumed.next_frame().await.unwrap().retry.is_some());
    assert_eq!(resumed.next_event().await.unwrap().event(), "presence");
    assert_eq!(
        expect_event(&mut resumed, "PlayerJoined").await["player"],
        "grace"
    );
    assert_eq!(expect_event(&mut resumed, "RoundStarted").await["round"], 1);
    a.score(game, "grace", 5).await;
    assert_eq!(expect_event(&mut resumed, "ScoreChanged").await["score"], 5);
}

#[tokio::test]
async fn redis_a_games_lobby_lists_the_players_connected_to_either_instance() {
    let redis = RedisServer::start();
    let (a, b) = (on_redis(&redis).await, on_redis(&redis).await);
    let game = a.create_game().await;
    // Each instance signs its own logins: each player logs in where their page connects.
    let (_ada_page, _) = a.open_page(game, &login(&a, "ada").await).await;
    let (mut spectator, lobby, _) = a.watch_lobby(game).await;
    assert_eq!(lobby_names(&lobby), ["ada"]);

    let (bob_page, lobby) = b.open_page(game, &login(&b, "bob").await).await;
    assert_eq!(lobby_names(&lobby), ["ada", "bob"]);
    assert_eq!(
        expect_event(&mut spectator, "join").await["member"]["name"],
        "bob"
    );
    drop(bob_page);
    assert_eq!(
        expect_event(&mut spectator, "leave").await["member"]["name"],
        "bob"
    );
}

/// One sample of a Prometheus text exposition: its metric name, labels and value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

/// Parses a Prometheus text exposition (format 0.0.4), panicking on any line that is not a
/// comment, a `# TYPE` with a known type, or a sample of a family whose type came first.
fn parse_exposition(text: &str) -> Vec<Sample> {
    let is_name = |name: &str| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut types = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            if words.first() == Some(&"TYPE") {
                assert!(words.len() == 3 && is_name(words[1]), "bad TYPE: {line}");
                let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                assert!(known.contains(&words[2]), "unknown type: {line}");
                types.insert(words[1].to_owned(), words[2].to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            value => value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, Vec::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("{line}"));
                let labels = body
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, quoted) =
                            pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                        assert!(is_name(key), "bad label name: {line}");
                        let value = quoted
                            .strip_prefix('"')
                            .and_then(|v| v.strip_suffix('"'))
                            .unwrap_or_else(|| panic!("unquoted label: {line}"));
                        (key.to_owned(), value.to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(is_name(name), "bad metric name: {line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        assert!(types.contains_key(family), "no TYPE before {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    samples
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let server = in_memory().await;
    let game = server.create_game().await;
    let (mut client, _) = server.watch(game).await;
    server.join(game, "ada").await;
    expect_event(&mut client, "PlayerJoined").await;

    let reply = server.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let samples = parse_exposition(&reply.body);
    let value = |name: &str, event: &str| {
        samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| s.labels.contains(&("domain".to_owned(), "game".to_owned())))
            .filter(|s| s.labels.contains(&("event".to_owned(), event.to_owned())))
            .map(|s| s.value)
            .sum::<f64>()
    };
    assert!(value("statelesse_published_events_total", "GameEvent") >= 1.0);
    assert!(value("statelesse_deliveries_total", "GameEvent") >= 1.0);
    assert!(value("statelesse_connections_open", "GameEvent") >= 1.0);
    assert!(value("statelesse_delivery_latency_seconds_count", "GameEvent") >= 1.0);
    assert!(value("statelesse_publish_duration_seconds_bucket", "GameEvent") >= 1.0);
    assert!(value("statelesse_written_bytes_total", "GameEvent") > 0.0);
}

#[tokio::test]
async fn ready_is_200_while_the_backplane_serves() {
    let server = in_memory().await;
    let reply = server.get("/ready").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["status"], "ready");
}
