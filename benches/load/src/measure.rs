//! One measured load run (two server instances on the private Redis, subscribers on A, publishers
//! through B, CPU and memory read from `/proc`) and the rounds that compare the implementations.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use statelesse_test_redis::RedisServer;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::BoxError;
use crate::client::{self, Position, Publishing, Shared};
use crate::options::Options;
use crate::procfs::{self, Pinning};
use crate::server::{Impl, Role, ServerProcess};

/// What every scenario uses.
pub(crate) struct Env {
    pub(crate) options: Options,
    pub(crate) pinning: Pinning,
    pub(crate) redis: RedisServer,
    pub(crate) text: String,
}

impl Env {
    /// The private Redis's process id, for its CPU time and its pinning.
    pub(crate) fn redis_pid(&self) -> Result<u32, BoxError> {
        self.redis
            .pid()
            .ok_or_else(|| "redis-server is not running".into())
    }
}

/// One load run's shape.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) subscribers: usize,
    pub(crate) keys: u32,
    /// Publishes per second in all; `None` for as fast as possible.
    pub(crate) rate: Option<f64>,
    pub(crate) publishers: usize,
    pub(crate) seconds: f64,
    /// Drop every subscriber at this fraction of the publishing time and reconnect (S4).
    pub(crate) storm_at: Option<f64>,
    /// Channels per connection: more than one opens statelesse's multiplexed route (S7), each
    /// connection carrying that many keys.
    pub(crate) channels: usize,
}

/// CPU seconds of the processes of a run.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cpu {
    pub(crate) a: f64,
    pub(crate) b: f64,
    pub(crate) redis: f64,
    pub(crate) load: f64,
    /// Write system calls of instance A.
    pub(crate) writes_a: f64,
}

impl Cpu {
    fn read(a: &ServerProcess, b: &ServerProcess, redis_pid: u32) -> Result<Self, BoxError> {
        Ok(Self {
            a: procfs::cpu_seconds(a.pid())?,
            b: procfs::cpu_seconds(b.pid())?,
            redis: procfs::cpu_seconds(redis_pid)?,
            load: procfs::cpu_seconds(std::process::id())?,
            writes_a: procfs::write_calls(a.pid())? as f64,
        })
    }

    fn since(self, start: Self) -> Self {
        Self {
            a: self.a - start.a,
            b: self.b - start.b,
            redis: self.redis - start.redis,
            load: self.load - start.load,
            writes_a: self.writes_a - start.writes_a,
        }
    }

    pub(crate) fn server(self) -> f64 {
        self.a + self.b + self.redis
    }
}

/// What one load run measured.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) published: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicated: u64,
    pub(crate) gaps: u64,
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// From the first publish to the last delivery.
    pub(crate) seconds: f64,
    pub(crate) latency: Histogram<u64>,
    pub(crate) publish: Histogram<u64>,
    pub(crate) cpu: Cpu,
    /// Resident memory of instance A per open connection, KiB.
    pub(crate) rss_per_connection: f64,
    /// Resident memory of instance A per channel subscription (per connection when each carries
    /// one channel), KiB.
    pub(crate) rss_per_channel: f64,
    /// S4: per subscriber, from the reconnect to its first event published after it.
    pub(crate) resume: Histogram<u64>,
    pub(crate) resumed: usize,
    /// S4: from the drop until every subscriber resumed.
    pub(crate) all_resumed: Option<Duration>,
}

impl Run {
    pub(crate) fn per_second(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }

    pub(crate) fn latency_us(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1e3
    }

    fn check(&self, scenario: &str, kind: Impl) {
        if let Some(err) = &self.first_error {
            eprintln!(
                "{scenario} {}: {} errors, the first: {err}",
                kind.name(),
                self.errors
            );
        }
    }
}

async fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

type Subscribers = (Vec<JoinHandle<Vec<Position>>>, watch::Sender<bool>);

/// One subscriber per group of positions: one connection for its channels.
fn spawn_subscribers(
    addr: std::net::SocketAddr,
    positions: Vec<Vec<Position>>,
    shared: &Arc<Shared>,
    gate: Option<&Arc<Semaphore>>,
) -> Subscribers {
    let (stop, stopped) = watch::channel(false);
    let handles = positions
        .into_iter()
        .map(|position| {
            tokio::spawn(client::subscriber(
                addr,
                position,
                Arc::clone(shared),
                stopped.clone(),
                gate.cloned(),
            ))
        })
        .collect();
    (handles, stop)
}

