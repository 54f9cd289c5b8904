//! The load generator: the scenarios S1–S6, run one after the other, each printing its table.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use redis::AsyncCommands as _;
use statelesse::RedisConfig;
use statelesse::prelude::*;
use statelesse_test_redis::RedisServer;

use crate::catch_up::{self, Storm};
use crate::client;
use crate::measure::{Env, Load, Run, compare, load_run, memory_floor};
use crate::options::{Options, USAGE};
use crate::procfs::{self, Pinning};
use crate::report::{
    Better, Table, cpu_rows, delivery_rows, find, format_number, latency_rows, ratio,
};
use crate::server::Impl;
use crate::{BoxError, Tick};

/// The load generator's entry point.
pub(crate) fn main(args: &[String]) -> Result<(), BoxError> {
    let Some(options) = Options::parse(args)? else {
        print!("{USAGE}");
        return Ok(());
    };
    rlimit::increase_nofile_limit(u64::MAX)?;
    let _ = crate::server::SERVER_ENV.set(crate::server::server_env(&options));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options, Pinning::detect()))
}

async fn run(options: Options, pinning: Pinning) -> Result<(), BoxError> {
    let redis = RedisServer::try_start_with(&["--maxclients", "20000"])?;
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
        env.pinning.place(env.redis_pid()?, Pinning::SERVER_CORE)?;
        let table = match scenario.as_str() {
            "s1" => s1(&env).await?,
            "s2" => s2(&env).await?,
            "s2r" => s2_at_rate(&env).await?,
            "s3" => s3(&env).await?,
            "s4" => s4(&env).await?,
            "s5" => s5(&env).await?,
            "s6" => s6(&env).await?,
            "s7" => s7(&env).await?,
            "cluster" => crate::cluster::cluster(&env).await?,
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

async fn s1(env: &Env) -> Result<Table, BoxError> {
    let load = Load {
        subscribers: 100,
        keys: 10,
        rate: Some(env.options.rate.unwrap_or(1000.0)),
        publishers: 10,
        seconds: env.options.seconds,
        storm_at: None,
        channels: 1,
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
        channels: 1,
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
        channels: 1,
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

/// S7: the same events to 10,000 channel subscriptions over 1,000 keys, once as 10,000
/// single-channel connections and once as 1,000 connections of 10 channels (the multiplexed
/// route), both statelesse: CPU per delivery and memory per channel.
async fn s7(env: &Env) -> Result<Table, BoxError> {
    let rate = env.options.rate.unwrap_or(1000.0);
    let single = Load {
        subscribers: 10_000,
        keys: 1000,
        rate: Some(rate),
        publishers: 10,
        seconds: env.options.seconds,
        storm_at: None,
        channels: 1,
    };
    let mux = Load {
        subscribers: 1000,
        channels: 10,
        ..single.clone()
    };
    let per_cpu = |run: &Run| run.delivered as f64 / run.cpu.server().max(1e-9);
    let mut runs = Vec::new();
    for (name, load) in [("single", &single), ("multiplexed", &mux)] {
        let mut rounds = Vec::new();
        for round in 0..env.options.rounds {
            eprintln!("S7: {name} (round {})", round + 1);
            let run = load_run(env, Impl::Statelesse, load).await?;
            eprintln!(
                "  {:.0} deliveries/s, lost {}, dup {}, server CPU {:.2} s (A {:.2}), {:.0} deliveries per server CPU-second",
                run.per_second(),
                run.lost,
                run.duplicated,
                run.cpu.server(),
                run.cpu.a,
                per_cpu(&run),
            );
            rounds.push(run);
        }
        rounds.sort_by(|x, y| per_cpu(x).total_cmp(&per_cpu(y)));
        runs.push(rounds.swap_remove(rounds.len() / 2));
    }
    let multiplexed = runs.pop().ok_or("no multiplexed run")?;
    let single_run = runs.pop().ok_or("no single-channel run")?;
    // The report's two columns, relabelled: both are statelesse.
    let runs = [
        (Impl::Baseline, single_run),
        (Impl::Statelesse, multiplexed),
    ];
    let mut table = Table::new(
        &format!(
            "S7 multiplexed: 10,000 channel subscriptions over 1,000 keys, {rate:.0} publishes/s: 10,000 connections of 1 channel, or 1,000 of 10"
        ),
        "S7: none (a comparison)",
    );
    table.columns = [
        "",
        "10,000 × 1 channel",
        "1,000 × 10 channels",
        "multiplexed / single",
    ];
    cpu_rows(&mut table, &runs, per_cpu);
    table.row(
        "resident memory per connection (KiB, instance A)",
        Better::Neither,
        &runs,
        |run| Some(run.rss_per_connection),
    );
    table.row(
        "resident memory per channel (KiB, instance A)",
        Better::Lower,
        &runs,
        |run| Some(run.rss_per_channel),
    );
    delivery_rows(&mut table, &runs);
    latency_rows(&mut table, &runs);
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
        channels: 1,
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
        channels: 1,
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
        "S5: publishes/s with history off at least 50% of redis-benchmark's pipelined PUBLISH",
    );
    table.columns = [
        "",
        "publishes/s",
        "CPU µs per publish: Redis / publisher (Redis per call, events per call)",
        "x redis-benchmark",
    ];
    let bench = redis_benchmark(env)?;
    let mut rows = Vec::new();
    for (label, history, linger) in s5_runs(env.options.publish_linger_ms) {
        let kind = if history.is_some() {
            Impl::Statelesse
        } else {
            Impl::Baseline
        };
        if !env.options.impls.contains(&kind) {
            continue;
        }
        eprintln!("S5: {label}");
        env.redis.try_cmd(&["FLUSHALL"])?;
        env.redis.try_cmd(&["CONFIG", "RESETSTAT"])?;
        let redis_cpu = procfs::cpu_seconds(env.redis_pid()?)?;
        let own_cpu = procfs::cpu_seconds(std::process::id())?;
        let rate = match history {
            Some(history) => direct_publish(env, history, linger, count, IN_FLIGHT).await?,
            None => plain_publish(env, count, IN_FLIGHT).await?,
        };
        let redis_cpu = procfs::cpu_seconds(env.redis_pid()?)? - redis_cpu;
        let own_cpu = procfs::cpu_seconds(std::process::id())? - own_cpu;
        let per_call = call_stats(env, history.is_some(), count)?;
        rows.push((
            label,
            rate,
            redis_cpu / count as f64 * 1e6,
            own_cpu / count as f64 * 1e6,
            per_call,
        ));
    }
    for (label, rate, redis, own, per_call) in &rows {
        table.raw_row(&[
            label.clone(),
            format!("{rate:.0}"),
            format!("{redis:.2} / {own:.2}{per_call}"),
            format!("{:.2}", rate / bench),
        ]);
    }
    table.raw_row(&[
        "redis-benchmark -P 32 PUBLISH (50 clients)".to_owned(),
        format!("{bench:.0}"),
        String::new(),
        "1.00".to_owned(),
    ]);
    // The ceiling of the publish script on this Redis, without any client in the way: one
    // event per call (refreshing the TTL each time), 32 channels of one event per call
    // (refreshing the first only), and one channel of 32 events per call (a hot channel).
    for (channels, per_channel) in [(1, 1), (32, 1), (1, 32)] {
        let batch = channels * per_channel;
        for (label, history) in [("on (1,000)", "1000"), ("off", "0")] {
            env.redis.try_cmd(&["CONFIG", "RESETSTAT"])?;
            let rate = script_benchmark(env, history, channels, per_channel)?;
            let per_call = command_stats(env, "evalsha")?
                .map(|(_, usec)| format!("{:.2} (call {usec:.2})", usec / batch as f64))
                .unwrap_or_default();
            table.raw_row(&[
                format!(
                    "redis-benchmark -P 32 EVALSHA of the publish script, {channels} channel(s) of {per_channel} event(s) per call, history {label}"
                ),
                format!("{rate:.0}"),
                per_call,
                format!("{:.2}", rate / bench),
            ]);
        }
    }
    table.verdict = rows
        .iter()
        .find(|(label, ..)| label.ends_with("history off"))
        .map(|(_, rate, ..)| rate / bench >= 0.5);
    Ok(table)
}

/// S6: a storm of clients resuming one channel from `0-0`, each reading a history of 1,000 large
/// events; statelesse only, since the baseline has no history to resume from.
async fn s6(env: &Env) -> Result<Table, BoxError> {
    let clients = env.options.s6_clients;
    let mut table = Table::new(
        &format!(
            "S6 resume storm with large events: {clients} clients open one channel at once with Last-Event-ID 0-0 and read its history of 1,000 events of ~100 KB (statelesse only: the baseline has no history)"
        ),
        "S6 (correctness only, no figure set yet): every client gets exactly 1,000 events, in order, with no gap and no error",
    );
    if !env.options.impls.contains(&Impl::Statelesse) {
        table.raw_row(&[
            "not run: S6 measures statelesse only, which `--impl` leaves out".to_owned(),
            String::new(),
            String::new(),
            String::new(),
        ]);
        return Ok(table);
    }
    eprintln!("S6: statelesse, {clients} clients");
    let storm = catch_up::storm(env, clients).await?;
    s6_client_rows(&mut table, &storm);
    s6_cost_rows(&mut table, &storm);
    let outcomes = &storm.outcomes;
    table.verdict = Some(outcomes.iter().all(|o| {
        o.received == catch_up::EVENTS
            && o.lost == 0
            && o.duplicated == 0
            && o.gaps == 0
            && o.error.is_none()
    }));
    if let Some(error) = outcomes.iter().find_map(|o| o.error.as_deref()) {
        eprintln!("S6: the first client error: {error}");
    }
    Ok(table)
}

/// A row of S6: the baseline column says it was not measured, the ratio column stays empty.
fn s6_row(table: &mut Table, label: &str, value: String) {
    table.raw_row(&[label.to_owned(), "–".to_owned(), value, String::new()]);
}

/// S6's rows of what the clients saw.
fn s6_client_rows(table: &mut Table, storm: &Storm) {
    let outcomes = &storm.outcomes;
    let sum = |f: fn(&catch_up::Outcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    let count = |f: fn(&catch_up::Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let ms = |d: Option<Duration>| {
        d.map_or_else(|| "–".to_owned(), |d| format_number(d.as_secs_f64() * 1e3))
    };
    let (events, bytes) = (catch_up::EVENTS, catch_up::EVENT_BYTES);
    s6_row(
        table,
        "history to resume from (baseline: none, so not measured)",
        format!(
            "{events} events × ~100 KB ({:.0} MB)",
            events as f64 * bytes as f64 / 1e6
        ),
    );
    s6_row(table, "clients", outcomes.len().to_string());
    s6_row(
        table,
        "clients caught up (every event)",
        count(|o| o.caught_up.is_some()).to_string(),
    );
    let caught_up = quantiles(outcomes.iter().filter_map(|o| o.caught_up));
    let first = quantiles(outcomes.iter().filter_map(|o| o.first_event));
    s6_row(table, "caught up after, p50 (ms)", ms(caught_up.0));
    s6_row(table, "caught up after, max (ms)", ms(caught_up.1));
    s6_row(table, "first event after, p50 (ms)", ms(first.0));
    s6_row(table, "first event after, max (ms)", ms(first.1));
    let received = outcomes.iter().map(|o| o.received);
    let (min, max) = (received.clone().min(), received.max());
    s6_row(
        table,
        "events per client, min / max",
        format!("{} / {}", min.unwrap_or(0), max.unwrap_or(0)),
    );
    s6_row(table, "lost", sum(|o| o.lost).to_string());
    s6_row(table, "duplicated", sum(|o| o.duplicated).to_string());
    s6_row(table, "gap events", sum(|o| o.gaps).to_string());
    let gap = quantiles(outcomes.iter().filter_map(|o| o.first_gap));
    s6_row(table, "first gap event after, p50 (ms)", ms(gap.0));
    s6_row(table, "first gap event after, max (ms)", ms(gap.1));
    s6_row(
        table,
        "errors (clients)",
        count(|o| o.error.is_some()).to_string(),
    );
    s6_row(table, "503 answers", sum(|o| o.unavailable).to_string());
    s6_row(
        table,
        "… retried after Retry-After",
        sum(|o| o.retries).to_string(),
    );
    s6_row(
        table,
        "received by the clients (MiB)",
        format_number(sum(|o| o.bytes) as f64 / f64::from(1 << 20)),
    );
    s6_row(
        table,
        "every client done after (s)",
        format_number(storm.seconds),
    );
    s6_row(
        table,
        "instance and Redis quiet after (s)",
        format_number(storm.busy),
    );
}

/// S6's rows of what the storm cost the server side.
fn s6_cost_rows(table: &mut Table, storm: &Storm) {
    let mib = |bytes: u64| format_number(bytes as f64 / f64::from(1 << 20));
    let kib = |kib: u64| format_number(kib as f64 / 1024.0);
    s6_row(
        table,
        "Redis used_memory before the storm (MiB)",
        mib(storm.redis_used_before),
    );
    s6_row(
        table,
        if storm.peak_reset {
            "Redis used_memory_peak after the storm (MiB; reset before it)"
        } else {
            "Redis used_memory_peak after the storm (MiB; not resettable here, see the next row)"
        },
        mib(storm.redis_peak_after),
    );
    s6_row(
        table,
        "… used_memory_peak before the storm (MiB)",
        mib(storm.redis_peak_before),
    );
    s6_row(
        table,
        "Redis used_memory_peak growth over used_memory before (MiB)",
        mib(storm.redis_peak_growth()),
    );
    let (redis, server) = (storm.redis_rss, storm.server_rss);
    s6_row(
        table,
        "Redis resident memory before / peak (MiB, VmRSS / VmHWM)",
        format!("{} / {}", kib(redis.0), kib(redis.1)),
    );
    s6_row(
        table,
        "instance resident memory before / peak (MiB, VmRSS / VmHWM)",
        format!("{} / {}", kib(server.0), kib(server.1)),
    );
    s6_row(
        table,
        "instance resident memory growth (MiB)",
        kib(server.1.saturating_sub(server.0)),
    );
    let (instance, redis, load) = storm.cpu;
    s6_row(
        table,
        "CPU s during the storm: instance / Redis / load generator",
        format!("{instance:.2} / {redis:.2} / {load:.2}"),
    );
}

/// The median and the maximum of `durations`.
fn quantiles(durations: impl Iterator<Item = Duration>) -> (Option<Duration>, Option<Duration>) {
    let mut sorted: Vec<Duration> = durations.collect();
    sorted.sort_unstable();
    (
        sorted.get(sorted.len() / 2).copied(),
        sorted.last().copied(),
    )
}

/// S5's publishers: label, history (`None`: the baseline's plain `PUBLISH`) and publish linger;
/// with a linger (`--publish-linger`), statelesse's two rows again with it.
fn s5_runs(linger_ms: Option<f64>) -> Vec<(String, Option<usize>, Duration)> {
    let mut runs = vec![
        (
            "statelesse `publish`, history on (1,000)".to_owned(),
            Some(1000),
            Duration::ZERO,
        ),
        (
            "statelesse `publish`, history off".to_owned(),
            Some(0),
            Duration::ZERO,
        ),
    ];
    if let Some(ms) = linger_ms {
        let linger = Duration::from_secs_f64(ms / 1000.0);
        runs.push((
            format!("statelesse `publish`, history on (1,000), linger {ms} ms"),
            Some(1000),
            linger,
        ));
        runs.push((
            format!("statelesse `publish`, history off, linger {ms} ms"),
            Some(0),
            linger,
        ));
    }
    runs.push((
        "baseline: plain PUBLISH, multiplexed connection".to_owned(),
        None,
        Duration::ZERO,
    ));
    runs
}

/// `publish` of `count` events over 100 keys with `in_flight` at once, with a publish linger
/// of `linger`; events/s.
async fn direct_publish(
    env: &Env,
    history: usize,
    linger: Duration,
    count: u64,
    in_flight: usize,
) -> Result<f64, BoxError> {
    let config = RedisConfig::new(&env.redis.url())?
        .with_history_len(history)
        .with_publish_linger(linger);
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
    let mut connection = client.get_multiplexed_async_connection().await?;
    // redis-rs answers a reply later than 500 ms with an error by default, which a loaded
    // machine reaches with 256 in flight; statelesse's own publishes wait 4 s.
    connection.set_response_timeout(Duration::from_secs(4));
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

/// `redis-benchmark -P 32` running statelesse's publish script over 100 streams with
/// event-sized messages, `channels` channels of `per_channel` events per call, history length
/// `history` and a one-hour time-to-live (refreshed by the first channel of each call): events
/// per second.
fn script_benchmark(
    env: &Env,
    history: &str,
    channels: usize,
    per_channel: usize,
) -> Result<f64, BoxError> {
    let sha = env
        .redis
        .try_cmd(&["SCRIPT", "LOAD", statelesse::__bench::PUBLISH_SCRIPT])?;
    let message = "x".repeat(env.text.len() + 45);
    let events = vec![("Tick", message.as_bytes()); per_channel];
    let body = String::from_utf8(statelesse::__bench::publish_batch_body(&events))?;
    let keys = vec!["bench:h:{__rand_int__}"; channels];
    let refresh = format!("1{}", "0".repeat(channels - 1));
    let mut args = vec!["EVALSHA".to_owned(), sha, channels.to_string()];
    args.extend(keys.iter().map(|key| (*key).to_owned()));
    args.extend([history.to_owned(), "3600000".to_owned(), refresh]);
    for _ in 0..channels {
        args.extend(["bench:{__rand_int__}".to_owned(), body.clone()]);
    }
    let batch = channels * per_channel;
    let requests = (500_000 / batch).to_string();
    let output = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &env.redis.port().to_string()])
        .args(["-P", "32", "-n", &requests, "-r", "100", "--csv"])
        .args(&args)
        .output()?;
    // The command holds newlines (the body), so its CSV line is split: the rate is the first
    // number on the last line.
    let csv = String::from_utf8_lossy(&output.stdout);
    let rate = csv
        .lines()
        .last()
        .and_then(|line| {
            line.split(',')
                .find_map(|field| field.trim_matches('"').parse::<f64>().ok())
        })
        .ok_or_else(|| format!("redis-benchmark printed no EVALSHA result: {csv}"))?;
    Ok(rate * batch as f64)
}

/// Redis's own account of S5's calls since the last `CONFIG RESETSTAT`, for `count` events:
/// ` (µs per call, events per call)`, and for the publish script (`scripted`) the stream entries
/// per call (one per channel per call), or nothing when Redis has no figures.
fn call_stats(env: &Env, scripted: bool, count: u64) -> Result<String, BoxError> {
    let command = if scripted { "evalsha" } else { "publish" };
    let Some((calls, usec)) = command_stats(env, command)? else {
        return Ok(String::new());
    };
    let events = count as f64 / calls as f64;
    let entries = match command_stats(env, "xadd")? {
        Some((appends, _)) if scripted => {
            format!(", {:.1} entries", appends as f64 / calls as f64)
        }
        _ => String::new(),
    };
    Ok(format!(" ({usec:.2} µs, {events:.1}{entries})"))
}

/// Redis's `INFO commandstats` for `command` since the last `CONFIG RESETSTAT`: calls and
/// microseconds per call.
fn command_stats(env: &Env, command: &str) -> Result<Option<(u64, f64)>, BoxError> {
    let stats = env.redis.try_cmd(&["INFO", "commandstats"])?;
    let prefix = format!("cmdstat_{command}:");
    let Some(line) = stats.lines().find_map(|line| line.strip_prefix(&prefix)) else {
        return Ok(None);
    };
    let field = |name: &str| {
        line.split(',')
            .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
    };
    match (field("calls"), field("usec_per_call")) {
        (Some(calls), Some(usec)) => Ok(Some((calls.parse()?, usec.parse()?))),
        _ => Ok(None),
    }
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
