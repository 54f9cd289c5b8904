//! Key escaping and channel names: paid once per publish and once per subscribe.
//!
//! `escape_key` percent-encodes the characters that could forge another channel (`:`, `{`, `}`,
//! `%`, controls, non-ASCII); `channel` builds a whole `Channel<E>` name from a typed key.
//!
//! Run with: `cargo bench -p statelesse --bench keys`
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use statelesse::escape_key;
use statelesse::prelude::*;
use ts_rs::TS;

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "game", key = "game_id")]
struct ByNumber {
    game_id: u64,
}

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "chat", key = "room")]
struct ByText {
    room: String,
}

fn keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("escape_key");
    for (name, key) in [
        ("plain", "player-1234567"),
        ("separators", "lobby:1{eu}%42"),
        ("unicode", "salle-à-manger-☕"),
        (
            "long_plain",
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
    ] {
        group.bench_with_input(BenchmarkId::from_parameter(name), key, |b, key| {
            b.iter(|| black_box(escape_key(black_box(key))));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("channel");
    group.bench_function("u64", |b| {
        b.iter(|| black_box(ByNumber::channel(black_box(&1_234_567_890))));
    });
    let plain = "player-1234567".to_owned();
    group.bench_function("string_plain", |b| {
        b.iter(|| black_box(ByText::channel(black_box(&plain))));
    });
    let escaped = "lobby:1{eu}%42".to_owned();
    group.bench_function("string_escaped", |b| {
        b.iter(|| black_box(ByText::channel(black_box(&escaped))));
    });
    group.finish();
}

criterion_group!(benches, keys);
criterion_main!(benches);
