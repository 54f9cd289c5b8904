//! The SSE delivery path of one connection: what polling its body costs per delivered event,
//! when 1, 16 or 64 events are queued for it.
//!
//! Each iteration publishes N events in memory, frames them (untimed: framing is paid once per
//! message per instance, `framing` measures it), then times polling the connection's body until
//! it has nothing ready, as hyper does: every ready frame comes out in one chunk, so the cost
//! of a poll (the subscription's lock, the shutdown and keep-alive checks, the watchdog's
//! progress mark) is shared by the events of the chunk. One queued event is its cached frame,
//! uncopied; more are copied into one buffer. Throughput is in delivered events; the bytes per
//! poll are printed once per size. `delivery` has the route's defaults (a keep-alive timer, a
//! write-timeout watchdog), `delivery_bare` neither.
//!
//! Run with: `cargo bench -p statelesse --all-features --bench delivery`
#![allow(missing_docs, clippy::unwrap_used)] // a benchmark: setup failures abort it

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use statelesse::__bench::{sse_body, sse_frame};
use statelesse::MemoryConfig;
use statelesse::prelude::*;
use ts_rs::TS;

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "bench", key = "room")]
struct Tick {
    room: u32,
    seq: u64,
    sent_ns: u64,
    text: String,
}

/// About the load benchmark's event: 120 bytes of JSON.
fn tick(seq: u64) -> Tick {
    Tick {
        room: 42,
        seq,
        sent_ns: 1_700_000_000_000_000_000,
        text: "x".repeat(64),
    }
}

const QUEUED: [u64; 3] = [1, 16, 64];

fn delivery(c: &mut Criterion) {
    // The route's defaults: a keep-alive timer and a write-timeout watchdog.
    bench_group(
        c,
        "delivery",
        Duration::from_secs(15),
        Duration::from_secs(30),
    );
    // Neither: the body's own work alone.
    bench_group(c, "delivery_bare", Duration::ZERO, Duration::ZERO);
}

fn bench_group(c: &mut Criterion, name: &str, keep_alive: Duration, write_timeout: Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group(name);
    for n in QUEUED {
        let mut polls = 0_u64;
        let mut bytes = 0_usize;
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("queued", n), &n, |b, &n| {
            let bp =
                Backplane::in_memory_with(MemoryConfig::default().with_subscriber_buffer(4096));
            let (mut framer, mut body) = rt.block_on(async {
                let framer = Tick::stream(&bp, &42).await.unwrap().into_raw();
                let subscription = Tick::stream(&bp, &42).await.unwrap().into_raw();
                let body = sse_body(subscription, Tick::KIND, keep_alive, write_timeout);
                (framer, body)
            });
            let mut seq = 0;
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let mut expected = 0;
                        for _ in 0..n {
                            seq += 1;
                            Tick::publish(&bp, tick(seq)).await.unwrap();
                            let message = framer.next().await.unwrap().unwrap();
                            expected += sse_frame(&message).unwrap().len();
                        }
                        let start = Instant::now();
                        let mut got = 0;
                        // Until the body has nothing ready, as hyper polls it.
                        while let Some(Some(chunk)) = body.next().now_or_never() {
                            got += chunk.unwrap().len();
                            polls += 1;
                        }
                        timed += start.elapsed();
                        assert_eq!(got, expected);
                        bytes += got;
                    }
                    timed
                })
            });
        });
        println!(
            "{name}/queued/{n}: {} bytes per chunk",
            bytes / usize::try_from(polls.max(1)).unwrap()
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = delivery
}
criterion_main!(benches);
