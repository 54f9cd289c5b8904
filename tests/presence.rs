//! Presence through the routes: who is connected to a channel, the `presence` frame a
//! connection starts with, and the `join` and `leave` events, on single and multiplexed routes;
//! then across instances on Redis, one of them a process killed with `SIGKILL`.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use statelesse::backplane::transport::{BoxFuture, HistoryPage, LiveFeed, PageLimits, Transport};
use statelesse::prelude::*;
use statelesse::routes::{Denied, MuxRoutes};
use statelesse::{Diagnostics, ErrorKind, MemoryTransport, RedisConfig};
use statelesse_test_redis::RedisServer;
use statelesse_tests::app::spawn_app;
use statelesse_tests::sse::{Frame, SseClient};
use statelesse_tests::suite::eventually;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
struct Player {
    name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "lobby", key = "game_id", presence = Player)]
enum LobbyEvent {
    Chat { game_id: u64, text: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "lobby", key = "game_id")]
struct Started {
    game_id: u64,
}

/// The player a request says it is, in `x-player`: the tests' stand-in for a session.
fn player_of(parts: &axum::http::request::Parts) -> Result<Player, Denied> {
    let name = parts.headers.get("x-player").ok_or(Denied::Unauthorized)?;
    let name = name.to_str().map_err(|_| Denied::Unauthorized)?;
    Ok(Player {
        name: name.to_owned(),
    })
}

fn lobby_routes() -> statelesse::routes::SseRoutes<LobbyEvent, Backplane> {
    LobbyEvent::sse_routes()
        .member(|parts, _game_id: u64, _: Backplane| async move { player_of(&parts) })
}

fn app(bp: &Backplane) -> Router {
    Router::new()
        .merge(lobby_routes())
        .merge(
            MuxRoutes::new("/sse/page")
                .event(lobby_routes())
                .event(Started::sse_routes()),
        )
        .with_state(bp.clone())
}

/// Connects to `url` as `player`.
async fn join(url: &str, player: Option<&str>) -> SseClient {
    // `None` sends no identity: the member hook refuses it, a route without one takes it.
    let mut request = SseClient::request(url);
    if let Some(player) = player {
        request = request.header("x-player", player);
    }
    request.open().await
}

