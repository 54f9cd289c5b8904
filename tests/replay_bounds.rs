//! Bounded replay on Redis: resumes of large histories cost a page at a time, share their reads,
//! and never starve publishes; a refill after a reconnect is one paged read per channel, and so
//! are the position reads of streams opened together.
//!
//! The sizes are the defaults a new user gets (history 1,000, payloads up to 1 MiB); the storm
//! sizes can be raised for a long run: `STORM_CLIENTS=1000 cargo test -p statelesse-tests --test
//! replay_bounds --release -- --nocapture`.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use statelesse::RedisConfig;
use statelesse::backplane::replay::ReplayConfig;
use statelesse::prelude::*;
use statelesse_test_redis::RedisServer;
use statelesse_tests::app::spawn_app;
use statelesse_tests::sse::{RawClient, SseClient};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "doc", key = "doc")]
struct Edit {
    doc: u32,
    seq: u64,
    body: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "chat", key = "room")]
struct Said {
    room: u32,
    seq: u64,
}

fn edit(seq: u64, size: usize) -> Edit {
    Edit {
        doc: 1,
        seq,
        body: "x".repeat(size),
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A field of `INFO memory`, in bytes.
fn info_bytes(server: &RedisServer, field: &str) -> u64 {
    let info = server.cmd(&["INFO", "memory"]);
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {info}"))
}

/// How many times Redis ran `command` (from `INFO commandstats`; `xinfo|stream` for subcommands).
fn calls(server: &RedisServer, command: &str) -> u64 {
    let stats = server.cmd(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

async fn redis_backplane(server: &RedisServer) -> Backplane {
    Backplane::redis(RedisConfig::new(&server.url()).unwrap())
        .await
        .unwrap()
}

/// Publishes `count` edits of `size` bytes on doc 1, 16 at a time; returns their `seq`s in the
/// order the channel holds them (the order of their ids, which concurrent publishes decide).
async fn fill_history(bp: &Backplane, count: u64, size: usize) -> Vec<u64> {
    let body = "x".repeat(size);
    let mut published = Vec::new();
    let mut next = 0;
    while next < count {
        let batch = (next..count.min(next + 16)).map(|seq| {
            let event = Edit {
                doc: 1,
                seq,
                body: body.clone(),
            };
            async move { (Edit::publish(bp, event).await.unwrap(), seq) }
        });
        published.extend(futures_util::future::join_all(batch).await);
        next += 16;
    }
    published.sort_unstable();
    published.into_iter().map(|(_, seq)| seq).collect()
}

/// Publishes a small event every 20 ms for `window`; returns (succeeded, failed).
async fn steady_publisher(bp: Backplane, window: Duration) -> (u64, u64) {
    let (mut ok, mut failed) = (0, 0);
    let deadline = Instant::now() + window;
    let mut seq = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while Instant::now() < deadline {
        tick.tick().await;
        seq += 1;
        match Said::publish(&bp, Said { room: 7, seq }).await {
            Ok(_) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_storm_of_stalled_clients_keeps_redis_and_the_instance_bounded() {
    let clients = env_or("STORM_CLIENTS", 100);
    let server = RedisServer::start();
    let bp = redis_backplane(&server).await;
    let _ = fill_history(&bp, 1000, 100_000).await;
    let app = spawn_app(
        Router::new()
            .merge(Edit::sse_route())
            .with_state(bp.clone()),
    )
    .await;
    let window = Duration::from_secs(2);

    let calm = steady_publisher(bp.clone(), window).await;
    // Redis 7.0 cannot reset its peak: the peak after the storm bounds the storm's own peak.
    let redis_before = info_bytes(&server, "used_memory");
    let rss_before = rss();

    let storm = async {
        let mut stalled = Vec::with_capacity(clients);
        for _ in 0..clients {
            let mut client =
                RawClient::connect(app.addr(), "/sse/doc/1/edit?lastEventId=0-0").await;
            let status = client.read_head().await;
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            stalled.push(client);
        }
        stalled
    };
    let (stalled, stormy) = tokio::join!(storm, steady_publisher(bp.clone(), window));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let redis_peak = info_bytes(&server, "used_memory_peak");
    let rss_after = rss();
    println!(
        "storm of {clients}: redis peak +{} MB, instance RSS +{} MB, publishes {}/{} (calm {}/{})",
        redis_peak.saturating_sub(redis_before) >> 20,
        rss_after.saturating_sub(rss_before) >> 20,
        stormy.0,
        stormy.0 + stormy.1,
        calm.0,
        calm.0 + calm.1,
    );
    assert!(
        redis_peak.saturating_sub(redis_before) < 48 << 20,
        "Redis grew by {} bytes",
        redis_peak - redis_before
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 128 << 20,
        "the instance grew by {} bytes",
        rss_after - rss_before
    );
    assert_eq!(stormy.1, 0, "no publish fails during the storm");
    // Not starved: a storm that held Redis or the runtime would stop the publisher. The bound is
    // loose on purpose: this is a liveness check, not a speed figure (on an idle machine the
    // publisher keeps about all of its publishes; on one busy with other work, a third).
    assert!(
        stormy.0 * 4 >= calm.0,
        "publishes during the storm: {} against {} without",
        stormy.0,
        calm.0
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_storm_of_readers_gets_every_event_once_in_order_then_live_events() {
    let clients = env_or("STORM_READERS", 20);
    let server = RedisServer::start();
    let bp = redis_backplane(&server).await;
    let history = fill_history(&bp, 300, 10_000).await;
    let app = spawn_app(
        Router::new()
            .merge(Edit::sse_route())
            .with_state(bp.clone()),
    )
    .await;

    let url = app.url("/sse/doc/1/edit?lastEventId=0-0");
    let readers = (0..clients).map(|_| {
        let url = url.clone();
        async move {
            let mut client = SseClient::subscribe(&url).await;
            let mut seqs = Vec::with_capacity(305);
            while seqs.len() < 305 {
                let frame = client.next_event().await.expect("the stream ended early");
                assert_eq!(frame.event(), "Edit", "no gap: {frame:?}");
                seqs.push(frame.json()["seq"].as_u64().unwrap());
            }
            seqs
        }
    });
    let live = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        for seq in 300..305 {
            Edit::publish(&bp, edit(seq, 10)).await.unwrap();
        }
    };
    let (all, ()) = tokio::join!(futures_util::future::join_all(readers), live);
    let expected: Vec<u64> = history.into_iter().chain(300..305).collect();
    for seqs in all {
        assert_eq!(seqs, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refill_after_a_pubsub_reconnect_is_one_paged_read_for_all_subscribers() {
    let server = RedisServer::start();
    let slow_reconnect = RedisConfig::new(&server.url())
        .unwrap()
        .with_reconnect_backoff(Duration::from_millis(1500), Duration::from_secs(2));
    let subscribers_bp = Backplane::redis(slow_reconnect).await.unwrap();
    // History must hold what is missed: more than a subscriber's buffer of 1,024.
    let publisher = Backplane::redis(
        RedisConfig::new(&server.url())
            .unwrap()
            .with_history_len(2000),
    )
    .await
    .unwrap();
    let replay = ReplayConfig::default();

    let mut subscriptions = Vec::with_capacity(1000);
    for _ in 0..1000 {
        subscriptions.push(Said::stream(&subscribers_bp, &3).await.unwrap());
    }
    Said::publish(&publisher, Said { room: 3, seq: 0 })
        .await
        .unwrap();

    let missed: u64 = 1100;
    let reads_before = calls(&server, "xinfo|stream");
    assert_eq!(server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    for seq in 1..=missed {
        Said::publish(&publisher, Said { room: 3, seq })
            .await
            .unwrap();
    }

    let done = Arc::new(AtomicU64::new(0));
    let gaps = Arc::new(AtomicBool::new(false));
    let readers = subscriptions.into_iter().map(|mut subscription| {
        let (done, gaps) = (Arc::clone(&done), Arc::clone(&gaps));
        async move {
            let mut expected = 0;
            while expected <= missed {
                match tokio::time::timeout(Duration::from_secs(20), subscription.next()).await {
                    Ok(Some(Ok(received))) => {
                        assert_eq!(received.event.seq, expected);
                        expected += 1;
                    }
                    Ok(Some(Err(err))) => {
                        gaps.store(true, Ordering::SeqCst);
                        panic!("{err}");
                    }
                    other => panic!("subscription stopped at {expected}: {other:?}"),
                }
            }
            done.fetch_add(1, Ordering::SeqCst);
        }
    });
    futures_util::future::join_all(readers).await;
    assert_eq!(done.load(Ordering::SeqCst), 1000);
    assert!(!gaps.load(Ordering::SeqCst));

    let pages = missed.div_ceil(replay.page_events() as u64) + 1;
    let reads = calls(&server, "xinfo|stream") - reads_before;
    println!("refill of {missed} events for 1000 subscribers: {reads} history reads");
    assert!(
        reads <= pages + 1,
        "{reads} history reads for {pages} pages: every page is read once for all subscribers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streams_opened_at_once_on_one_channel_share_their_position_reads() {
    let server = RedisServer::start();
    let bp = redis_backplane(&server).await;
    Said::publish(&bp, Said { room: 5, seq: 0 }).await.unwrap();

    let reads_before = calls(&server, "xinfo|stream");
    let opened = futures_util::future::join_all((0..1000).map(|_| Said::stream(&bp, &5))).await;
    let reads = calls(&server, "xinfo|stream") - reads_before;
    println!("1000 streams opened at once on one channel: {reads} position reads");
    assert!(opened.iter().all(Result::is_ok));
    // One read shared by every stream that asked while it ran, not one per stream (a few waves
    // of streams, as the reads are quicker than opening a thousand streams).
    assert!(reads <= 100, "{reads} position reads for 1000 streams");
}
