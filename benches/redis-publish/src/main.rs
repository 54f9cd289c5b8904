//! Publish throughput and publish-to-receive latency of the Redis backplane between two
//! instances, next to `redis-benchmark`'s PUBLISH figures from the same run and server.
//!
//! Run with: `cargo run --release -p bench-redis-publish`
//!
//! It starts a private `redis-server` on a free port (persistence off), or uses `REDIS_URL`
//! when set (then `redis-benchmark` is pointed at the same host and port). Instance A publishes,
//! instance B (a second `Backplane` on the same server) is subscribed to every channel and
//! checks that it received every event. Environment knobs: `BENCH_EVENTS` (default 100000),
//! `BENCH_CONCURRENCY` (publishes in flight, default 256), `BENCH_CHANNELS` (default 64),
//! `BENCH_RATE` (latency run, events per second, default 2000), `BENCH_SECONDS` (default 5).
//! Besides `publish` with many in flight, it measures `publish_many` from one task, 256 events
//! per call, and the round trip of lone publishes, one after another from one task, next to a
//! plain `PUBLISH` on a multiplexed connection (what a hand-written server sends), one of
//! each in turn so that both see the same machine (`BENCH_ROUND_TRIPS`, default 20000 each).

use std::error::Error;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use statelesse::RedisConfig;
use statelesse::prelude::*;
use statelesse_test_redis::RedisServer;

type BoxError = Box<dyn Error + Send + Sync>;

/// One benchmark event: where and when it was sent.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "bench", key = "room")]
pub struct Sample {
    /// The channel's key.
    pub room: u32,
    /// The sequence number.
    pub seq: u64,
    /// Nanoseconds since the start of the process when it was published.
    pub sent_ns: u64,
}

fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn knob(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const USAGE: &str = "\
usage: bench-redis-publish

Publish throughput (publish with BENCH_CONCURRENCY in flight, and publish_many of 256 events
from one task) and publish-to-receive latency of the Redis backplane between two instances,
next to redis-benchmark's PUBLISH. Starts a private redis-server, or uses REDIS_URL.
Environment: BENCH_EVENTS (100000), BENCH_CONCURRENCY (256), BENCH_CHANNELS (64),
BENCH_RATE (latency run, events/s, 2000), BENCH_SECONDS (latency run, 5),
BENCH_ROUND_TRIPS (lone publishes one after another, each way, 20000).
";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    if std::env::args()
        .skip(1)
        .any(|arg| arg == "-h" || arg == "--help")
    {
        print!("{USAGE}");
        return Ok(());
    }
    let events = knob("BENCH_EVENTS", 100_000);
    let concurrency = knob("BENCH_CONCURRENCY", 256);
    let channels = u32::try_from(knob("BENCH_CHANNELS", 64))?;
    let rate = knob("BENCH_RATE", 2000);
    let seconds = knob("BENCH_SECONDS", 5);

    let (_server, url, host, port) = if let Ok(url) = std::env::var("REDIS_URL") {
        let rest = url.split("://").nth(1).unwrap_or("127.0.0.1:6379");
        let authority = rest.split('/').next().unwrap_or(rest);
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "6379"));
        let (host, port) = (host.to_owned(), port.parse()?);
        (None, url, host, port)
    } else {
        let server = RedisServer::try_start_with(&[])?;
        let (url, port) = (server.url(), server.port());
        (Some(server), url, "127.0.0.1".to_owned(), port)
    };
    println!("redis-server {url}; {events} events, {concurrency} in flight, {channels} channels");

    for pipeline in ["1", "32"] {
        let rps = redis_benchmark(&host, port, pipeline)?;
        println!("redis-benchmark PUBLISH -P {pipeline:>2} -c 50:             {rps:>10.0} req/s");
    }

    for history in [1000, 0] {
        let per_second = throughput(&url, history, events, concurrency, channels).await?;
        println!(
            "statelesse publish, history {history:>4}, 2 instances:   {per_second:>10.0} events/s (all received by B)"
        );
    }

    for history in [1000, 0] {
        let per_second = throughput_many(&url, history, events, channels).await?;
        println!(
            "statelesse publish_many (256), history {history:>4}, 2 instances: {per_second:>7.0} events/s (all received by B)"
        );
    }

    let (library, plain) = round_trips(&url, knob("BENCH_ROUND_TRIPS", 20_000)).await?;
    for (what, (p50, p99)) in [
        ("statelesse publish, history 1000", library),
        ("plain PUBLISH, multiplexed connection", plain),
    ] {
        println!("round trip of lone publishes, {what}: p50 {p50:.1} µs, p99 {p99:.1} µs");
    }

    let (p50, p99, max, count) = latency(&url, rate, seconds).await?;
    println!(
        "publish-to-receive latency A -> B at {rate}/s for {seconds} s ({count} samples): p50 {p50:.3} ms, p99 {p99:.3} ms, max {max:.3} ms"
    );
    Ok(())
}