async fn stop_subscribers((handles, stop): Subscribers) -> Result<Vec<Vec<Position>>, BoxError> {
    stop.send_replace(true);
    let mut positions = Vec::with_capacity(handles.len());
    for handle in handles {
        positions.push(handle.await?);
    }
    Ok(positions)
}

/// Resident memory per open connection of the floor server (hyper and axum alone), KiB.
pub(crate) async fn memory_floor(env: &Env, n: usize) -> Result<f64, BoxError> {
    eprintln!("S3: floor");
    let server = ServerProcess::start(env.pinning, Role::A, Impl::Floor, &env.redis.url(), 0)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = procfs::rss_kib(server.pid())?;
    let shared = Shared::new(1)?;
    let gate = Arc::new(Semaphore::new(256));
    let subscribers = spawn_subscribers(
        server.addr(),
        (0..n).map(|_| vec![Position::new(0)]).collect(),
        &shared,
        Some(&gate),
    );
    all_connected(&shared, n).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = procfs::rss_kib(server.pid())?;
    stop_subscribers(subscribers).await?;
    Ok(after.saturating_sub(before) as f64 / n as f64)
}

/// Waits until `n` subscribers got their response headers; an error if one failed.
async fn all_connected(shared: &Shared, n: usize) -> Result<(), BoxError> {
    let connected = wait_until(Duration::from_mins(2), || {
        shared.connected.load(Ordering::Relaxed) >= n || shared.stats().errors > 0
    })
    .await;
    if !connected || shared.stats().errors > 0 {
        return Err(format!(
            "{} of {n} subscribers connected; {:?}",
            shared.connected.load(Ordering::Relaxed),
            shared.stats().first_error
        )
        .into());
    }
    Ok(())
}

/// S4: drops every subscriber at once and reconnects each from where it stopped (with its last
/// id as `Last-Event-ID`, when the server sends ids); returns them and the instant of the drop.
async fn reconnect_all(
    addr: std::net::SocketAddr,
    subscribers: Subscribers,
    shared: &Arc<Shared>,
) -> Result<(Subscribers, Instant), BoxError> {
    let positions = stop_subscribers(subscribers).await?;
    shared.connected.store(0, Ordering::Relaxed);
    shared
        .resume_after_ns
        .store(client::now_ns(), Ordering::Relaxed);
    let storm = Instant::now();
    let positions = positions
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .map(|position| Position {
                    resuming: true,
                    ..position
                })
                .collect()
        })
        .collect();
    Ok((spawn_subscribers(addr, positions, shared, None), storm))
}

/// The starting positions of each connection of `load`: connection i carries keys i·c to
/// i·c + c - 1 (modulo the keys), distinct for c channels per connection up to the number of keys.
fn connection_positions(load: &Load) -> Vec<Vec<Position>> {
    let keys = load.keys as usize;
    (0..load.subscribers)
        .map(|i| {
            (0..load.channels)
                .map(|j| Position::new(u32::try_from((i * load.channels + j) % keys).unwrap_or(0)))
                .collect()
        })
        .collect()
}