/// The names in a `presence` frame.
fn names(frame: &Frame) -> Vec<String> {
    let mut names: Vec<String> = frame
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["member"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The name of the member of a `join` or `leave` frame.
fn member(frame: &Frame) -> String {
    frame.json()["member"]["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_connection_starts_with_the_members_itself_included() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let url = app.url("/sse/lobby/7");
    let _ada = join(&url, Some("ada")).await;
    let mut bob = join(&url, Some("bob")).await;
    let presence = bob.next_event().await.unwrap();
    assert_eq!(presence.event(), "presence");
    assert!(presence.id().is_empty(), "the presence frame has no id");
    assert_eq!(names(&presence), ["ada", "bob"]);
    let first = &presence.json()[0];
    assert_eq!(first["connections"], 1);
    assert!(first["since"].as_u64().is_some());
}

#[tokio::test]
async fn members_join_once_and_leave_when_their_last_connection_closes() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let url = app.url("/sse/lobby/7");
    let mut watcher = join(&url, Some("eve")).await;
    let presence = watcher.next_event().await.unwrap();
    assert_eq!(names(&presence), ["eve"], "its own join is not sent to it");

    let first_tab = join(&url, Some("ada")).await;
    let joined = watcher.next_event().await.unwrap();
    assert_eq!((joined.event(), member(&joined)), ("join", "ada".into()));
    assert!(!joined.id().is_empty(), "a join is an event of the channel");

    let second_tab = join(&url, Some("ada")).await;
    drop(first_tab);
    drop(second_tab);
    let left = watcher.next_event().await.unwrap();
    // No second `join` came between: a member with two tabs joins once.
    assert_eq!((left.event(), member(&left)), ("leave", "ada".into()));
    assert_eq!(
        LobbyEvent::presence_count(&bp, &7).await.unwrap(),
        1,
        "eve is left"
    );
}

#[tokio::test]
async fn a_presence_route_without_an_identity_is_a_spectator() {
    let bp = Backplane::in_memory();
    let app = spawn_app(
        Router::new()
            .merge(LobbyEvent::sse_routes())
            .with_state(bp.clone()),
    )
    .await;
    let mut spectator = join(&app.url("/sse/lobby/7"), Some("ada")).await;
    let presence = spectator.next_event().await.unwrap();
    assert_eq!(
        (presence.event(), presence.json()),
        ("presence", serde_json::json!([]))
    );
    assert!(LobbyEvent::presence(&bp, &7).await.unwrap().is_empty());
}

/// A member hook that may answer "nobody": signed-in connections are members, the others
/// spectators, on a single route and on a multiplexed one alike.
#[tokio::test]
async fn a_member_or_spectator_hook_lets_anonymous_connections_watch() {
    let bp = Backplane::in_memory();
    let open_lobby = || {
        LobbyEvent::sse_routes().member_or_spectator(|parts, _: u64, _: Backplane| async move {
            Ok::<_, Denied>(player_of(&parts).ok())
        })
    };
    let app = spawn_app(
        Router::new()
            .merge(open_lobby())
            .merge(MuxRoutes::new("/sse/page").event(open_lobby()))
            .with_state(bp.clone()),
    )
    .await;
    let mut anonymous = join(&app.url("/sse/lobby/7"), None).await;
    assert_eq!(
        anonymous.next_event().await.unwrap().json(),
        serde_json::json!([])
    );
    let mut anonymous_page = join(&app.url("/sse/page?LobbyEvent=7"), None).await;
    assert_eq!(anonymous_page.next_event().await.unwrap().event(), "cursor");
    assert_eq!(
        anonymous_page.next_event().await.unwrap().json(),
        serde_json::json!([])
    );

    let _ada = join(&app.url("/sse/lobby/7"), Some("ada")).await;
    let joined = anonymous.next_event().await.unwrap();
    assert_eq!((joined.event(), member(&joined)), ("join", "ada".into()));
    let joined = anonymous_page.next_event().await.unwrap();
    assert_eq!(
        (joined.event(), member(&joined)),
        ("0:LobbyEvent.join", "ada".into())
    );
    let members = LobbyEvent::presence(&bp, &7).await.unwrap();
    assert_eq!(members.len(), 1, "the anonymous connections are no members");
    assert_eq!(members[0].member, Player { name: "ada".into() });
}

#[tokio::test]
async fn a_refused_identity_is_the_response_and_no_member() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let refused = SseClient::request(&app.url("/sse/lobby/7")).send().await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(LobbyEvent::presence_count(&bp, &7).await.unwrap(), 0);
}

#[tokio::test]
async fn the_members_are_read_typed_from_the_backplane() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let _ada = join(&app.url("/sse/lobby/7"), Some("ada")).await;
    eventually("ada is a member", || {
        futures_util::FutureExt::now_or_never(LobbyEvent::presence_count(&bp, &7))
            .is_some_and(|count| count.unwrap() == 1)
    })
    .await;
    let members = LobbyEvent::presence(&bp, &7).await.unwrap();
    assert_eq!(members[0].member, Player { name: "ada".into() });
    assert_eq!(members[0].connections, 1);
}

#[tokio::test]
async fn a_multiplexed_route_tags_the_presence_frames_with_their_channel() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let url = app.url("/sse/page?Started=7&LobbyEvent=7");
    let mut page = join(&url, Some("ada")).await;
    assert_eq!(page.next_event().await.unwrap().event(), "cursor");
    let presence = page.next_event().await.unwrap();
    assert_eq!(presence.event(), "1:LobbyEvent.presence");
    assert_eq!(names(&presence), ["ada"]);

    let bob = join(&app.url("/sse/lobby/7"), Some("bob")).await;
    let joined = page.next_event().await.unwrap();
    assert_eq!(
        (joined.event(), member(&joined)),
        ("1:LobbyEvent.join", "bob".into())
    );
    drop(bob);
    let left = page.next_event().await.unwrap();
    assert_eq!(
        (left.event(), member(&left)),
        ("1:LobbyEvent.leave", "bob".into())
    );
}

// Across instances on Redis.

/// The presence TTL of the Redis tests: short, so that a killed instance's members go soon.
const TTL: Duration = Duration::from_millis(1500);

