//! The Redis envelope of one event, `statelesse/3\n<id>\n1\n<event>\n<length>\n<data>`: decoded
//! once per message per instance (the data stays a zero-copy slice of the payload).
//!
//! The envelope is built by the publisher (its body) and the publish script inside Redis (its
//! header); `encode` is the same layout built in Rust, the reference for what `decode` reads (S5 of the load benchmark measures
//! the script).
//!
//! Run with: `cargo bench -p statelesse --features redis --bench envelope`
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use statelesse::__bench::{decode_envelope, encode_envelope};
use statelesse::EventId;

fn envelope(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope");
    let id = EventId::new(1_700_000_000_000, 7);
    for len in [100, 1024] {
        let filler = "x".repeat(len - 48);
        let data = format!(r#"{{"room":42,"seq":123456,"sent_ns":987654321,"text":"{filler}"}}"#);
        let payload = Bytes::from(encode_envelope(id, &[("PlayerJoined", data.as_bytes())]));
        group.throughput(Throughput::Bytes(payload.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", len), &data, |b, data| {
            b.iter(|| {
                black_box(encode_envelope(
                    id,
                    &[("PlayerJoined", black_box(data.as_bytes()))],
                ))
            });
        });
        group.bench_with_input(BenchmarkId::new("decode", len), &payload, |b, payload| {
            b.iter(|| black_box(decode_envelope(black_box(payload))));
        });
    }
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