/// `redis-benchmark`'s requests per second for `PUBLISH` of a 64-byte message.
fn redis_benchmark(host: &str, port: u16, pipeline: &str) -> Result<f64, BoxError> {
    let message = "x".repeat(64);
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", &port.to_string()])
        .args(["-P", pipeline, "-n", "200000", "-c", "50", "--csv"])
        .args(["PUBLISH", "bench:redis-benchmark", &message])
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // --csv: a header line, then "PUBLISH ...","<rps>",...
    let rps = text
        .lines()
        .filter(|line| line.starts_with("\"PUBLISH"))
        .find_map(|line| line.split(',').nth(1))
        .map(|field| field.trim_matches('"').parse::<f64>())
        .ok_or("redis-benchmark printed no PUBLISH result")??;
    Ok(rps)
}

async fn instances(url: &str, history: usize) -> Result<(Backplane, Backplane), BoxError> {
    let config = || -> Result<RedisConfig, BoxError> {
        Ok(RedisConfig::new(url)?
            .with_prefix(format!("bench{history}"))
            .with_history_len(history)
            .with_subscriber_buffer(1 << 16))
    };
    Ok((
        Backplane::redis(config()?).await?,
        Backplane::redis(config()?).await?,
    ))
}

/// Events per second published from A with `concurrency` publishes in flight, while B is
/// subscribed to every channel; returns once B received every event.
async fn throughput(
    url: &str,
    history: usize,
    events: u64,
    concurrency: u64,
    channels: u32,
) -> Result<f64, BoxError> {
    let (a, b) = instances(url, history).await?;
    let mut readers = Vec::new();
    let per_channel = events / u64::from(channels);
    for room in 0..channels {
        let mut subscription = Sample::stream(&b, &room).await?;
        readers.push(tokio::spawn(async move {
            let mut received = 0;
            while received < per_channel {
                match subscription.next().await {
                    Some(Ok(_)) => received += 1,
                    Some(Err(err)) => return Err(format!("room {room}: {err}")),
                    None => return Err(format!("room {room}: stream ended")),
                }
            }
            Ok(received)
        }));
    }
    let total = per_channel * u64::from(channels);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut publishers = Vec::new();
    for _ in 0..concurrency {
        let (a, next) = (a.clone(), Arc::clone(&next));
        publishers.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seq >= total {
                    return Ok::<(), statelesse::BackplaneError>(());
                }
                let room = u32::try_from(seq % u64::from(channels)).unwrap_or(0);
                a.publish(&Sample {
                    room,
                    seq,
                    sent_ns: now_ns(),
                })
                .await?;
            }
        }));
    }
    for publisher in publishers {
        publisher.await??;
    }
    for reader in readers {
        reader.await??;
    }
    let elapsed = started.elapsed();
    a.shutdown().await;
    b.shutdown().await;
    #[allow(clippy::cast_precision_loss)] // event counts are far below 2^52
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// Events per second published from A with `publish_many`, 256 events per call from one task,
/// while B is subscribed to every channel; returns once B received every event.
async fn throughput_many(
    url: &str,
    history: usize,
    events: u64,
    channels: u32,
) -> Result<f64, BoxError> {
    let (a, b) = instances(url, history).await?;
    let per_channel = events / u64::from(channels);
    let mut readers = Vec::new();
    for room in 0..channels {
        let mut subscription = Sample::stream(&b, &room).await?;
        readers.push(tokio::spawn(async move {
            for _ in 0..per_channel {
                match subscription.next().await {
                    Some(Ok(_)) => {}
                    Some(Err(err)) => return Err(format!("room {room}: {err}")),
                    None => return Err(format!("room {room}: stream ended")),
                }
            }
            Ok(())
        }));
    }
    let total = per_channel * u64::from(channels);
    let started = Instant::now();
    let mut seq = 0;
    while seq < total {
        let batch: Vec<Sample> = (seq..total.min(seq + 256))
            .map(|seq| Sample {
                room: u32::try_from(seq % u64::from(channels)).unwrap_or(0),
                seq,
                sent_ns: now_ns(),
            })
            .collect();
        seq += batch.len() as u64;
        for result in a.publish_many(&batch).await? {
            result?;
        }
    }
    for reader in readers {
        reader.await??;
    }
    let elapsed = started.elapsed();
    a.shutdown().await;
    b.shutdown().await;
    #[allow(clippy::cast_precision_loss)] // event counts are far below 2^52
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// Publish-to-receive latency between two instances at a fixed rate: p50, p99, max in ms.
async fn latency(url: &str, rate: u64, seconds: u64) -> Result<(f64, f64, f64, usize), BoxError> {
    let (a, b) = instances(url, 1000).await?;
    let count = rate * seconds;
    let mut subscription = Sample::stream(&b, &0).await?;
    let reader = tokio::spawn(async move {
        let mut samples = Vec::new();
        while (samples.len() as u64) < count {
            match subscription.next().await {
                Some(Ok(received)) => samples.push(now_ns() - received.event.sent_ns),
                Some(Err(err)) => return Err(err.to_string()),
                None => return Err("stream ended".to_owned()),
            }
        }
        Ok(samples)
    });
    let mut ticks = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for seq in 0..count {
        ticks.tick().await;
        let a = a.clone();
        // Fire and forget, so that one slow round trip does not delay the next publish.
        tokio::spawn(async move {
            let _ = a
                .publish(&Sample {
                    room: 0,
                    seq,
                    sent_ns: now_ns(),
                })
                .await;
        });
    }
    let mut samples = reader.await??;
    samples.sort_unstable();
    #[allow(clippy::cast_precision_loss)] // nanoseconds, far below 2^52
    let at = |q: f64| at_quantile(&samples, q) as f64 / 1e6;
    let result = (at(0.5), at(0.99), at(1.0), samples.len());
    a.shutdown().await;
    b.shutdown().await;
    Ok(result)
}

/// The round trip of lone publishes, each awaited before the next, from one task: p50 and p99
/// in µs of `publish` (history 1,000) and of a plain `PUBLISH` of the same JSON on a
/// multiplexed connection, `count` each, one of each in turn.
async fn round_trips(url: &str, count: u64) -> Result<((f64, f64), (f64, f64)), BoxError> {
    let (a, b) = instances(url, 1000).await?;
    let mut plain = ::redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let (mut library, mut baseline) = (Vec::new(), Vec::new());
    for seq in 0..count {
        let event = Sample {
            room: 0,
            seq,
            sent_ns: now_ns(),
        };
        let start = Instant::now();
        a.publish(&event).await?;
        library.push(start.elapsed());
        let message = serde_json::to_vec(&event)?;
        let start = Instant::now();
        let _: u64 = ::redis::cmd("PUBLISH")
            .arg("bench:plain")
            .arg(message)
            .query_async(&mut plain)
            .await?;
        baseline.push(start.elapsed());
    }
    a.shutdown().await;
    b.shutdown().await;
    Ok((quantiles(library), quantiles(baseline)))
}

/// p50 and p99 of `samples`, in µs.
fn quantiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort_unstable();
    let at = |q: f64| at_quantile(&samples, q).as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// The `q` quantile (0 to 1) of `sorted`, which is not empty.
fn at_quantile<T: Copy>(sorted: &[T], q: f64) -> T {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}
