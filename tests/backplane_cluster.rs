//! The Redis transport on a Redis Cluster: the shared behaviour suite (two backplanes on one
//! cluster are two instances), then what only a cluster has: sharded pub/sub per slot owner,
//! slot migration and master failover under load. Every test starts its own cluster (three
//! masters, one replica each).
//!
//! The fault tests publish for 3 s after their fault by default; `STATELESSE_SOAK=long` makes
//! that 2 minutes. Their figures (recovery time) are printed:
//! `cargo test -p statelesse-tests --test backplane_cluster -- --nocapture`.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use statelesse::prelude::*;
use statelesse::{ErrorKind, RedisConfig, SubscriptionError};
use statelesse_test_redis::RedisCluster;
use statelesse_tests::suite::{
    self, Fleet, PATIENCE, Setup, Tick, assert_sequence, collect, next_event, publish_all,
};
use tokio::time::Instant;

/// How long the fault tests publish: `STATELESSE_SOAK=long` for minutes, else seconds.
fn load_duration() -> Duration {
    match std::env::var("STATELESSE_SOAK").as_deref() {
        Err(_) | Ok("" | "short") => Duration::from_secs(3),
        Ok("long") => Duration::from_mins(2),
        Ok(other) => panic!("STATELESSE_SOAK={other:?}: expected `long` or `short`"),
    }
}

/// One private cluster; each call of [`Fleet::backplanes`] gets a prefix of its own.
struct OnCluster {
    cluster: RedisCluster,
    prefixes: AtomicU32,
}

impl OnCluster {
    fn start() -> Self {
        Self {
            cluster: RedisCluster::start(),
            prefixes: AtomicU32::new(0),
        }
    }

    fn config(&self, prefix: &str, setup: &Setup) -> RedisConfig {
        let urls = self.cluster.urls();
        RedisConfig::cluster(urls.iter().map(String::as_str))
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
            bps.push(
                Backplane::redis_cluster(self.config(prefix, &setup))
                    .await
                    .unwrap(),
            );
        }
        bps
    }
}

impl Fleet for OnCluster {
    async fn backplanes(&self, n: usize, setup: Setup) -> Vec<Backplane> {
        let prefix = format!("t{}", self.prefixes.fetch_add(1, Ordering::Relaxed));
        self.instances(&prefix, n, setup).await
    }
}

/// The sharded pub/sub channel of room `room`'s `Tick`s under `prefix`, as documented.
fn pubsub_name(prefix: &str, room: u32) -> String {
    format!("{prefix}:{{{}}}", Tick::channel(&room).name())
}

/// The hash slot of room `room`'s channel, as the cluster computes it.
fn slot_of(cluster: &RedisCluster, prefix: &str, room: u32) -> u16 {
    cluster.nodes()[0]
        .cmd(&["CLUSTER", "KEYSLOT", &pubsub_name(prefix, room)])
        .parse()
        .unwrap()
}

/// `PUBSUB SHARDNUMSUB` of `name` on node `index`.
fn shard_numsub(cluster: &RedisCluster, index: usize, name: &str) -> u64 {
    let reply = cluster.nodes()[index].cmd(&["PUBSUB", "SHARDNUMSUB", name]);
    reply.lines().last().unwrap().parse().unwrap()
}

