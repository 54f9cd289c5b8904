//! Load benchmark: statelesse against a hand-written axum + Redis pub/sub server, in one run.
//!
//! Run with: `cargo run --release -p bench-load` (every scenario, about three minutes), or
//! `cargo run --release -p bench-load -- --scenario s1,s2` for some of them; `--help` lists
//! the options.
//!
//! It starts a private `redis-server` on a free port and, for each scenario and each server
//! implementation, two server instances (this binary's `serve` subcommand, as child processes)
//! on that Redis: SSE clients connect to instance A, HTTP publishes go to instance B. With two
//! cores or more and `taskset` installed, Redis and both instances run on core 0 and the load
//! generator on core 1, so the server side's CPU time is measured from `/proc` without the load
//! generator in it. The implementations are `statelesse` (routes from `sse_route()` and an HTTP
//! publish endpoint calling `publish`) and `baseline` (the hand-written server in
//! `baseline.rs`). Results are printed as tables, each figure with its ratio to the baseline.
//!
//! The scenarios (sizes as in the issue; `--seconds` changes how long each publishes):
//!
//! - S1 latency: 100 subscribers over 10 keys, 1,000 publishes/s.
//! - S2 throughput: 1,000 subscribers over 100 keys, publishes as fast as possible.
//! - S3 connections: 10,000 idle subscribers over 1,000 keys, 100 publishes/s; resident memory
//!   per connection.
//! - S4 resume storm: 1,000 subscribers over 100 keys drop at once and reconnect with
//!   `Last-Event-ID` while publishing goes on at 1,000/s.
//! - S5 direct publish: `publish` from Rust as fast as possible (history on and off), next to
//!   plain `PUBLISH` from Rust and `redis-benchmark -t publish -P 32` on the same Redis.
//! - S6 resume storm with large events (statelesse only, not in the default run): one channel's
//!   history holds 1,000 events of about 100 KB; `--s6-clients` clients (default 1,000) open it
//!   at once with `Last-Event-ID: 0-0` and read it all; Redis and instance memory, catch-up time.
//! - Cluster (statelesse only, not in the default run): S5's publishes, each channel subscribed
//!   by a second instance, on a Redis Cluster of 1 shard then of 3: publishes/s and
//!   deliveries/s of each.
#![allow(
    clippy::cast_precision_loss,
    reason = "counts and durations shown as f64 stay far below 2^52"
)]

mod baseline;
mod catch_up;
mod client;
mod cluster;
mod measure;
mod options;
mod procfs;
mod report;
mod scenarios;
mod server;

use serde::{Deserialize, Serialize};
use statelesse::SseEvent;
use statelesse::ts_rs::TS;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// With `--features mimalloc`, the benchmark's processes (the server instances it starts are
/// this binary) allocate with mimalloc instead of the system's allocator: S3's allocator rows.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The benchmark's event: which key, its sequence number on that key, and when it was sent.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "bench", key = "room")]
pub struct Tick {
    /// The channel's key.
    pub room: u32,
    /// The sequence number on this key, from 0 with no hole: what the clients check.
    pub seq: u64,
    /// When the load generator sent it, in nanoseconds of its own monotonic clock.
    pub sent_ns: u64,
    /// Filler, so that the event is about the size of a small real one.
    pub text: String,
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => server::main(&args[1..]),
        _ => scenarios::main(&args),
    }
}
