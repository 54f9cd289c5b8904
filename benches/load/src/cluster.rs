//! The cluster scenario: `publish` from Rust on a Redis Cluster of one shard, then of three,
//! with an instance subscribed to every channel: publishes/s and deliveries/s of each, to show
//! how sharded pub/sub scales with shards.
//!
//! On a small machine the load generator (both instances, one thread) is the bottleneck before
//! Redis is, so the table also gives each run's ceiling on Redis's side: the publishes/s at
//! which the busiest shard would use a whole core, from the CPU time each shard used.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use statelesse::RedisConfig;
use statelesse::prelude::*;
use statelesse_test_redis::RedisCluster;

use crate::measure::Env;
use crate::report::Table;
use crate::{BoxError, Tick, client, procfs};

/// Publishes in flight at once, as in S5.
const IN_FLIGHT: usize = 256;

/// Channels published on, each subscribed by the second instance.
const KEYS: u32 = 100;

/// How long deliveries may stall before the count is final.
const DELIVERY_STALL: Duration = Duration::from_secs(5);

/// Runs the scenario: `--s5-events` publishes over 100 keys on each cluster.
pub(crate) async fn cluster(env: &Env) -> Result<Table, BoxError> {
    let count = env.options.s5_events;
    let mut table = Table::new(
        "Cluster: `publish` from Rust, 256 in flight, over 100 keys, each subscribed by a second instance; 1 shard vs 3 shards (Redis Cluster masters, no replicas)",
        "Cluster: the ceiling on Redis's side of 3 shards is above that of 1",
    );
    table.columns = [
        "",
        "publishes/s",
        "deliveries/s",
        "Redis CPU µs per publish: all shards / busiest shard (its ceiling, publishes/s)",
    ];
    let mut ceilings = Vec::new();
    for shards in [1, 3] {
        eprintln!("cluster: {shards} shard(s)");
        let (published, delivered, cpu) = run(env, shards, count).await?;
        let all: f64 = cpu.iter().sum();
        let busiest = cpu.iter().copied().fold(0.0, f64::max);
        let ceiling = count as f64 / busiest;
        table.raw_row(&[
            format!("{shards} shard{}", if shards == 1 { "" } else { "s" }),
            format!("{published:.0}"),
            format!("{delivered:.0}"),
            format!(
                "{:.2} / {:.2} ({ceiling:.0})",
                all / count as f64 * 1e6,
                busiest / count as f64 * 1e6
            ),
        ]);
        ceilings.push(ceiling);
    }
    table.verdict = Some(ceilings[1] > ceilings[0]);
    Ok(table)
}

/// One run on a cluster of `shards` masters: publishes/s, deliveries/s and each shard's CPU
/// seconds.
async fn run(env: &Env, shards: usize, count: u64) -> Result<(f64, f64, Vec<f64>), BoxError> {
    let cluster = RedisCluster::try_start_masters(shards)?;
    let urls = cluster.urls();
    let config = || -> Result<RedisConfig, BoxError> {
        Ok(RedisConfig::cluster(urls.iter().map(String::as_str))?
            .with_history_len(env.options.history))
    };
    let publisher = Backplane::redis_cluster(config()?).await?;
    let subscriber = Backplane::redis_cluster(config()?).await?;
    let delivered = Arc::new(AtomicU64::new(0));
    let last_delivery = Arc::new(std::sync::Mutex::new(Instant::now()));
    let mut readers = Vec::new();
    for room in 0..KEYS {
        let mut stream = Tick::stream(&subscriber, &room).await?;
        let (delivered, last_delivery) = (Arc::clone(&delivered), Arc::clone(&last_delivery));
        readers.push(tokio::spawn(async move {
            while let Some(item) = stream.next().await {
                if item.is_ok() {
                    delivered.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut at) = last_delivery.lock() {
                        *at = Instant::now();
                    }
                }
            }
        }));
    }
    let cpu = || -> Result<Vec<f64>, BoxError> {
        cluster
            .pids()
            .into_iter()
            .map(procfs::cpu_seconds)
            .collect::<Result<Vec<f64>, BoxError>>()
    };
    let cpu_before = cpu()?;
    let failed = AtomicU64::new(0);
    let start = Instant::now();
    futures_util::stream::iter(0..count)
        .for_each_concurrent(IN_FLIGHT, |seq| {
            let (publisher, failed) = (&publisher, &failed);
            let tick = Tick {
                room: u32::try_from(seq % u64::from(KEYS)).unwrap_or(0),
                seq,
                sent_ns: client::now_ns(),
                text: env.text.clone(),
            };
            async move {
                if Tick::publish(publisher, tick).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let publish_rate = count as f64 / start.elapsed().as_secs_f64();
    loop {
        let stalled = last_delivery
            .lock()
            .map_or(true, |at| at.elapsed() > DELIVERY_STALL);
        if delivered.load(Ordering::Relaxed) >= count || stalled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivery_secs = last_delivery
        .lock()
        .map_or(f64::NAN, |at| at.duration_since(start).as_secs_f64());
    let redis_cpu: Vec<f64> = cpu()?
        .iter()
        .zip(&cpu_before)
        .map(|(after, before)| after - before)
        .collect();
    let delivered = delivered.load(Ordering::Relaxed);
    publisher.shutdown().await;
    subscriber.shutdown().await;
    for reader in readers {
        reader.abort();
    }
    let failed = failed.into_inner();
    if failed > 0 || delivered < count {
        return Err(format!("{failed} publishes failed, {delivered} of {count} delivered").into());
    }
    Ok((publish_rate, delivered as f64 / delivery_secs, redis_cpu))
}