fn redis_config(url: &str, prefix: &str) -> RedisConfig {
    RedisConfig::new(url)
        .unwrap()
        .with_prefix(prefix)
        .with_presence_ttl(TTL)
}

/// The names `bp` lists in game 7's lobby, sorted.
async fn lobby(bp: &Backplane) -> Vec<String> {
    let mut names: Vec<String> = LobbyEvent::presence(bp, &7)
        .await
        .unwrap()
        .into_iter()
        .map(|member| member.member.name)
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_on_one_instance_is_seen_joining_and_leaving_on_another() {
    let server = RedisServer::start();
    let first = Backplane::redis(redis_config(&server.url(), "routes"))
        .await
        .unwrap();
    let second = Backplane::redis(redis_config(&server.url(), "routes"))
        .await
        .unwrap();
    let (a, b) = (spawn_app(app(&first)).await, spawn_app(app(&second)).await);
    let mut watcher = join(&b.url("/sse/lobby/7"), Some("eve")).await;
    assert_eq!(names(&watcher.next_event().await.unwrap()), ["eve"]);

    let ada = join(&a.url("/sse/lobby/7"), Some("ada")).await;
    let joined = watcher.next_event().await.unwrap();
    assert_eq!((joined.event(), member(&joined)), ("join", "ada".into()));
    assert_eq!(lobby(&first).await, ["ada", "eve"]);
    assert_eq!(lobby(&second).await, ["ada", "eve"]);

    drop(ada);
    let left = watcher.next_event().await.unwrap();
    assert_eq!((left.event(), member(&left)), ("leave", "ada".into()));
    assert_eq!(lobby(&first).await, ["eve"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_members_leave_once_their_entries_expire() {
    let server = RedisServer::start();
    let bp = Backplane::redis(redis_config(&server.url(), "killed"))
        .await
        .unwrap();
    let channel = LobbyEvent::channel(&7);
    let mut raw = bp.subscribe(&channel).await.unwrap().into_raw();
    let ada = serde_json::to_vec(&Player { name: "ada".into() }).unwrap();
    // A member here: this instance's heartbeat sweeps the channel.
    let _ada = bp
        .transport()
        .presence_enter(channel.name(), ada.into())
        .await
        .unwrap();
    let mut ghost = Instance::start(&server.url(), "killed", "ghost");
    assert_eq!(lobby(&bp).await, ["ada", "ghost"]);

    ghost.kill();
    // Its entry expires a TTL after its last refresh; the next heartbeat here (every third of
    // the TTL) sweeps it and announces the leave, with no read needed.
    let (event, name) = statelesse_tests::suite::next_presence_change(&mut raw).await;
    assert_eq!((event.as_str(), name.as_str()), ("join", "ada"));
    let (event, name) = statelesse_tests::suite::next_presence_change(&mut raw).await;
    assert_eq!((event.as_str(), name.as_str()), ("join", "ghost"));
    let (event, name) = statelesse_tests::suite::next_presence_change(&mut raw).await;
    assert_eq!((event.as_str(), name.as_str()), ("leave", "ghost"));
    assert_eq!(lobby(&bp).await, ["ada"]);
    assert_eq!(LobbyEvent::presence_count(&bp, &7).await.unwrap(), 1);
}

/// Another instance, as a process of its own (this test binary, running
/// [`presence_instance_process`]), killed with `SIGKILL`.
struct Instance {
    child: Child,
}

impl Instance {
    /// Starts an instance on `url` with `prefix` whose member `name` is in game 7's lobby, and
    /// waits until it entered.
    fn start(url: &str, prefix: &str, name: &str) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "presence_instance_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(INSTANCE_ENV, format!("{url} {prefix} {name}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        // The test harness writes `test presence_instance_process ... ` before it.
        let entered = stdout
            .lines()
            .map_while(Result::ok)
            .any(|line| line.ends_with("entered"));
        assert!(entered, "the instance process ended before entering");
        Self { child }
    }

    /// `kill -9`: the process gets no chance to leave.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where [`Instance::start`] tells its process what to do: `<redis url> <prefix> <name>`.
const INSTANCE_ENV: &str = "STATELESSE_PRESENCE_INSTANCE";

/// The body of an [`Instance`] process: enters its member, says so, and waits to be killed.
#[test]
#[ignore = "the process of another instance, started by a_killed_instances_members_leave_once_their_entries_expire"]
fn presence_instance_process() {
    let Ok(spec) = std::env::var(INSTANCE_ENV) else {
        return;
    };
    let mut parts = spec.split(' ');
    let (url, prefix, name) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bp = Backplane::redis(redis_config(url, prefix)).await.unwrap();
        let member = serde_json::to_vec(&Player { name: name.into() }).unwrap();
        let _lease = bp
            .transport()
            .presence_enter(LobbyEvent::channel(&7).name(), member.into())
            .await
            .unwrap();
        println!("entered");
        std::future::pending::<()>().await;
    });
}

/// The script calls (`EVALSHA`) Redis ran since its statistics were reset: presence writes and
/// reads, and publishes, are each one.
fn script_calls(server: &RedisServer) -> u64 {
    let stats = server.cmd(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_members_first_and_last_connection_on_an_instance_touch_redis() {
    let server = RedisServer::start();
    // The default TTL: no heartbeat runs during the test.
    let bp = Backplane::redis(RedisConfig::new(&server.url()).unwrap().with_prefix("cost"))
        .await
        .unwrap();
    let transport = bp.transport();
    let identity = |name: &str| -> bytes::Bytes {
        serde_json::to_vec(&Player { name: name.into() })
            .unwrap()
            .into()
    };
    let room = |n: u64| LobbyEvent::channel(&n).name().to_owned();
    // Loads the scripts, so that what follows counts no `NOSCRIPT` retry.
    drop(
        transport
            .presence_enter(&room(1), identity("warm"))
            .await
            .unwrap(),
    );
    LobbyEvent::presence(&bp, &1).await.unwrap();
    eventually("the warm-up left", || {
        futures_util::FutureExt::now_or_never(LobbyEvent::presence_count(&bp, &1))
            .is_some_and(|count| count.unwrap() == 0)
    })
    .await;
    assert_eq!(server.cmd(&["CONFIG", "RESETSTAT"]).trim(), "OK");

    // First connection: the presence script, then the publish of the `join`.
    let first = transport
        .presence_enter(&room(7), identity("ada"))
        .await
        .unwrap();
    assert_eq!(script_calls(&server), 2);
    let second = transport
        .presence_enter(&room(7), identity("ada"))
        .await
        .unwrap();
    assert_eq!(
        script_calls(&server),
        2,
        "a second connection costs nothing"
    );
    drop(first);
    // Had the close queued a write, it would be one more script call beside bob's two.
    let _bob = transport
        .presence_enter(&room(8), identity("bob"))
        .await
        .unwrap();
    assert_eq!(
        script_calls(&server),
        4,
        "closing a connection that is not the last costs nothing"
    );
    // Last connection: the presence script, then the publish of the `leave`.
    drop(second);
    eventually("ada's leave is written and published", || {
        script_calls(&server) == 6
    })
    .await;
    // A read is one script call.
    assert!(LobbyEvent::presence(&bp, &7).await.unwrap().is_empty());
    assert_eq!(script_calls(&server), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_on_redis_are_skipped_and_counted() {
    let server = RedisServer::start();
    let bp = Backplane::redis(redis_config(&server.url(), "hostile"))
        .await
        .unwrap();
    let channel = LobbyEvent::channel(&7);
    let ada = serde_json::to_vec(&Player { name: "ada".into() }).unwrap();
    let _ada = bp
        .transport()
        .presence_enter(channel.name(), ada.into())
        .await
        .unwrap();
    let (set, hash) = (
        format!("hostile:p:{{{}}}", channel.name()),
        format!("hostile:pc:{{{}}}", channel.name()),
    );
    let forever = "99999999999999";
    // No newline; an identity that is not JSON; a value that is not `<n>:<ms>`; no value.
    for (entry, value) in [
        ("no-newline", Some("1:1")),
        ("x\n{not json", Some("1:1")),
        ("x\n\"bob\"", Some("lots")),
        ("y\n\"cid\"", None),
    ] {
        assert_eq!(server.cmd(&["ZADD", &set, forever, entry]).trim(), "1");
        if let Some(value) = value {
            assert_eq!(server.cmd(&["HSET", &hash, entry, value]).trim(), "1");
        }
    }
    assert_eq!(lobby(&bp).await, ["ada"]);
    assert_eq!(bp.diagnostics().redis.unwrap().malformed_messages, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_holds_the_oldest_members_up_to_its_cap_and_the_count_all_of_them() {
    let server = RedisServer::start();
    let bp = Backplane::redis(redis_config(&server.url(), "crowd"))
        .await
        .unwrap();
    let channel = LobbyEvent::channel(&7);
    let max = statelesse::presence::MAX_PRESENCE_MEMBERS;
    let enters = (0..=max).map(|n| {
        let member = serde_json::to_vec(&Player {
            name: format!("p{n}"),
        })
        .unwrap();
        bp.transport().presence_enter(channel.name(), member.into())
    });
    // Entered together, they share a few script calls.
    let _leases: Vec<_> = futures_util::future::try_join_all(enters).await.unwrap();
    let members = LobbyEvent::presence(&bp, &7).await.unwrap();
    assert_eq!(members.len(), max);
    assert!(
        members
            .windows(2)
            .all(|pair| pair[0].since <= pair[1].since)
    );
    assert_eq!(LobbyEvent::presence_count(&bp, &7).await.unwrap(), max + 1);
}

/// A memory transport that keeps no presence: the trait's defaults.
#[derive(Debug, Default)]
struct NoPresence(MemoryTransport);

impl Transport for NoPresence {
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Cow<'static, str>,
        data: bytes::Bytes,
    ) -> BoxFuture<'a, Result<EventId, BackplaneError>> {
        self.0.publish(channel, event, data)
    }

    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<LiveFeed, BackplaneError>> {
        self.0.subscribe(channel)
    }

    fn history_page<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        limits: PageLimits,
    ) -> BoxFuture<'a, Result<HistoryPage, BackplaneError>> {
        self.0.history_page(channel, after, limits)
    }

    fn local_subscriber_count(&self, channel: &str) -> usize {
        self.0.local_subscriber_count(channel)
    }

    fn diagnostics(&self) -> Diagnostics {
        self.0.diagnostics()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.0.shutdown()
    }
}

#[tokio::test]
async fn a_transport_without_presence_says_so_and_its_presence_routes_answer_503() {
    let bp = Backplane::new(NoPresence::default());
    let err = LobbyEvent::presence(&bp, &7).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = LobbyEvent::presence_count(&bp, &7).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let app = spawn_app(app(&bp)).await;
    let refused = SseClient::request(&app.url("/sse/lobby/7"))
        .header("x-player", "ada")
        .send()
        .await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A route of a type without presence is unaffected.
    SseClient::connect(&app.url("/sse/page?Started=7")).await;
}

#[tokio::test]
async fn a_resuming_connection_gets_the_members_then_the_changes_it_missed() {
    let bp = Backplane::in_memory();
    let app = spawn_app(app(&bp)).await;
    let url = app.url("/sse/lobby/7");
    let count = |expected: usize| {
        let bp = bp.clone();
        move || {
            futures_util::FutureExt::now_or_never(LobbyEvent::presence_count(&bp, &7))
                .is_some_and(|count| count.unwrap() == expected)
        }
    };
    let mut eve = join(&url, Some("eve")).await;
    assert_eq!(names(&eve.next_event().await.unwrap()), ["eve"]);
    let ada = join(&url, Some("ada")).await;
    let joined = eve.next_event().await.unwrap();
    drop(ada);
    eventually("ada left", count(1)).await;
    drop(eve);
    eventually("eve left", count(0)).await;

    let mut back = SseClient::request(&url)
        .header("x-player", "eve")
        .last_event_id(joined.id())
        .open()
        .await;
    // The members of now first, then, from history, every change after the last id: its own
    // `join` among them, which a fresh connection would not get.
    assert_eq!(names(&back.next_event().await.unwrap()), ["eve"]);
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let frame = back.next_event().await.unwrap();
        replayed.push((frame.event().to_owned(), member(&frame)));
    }
    let expected = [("leave", "ada"), ("leave", "eve"), ("join", "eve")];
    assert_eq!(
        replayed,
        expected.map(|(event, name)| (event.to_owned(), name.to_owned()))
    );
}
