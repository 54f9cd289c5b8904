//! The Redis transport: the shared behaviour suite (two backplanes on one server are two
//! instances), then what only Redis has: interest routing, prefixes, connection faults, and
//! foreign messages. Every test starts its own `redis-server`.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use statelesse::SubscriptionError;
use statelesse::backplane::transport::PageLimits;
use statelesse::prelude::*;
use statelesse::{ErrorKind, RedisConfig};
use statelesse_test_redis::RedisServer;
use statelesse_tests::suite::{
    self, Fleet, PATIENCE, Setup, Tick, assert_sequence, collect, eventually, next_event,
    next_item, publish_all,
};

/// One private server; each call of [`Fleet::backplanes`] gets a prefix of its own.
struct OnRedis {
    server: RedisServer,
    prefixes: AtomicU32,
}

impl OnRedis {
    fn start() -> Self {
        Self {
            server: RedisServer::start(),
            prefixes: AtomicU32::new(0),
        }
    }

    fn next_prefix(&self) -> String {
        format!("t{}", self.prefixes.fetch_add(1, Ordering::Relaxed))
    }

    fn config(&self, prefix: &str, setup: &Setup) -> RedisConfig {
        RedisConfig::new(&self.server.url())
            .unwrap()
            .with_prefix(prefix)
            .with_history_len(setup.history_len)
            .with_subscriber_buffer(setup.subscriber_buffer)
            .with_replay(setup.replay.clone())
            .with_presence_ttl(setup.presence_ttl)
            .with_reconnect_backoff(Duration::from_millis(20), Duration::from_millis(500))
            .with_health_check_interval(Duration::from_secs(1))
    }

    async fn instances(&self, prefix: &str, n: usize, setup: Setup) -> Vec<Backplane> {
        let mut bps = Vec::with_capacity(n);
        for _ in 0..n {
            bps.push(Backplane::redis(self.config(prefix, &setup)).await.unwrap());
        }
        bps
    }
}

impl Fleet for OnRedis {
    async fn backplanes(&self, n: usize, setup: Setup) -> Vec<Backplane> {
        let prefix = self.next_prefix();
        self.instances(&prefix, n, setup).await
    }
}

/// The pub/sub channel of room `room`'s `Tick`s under `prefix`, as documented.
fn pubsub_name(prefix: &str, room: u32) -> String {
    format!("{prefix}:{{{}}}", Tick::channel(&room).name())
}

fn stream_key(prefix: &str, room: u32) -> String {
    format!("{prefix}:h:{{{}}}", Tick::channel(&room).name())
}

fn numsub(server: &RedisServer, name: &str) -> u64 {
    let reply = server.cmd(&["PUBSUB", "NUMSUB", name]);
    reply.lines().last().unwrap().parse().unwrap()
}

