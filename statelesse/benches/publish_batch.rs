//! Building the `EVALSHA` command of one Redis publish batch: what the publisher does, per batch,
//! before sending it. A batch of one is a lone publish; under load a batch holds everything that
//! queued while the previous script call was in flight (up to 256 events). Throughput is in
//! events, so the per-event cost of a batch reads next to a lone publish's. `command` spreads
//! the events over 100 channels (one body each, as in S5 of `bench-load`); `one_channel` sends
//! them all to one channel, framed into one body (a hot channel).
//!
//! The end-to-end figure (Redis included) is the binary's: `cargo run --release -p
//! bench-redis-publish`, and S5 of `bench-load`.
//!
//! Run with: `cargo bench -p statelesse --features redis --bench publish_batch`
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use statelesse::__bench::publish_batch_command;

fn publish_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_batch");
    let filler = "x".repeat(64);
    let data = format!(r#"{{"room":42,"seq":123456,"sent_ns":987654321,"text":"{filler}"}}"#);
    let channels: Vec<String> = (0..100).map(|room| format!("bench:{room}:Tick")).collect();
    for size in [1usize, 32, 256] {
        let events: Vec<(&str, &str, &[u8])> = (0..size)
            .map(|i| (channels[i % 100].as_str(), "Tick", data.as_bytes()))
            .collect();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::new("command", size), &events, |b, events| {
            b.iter(|| black_box(publish_batch_command(black_box(events))));
        });
        let hot: Vec<(&str, &str, &[u8])> = (0..size)
            .map(|_| (channels[0].as_str(), "Tick", data.as_bytes()))
            .collect();
        group.bench_with_input(BenchmarkId::new("one_channel", size), &hot, |b, events| {
            b.iter(|| black_box(publish_batch_command(black_box(events))));
        });
    }
    group.finish();
}

criterion_group!(benches, publish_batch);
criterion_main!(benches);
