//! The load generator: options, the scenarios S1–S5, and the report.

use std::fmt::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use redis::AsyncCommands as _;
use statelesse::RedisConfig;
use statelesse::prelude::*;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::client::{self, Position, Publishing, Shared};
use crate::procfs::{self, Pinning};
use crate::redis_server::RedisServer;
use crate::server::{Impl, Role, ServerProcess};
use crate::{BoxError, Tick};

const USAGE: &str = "\
usage: example-load [options]

  --scenario LIST   scenarios to run, comma separated: s1,s2,s2r,s3,s4,s5 or all (default all);
                    s2r is S2's shape at a fixed rate both servers sustain (--rate, default
                    3000/s), to compare CPU per delivery at the same load
  --impl LIST       servers to measure: baseline,statelesse (default both)
  --seconds N       how long each scenario publishes (default 10)
  --history N       history length of the statelesse server (default 1000, the library's default)
  --publishers N    concurrent HTTP publishers in S2 (default 32)
  --payload N       filler bytes in each event (default 64)
  --rounds N        run each scenario N times, alternating the servers, and report the median
  --s5-events N     events each S5 publisher sends (default 200000)
  --rate N          publishes/s of S1, S3 and S4 instead of theirs (for profiling)
  --pin LIST        scenarios run with Redis and both instances on core 0 and the load generator
                    on core 1 (with taskset): a list, all or none (default s2,s2r,s5, as the issue
                    pins the throughput runs; the others let every process use both cores)
  --no-pin          the same as --pin none
  --markdown PATH   also write the summary table to PATH
";

#[derive(Debug, Clone)]
struct Options {
    scenarios: Vec<String>,
    impls: Vec<Impl>,
    seconds: f64,
    history: usize,
    publishers: usize,
    payload: usize,
    rounds: usize,
    s5_events: u64,
    rate: Option<f64>,
    /// The scenarios run pinned.
    pinned: Vec<String>,
    markdown: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Option<Self>, BoxError> {
        let mut options = Self {
            scenarios: ["s1", "s2", "s2r", "s3", "s4", "s5"]
                .map(String::from)
                .to_vec(),
            impls: vec![Impl::Baseline, Impl::Statelesse],
            seconds: 10.0,
            history: 1000,
            publishers: 32,
            payload: 64,
            rounds: 1,
            s5_events: 200_000,
            rate: None,
            pinned: ["s2", "s2r", "s5"].map(String::from).to_vec(),
            markdown: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--scenario" => {
                    let list = value()?;
                    if list != "all" {
                        options.scenarios = list.split(',').map(str::to_lowercase).collect();
                    }
                }
                "--impl" => {
                    options.impls = value()?
                        .split(',')
                        .map(Impl::parse)
                        .collect::<Result<_, _>>()?;
                }
                "--seconds" => options.seconds = value()?.parse()?,
                "--history" => options.history = value()?.parse()?,
                "--publishers" => options.publishers = value()?.parse()?,
                "--payload" => options.payload = value()?.parse()?,
                "--rounds" => options.rounds = value()?.parse::<usize>()?.max(1),
                "--s5-events" => options.s5_events = value()?.parse()?,
                "--rate" => options.rate = Some(value()?.parse()?),
                "--no-pin" => options.pinned.clear(),
                "--pin" => {
                    options.pinned = match value()?.as_str() {
                        "all" => ["s1", "s2", "s2r", "s3", "s4", "s5"]
                            .map(String::from)
                            .to_vec(),
                        "none" => Vec::new(),
                        list => list.split(',').map(str::to_lowercase).collect(),
                    };
                }
                "--markdown" => options.markdown = Some(value()?.clone()),
                other => return Err(format!("unknown option `{other}`\n\n{USAGE}").into()),
            }
        }
        Ok(Some(options))
    }
}

/// The load generator's entry point.
pub(crate) fn main(args: &[String]) -> Result<(), BoxError> {
    let Some(options) = Options::parse(args)? else {
        print!("{USAGE}");
        return Ok(());
    };
    rlimit::increase_nofile_limit(u64::MAX)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options, Pinning::detect()))
}