fn pubsub_channels(server: &RedisServer, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = server
        .cmd(&["PUBSUB", "CHANNELS", &format!("{prefix}:*")])
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

fn redis_stats(bp: &Backplane) -> statelesse::RedisDiagnostics {
    bp.diagnostics().redis.unwrap()
}

// The shared suite.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_the_members_of_every_instance() {
    suite::presence_lists_the_members_of_every_instance(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_a_member_with_many_connections_once() {
    suite::presence_counts_a_member_with_many_connections_once(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_keeps_a_member_until_its_last_connection_closes() {
    suite::presence_keeps_a_member_until_its_last_connection_closes(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_join_and_leave_reach_every_instance() {
    suite::presence_join_and_leave_reach_every_instance(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_in_order_exactly_once() {
    suite::delivers_in_order_exactly_once(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolates_channels() {
    suite::isolates_channels(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_id() {
    suite::resumes_after_id(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_gap_when_history_trimmed() {
    suite::reports_gap_when_history_trimmed(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_id_from_the_future_is_a_gap_then_live_events() {
    suite::a_resume_id_from_the_future_is_a_gap_then_live_events(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_history_in_pages() {
    suite::replays_history_in_pages(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_lagging_before_its_first_event_is_refilled() {
    suite::a_subscriber_lagging_before_its_first_event_is_refilled(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_in_diagnostics() {
    suite::counts_in_diagnostics(&OnRedis::start(), "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribes_on_drop() {
    suite::unsubscribes_on_drop(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes() {
    suite::shutdown_closes(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_lags_alone() {
    suite::slow_subscriber_lags_alone(&OnRedis::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_many_delivers_in_order_with_each_events_id() {
    suite::publish_many_delivers_in_order_with_each_events_id(&OnRedis::start()).await;
}

// Redis only.

/// Four publishers on two instances write to 16 channels at once; every subscriber on both
/// instances gets every event of its channel once, in id order, each publisher's in its order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_instance_exactly_once_in_order_with_concurrent_publishers() {
    const ROOMS: u32 = 16;
    const PUBLISHERS: u64 = 4;
    const EACH: u64 = 40;
    let fleet = OnRedis::start();
    let bps = fleet.backplanes(2, Setup::default()).await;
    let mut subscriptions = Vec::new();
    for room in 0..ROOMS {
        for bp in &bps {
            subscriptions.push((room, Tick::stream(bp, &room).await.unwrap()));
        }
    }
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let bp = bps[usize::try_from(p % 2).unwrap()].clone();
        publishers.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for i in 0..EACH {
                for room in 0..ROOMS {
                    let n = p * 1000 + i;
                    sent.push((room, n, bp.publish(&Tick { room, n }).await.unwrap()));
                }
            }
            sent
        }));
    }
    let mut ids: HashMap<(u32, u64), EventId> = HashMap::new();
    for publisher in publishers {
        for (room, n, id) in publisher.await.unwrap() {
            ids.insert((room, n), id);
        }
    }
    for (room, subscription) in &mut subscriptions {
        let events = collect(subscription, usize::try_from(PUBLISHERS * EACH).unwrap()).await;
        assert!(
            events.windows(2).all(|w| w[0].id < w[1].id),
            "room {room}: ids out of order"
        );
        for event in &events {
            assert_eq!(event.event.room, *room);
            assert_eq!(
                ids[&(*room, event.event.n)],
                event.id,
                "id differs from the publish's"
            );
        }
        for p in 0..PUBLISHERS {
            let mine: Vec<u64> = events
                .iter()
                .map(|e| e.event.n)
                .filter(|n| n / 1000 == p)
                .collect();
            let want: Vec<u64> = (0..EACH).map(|i| p * 1000 + i).collect();
            assert_eq!(mine, want, "room {room}: publisher {p}'s events");
        }
    }
}

/// An instance subscribes on Redis only to channels its local subscribers want, once per
/// channel, and unsubscribes when the last leaves, even under concurrent churn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_interest() {
    let fleet = OnRedis::start();
    let server = &fleet.server;
    let prefix = fleet.next_prefix();
    let bps = fleet.instances(&prefix, 2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    assert!(pubsub_channels(server, &prefix).is_empty());

    let one = Tick::stream(a, &1).await.unwrap();
    let two = Tick::stream(a, &1).await.unwrap();
    assert_eq!(pubsub_channels(server, &prefix), [pubsub_name(&prefix, 1)]);
    assert_eq!(
        numsub(server, &pubsub_name(&prefix, 1)),
        1,
        "one subscription per instance"
    );
    assert_eq!(redis_stats(a).subscribed_channels, 1);
    assert_eq!(redis_stats(b).subscribed_channels, 0);

    let three = Tick::stream(b, &1).await.unwrap();
    assert_eq!(numsub(server, &pubsub_name(&prefix, 1)), 2);
    drop((one, two));
    eventually("A unsubscribed", || {
        numsub(server, &pubsub_name(&prefix, 1)) == 1
    })
    .await;
    drop(three);
    eventually("nobody subscribed", || {
        pubsub_channels(server, &prefix).is_empty()
    })
    .await;

    // Subscribers coming and going concurrently never leave a stale or missing subscription.
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let bp = a.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..10u64 {
                let subscription = Tick::stream(&bp, &2).await.unwrap();
                if (t + round) % 3 == 0 {
                    tokio::task::yield_now().await;
                }
                drop(subscription);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    eventually("churn left no subscription", || {
        numsub(server, &pubsub_name(&prefix, 2)) == 0 && redis_stats(a).subscribed_channels == 0
    })
    .await;
    let mut last = Tick::stream(a, &2).await.unwrap();
    assert_eq!(numsub(server, &pubsub_name(&prefix, 2)), 1);
    publish_all(b, 2, [7]).await;
    assert_eq!(next_event(&mut last).await.event.n, 7);
}

/// Two prefixes on one server never see each other's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_isolate() {
    let fleet = OnRedis::start();
    let dev = &fleet.instances("dev", 1, Setup::default()).await[0];
    let prod = &fleet.instances("prod", 1, Setup::default()).await[0];
    let mut on_dev = Tick::stream(dev, &1).await.unwrap();
    let mut on_prod = Tick::stream(prod, &1).await.unwrap();
    publish_all(dev, 1, [1]).await;
    publish_all(prod, 1, [2]).await;
    assert_eq!(next_event(&mut on_dev).await.event.n, 1);
    assert_eq!(next_event(&mut on_prod).await.event.n, 2);
    publish_all(dev, 1, [3]).await;
    assert_eq!(
        next_event(&mut on_dev).await.event.n,
        3,
        "dev saw prod's event"
    );
    let keys = fleet.server.cmd(&["KEYS", "*"]);
    let mut keys: Vec<&str> = keys.lines().collect();
    keys.sort_unstable();
    assert_eq!(keys, [stream_key("dev", 1), stream_key("prod", 1)]);
}

/// Subscribes on one instance, publishes from another, then forbids every history read (an ACL
/// that keeps publishing allowed) and kills the subscriber's pub/sub connection: returns the
/// backplanes and the subscription once it has reported the gap the failed refill ends in.
async fn a_refill_that_cannot_read_history(
    fleet: &OnRedis,
) -> (Vec<Backplane>, Subscription<Tick>) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let mut subscription = Tick::stream(&bps[1], &1).await.unwrap();
    publish_all(&bps[0], 1, [0]).await;
    assert_eq!(next_event(&mut subscription).await.event.n, 0);
    assert_eq!(redis_stats(&bps[1]).refills_given_up, 0);

    // Publishing stays allowed; reading a stream's state (every history read) does not.
    assert_eq!(
        fleet.server.cmd(&["ACL", "SETUSER", "default", "-xinfo"]),
        "OK"
    );
    assert_eq!(fleet.server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    publish_all(&bps[0], 1, [1]).await;
    assert!(
        matches!(
            next_item(&mut subscription).await,
            Err(SubscriptionError::Gap(_))
        ),
        "no gap reported"
    );
    (bps, subscription)
}

/// When history cannot be read after a reconnect (here an ACL forbids the read), subscribers
/// get a gap at once and go on with live events: never a silent, endless wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_history_read_after_a_reconnect_is_a_gap_then_live_events() {
    let fleet = OnRedis::start();
    let (bps, mut subscription) = a_refill_that_cannot_read_history(&fleet).await;
    let a = &bps[0];
    // Live events resume once the channel is subscribed again (a few tries cover the backoff).
    for n in 2..50 {
        publish_all(a, 1, [n]).await;
        match tokio::time::timeout(Duration::from_millis(200), subscription.next()).await {
            Ok(Some(Ok(received))) => {
                assert!(received.event.n >= 1);
                return;
            }
            Ok(other) => panic!("{other:?}"),
            Err(_) => {}
        }
    }
    panic!("no live event after the gap");
}

/// Killing the subscriber's pub/sub connection while another instance keeps publishing loses
/// nothing: the gap is refilled from history, every event arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_of_the_subscriber_loses_nothing() {
    const ROOMS: u32 = 4;
    const COUNT: u64 = 300;
    let fleet = OnRedis::start();
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (bps[0].clone(), bps[1].clone());
    let mut subscriptions = Vec::new();
    for room in 0..ROOMS {
        subscriptions.push(Tick::stream(&b, &room).await.unwrap());
    }
    let publisher = tokio::spawn(async move {
        for n in 0..COUNT {
            for room in 0..ROOMS {
                a.publish(&Tick { room, n }).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let first = collect(&mut subscriptions[0], 50).await;
    let killed = fleet.server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, "1", "expected to kill B's pub/sub connection");
    publisher.await.unwrap();
    let rest = collect(&mut subscriptions[0], usize::try_from(COUNT).unwrap() - 50).await;
    assert_sequence(&[first, rest].concat(), 0, 0..COUNT);
    for (room, subscription) in (1..ROOMS).zip(&mut subscriptions[1..]) {
        let events = collect(subscription, usize::try_from(COUNT).unwrap()).await;
        assert_sequence(&events, room, 0..COUNT);
    }
    let stats = redis_stats(&b);
    assert!(stats.connected);
    assert!(stats.reconnects >= 1, "{stats:?}");
    assert!(stats.recoveries >= u64::from(ROOMS), "{stats:?}");
}

/// kill -9 and restart of the server: publishes during the outage fail with a typed error,
/// subscriptions come back by themselves, and later publishes are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crash_and_restart() {
    let mut fleet = OnRedis::start();
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut subscription = Tick::stream(b, &1).await.unwrap();
    publish_all(a, 1, 0..10).await;
    assert_sequence(&collect(&mut subscription, 10).await, 1, 0..10);

    fleet.server.kill();
    for n in 10..15 {
        let started = tokio::time::Instant::now();
        let err = a.publish(&Tick { room: 1, n }).await.unwrap_err();
        assert!(err.is_connection_lost(), "{err:?}");
        assert!(started.elapsed() < PATIENCE, "a publish did not fail fast");
    }
    eventually("B noticed the outage", || !redis_stats(b).connected).await;
    let err = Tick::stream(b, &2).await.unwrap_err();
    assert!(err.is_connection_lost(), "{err:?}");

    fleet.server.restart();
    eventually("B resubscribed", || {
        let stats = redis_stats(b);
        stats.connected && stats.subscribed_channels == 1 && stats.recoveries >= 1
    })
    .await;
    // The publisher's connection comes back on its next use.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while a.publish(&Tick { room: 1, n: 100 }).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "publishing never recovered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    publish_all(a, 1, 101..110).await;
    // The server lost its history: B may be told of a gap, then gets everything new.
    let mut events = Vec::new();
    while events.len() < 10 {
        match next_item(&mut subscription).await {
            Ok(event) => events.push(event),
            Err(SubscriptionError::Gap(_)) => assert!(events.is_empty(), "gap after new events"),
            Err(err) => panic!("{err}"),
        }
    }
    assert_sequence(&events, 1, 100..110);
    assert!(redis_stats(b).reconnects >= 1);
}

/// With the default reconnect settings, a subscriber's link is back within a second of a crashed
/// server answering again, however long it was down: a refused connection is retried at a short
/// interval (it costs the server nothing), not after an ever longer backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_long_outage_deliveries_resume_within_a_second_of_the_server_returning() {
    let mut server = RedisServer::start();
    let defaults = || RedisConfig::new(&server.url()).unwrap();
    let a = Backplane::redis(defaults()).await.unwrap();
    let b = Backplane::redis(defaults()).await.unwrap();
    let mut subscription = Tick::stream(&b, &1).await.unwrap();

    server.kill();
    eventually("B noticed the outage", || !redis_stats(&b).connected).await;
    // Long enough for an exponential backoff from 100 ms to reach its 5 s ceiling.
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.restart();
    let back = tokio::time::Instant::now();
    // Publish until a publish succeeds, then read until that very event arrives (events and
    // gaps before it are what the crash left behind), trying again while the link is down.
    let delivered = 'resumed: loop {
        assert!(back.elapsed() < PATIENCE, "deliveries never resumed");
        let Ok(id) = a.publish(&Tick { room: 1, n: 1 }).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
        while let Ok(Some(item)) = tokio::time::timeout_at(deadline, subscription.next()).await {
            if item.is_ok_and(|received| received.id == id) {
                break 'resumed back.elapsed();
            }
        }
    };
    println!("deliveries resumed {delivered:?} after the server answered again");
    assert!(
        delivered < Duration::from_secs(1),
        "deliveries resumed only {delivered:?} after the server returned"
    );
}

/// A server that forgot the publish script (`SCRIPT FLUSH`, or a restart) gets it loaded again
/// by the next publish, which succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reloads_a_flushed_script() {
    let fleet = OnRedis::start();
    let bps = fleet.backplanes(1, Setup::default()).await;
    let bp = &bps[0];
    let mut subscription = Tick::stream(bp, &1).await.unwrap();
    publish_all(bp, 1, 0..2).await;
    assert_eq!(fleet.server.cmd(&["SCRIPT", "FLUSH"]), "OK");
    publish_all(bp, 1, 2..4).await;
    assert_sequence(&collect(&mut subscription, 4).await, 1, 0..4);
}

/// How many times Redis ran `EVALSHA` since its statistics were last reset.
fn evalsha_calls(server: &RedisServer) -> u64 {
    let stats = server.cmd(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// Publishes that arrive while a script call is in flight go together in the next one: 400
/// concurrent publishes take a handful of script calls, not 400, and each caller still gets its
/// own event's id, every event arriving once per channel in id order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_share_script_calls() {
    let fleet = OnRedis::start();
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut rooms = Vec::new();
    for room in 0..4 {
        rooms.push(Tick::stream(b, &room).await.unwrap());
    }
    // The first publish loads the script; count from here.
    let warm = publish_all(a, 9, [0]).await;
    assert_eq!(fleet.server.cmd(&["CONFIG", "RESETSTAT"]), "OK");
    let events: Vec<Tick> = (0..400)
        .map(|n| Tick {
            room: n % 4,
            n: u64::from(n),
        })
        .collect();
    let publishes = events.iter().map(|event| a.publish(event));
    let ids: Vec<EventId> = futures_util::future::join_all(publishes)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let calls = evalsha_calls(&fleet.server);
    assert!(
        calls <= 40,
        "{calls} script calls for 400 concurrent publishes"
    );
    // Ids order events within a channel; across channels (room 9 then rooms 0..4) only their
    // milliseconds do.
    assert!(ids.iter().all(|id| id.millis() >= warm[0].millis()));
    for (room, subscription) in (0..4).zip(&mut rooms) {
        let received = collect(subscription, 100).await;
        assert!(received.windows(2).all(|w| w[0].id < w[1].id));
        for event in &received {
            assert_eq!(event.event.room, room);
            let n = usize::try_from(event.event.n).unwrap();
            assert_eq!(ids[n], event.id, "the id a publisher got is its event's");
        }
    }
}

/// An idle backplane sends a `publish_many` of 100 events in one script call: one round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_many_is_one_script_call() {
    let fleet = OnRedis::start();
    let bps = fleet.backplanes(1, Setup::default()).await;
    let bp = &bps[0];
    publish_all(bp, 0, [0]).await;
    assert_eq!(fleet.server.cmd(&["CONFIG", "RESETSTAT"]), "OK");
    let events: Vec<Tick> = (1..=100).map(|n| Tick { room: 1, n }).collect();
    let results = bp.publish_many(&events).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(evalsha_calls(&fleet.server), 1);
}

/// Makes Redis hold every write command (a script call included) for `ms` milliseconds.
fn hold_writes(server: &RedisServer, ms: u32) {
    assert_eq!(
        server.cmd(&["CLIENT", "PAUSE", &ms.to_string(), "WRITE"]),
        "OK"
    );
}

/// Polls `publish` for a moment, asserting that it is still waiting: sent and held by Redis,
/// or queued behind a call that is.
async fn assert_waiting<F: Future + Unpin>(publish: &mut F) {
    let moment = Duration::from_millis(50);
    assert!(tokio::time::timeout(moment, publish).await.is_err());
}

/// The events of [`held_call_of_two`].
static HELD: [Tick; 2] = [Tick { room: 1, n: 1 }, Tick { room: 1, n: 2 }];

/// Makes Redis hold write commands for 200 ms and publishes events 1 and 2 of room 1 with
/// `publish_many`, one script call: that publish, held in flight.
async fn held_call_of_two(
    server: &RedisServer,
    bp: &Backplane,
) -> impl Future<Output = Vec<Result<EventId, statelesse::BackplaneError>>> + Unpin {
    hold_writes(server, 200);
    let mut held = Box::pin(bp.publish_many(&HELD));
    assert_waiting(&mut held).await;
    futures_util::FutureExt::map(held, Result::unwrap)
}

/// A backplane on `fleet` with a publish linger of `linger`, its script already loaded.
async fn lingering(fleet: &OnRedis, linger: Duration) -> Backplane {
    let config = fleet
        .config(&fleet.next_prefix(), &Setup::default())
        .with_publish_linger(linger);
    let bp = Backplane::redis(config).await.unwrap();
    publish_all(&bp, 1, [0]).await;
    bp
}

/// A caller that stops waiting for its publish mid-call (a timeout, say) strands nothing: the
/// publishes queued behind it still go out, in order, after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_queued_behind_a_dropped_publish_still_go_out_in_order() {
    let fleet = OnRedis::start();
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut subscription = Tick::stream(b, &1).await.unwrap();
    publish_all(a, 1, [0]).await;
    hold_writes(&fleet.server, 1000);
    let mut first = Box::pin(a.publish(&Tick { room: 1, n: 1 }));
    assert_waiting(&mut first).await;
    let later = [Tick { room: 1, n: 2 }, Tick { room: 1, n: 3 }];
    let mut queued = Box::pin(a.publish_many(&later));
    assert_waiting(&mut queued).await;
    drop(first);
    let ids: Vec<EventId> = queued
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(ids[0] < ids[1]);
    // The dropped publish had reached Redis, which ran it first.
    assert_sequence(&collect(&mut subscription, 4).await, 1, 0..4);
}

/// With a publish linger, what queues behind a call of several events (the sign of load) waits
/// for company when that call returns: what arrives within the linger goes out with it, in one
/// script call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_linger_gathers_what_arrives_under_load_into_one_call() {
    let fleet = OnRedis::start();
    let bp = lingering(&fleet, Duration::from_millis(800)).await;
    let mut subscription = Tick::stream(&bp, &1).await.unwrap();
    assert_eq!(fleet.server.cmd(&["CONFIG", "RESETSTAT"]), "OK");
    // Load: Redis holds a call of two events in flight, and a publish queues behind it.
    let first = held_call_of_two(&fleet.server, &bp).await;
    let mut second = Box::pin(bp.publish(&Tick { room: 1, n: 3 }));
    assert_waiting(&mut second).await;
    assert!(first.await.iter().all(Result::is_ok));
    let later = [Tick { room: 1, n: 4 }, Tick { room: 1, n: 5 }];
    let (second, later) = tokio::join!(second, bp.publish_many(&later));
    second.unwrap();
    assert!(later.unwrap().iter().all(Result::is_ok));
    assert_eq!(
        evalsha_calls(&fleet.server),
        2,
        "the held call and one more"
    );
    assert_sequence(&collect(&mut subscription, 5).await, 1, 1..6);
}

/// A linger never holds a lone publish: at low load, each publish goes out at once, and the
/// next one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_linger_never_holds_lone_publishes() {
    let fleet = OnRedis::start();
    let bp = lingering(&fleet, Duration::from_secs(1)).await;
    let lone = async {
        for n in 0..3 {
            bp.publish(&Tick { room: 1, n }).await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_millis(900), lone)
        .await
        .expect("lone publishes wait for no linger");
}

/// A linger ends as soon as as many events are queued as the last call carried (its callers are
/// back), not only when a full call's worth is: a few publishers never wait the whole linger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_linger_ends_when_the_last_calls_callers_are_back() {
    let fleet = OnRedis::start();
    let bp = lingering(&fleet, Duration::from_secs(1)).await;
    let first = held_call_of_two(&fleet.server, &bp).await;
    let mut second = Box::pin(bp.publish(&Tick { room: 1, n: 3 }));
    assert_waiting(&mut second).await;
    assert!(first.await.iter().all(Result::is_ok));
    let back = async {
        let (second, third) = tokio::join!(second, bp.publish(&Tick { room: 1, n: 4 }));
        second.unwrap();
        third.unwrap();
    };
    tokio::time::timeout(Duration::from_millis(900), back)
        .await
        .expect("two queued after a call of two end the linger");
}

/// An event of about `len` bytes of text, to fill a script call by size rather than by count.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "test", key = "room")]
struct Blob {
    room: u32,
    text: String,
}

/// A linger never holds a full call: an event of a full call's worth of bytes (512 KiB) queued
/// behind a call of two goes out as soon as that call returns, though the linger waits for two
/// events and is a second long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_linger_never_holds_a_full_call() {
    let fleet = OnRedis::start();
    let bp = lingering(&fleet, Duration::from_secs(1)).await;
    let first = held_call_of_two(&fleet.server, &bp).await;
    let full = Blob {
        room: 1,
        text: "x".repeat(600 * 1024),
    };
    let mut queued = Box::pin(bp.publish(&full));
    assert_waiting(&mut queued).await;
    assert!(first.await.iter().all(Result::is_ok));
    tokio::time::timeout(Duration::from_millis(900), queued)
        .await
        .expect("a full call waits for no linger")
        .unwrap();
}

/// A linger longer than a second is refused when the backplane is built.
#[tokio::test]
async fn a_publish_linger_over_a_second_is_a_config_error() {
    let config = RedisConfig::new("redis://127.0.0.1:1/")
        .unwrap()
        .with_publish_linger(Duration::from_millis(1001));
    let err = Backplane::redis(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let reason = std::error::Error::source(&err).unwrap().to_string();
    assert!(reason.contains("publish linger"), "{reason}");
}

/// The events one call publishes to one channel are one stream entry and one envelope: the
/// last takes the entry's id, each earlier one that id and how many follow it, so ids still
/// increase in publish order, and another instance receives every event, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_together_to_a_channel_are_one_stream_entry_and_one_envelope() {
    let fleet = OnRedis::start();
    let prefix = fleet.next_prefix();
    let bps = fleet.instances(&prefix, 2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut subscription = Tick::stream(b, &1).await.unwrap();
    let events: Vec<Tick> = (0..5).map(|n| Tick { room: 1, n }).collect();
    let ids: Vec<EventId> = a
        .publish_many(&events)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let entry = ids[4].to_string();
    assert_eq!(ids[0].to_string(), format!("{entry}-4"));
    let key = stream_key(&prefix, 1);
    assert_eq!(fleet.server.cmd(&["XLEN", &key]), "1");
    let received = collect(&mut subscription, 5).await;
    assert_sequence(&received, 1, 0..5);
    let got: Vec<EventId> = received.iter().map(|r| r.id).collect();
    assert_eq!(got, ids);
}

/// A client that stopped inside a stream entry resumes exactly after its last event: the rest of
/// that entry, then what follows, with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_inside_a_stream_entry_gets_exactly_the_events_after_it() {
    let fleet = OnRedis::start();
    let bps = fleet.backplanes(1, Setup::default()).await;
    let bp = &bps[0];
    let events: Vec<Tick> = (0..5).map(|n| Tick { room: 1, n }).collect();
    let ids: Vec<EventId> = bp
        .publish_many(&events)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    publish_all(bp, 1, [5]).await;
    let mut resumed = bp
        .subscribe_after(&Tick::channel(&1), Some(ids[1]))
        .await
        .unwrap();
    let received = collect(&mut resumed, 4).await;
    assert_sequence(&received, 1, 2..6);
    assert_eq!(received[0].id, ids[2]);
}

/// With history off, a client that stopped inside an entry missed the rest of it, which no
/// history holds: its resume is a gap; one that saw the entry's last event resumes without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_off_a_resume_from_inside_an_entry_is_a_gap() {
    let fleet = OnRedis::start();
    let setup = Setup {
        history_len: 0,
        ..Setup::default()
    };
    let bps = fleet.backplanes(1, setup).await;
    let bp = &bps[0];
    let events: Vec<Tick> = (0..3).map(|n| Tick { room: 1, n }).collect();
    let ids: Vec<EventId> = bp
        .publish_many(&events)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let channel = Tick::channel(&1);
    let limits = PageLimits::new(100, 1 << 20);
    let inside = bp
        .transport()
        .history_page(channel.name(), ids[0], limits)
        .await
        .unwrap();
    assert!(!inside.complete && inside.events.is_empty());
    let at_end = bp
        .transport()
        .history_page(channel.name(), ids[2], limits)
        .await
        .unwrap();
    assert!(at_end.complete && at_end.events.is_empty());
}

/// An event whose stream key holds another type fails alone, with a typed error naming its
/// channel; the events before and after it in the same batch are published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_whose_stream_key_is_taken_fails_alone_in_its_batch() {
    let fleet = OnRedis::start();
    let prefix = fleet.next_prefix();
    let bps = fleet.instances(&prefix, 1, Setup::default()).await;
    let bp = &bps[0];
    let mut rooms = [
        Tick::stream(bp, &0).await.unwrap(),
        Tick::stream(bp, &2).await.unwrap(),
    ];
    assert_eq!(
        fleet.server.cmd(&["SET", &stream_key(&prefix, 1), "x"]),
        "OK"
    );
    let events = [0, 1, 2].map(|room| Tick { room, n: 7 });
    let results = bp.publish_many(&events).await.unwrap();
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert_eq!(err.channel(), Some(Tick::channel(&1).name()));
    for (subscription, result) in rooms.iter_mut().zip([&results[0], &results[2]]) {
        let received = next_event(subscription).await;
        assert_eq!(received.id, *result.as_ref().unwrap());
    }
    assert_eq!(fleet.server.cmd(&["GET", &stream_key(&prefix, 1)]), "x");
}

/// When Redis refuses the script call itself (here an ACL forbids `EVALSHA`), every event of the
/// batch fails with the typed error, naming its own channel, and nothing was appended; once the
/// call is allowed again, publishes go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_script_call_fails_every_event_of_its_batch() {
    let fleet = OnRedis::start();
    let prefix = fleet.next_prefix();
    let bps = fleet.instances(&prefix, 1, Setup::default()).await;
    let bp = &bps[0];
    assert_eq!(
        fleet.server.cmd(&["ACL", "SETUSER", "default", "-evalsha"]),
        "OK"
    );
    let events = [0, 1, 2].map(|room| Tick { room, n: 1 });
    let results = bp.publish_many(&events).await.unwrap();
    for (room, result) in (0..3).zip(&results) {
        let err = result.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert_eq!(err.channel(), Some(Tick::channel(&room).name()));
    }
    let keys: Vec<String> = (0..3).map(|room| stream_key(&prefix, room)).collect();
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(String::as_str));
    assert_eq!(fleet.server.cmd(&exists), "0");
    assert_eq!(
        fleet.server.cmd(&["ACL", "SETUSER", "default", "+evalsha"]),
        "OK"
    );
    let results = bp.publish_many(&events).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
}

/// The publish script checks every argument before its first write: a malformed batch, or an
/// invalid TTL or history length, is an error and leaves no trace, even when the events before
/// the malformed part are well formed.
#[tokio::test]
async fn the_publish_script_checks_its_arguments_before_its_first_write() {
    let server = RedisServer::start();
    let script = statelesse::__bench::PUBLISH_SCRIPT;
    let body = statelesse::__bench::publish_batch_body(&[("E", b"{}")]);
    let body = std::str::from_utf8(&body).unwrap();
    let cases: [(&str, &[&str]); 4] = [
        (
            "missing arguments",
            &["1000", "0", "11", "p:{a}", body, "p:{b}"],
        ),
        (
            "bad refresh flags",
            &["1000", "0", "1x", "p:{a}", body, "p:{b}", body],
        ),
        (
            "bad TTL",
            &["1000", "-1", "10", "p:{a}", body, "p:{b}", body],
        ),
        (
            "bad history length",
            &["1e3", "0", "10", "p:{a}", body, "p:{b}", body],
        ),
    ];
    for (what, argv) in cases {
        let mut args = vec!["EVAL", script, "2", "s:{a}", "s:{b}"];
        args.extend_from_slice(argv);
        let reply = server.cmd(&args);
        assert!(
            reply.starts_with("(error) ERR statelesse"),
            "{what}: {reply}"
        );
        assert_eq!(server.cmd(&["EXISTS", "s:{a}", "s:{b}"]), "0", "{what}");
    }
}

fn pttl(server: &RedisServer, key: &str) -> i64 {
    server.cmd(&["PTTL", key]).parse().unwrap()
}

/// A stream's time-to-live is refreshed at most once per half TTL, not on every publish: a
/// publish soon after the last refresh leaves the TTL running down, one after half the TTL
/// refreshes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_ttl_is_refreshed_at_most_once_per_half_ttl() {
    let fleet = OnRedis::start();
    let prefix = fleet.next_prefix();
    let config = fleet
        .config(&prefix, &Setup::default())
        .with_history_ttl(Some(Duration::from_secs(4)));
    let bp = Backplane::redis(config).await.unwrap();
    let key = stream_key(&prefix, 1);
    publish_all(&bp, 1, [0]).await;
    assert!(pttl(&fleet.server, &key) > 3_500);
    tokio::time::sleep(Duration::from_millis(800)).await;
    publish_all(&bp, 1, [1]).await;
    let running_down = pttl(&fleet.server, &key);
    assert!(
        running_down < 3_500,
        "refreshed too soon: {running_down} ms"
    );
    tokio::time::sleep(Duration::from_millis(1_400)).await;
    publish_all(&bp, 1, [2]).await;
    let refreshed = pttl(&fleet.server, &key);
    assert!(
        refreshed > 3_000,
        "not refreshed after half the TTL: {refreshed} ms"
    );
}

/// A stream lost between two refreshes (deleted, flushed, or lost by a restart) is created
/// again by the next publish with its time-to-live: a stream never lives on without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_lost_between_refreshes_is_created_again_with_its_ttl() {
    for history_len in [1000, 0] {
        let fleet = OnRedis::start();
        let prefix = fleet.next_prefix();
        let setup = Setup {
            history_len,
            ..Setup::default()
        };
        let bp = Backplane::redis(fleet.config(&prefix, &setup))
            .await
            .unwrap();
        let key = stream_key(&prefix, 1);
        publish_all(&bp, 1, [0]).await;
        assert_eq!(fleet.server.cmd(&["DEL", &key]), "1");
        publish_all(&bp, 1, [1]).await;
        let ttl = pttl(&fleet.server, &key);
        assert!(
            ttl > 3_500_000 && ttl <= 3_600_000,
            "history {history_len}: the recreated stream's TTL is {ttl}"
        );
    }
}

/// A stream published on more often than every half TTL never expires: with a 1 s TTL and a
/// publish every 200 ms for 2.4 s, history still holds every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_published_on_more_often_than_every_half_ttl_never_expires() {
    let fleet = OnRedis::start();
    let prefix = fleet.next_prefix();
    let config = fleet
        .config(&prefix, &Setup::default())
        .with_history_ttl(Some(Duration::from_secs(1)));
    let bp = Backplane::redis(config).await.unwrap();
    let first = publish_all(&bp, 1, [0]).await[0];
    for n in 1..=12 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        publish_all(&bp, 1, [n]).await;
    }
    let replay = bp.history(&Tick::channel(&1), Some(first)).await.unwrap();
    assert!(replay.complete);
    assert_sequence(&replay.events, 1, 1..=12);
}

/// A foreign client's garbage on a project channel, or in its stream, is counted and skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_garbage_is_counted_and_skipped() {
    let fleet = OnRedis::start();
    let prefix = fleet.next_prefix();
    let bps = fleet.instances(&prefix, 2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut subscription = Tick::stream(b, &1).await.unwrap();
    let name = pubsub_name(&prefix, 1);
    for garbage in [
        "hello",
        "statelesse/3\nnot-an-id\n1\nTick\n2\n{}",
        "statelesse/3\n1-1\n1\nbad\rname\n2\n{}",
        "statelesse/2\n1-1\nTick\n{\"room\":1,\"n\":0}",
        "statelesse/4\n1-1\n1\nTick\n2\n{}",
    ] {
        assert_eq!(fleet.server.cmd(&["PUBLISH", &name, garbage]), "1");
    }
    let id = publish_all(a, 1, [1]).await[0];
    assert_eq!(next_event(&mut subscription).await.event.n, 1);
    assert_eq!(redis_stats(b).malformed_messages, 5);

    // A foreign stream entry is skipped on resume, and counted too.
    let key = stream_key(&prefix, 1);
    let foreign = fleet.server.cmd(&["XADD", &key, "*", "x", "y"]);
    assert!(!foreign.starts_with("(error)"), "{foreign}");
    publish_all(a, 1, [2]).await;
    let mut resumed = a
        .subscribe_after(&Tick::channel(&1), Some(id))
        .await
        .unwrap();
    assert_eq!(next_event(&mut resumed).await.event.n, 2);
    assert_eq!(redis_stats(a).malformed_messages, 1);
    assert_eq!(next_event(&mut subscription).await.event.n, 2);
}

/// An envelope whose id is far ahead of the clock was not made by a publish (Redis makes ids from
/// its own clock): it is counted as malformed and dropped, and never becomes the channel's
/// position, so the next real event still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_far_future_id_is_dropped_and_does_not_mute_the_channel() {
    let fleet = OnRedis::start();
    let prefix = fleet.next_prefix();
    let bps = fleet.instances(&prefix, 1, Setup::default()).await;
    let bp = &bps[0];
    let mut subscription = Tick::stream(bp, &1).await.unwrap();
    let data = r#"{"room":1,"n":666}"#;
    let forged = format!(
        "statelesse/3\n18446744073709551615-0\n1\nTick\n{}\n{data}",
        data.len()
    );
    let name = pubsub_name(&prefix, 1);
    assert_eq!(fleet.server.cmd(&["PUBLISH", &name, &forged]), "1");
    publish_all(bp, 1, [1]).await;
    assert_eq!(next_event(&mut subscription).await.event.n, 1);
    assert_eq!(redis_stats(bp).malformed_messages, 1);
}

/// With replica acknowledgements asked for, a publish no replica received in time fails with a
/// timeout (its fate unknown), though it was published; one a replica received succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_without_the_replica_acks_asked_for_fails_as_a_timeout() {
    let fleet = OnRedis::start();
    let config = |prefix: &str| {
        fleet
            .config(prefix, &Setup::default())
            .with_command_timeout(Duration::from_secs(1))
            .with_replica_acks(1)
    };
    let bp = Backplane::redis(config("alone")).await.unwrap();
    let mut subscription = Tick::stream(&bp, &1).await.unwrap();
    let err = bp.publish(&Tick { room: 1, n: 0 }).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(next_event(&mut subscription).await.event.n, 0);

    let replica =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &fleet.server.port().to_string()]);
    eventually("the replica is in sync", || {
        replica
            .cmd(&["INFO", "replication"])
            .contains("master_link_status:up")
    })
    .await;
    let bp = Backplane::redis(config("replicated")).await.unwrap();
    // After a full sync the master streams writes (and `WAIT`'s acknowledgement requests) to the
    // replica only once the replica has acknowledged an offset, which it does once a second: the
    // first publishes may still time out, one soon succeeds.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut n = 1;
    while let Err(err) = bp.publish(&Tick { room: 1, n }).await {
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no publish acknowledged by the replica in sync: {err}"
        );
        n += 1;
    }
}

/// With history off, ids still increase along a channel across instances, and resume reports
/// a gap unless nothing was published since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_off_keeps_ids_increasing() {
    let fleet = OnRedis::start();
    let setup = Setup {
        history_len: 0,
        ..Setup::default()
    };
    let bps = fleet.backplanes(2, setup).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut subscription = Tick::stream(b, &1).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..50 {
        let bp = if n % 2 == 0 { a } else { b };
        ids.push(bp.publish(&Tick { room: 1, n }).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids do not increase");
    assert_sequence(&collect(&mut subscription, 50).await, 1, 0..50);

    let channel = Tick::channel(&1);
    let history = a
        .transport()
        .history_page(channel.name(), ids[49], PageLimits::new(100, 1 << 20))
        .await
        .unwrap();
    assert!(history.complete && history.events.is_empty());
    let history = a
        .transport()
        .history_page(channel.name(), ids[10], PageLimits::new(100, 1 << 20))
        .await
        .unwrap();
    assert!(!history.complete && history.events.is_empty());
}

/// An unreachable server is a typed error at construction, as is an invalid prefix.
#[tokio::test]
async fn construction_errors_are_typed() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = RedisConfig::new(&format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .with_connect_timeout(Duration::from_millis(500));
    let err = Backplane::redis(config).await.unwrap_err();
    assert!(err.is_connection_lost(), "{err:?}");

    let config = RedisConfig::new("redis://127.0.0.1:1/")
        .unwrap()
        .with_prefix("a{b}");
    let err = Backplane::redis(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}

/// A duration that would overflow a clock (the TTL in Redis, a backoff in the process) is a
/// configuration error at construction, before anything is published.
#[tokio::test]
async fn durations_that_overflow_a_clock_are_refused_at_construction() {
    let server = RedisServer::start();
    let base = || RedisConfig::new(&server.url()).unwrap();
    for config in [
        base().with_history_ttl(Some(Duration::MAX)),
        base().with_reconnect_backoff(Duration::from_millis(1), Duration::MAX),
        base().with_health_check_interval(Duration::MAX),
        base().with_command_timeout(Duration::MAX),
    ] {
        let err = Backplane::redis(config).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    }
    assert_eq!(server.cmd(&["KEYS", "*"]), "");
}

/// `rediss://` with a private CA, through an existing client: events flow over TLS between two
/// instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_through_an_existing_client() {
    let dir = std::env::temp_dir().join(format!("statelesse-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl {args:?} failed");
    };
    let subject_alt_name = "subjectAltName=DNS:localhost,IP:127.0.0.1";
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("ext.cnf"), subject_alt_name).unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.pem",
    ]);
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let tls_port = statelesse_test_redis::free_port().to_string();
    let (cert, key, ca) = (path("server.pem"), path("server.key"), path("ca.pem"));
    let server = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ]);
    let client = || {
        redis::Client::build_with_tls(
            format!("rediss://localhost:{tls_port}/"),
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(&ca).unwrap()),
            },
        )
        .unwrap()
    };
    let a = Backplane::redis_from_client(client()).await.unwrap();
    let b = Backplane::redis_from_client(client()).await.unwrap();
    let mut subscription = Tick::stream(&b, &1).await.unwrap();
    publish_all(&a, 1, 0..3).await;
    assert_sequence(&collect(&mut subscription, 3).await, 1, 0..3);

    // Without the private CA, the server's certificate is not trusted: a typed error.
    let untrusted = RedisConfig::new(&format!("rediss://localhost:{tls_port}/")).unwrap();
    assert!(Backplane::redis(untrusted).await.is_err());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_reaches_every_channel_once() {
    suite::publish_to_reaches_every_channel_once(&OnRedis::start()).await;
}