// The shared suite.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_the_members_of_every_instance() {
    suite::presence_lists_the_members_of_every_instance(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_a_member_with_many_connections_once() {
    suite::presence_counts_a_member_with_many_connections_once(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_keeps_a_member_until_its_last_connection_closes() {
    suite::presence_keeps_a_member_until_its_last_connection_closes(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_join_and_leave_reach_every_instance() {
    suite::presence_join_and_leave_reach_every_instance(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_in_order_exactly_once() {
    suite::delivers_in_order_exactly_once(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolates_channels() {
    suite::isolates_channels(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_after_id() {
    suite::resumes_after_id(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_gap_when_history_trimmed() {
    suite::reports_gap_when_history_trimmed(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_id_from_the_future_is_a_gap_then_live_events() {
    suite::a_resume_id_from_the_future_is_a_gap_then_live_events(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_history_in_pages() {
    suite::replays_history_in_pages(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_lagging_before_its_first_event_is_refilled() {
    suite::a_subscriber_lagging_before_its_first_event_is_refilled(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_in_diagnostics() {
    suite::counts_in_diagnostics(&OnCluster::start(), "redis-cluster").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribes_on_drop() {
    suite::unsubscribes_on_drop(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes() {
    suite::shutdown_closes(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_lags_alone() {
    suite::slow_subscriber_lags_alone(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_many_delivers_in_order_with_each_events_id() {
    suite::publish_many_delivers_in_order_with_each_events_id(&OnCluster::start()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_reaches_every_channel_once() {
    suite::publish_to_reaches_every_channel_once(&OnCluster::start()).await;
}

// Cluster only.

/// A channel is subscribed (`SSUBSCRIBE`) only on the master that owns its slot, by each
/// instance with local interest, and its events cross instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_is_subscribed_only_on_the_shard_that_owns_its_slot() {
    let fleet = OnCluster::start();
    let bps = fleet.instances("t", 2, Setup::default()).await;
    let cluster = &fleet.cluster;
    let mut kept = Vec::new();
    for room in 0..6 {
        let name = pubsub_name("t", room);
        let owner = cluster.master_of_slot(slot_of(cluster, "t", room));
        let mut a = Tick::stream(&bps[0], &room).await.unwrap();
        let mut b = Tick::stream(&bps[1], &room).await.unwrap();
        for index in 0..cluster.nodes().len() {
            let expected = if index == owner { 2 } else { 0 };
            assert_eq!(
                shard_numsub(cluster, index, &name),
                expected,
                "node {index}"
            );
        }
        bps[1].publish(&Tick { room, n: 7 }).await.unwrap();
        assert_eq!(next_event(&mut a).await.event.n, 7);
        assert_eq!(next_event(&mut b).await.event.n, 7);
        kept.push((a, b));
    }
    let shards = bps[0].diagnostics().redis.unwrap().shards;
    assert_eq!(shards.len(), 3);
    assert!(shards.iter().all(|shard| shard.connected));
    assert_eq!(
        shards.iter().map(|s| s.subscribed_channels).sum::<usize>(),
        6
    );
}

/// Classic `PUBLISH` is never used: a plain `SUBSCRIBE` on the channel's name, on its owner,
/// receives nothing, so the cluster does not broadcast our messages to every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_sharded_publishes_not_broadcasts() {
    let fleet = OnCluster::start();
    let bps = fleet.instances("t", 1, Setup::default()).await;
    let cluster = &fleet.cluster;
    let owner = cluster.master_of_slot(slot_of(cluster, "t", 1));
    let mut sub = Tick::stream(&bps[0], &1).await.unwrap();
    bps[0].publish(&Tick { room: 1, n: 0 }).await.unwrap();
    assert_eq!(next_event(&mut sub).await.event.n, 0);
    // `PUBLISH` would have counted one receiver on the owner: `cluster-enabled` still answers
    // PUBSUB NUMSUB for classic channels, and nobody subscribed classically.
    let reply = cluster.nodes()[owner].cmd(&["PUBSUB", "NUMSUB", &pubsub_name("t", 1)]);
    assert_eq!(reply.lines().last().unwrap(), "0");
    let stats = cluster.nodes()[owner].cmd(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_spublish"), "{stats}");
    assert!(!stats.contains("cmdstat_publish:"), "{stats}");
}

/// When a node drops an instance's pub/sub connection, the instance opens it again, subscribes
/// its channels again, and its subscribers refill what was published meanwhile from history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shards_lost_connection_comes_back_and_loses_nothing() {
    let fleet = OnCluster::start();
    let bps = fleet.instances("t", 2, Setup::default()).await;
    let cluster = &fleet.cluster;
    let owner = cluster.master_of_slot(slot_of(cluster, "t", 2));
    let mut subscription = Tick::stream(&bps[1], &2).await.unwrap();
    publish_all(&bps[0], 2, [0]).await;
    assert_eq!(next_event(&mut subscription).await.event.n, 0);
    let killed = cluster.nodes()[owner].cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, "1");
    publish_all(&bps[0], 2, 1..20).await;
    assert_sequence(&collect(&mut subscription, 19).await, 2, 1..20);
    let stats = bps[1].diagnostics().redis.unwrap();
    let shard = stats
        .shards
        .iter()
        .find(|shard| {
            shard
                .address
                .ends_with(&format!(":{}", cluster.nodes()[owner].port()))
        })
        .unwrap();
    assert_eq!((shard.reconnects, shard.recoveries), (1, 1), "{shard:?}");
}

/// What a load run saw: per subscriber, the `n`s received, in order.
struct Load {
    sent: Vec<u64>,
    failed: u64,
    /// The longest run of failed publishes, first failure to next success.
    outage: Duration,
    /// The longest time a subscriber received nothing: how long its subscription was away.
    silence: Duration,
    /// Gaps the subscribers were told of.
    gaps: usize,
    received: Vec<Vec<u64>>,
}

/// Publishes room `room`'s `Tick`s one after the other on `publisher` while `fault` runs (after
/// a short warm-up) and for [`load_duration`]; `subscribers` read them all along. Returns what
/// was sent, how many publishes failed, how long publishing failed in a row at most, and what
/// each subscriber received once it caught up with the last successful publish.
async fn under_load<F: std::future::Future<Output = ()>>(
    publisher: &Backplane,
    subscribers: &[Backplane],
    room: u32,
    fault: impl FnOnce() -> F,
) -> Load {
    let (last_tx, last_rx) = tokio::sync::watch::channel(None::<u64>);
    let mut readers = Vec::new();
    for bp in subscribers {
        let mut stream = Tick::stream(bp, &room).await.unwrap();
        let mut last = last_rx.clone();
        readers.push(tokio::spawn(async move {
            let (mut got, mut gaps): (Vec<u64>, usize) = (Vec::new(), 0);
            let (mut previous, mut silence) = (None::<Instant>, Duration::ZERO);
            loop {
                if let Some(last) = *last.borrow()
                    && got.last() == Some(&last)
                {
                    return (got, gaps, silence);
                }
                tokio::select! {
                    item = tokio::time::timeout(PATIENCE, stream.next()) => {
                        let item = item.unwrap_or_else(|_| panic!("stalled after {:?}", got.last()));
                        match item.unwrap() {
                            Ok(received) => {
                                got.push(received.event.n);
                                let now = Instant::now();
                                if let Some(previous) = previous {
                                    silence = silence.max(now - previous);
                                }
                                previous = Some(now);
                            }
                            Err(SubscriptionError::Gap(_)) => gaps += 1,
                            Err(err) => panic!("{err} after {:?}", got.last()),
                        }
                    }
                    _ = last.changed() => {}
                }
            }
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let bp = publisher.clone();
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let (mut sent, mut failed, mut n) = (Vec::new(), 0, 0);
            let (mut failing_since, mut longest) = (None, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                match bp.publish(&Tick { room, n }).await {
                    Ok(_) => {
                        sent.push(n);
                        if let Some(since) = failing_since.take() {
                            longest = longest.max(Instant::now() - since);
                        }
                    }
                    Err(err) => {
                        assert!(
                            matches!(
                                err.kind(),
                                ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Protocol
                            ),
                            "{err}"
                        );
                        failed += 1;
                        failing_since.get_or_insert_with(Instant::now);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                n += 1;
            }
            (sent, failed, longest)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    fault().await;
    tokio::time::sleep(load_duration()).await;
    stop.store(true, Ordering::Relaxed);
    let (sent, failed, outage) = sender.await.unwrap();
    last_tx.send_replace(Some(*sent.last().unwrap()));
    let (mut received, mut gaps, mut silence) = (Vec::new(), 0, Duration::ZERO);
    for reader in readers {
        let (got, gapped, quiet) = reader.await.unwrap();
        received.push(got);
        gaps += gapped;
        silence = silence.max(quiet);
    }
    Load {
        sent,
        failed,
        outage,
        silence,
        gaps,
        received,
    }
}

/// Every successful publish reached every subscriber exactly once, in order; a failed one
/// reached none or all (its outcome was unknown, and it was never retried).
fn assert_every_publish_delivered_once(load: &Load) {
    for got in &load.received {
        let mut seen = HashMap::new();
        for n in got {
            *seen.entry(*n).or_insert(0) += 1;
        }
        assert!(seen.values().all(|&times| times == 1), "a duplicate");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order");
        let missing: Vec<_> = load.sent.iter().filter(|n| !seen.contains_key(n)).collect();
        assert!(
            missing.is_empty(),
            "lost {} events: {missing:?}",
            missing.len()
        );
    }
}

/// Moving a busy channel's slot to another master (`CLUSTER SETSLOT … MIGRATING/IMPORTING`,
/// `MIGRATE`, `SETSLOT … NODE`) while it is published on loses nothing and duplicates
/// nothing: its subscriptions follow it to the new owner and refill the gap from its stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_a_busy_channels_slot_loses_and_duplicates_nothing() {
    let fleet = OnCluster::start();
    let bps = fleet.instances("t", 2, Setup::default()).await;
    let cluster = &fleet.cluster;
    let slot = slot_of(cluster, "t", 3);
    let from = cluster.master_of_slot(slot);
    let to = cluster
        .masters()
        .into_iter()
        .map(|(index, _)| index)
        .find(|&index| index != from)
        .unwrap();
    let load = under_load(&bps[0], &bps, 3, || async {
        cluster.move_slot(slot, to);
    })
    .await;
    assert_eq!(cluster.master_of_slot(slot), to);
    assert_every_publish_delivered_once(&load);
    assert_eq!(load.gaps, 0);
    let stats = bps[1].diagnostics().redis.unwrap();
    assert!(stats.migrations >= 1, "{stats:?}");
    println!(
        "reshard under load: {} publishes delivered, {} failed (for {:?}), {} migrations seen; \
         subscribers received nothing for at most {:?}",
        load.sent.len(),
        load.failed,
        load.outage,
        stats.migrations,
        load.silence
    );
}

/// Killing (SIGKILL) the master that owns a busy channel's slot: its replica is promoted, the
/// subscriptions come back on it by themselves, and every publish either failed or was
/// delivered (publishes wait for their replica: see `RedisConfig::with_replica_acks`). An event
/// delivered live but lost with the master (its publish failed) puts subscribers ahead of the
/// promoted replica's stream, which they are told as a gap. Prints how long publishes failed
/// (the recovery time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_fails_over_and_subscriptions_come_back_by_themselves() {
    let mut fleet = OnCluster::start();
    let mut bps = Vec::new();
    for _ in 0..2 {
        let config = fleet.config("t", &Setup::default()).with_replica_acks(1);
        bps.push(Backplane::redis_cluster(config).await.unwrap());
    }
    let slot = slot_of(&fleet.cluster, "t", 5);
    let victim = fleet.cluster.master_of_slot(slot);
    let cluster = &mut fleet.cluster;
    let mut promoted_after = Duration::ZERO;
    let promoted = &mut promoted_after;
    let load = under_load(&bps[0], &bps, 5, || async move {
        tokio::task::block_in_place(|| {
            let killed = Instant::now();
            cluster.kill(victim);
            cluster.wait_until_healthy();
            *promoted = killed.elapsed();
            // Back as the promoted replica's own replica, so publishes have one to wait for.
            cluster.restart(victim);
            cluster.wait_until_healthy();
        });
    })
    .await;
    assert_ne!(fleet.cluster.master_of_slot(slot), victim);
    assert_every_publish_delivered_once(&load);
    let stats = bps[1].diagnostics().redis.unwrap();
    assert!(stats.recoveries >= 1, "{stats:?}");
    println!(
        "failover under load: replica promoted {promoted_after:?} after the kill; subscribers \
         received nothing for at most {:?}; publishes failed for {:?} (until the promoted \
         master had a replica in sync again); {} publishes delivered, {} failed, {} gaps told",
        load.silence,
        load.outage,
        load.sent.len(),
        load.failed,
        load.gaps,
    );
}