/// What every scenario uses.
struct Env {
    options: Options,
    pinning: Pinning,
    redis: RedisServer,
    text: String,
}

async fn run(options: Options, pinning: Pinning) -> Result<(), BoxError> {
    let redis = RedisServer::start(pinning.scenario(false))?;
    let text = "x".repeat(options.payload);
    println!(
        "# statelesse load benchmark\n\nredis-server on port {}; pinned scenarios: {} (Redis + both instances on core 0, load generator on core 1); {} s per scenario; statelesse history {}; rounds {}\n",
        redis.port(),
        if pinning.scenario(true).enabled() {
            options.pinned.join(",")
        } else {
            "none (no taskset, or one core)".to_owned()
        },
        options.seconds,
        options.history,
        options.rounds,
    );
    let mut env = Env {
        options,
        pinning,
        redis,
        text,
    };
    let mut summary = Vec::new();
    for scenario in env.options.scenarios.clone() {
        env.pinning = pinning.scenario(env.options.pinned.contains(&scenario));
        env.pinning.place(std::process::id(), Pinning::LOAD_CORE)?;
        env.pinning.place(env.redis.pid(), Pinning::SERVER_CORE)?;
        let table = match scenario.as_str() {
            "s1" => s1(&env).await?,
            "s2" => s2(&env).await?,
            "s2r" => s2_at_rate(&env).await?,
            "s3" => s3(&env).await?,
            "s4" => s4(&env).await?,
            "s5" => s5(&env).await?,
            other => return Err(format!("unknown scenario `{other}`").into()),
        };
        let mut table = table;
        table.note = format!(
            "Load average after the scenario (other processes on the machine): {}",
            procfs::load_average()
        );
        println!("{}", table.render());
        summary.push(table);
    }
    let mut markdown = String::new();
    for table in &summary {
        markdown.push_str(&table.render());
        markdown.push('\n');
    }
    if let Some(path) = &env.options.markdown {
        std::fs::write(path, markdown)?;
    }
    Ok(())
}

/// One load run's shape.
#[derive(Debug, Clone)]
struct Load {
    subscribers: usize,
    keys: u32,
    /// Publishes per second in all; `None` for as fast as possible.
    rate: Option<f64>,
    publishers: usize,
    seconds: f64,
    /// Drop every subscriber at this fraction of the publishing time and reconnect (S4).
    storm_at: Option<f64>,
}

/// CPU seconds of the processes of a run.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    a: f64,
    b: f64,
    redis: f64,
    load: f64,
    /// Write system calls of instance A.
    writes_a: f64,
}