/// Starts two instances of `kind`, connects `load.subscribers` to A, publishes through B.
pub(crate) async fn load_run(env: &Env, kind: Impl, load: &Load) -> Result<Run, BoxError> {
    env.redis.try_cmd(&["FLUSHALL"])?;
    let history = env.options.history;
    let a = ServerProcess::start(env.pinning, Role::A, kind, &env.redis.url(), history)?;
    let b = ServerProcess::start(env.pinning, Role::B, kind, &env.redis.url(), history)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = procfs::rss_kib(a.pid())?;

    let shared = Shared::new(load.keys)?;
    let groups = connection_positions(load);
    let rooms: Vec<u32> = groups.iter().flatten().map(|p| p.room).collect();
    let gate = Arc::new(Semaphore::new(256));
    let mut subscribers = spawn_subscribers(a.addr(), groups, &shared, Some(&gate));
    let n = load.subscribers;
    all_connected(&shared, n).await?;
    // Let the servers settle (allocations freed, timers armed) before reading memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = procfs::rss_kib(a.pid())?;

    let cpu_start = Cpu::read(&a, &b, env.redis_pid()?)?;
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(load.seconds);
    let publishers: Vec<JoinHandle<u64>> = (0..load.publishers)
        .map(|i| {
            let owned: Vec<u32> = (0..load.keys)
                .filter(|key| *key as usize % load.publishers == i)
                .collect();
            let rate = load
                .rate
                .map(|rate| rate * owned.len() as f64 / f64::from(load.keys));
            // Staggered: publisher i starts i/P of the way into the global period.
            let offset = load.rate.map_or(0.0, |rate| i as f64 / rate);
            let plan = Publishing {
                rooms: owned,
                rate,
                start: start + Duration::from_secs_f64(offset),
                until,
                text: env.text.clone(),
            };
            tokio::spawn(client::publisher(b.addr(), plan, Arc::clone(&shared)))
        })
        .collect();

    let mut all_resumed = None;
    if let Some(at) = load.storm_at {
        tokio::time::sleep_until((start + Duration::from_secs_f64(load.seconds * at)).into()).await;
        let storm;
        (subscribers, storm) = reconnect_all(a.addr(), subscribers, &shared).await?;
        if wait_until(Duration::from_mins(1), || {
            shared.resumed.load(Ordering::Relaxed) >= n
        })
        .await
        {
            all_resumed = Some(storm.elapsed());
        }
    }

    let mut published = 0;
    for publisher in publishers {
        published += publisher.await?;
    }
    // Drain: every subscriber has everything its key got, or 15 s passed.
    let expected = shared.expected(&rooms);
    wait_until(Duration::from_secs(15), || {
        let stats = shared.stats();
        stats.received + stats.lost >= expected
    })
    .await;
    let cpu = Cpu::read(&a, &b, env.redis_pid()?)?.since(cpu_start);
    let positions = stop_subscribers(subscribers).await?;
    let tail: u64 = positions
        .iter()
        .flatten()
        .map(|p| shared.published_on(p.room).saturating_sub(p.next))
        .sum();
    let stats = shared.stats();
    let end = stats.last_receive.unwrap_or_else(Instant::now);
    let run = Run {
        published,
        delivered: stats.received,
        lost: stats.lost + tail,
        duplicated: stats.duplicated,
        gaps: stats.gaps,
        errors: stats.errors,
        first_error: stats.first_error.clone(),
        seconds: end.duration_since(start).as_secs_f64().max(1e-3),
        latency: stats.latency.clone(),
        publish: stats.publish.clone(),
        cpu,
        rss_per_connection: rss_after.saturating_sub(rss_before) as f64 / n as f64,
        rss_per_channel: rss_after.saturating_sub(rss_before) as f64 / rooms.len() as f64,
        resume: stats.resume.clone(),
        resumed: shared.resumed.load(Ordering::Relaxed),
        all_resumed,
    };
    drop(stats);
    drop((a, b));
    Ok(run)
}

/// Runs `load` for every implementation, `rounds` times alternating them; per implementation,
/// the run whose `key` is the median.
pub(crate) async fn compare(
    env: &Env,
    scenario: &str,
    load: &Load,
    key: impl Fn(&Run) -> f64,
) -> Result<Vec<(Impl, Run)>, BoxError> {
    let mut runs: Vec<(Impl, Vec<Run>)> =
        env.options.impls.iter().map(|&k| (k, Vec::new())).collect();
    for round in 0..env.options.rounds {
        for (kind, list) in &mut runs {
            eprintln!("{scenario}: {} (round {})", kind.name(), round + 1);
            let run = load_run(env, *kind, load).await?;
            run.check(scenario, *kind);
            eprintln!(
                "  {:.0} deliveries/s, p50 {:.0} µs, p99 {:.0} µs, lost {}, dup {}, server CPU {:.2} s (A {:.2}, B {:.2}, Redis {:.2}), load generator {:.2} s, {:.2} events per write",
                run.per_second(),
                run.latency_us(0.5),
                run.latency_us(0.99),
                run.lost,
                run.duplicated,
                run.cpu.server(),
                run.cpu.a,
                run.cpu.b,
                run.cpu.redis,
                run.cpu.load,
                run.delivered as f64 / run.cpu.writes_a.max(1.0)
            );
            list.push(run);
        }
    }
    Ok(runs
        .into_iter()
        .map(|(kind, mut list)| {
            list.sort_by(|x, y| key(x).total_cmp(&key(y)));
            let median = list.swap_remove(list.len() / 2);
            (kind, median)
        })
        .collect())
}
