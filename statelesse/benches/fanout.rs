//! Fan-out cost of one publish to 1, 100 and 10,000 in-memory subscribers.
//!
//! `publish` measures the publisher alone: flat in the number of subscribers, because an event is
//! serialized once and handed over as one shared `Arc`. `publish_and_receive` adds every
//! subscriber taking the event off its queue; its slope is the cost per extra subscriber.
//!
//! Run with: `cargo bench -p statelesse --bench fanout`
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark: setup failures abort it

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use statelesse::backplane::subscription::RawSubscription;
use statelesse::prelude::*;
use ts_rs::TS;

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "bench", key = "room")]
struct Tick {
    room: u32,
    player_name: String,
    score: i64,
    tags: Vec<String>,
}

fn tick() -> Tick {
    Tick {
        room: 1,
        player_name: "ada lovelace".into(),
        score: 1_000_000,
        tags: vec!["alpha".into(), "beta".into(), "gamma".into()],
    }
}

const SUBSCRIBERS: [usize; 3] = [1, 100, 10_000];

async fn subscribers(bp: &Backplane, n: usize) -> Vec<RawSubscription> {
    let mut subs = Vec::with_capacity(n);
    for _ in 0..n {
        subs.push(Tick::stream(bp, &1).await.unwrap().into_raw());
    }
    subs
}

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let event = tick();

    let mut group = c.benchmark_group("publish");
    for n in SUBSCRIBERS {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let bp = Backplane::in_memory();
            let _subs = rt.block_on(subscribers(&bp, n));
            b.iter(|| rt.block_on(bp.publish(black_box(&event))).unwrap());
        });
    }
    group.finish();

    let mut group = c.benchmark_group("publish_and_receive");
    group.sample_size(20);
    for n in SUBSCRIBERS {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            let bp = Backplane::in_memory();
            let mut subs = rt.block_on(subscribers(&bp, n));
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    rt.block_on(bp.publish(&event)).unwrap();
                    for sub in &mut subs {
                        let message = sub.next().now_or_never().flatten().unwrap().unwrap();
                        black_box(message);
                    }
                    total += start.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