impl Cpu {
    fn read(a: &ServerProcess, b: &ServerProcess, redis: &RedisServer) -> Result<Self, BoxError> {
        Ok(Self {
            a: procfs::cpu_seconds(a.pid())?,
            b: procfs::cpu_seconds(b.pid())?,
            redis: procfs::cpu_seconds(redis.pid())?,
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

    fn server(self) -> f64 {
        self.a + self.b + self.redis
    }
}

/// What one load run measured.
#[derive(Debug, Clone)]
struct Run {
    published: u64,
    delivered: u64,
    lost: u64,
    duplicated: u64,
    gaps: u64,
    errors: u64,
    first_error: Option<String>,
    /// From the first publish to the last delivery.
    seconds: f64,
    latency: Histogram<u64>,
    publish: Histogram<u64>,
    cpu: Cpu,
    /// Resident memory of instance A per open connection, KiB.
    rss_per_connection: f64,
    /// S4: per subscriber, from the reconnect to its first event published after it.
    resume: Histogram<u64>,
    resumed: usize,
    /// S4: from the drop until every subscriber resumed.
    all_resumed: Option<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.delivered as f64 / self.seconds
    }

    fn latency_us(&self, quantile: f64) -> f64 {
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

type Subscribers = (Vec<JoinHandle<Position>>, watch::Sender<bool>);

fn spawn_subscribers(
    addr: std::net::SocketAddr,
    positions: Vec<Position>,
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

async fn stop_subscribers((handles, stop): Subscribers) -> Result<Vec<Position>, BoxError> {
    stop.send_replace(true);
    let mut positions = Vec::with_capacity(handles.len());
    for handle in handles {
        positions.push(handle.await?);
    }
    Ok(positions)
}

/// Resident memory per open connection of the floor server (hyper and axum alone), KiB.
async fn memory_floor(env: &Env, n: usize) -> Result<f64, BoxError> {
    eprintln!("S3: floor");
    let server = ServerProcess::start(env.pinning, Role::A, Impl::Floor, &env.redis.url(), 0)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = procfs::rss_kib(server.pid())?;
    let shared = Shared::new(1)?;
    let gate = Arc::new(Semaphore::new(256));
    let subscribers = spawn_subscribers(
        server.addr(),
        (0..n).map(|_| Position::new(0)).collect(),
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
        .map(|position| Position {
            resuming: true,
            ..position
        })
        .collect();
    Ok((spawn_subscribers(addr, positions, shared, None), storm))
}

/// Starts two instances of `kind`, connects `load.subscribers` to A, publishes through B.
async fn load_run(env: &Env, kind: Impl, load: &Load) -> Result<Run, BoxError> {
    env.redis.cmd(&["FLUSHALL"])?;
    let history = env.options.history;
    let a = ServerProcess::start(env.pinning, Role::A, kind, &env.redis.url(), history)?;
    let b = ServerProcess::start(env.pinning, Role::B, kind, &env.redis.url(), history)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = procfs::rss_kib(a.pid())?;

    let shared = Shared::new(load.keys)?;
    let keys = load.keys as usize;
    let rooms: Vec<u32> = (0..load.subscribers)
        .map(|i| u32::try_from(i % keys).unwrap_or(0))
        .collect();
    let gate = Arc::new(Semaphore::new(256));
    let mut subscribers = spawn_subscribers(
        a.addr(),
        rooms.iter().map(|&room| Position::new(room)).collect(),
        &shared,
        Some(&gate),
    );
    let n = load.subscribers;
    all_connected(&shared, n).await?;
    // Let the servers settle (allocations freed, timers armed) before reading memory.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = procfs::rss_kib(a.pid())?;

    let cpu_start = Cpu::read(&a, &b, &env.redis)?;
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
    let cpu = Cpu::read(&a, &b, &env.redis)?.since(cpu_start);
    let positions = stop_subscribers(subscribers).await?;
    let tail: u64 = positions
        .iter()
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
async fn compare(
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

fn find(runs: &[(Impl, Run)], kind: Impl) -> Option<&Run> {
    runs.iter().find(|(k, _)| *k == kind).map(|(_, run)| run)
}

async fn s1(env: &Env) -> Result<Table, BoxError> {
    let load = Load {
        subscribers: 100,
        keys: 10,
        rate: Some(env.options.rate.unwrap_or(1000.0)),
        publishers: 10,
        seconds: env.options.seconds,
        storm_at: None,
    };
    let runs = compare(env, "S1", &load, |run| run.latency_us(0.5)).await?;
    let mut table = Table::new(
        "S1 latency: 100 subscribers over 10 keys, 1,000 publishes/s",
        "S1: p50 and p99 at most 0.8x the baseline's",
    );
    latency_rows(&mut table, &runs);
    delivery_rows(&mut table, &runs);
    let target = |q| ratio(&runs, |run| run.latency_us(q)).is_some_and(|r| r <= 0.8);
    table.verdict = Some(target(0.5) && target(0.99));
    Ok(table)
}

async fn s2(env: &Env) -> Result<Table, BoxError> {
    let load = Load {
        subscribers: 1000,
        keys: 100,
        rate: None,
        publishers: env.options.publishers,
        seconds: env.options.seconds,
        storm_at: None,
    };
    let per_cpu = |run: &Run| run.delivered as f64 / run.cpu.server().max(1e-9);
    let runs = compare(env, "S2", &load, per_cpu).await?;
    let mut table = Table::new(
        "S2 throughput: 1,000 subscribers over 100 keys, as fast as possible",
        "S2: deliveries per server CPU-second at least 2x the baseline's",
    );
    cpu_rows(&mut table, &runs, per_cpu);
    delivery_rows(&mut table, &runs);
    latency_rows(&mut table, &runs);
    table.verdict = Some(ratio(&runs, per_cpu).is_some_and(|r| r >= 2.0));
    Ok(table)
}

/// S2 at a fixed rate that both servers sustain: CPU per delivery at the same load, where the
/// as-fast-as-possible run compares servers that batch differently because they saturate
/// differently.
async fn s2_at_rate(env: &Env) -> Result<Table, BoxError> {
    let rate = env.options.rate.unwrap_or(3000.0);
    let load = Load {
        subscribers: 1000,
        keys: 100,
        rate: Some(rate),
        publishers: 20,
        seconds: env.options.seconds,
        storm_at: None,
    };
    let per_cpu = |run: &Run| run.delivered as f64 / run.cpu.server().max(1e-9);
    let runs = compare(env, "S2r", &load, per_cpu).await?;
    let mut table = Table::new(
        &format!(
            "S2r: S2's shape (1,000 subscribers over 100 keys) at a fixed {rate:.0} publishes/s"
        ),
        "S2 at equal load: deliveries per server CPU-second at least 2x the baseline's",
    );
    cpu_rows(&mut table, &runs, per_cpu);
    delivery_rows(&mut table, &runs);
    latency_rows(&mut table, &runs);
    table.verdict = Some(ratio(&runs, per_cpu).is_some_and(|r| r >= 2.0));
    Ok(table)
}

async fn s3(env: &Env) -> Result<Table, BoxError> {
    let load = Load {
        subscribers: 10_000,
        keys: 1000,
        rate: Some(env.options.rate.unwrap_or(100.0)),
        publishers: 10,
        seconds: env.options.seconds,
        storm_at: None,
    };
    let runs = compare(env, "S3", &load, |run| run.rss_per_connection).await?;
    let mut table = Table::new(
        "S3 connections: 10,000 idle subscribers over 1,000 keys, 100 publishes/s",
        "S3: resident memory per idle connection at most 0.5x the baseline's (aim: under 8 KiB)",
    );
    table.row(
        "resident memory per connection (KiB, instance A)",
        Better::Lower,
        &runs,
        |run| Some(run.rss_per_connection),
    );
    let floor = memory_floor(env, load.subscribers).await?;
    table.raw_row(&[
        "… floor: axum SSE route that never sends, no Redis (KiB)".to_owned(),
        format_number(floor),
        format_number(floor),
        String::new(),
    ]);
    latency_rows(&mut table, &runs);
    delivery_rows(&mut table, &runs);
    table.verdict = Some(ratio(&runs, |run| run.rss_per_connection).is_some_and(|r| r <= 0.5));
    Ok(table)
}

async fn s4(env: &Env) -> Result<Table, BoxError> {
    let load = Load {
        subscribers: 1000,
        keys: 100,
        rate: Some(env.options.rate.unwrap_or(1000.0)),
        publishers: 10,
        seconds: env.options.seconds,
        storm_at: Some(0.3),
    };
    let runs = compare(env, "S4", &load, |run| {
        run.all_resumed.map_or(f64::MAX, |d| d.as_secs_f64())
    })
    .await?;
    let mut table = Table::new(
        "S4 resume storm: 1,000 subscribers over 100 keys drop at once and reconnect with Last-Event-ID, 1,000 publishes/s",
        "S4: every client resumed with no gap within 2 s",
    );
    table.row("all resumed after (ms)", Better::Lower, &runs, |run| {
        run.all_resumed.map(|d| d.as_secs_f64() * 1e3)
    });
    table.row("resume time p50 (ms)", Better::Lower, &runs, |run| {
        Some(run.resume.value_at_quantile(0.5) as f64 / 1e6)
    });
    table.row("resume time p99 (ms)", Better::Lower, &runs, |run| {
        Some(run.resume.value_at_quantile(0.99) as f64 / 1e6)
    });
    table.row("subscribers resumed", Better::Higher, &runs, |run| {
        Some(run.resumed as f64)
    });
    delivery_rows(&mut table, &runs);
    table.verdict = find(&runs, Impl::Statelesse).map(|run| {
        run.lost == 0
            && run.duplicated == 0
            && run.gaps == 0
            && run.resumed == load.subscribers
            && run.all_resumed.is_some_and(|d| d < Duration::from_secs(2))
    });
    Ok(table)
}

/// S5: publishes per second from Rust, with many in flight, and what Redis alone does.
async fn s5(env: &Env) -> Result<Table, BoxError> {
    const IN_FLIGHT: usize = 256;
    let count = env.options.s5_events;
    let mut table = Table::new(
        "S5 direct publish: from Rust, 256 in flight, over 100 keys, no subscribers",
        "S5: publishes/s with history off at least 30% of redis-benchmark's pipelined PUBLISH",
    );
    table.columns = [
        "",
        "publishes/s",
        "CPU µs per publish: Redis / publisher",
        "x redis-benchmark",
    ];
    let bench = redis_benchmark(env)?;
    let mut rows = Vec::new();
    for (label, history) in [
        ("statelesse `publish`, history on (1,000)", Some(1000)),
        ("statelesse `publish`, history off", Some(0)),
        ("baseline: plain PUBLISH, multiplexed connection", None),
    ] {
        let kind = if history.is_some() {
            Impl::Statelesse
        } else {
            Impl::Baseline
        };
        if !env.options.impls.contains(&kind) {
            continue;
        }
        eprintln!("S5: {label}");
        env.redis.cmd(&["FLUSHALL"])?;
        let redis_cpu = procfs::cpu_seconds(env.redis.pid())?;
        let own_cpu = procfs::cpu_seconds(std::process::id())?;
        let rate = match history {
            Some(history) => direct_publish(env, history, count, IN_FLIGHT).await?,
            None => plain_publish(env, count, IN_FLIGHT).await?,
        };
        let redis_cpu = procfs::cpu_seconds(env.redis.pid())? - redis_cpu;
        let own_cpu = procfs::cpu_seconds(std::process::id())? - own_cpu;
        rows.push((
            label,
            rate,
            redis_cpu / count as f64 * 1e6,
            own_cpu / count as f64 * 1e6,
        ));
    }
    for (label, rate, redis, own) in &rows {
        table.raw_row(&[
            (*label).to_owned(),
            format!("{rate:.0}"),
            format!("{redis:.2} / {own:.2}"),
            format!("{:.2}", rate / bench),
        ]);
    }
    table.raw_row(&[
        "redis-benchmark -P 32 PUBLISH (50 clients)".to_owned(),
        format!("{bench:.0}"),
        String::new(),
        "1.00".to_owned(),
    ]);
    // The ceiling of the publish script on this Redis, without any client in the way.
    for (label, history) in [("on (1,000)", "1000"), ("off", "0")] {
        let rate = script_benchmark(env, history)?;
        table.raw_row(&[
            format!(
                "redis-benchmark -P 32 EVALSHA of statelesse's publish script, history {label}"
            ),
            format!("{rate:.0}"),
            String::new(),
            format!("{:.2}", rate / bench),
        ]);
    }
    table.verdict = rows
        .iter()
        .find(|(label, ..)| label.ends_with("history off"))
        .map(|(_, rate, _, _)| rate / bench >= 0.3);
    Ok(table)
}

/// `publish` of `count` events over 100 keys with `in_flight` at once; events/s and seconds.
async fn direct_publish(
    env: &Env,
    history: usize,
    count: u64,
    in_flight: usize,
) -> Result<f64, BoxError> {
    let config = RedisConfig::new(&env.redis.url())?.with_history_len(history);
    let backplane = Backplane::redis(config).await?;
    let failed = AtomicU64::new(0);
    let start = Instant::now();
    futures_util::stream::iter(0..count)
        .for_each_concurrent(in_flight, |seq| {
            let (backplane, failed) = (&backplane, &failed);
            let tick = Tick {
                room: u32::try_from(seq % 100).unwrap_or(0),
                seq,
                sent_ns: client::now_ns(),
                text: env.text.clone(),
            };
            async move {
                if Tick::publish(backplane, tick).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let seconds = start.elapsed().as_secs_f64();
    backplane.shutdown().await;
    let failed = failed.into_inner();
    if failed > 0 {
        return Err(format!("{failed} publishes failed").into());
    }
    Ok(count as f64 / seconds)
}

/// What a user does by hand: `PUBLISH` of the JSON on one multiplexed connection.
async fn plain_publish(env: &Env, count: u64, in_flight: usize) -> Result<f64, BoxError> {
    let client = redis::Client::open(env.redis.url())?;
    let connection = client.get_multiplexed_async_connection().await?;
    let failed = AtomicU64::new(0);
    let start = Instant::now();
    futures_util::stream::iter(0..count)
        .for_each_concurrent(in_flight, |seq| {
            let (mut connection, failed) = (connection.clone(), &failed);
            let tick = Tick {
                room: u32::try_from(seq % 100).unwrap_or(0),
                seq,
                sent_ns: client::now_ns(),
                text: env.text.clone(),
            };
            async move {
                let published: redis::RedisResult<i64> = match serde_json::to_string(&tick) {
                    Ok(json) => {
                        connection
                            .publish(format!("room:{}", tick.room), json)
                            .await
                    }
                    Err(_) => Ok(0),
                };
                if published.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
    let seconds = start.elapsed().as_secs_f64();
    if failed.into_inner() > 0 {
        return Err("plain PUBLISH failed".into());
    }
    Ok(count as f64 / seconds)
}

/// `redis-benchmark -P 32` running statelesse's publish script over 100 streams with an
/// event-sized message, history length `history` and a one-hour time-to-live: requests per second.
fn script_benchmark(env: &Env, history: &str) -> Result<f64, BoxError> {
    let sha = env
        .redis
        .cmd(&["SCRIPT", "LOAD", statelesse::__bench::PUBLISH_SCRIPT])?;
    let message = "x".repeat(env.text.len() + 45);
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &env.redis.port().to_string()])
        .args(["-P", "32", "-n", "500000", "-r", "100", "--csv"])
        .args([
            "EVALSHA",
            &sha,
            "1",
            "bench:h:{__rand_int__}",
            "bench:{__rand_int__}",
        ])
        .args([history, "3600000", "Tick", &message])
        .output()?;
    csv_rps(&String::from_utf8_lossy(&output.stdout), "\"EVALSHA")
}

/// The requests per second of the line of `command` in `redis-benchmark --csv` output.
fn csv_rps(csv: &str, command: &str) -> Result<f64, BoxError> {
    Ok(csv
        .lines()
        .filter(|line| line.starts_with(command))
        .find_map(|line| line.split(',').nth(1))
        .map(|field| field.trim_matches('"').parse::<f64>())
        .ok_or_else(|| format!("redis-benchmark printed no {command} result: {csv}"))??)
}

/// `redis-benchmark -P 32 PUBLISH` with an event-sized message, on the load generator's core:
/// requests per second. (Its `-t publish` names no built-in test in Redis 7, so the command is
/// given explicitly.)
fn redis_benchmark(env: &Env) -> Result<f64, BoxError> {
    // As long as the JSON of an event, without quotes or commas that would upset the CSV.
    let message = "x".repeat(env.text.len() + 45);
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &env.redis.port().to_string()])
        .args(["-P", "32", "-n", "2000000", "--csv"])
        .args(["PUBLISH", "bench:redis-benchmark", &message])
        .output()?;
    csv_rps(&String::from_utf8_lossy(&output.stdout), "\"PUBLISH")
}

fn ratio(runs: &[(Impl, Run)], metric: impl Fn(&Run) -> f64) -> Option<f64> {
    let baseline = metric(find(runs, Impl::Baseline)?);
    let statelesse = metric(find(runs, Impl::Statelesse)?);
    (baseline > 0.0).then(|| statelesse / baseline)
}

/// Server CPU per delivery, in all and per process, and how many events each write carried.
fn cpu_rows(table: &mut Table, runs: &[(Impl, Run)], per_cpu: impl Fn(&Run) -> f64) {
    let per_million = |cpu: f64, run: &Run| Some(cpu / run.delivered.max(1) as f64 * 1e6);
    table.row(
        "deliveries per server CPU-second",
        Better::Higher,
        runs,
        |run| Some(per_cpu(run)),
    );
    table.row(
        "server CPU s per million deliveries",
        Better::Lower,
        runs,
        |run| per_million(run.cpu.server(), run),
    );
    table.row("… instance A (SSE)", Better::Lower, runs, |run| {
        per_million(run.cpu.a, run)
    });
    table.row("… instance B (HTTP publish)", Better::Lower, runs, |run| {
        per_million(run.cpu.b, run)
    });
    table.row("… Redis", Better::Lower, runs, |run| {
        per_million(run.cpu.redis, run)
    });
    table.row(
        "events per write system call (instance A)",
        Better::Higher,
        runs,
        |run| Some(run.delivered as f64 / run.cpu.writes_a.max(1.0)),
    );
    table.row(
        "load generator CPU busy (%)",
        Better::Neither,
        runs,
        |run| Some(run.cpu.load / run.seconds * 100.0),
    );
}

fn latency_rows(table: &mut Table, runs: &[(Impl, Run)]) {
    for (label, q) in [
        ("latency p50 (µs)", 0.5),
        ("latency p90 (µs)", 0.9),
        ("latency p99 (µs)", 0.99),
        ("latency p99.9 (µs)", 0.999),
    ] {
        table.row(label, Better::Lower, runs, |run| Some(run.latency_us(q)));
    }
    table.row(
        "HTTP publish round trip p50 (µs)",
        Better::Lower,
        runs,
        |run| Some(run.publish.value_at_quantile(0.5) as f64 / 1e3),
    );
}

fn delivery_rows(table: &mut Table, runs: &[(Impl, Run)]) {
    table.row("deliveries/s", Better::Higher, runs, |run| {
        Some(run.per_second())
    });
    table.row("published", Better::Neither, runs, |run| {
        Some(run.published as f64)
    });
    table.row("delivered", Better::Neither, runs, |run| {
        Some(run.delivered as f64)
    });
    table.row("lost", Better::Lower, runs, |run| Some(run.lost as f64));
    table.row("duplicated", Better::Lower, runs, |run| {
        Some(run.duplicated as f64)
    });
    table.row("gap events", Better::Neither, runs, |run| {
        Some(run.gaps as f64)
    });
    table.row("errors", Better::Lower, runs, |run| Some(run.errors as f64));
}

#[derive(Debug, Clone, Copy)]
enum Better {
    Lower,
    Higher,
    Neither,
}

/// A markdown table of one scenario.
#[derive(Debug)]
struct Table {
    title: String,
    target: String,
    columns: [&'static str; 4],
    rows: Vec<[String; 4]>,
    verdict: Option<bool>,
    note: String,
}

impl Table {
    fn new(title: &str, target: &str) -> Self {
        Self {
            title: title.to_owned(),
            target: target.to_owned(),
            columns: ["", "baseline", "statelesse", "statelesse / baseline"],
            rows: Vec::new(),
            verdict: None,
            note: String::new(),
        }
    }

    fn row(
        &mut self,
        label: &str,
        better: Better,
        runs: &[(Impl, Run)],
        metric: impl Fn(&Run) -> Option<f64>,
    ) {
        let value = |kind| find(runs, kind).and_then(&metric);
        let (baseline, statelesse) = (value(Impl::Baseline), value(Impl::Statelesse));
        let show = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), format_number);
        let ratio = match (baseline, statelesse, better) {
            (_, _, Better::Neither) => String::new(),
            (Some(b), Some(s), _) if b > 0.0 => format!("{:.2}x", s / b),
            _ => String::new(),
        };
        self.rows
            .push([label.to_owned(), show(baseline), show(statelesse), ratio]);
    }

    fn raw_row(&mut self, cells: &[String; 4]) {
        self.rows.push(cells.clone());
    }

    fn render(&self) -> String {
        let mut out = format!("### {}\n\n", self.title);
        let _ = writeln!(out, "| {} |", self.columns.join(" | "));
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        let verdict = match self.verdict {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let _ = writeln!(out, "\nTarget {}: **{verdict}**", self.target);
        if !self.note.is_empty() {
            let _ = writeln!(out, "\n{}", self.note);
        }
        out
    }
}

fn format_number(value: f64) -> String {
    if value == 0.0 || value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}