/// The given-up refills of the failing-read scenario above are counted apart from the
/// recoveries that started them: a recovery is not a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refill_given_up_after_a_reconnect_is_counted() {
    let fleet = OnRedis::start();
    let (bps, _subscription) = a_refill_that_cannot_read_history(&fleet).await;
    let stats = redis_stats(&bps[1]);
    assert_eq!(stats.recoveries, 1, "{stats:?}");
    assert_eq!(stats.refills_given_up, 1, "{stats:?}");
}

/// The default (eager) constructor reports a server that is down at once, as unreachable (not
/// as a timeout), rather than returning a backplane that cannot work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_construction_fails_fast_while_redis_is_down() {
    let mut server = RedisServer::start();
    server.kill();
    let config = RedisConfig::new(&server.url()).unwrap();
    let connect_timeout = Duration::from_secs(2); // the default
    let started = tokio::time::Instant::now();
    let err = Backplane::redis(config).await.unwrap_err();
    println!("construction failed after {:?}: {err}", started.elapsed());
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(
        started.elapsed() < connect_timeout,
        "waited {:?} for a refused connection",
        started.elapsed()
    );
}

/// A lazily built backplane, while Redis is down: built at once, publishes fail at once with
/// `NotConnected`, diagnostics say not connected; once Redis is up, a stream opened before it
/// came up receives what is published after, and diagnostics say connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_backplane_starts_while_redis_is_down_and_works_once_it_is_up() {
    let mut server = RedisServer::start();
    server.kill();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .with_connect_timeout(PATIENCE);
    let bp = Backplane::redis_lazy(config).unwrap();

    let started = tokio::time::Instant::now();
    let err = bp.publish(&Tick { room: 1, n: 0 }).await.unwrap_err();
    println!("a publish failed {:?} after it was made", started.elapsed());
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err:?}");
    assert!(err.is_connection_lost());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a publish waited {:?} instead of failing at once",
        started.elapsed()
    );
    let stats = redis_stats(&bp);
    assert!(!stats.connected, "{stats:?}");

    let opening = tokio::spawn({
        let bp = bp.clone();
        async move { Tick::stream(&bp, &1).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!opening.is_finished(), "the stream did not wait for Redis");
    server.restart();
    let back = tokio::time::Instant::now();
    let mut subscription = opening.await.unwrap().unwrap();
    println!(
        "the stream opened {:?} after the server answered",
        back.elapsed()
    );
    publish_all(&bp, 1, [7]).await;
    assert_eq!(next_event(&mut subscription).await.event.n, 7);
    let stats = redis_stats(&bp);
    assert!(stats.connected, "{stats:?}");
    assert_eq!(stats.subscribed_channels, 1, "{stats:?}");
    assert_eq!(
        stats.reconnects, 0,
        "the first connection is not a reconnect"
    );
}

/// Another instance sees what a lazily built one publishes once connected, through the scripts
/// it loaded when it connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_backplane_loads_its_scripts_when_it_connects() {
    let server = RedisServer::start();
    let lazy = Backplane::redis_lazy(RedisConfig::new(&server.url()).unwrap()).unwrap();
    eventually("the lazy backplane connected", || {
        redis_stats(&lazy).connected
    })
    .await;
    let scripts = server.cmd(&["INFO", "memory"]);
    let count: u64 = scripts
        .lines()
        .find_map(|line| line.strip_prefix("number_of_cached_scripts:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(count, 2, "{scripts}");
    let eager = Backplane::redis(RedisConfig::new(&server.url()).unwrap())
        .await
        .unwrap();
    let mut subscription = Tick::stream(&eager, &1).await.unwrap();
    publish_all(&lazy, 1, 0..3).await;
    assert_sequence(&collect(&mut subscription, 3).await, 1, 0..3);
}

/// A stream asked for before a lazily built backplane ever connected waits at most the connect
/// timeout, then fails with `NotConnected`, which an SSE route answers with 503 and
/// `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_first_connection_streams_fail_after_the_connect_timeout_with_503() {
    let mut server = RedisServer::start();
    server.kill();
    let connect_timeout = Duration::from_millis(300);
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .with_connect_timeout(connect_timeout);
    let bp = Backplane::redis_lazy(config).unwrap();

    let started = tokio::time::Instant::now();
    let err = Tick::stream(&bp, &1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected, "{err:?}");
    assert!(started.elapsed() >= connect_timeout);

    let app = statelesse_tests::app::spawn_app(Tick::sse_route().with_state(bp)).await;
    let path = <Tick as SseEvent>::PATH.replace("{room}", "1");
    let response = statelesse_tests::sse::SseClient::request(&app.url(&path))
        .send()
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

/// Building a lazy backplane needs a Tokio runtime for its background task: without one it is a
/// configuration error, not a panic.
#[test]
fn a_lazy_backplane_outside_a_runtime_is_a_config_error() {
    let config = RedisConfig::new("redis://127.0.0.1:1/").unwrap();
    let err = Backplane::redis_lazy(config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err:?}");
}

/// An event name that would break the framing of the events sharing its stream entry (a line
/// break) is refused before anything is sent, and the events published with it go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_name_with_a_line_break_is_refused_before_it_is_sent() {
    let fleet = OnRedis::start();
    let bps = fleet.backplanes(1, Setup::default()).await;
    let transport = bps[0].transport();
    let events = ["Tick", "Ti\nck", "Tick"].map(|name| {
        statelesse::backplane::transport::OutgoingEvent::new(
            "c",
            name.into(),
            bytes::Bytes::from_static(b"{}"),
        )
    });
    let results = transport.publish_many(events.to_vec()).await;
    assert_eq!(results[1].as_ref().unwrap_err().kind(), ErrorKind::Encode);
    let ids = [&results[0], &results[2]].map(|r| *r.as_ref().unwrap());
    assert!(ids[0] < ids[1]);
}
