//! Shared helpers of the integration tests: a test app, an SSE reader, the WHATWG event-stream
//! parser, the backplane suite (the private `redis-server` is the workspace's
//! `statelesse-test-redis`).

// Test helpers fail by panicking, with `unwrap()` as in tests (STYLE §5); saying so on each is noise.
#![allow(
    clippy::unwrap_used,
    clippy::missing_panics_doc,
    clippy::missing_errors_doc
)]

pub mod app;
pub mod event_stream;
pub mod sse;
pub mod suite;
