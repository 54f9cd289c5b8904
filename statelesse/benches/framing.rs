//! SSE framing: what one message costs the routes, once per instance and once per subscriber.
//!
//! `first` builds a message's frame (`id:`, `event:`, `data:` lines, as `Bytes`): paid once per
//! message on each instance. `shared` is what every further subscriber of that instance pays for
//! the same message: the cached frame's reference count. `axum_event` is what a hand-written
//! server pays per subscriber instead: building an `axum::response::sse::Event` for each one.
//!
//! Run with: `cargo bench -p statelesse --all-features --bench framing`
#![allow(missing_docs)]

use std::hint::black_box;

use axum::response::sse::Event;
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use statelesse::__bench::sse_frame;
use statelesse::{EventId, Message};

fn payload(len: usize) -> Bytes {
    let filler = "x".repeat(len.saturating_sub(48));
    Bytes::from(format!(
        r#"{{"room":42,"seq":123456,"sent_ns":987654321,"text":"{filler}"}}"#
    ))
}

fn message(data: &Bytes) -> Message {
    Message::new(EventId::new(1_700_000_000_000, 7), "Tick", data.clone())
}

fn framing(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame");
    for len in [100, 1024] {
        let data = payload(len);
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::new("first", len), &data, |b, data| {
            b.iter_batched(
                || message(data),
                |message| black_box(sse_frame(&message)),
                BatchSize::SmallInput,
            );
        });
        group.bench_with_input(BenchmarkId::new("shared", len), &data, |b, data| {
            let message = message(data);
            let _ = sse_frame(&message);
            b.iter(|| black_box(sse_frame(black_box(&message))));
        });
        group.bench_with_input(BenchmarkId::new("axum_event", len), &data, |b, data| {
            let json = std::str::from_utf8(data).unwrap_or_default();
            let id = EventId::new(1_700_000_000_000, 7);
            b.iter(|| {
                black_box(
                    Event::default()
                        .id(id.to_string())
                        .event("Tick")
                        .data(black_box(json)),
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, framing);
criterion_main!(benches);
