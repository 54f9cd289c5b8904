//! What the transport handle and its subscriber task share: the hub, the publisher connection,
//! the Redis names and scripts, the settings, and the counters behind the diagnostics.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

use ::redis::Client;
use ::redis::aio::ConnectionManager;

use super::config::Settings;
use super::envelope::{Names, Scripts};
use crate::backplane::hub::Hub;

/// What the transport and the subscriber task share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) hub: Hub<()>,
    pub(super) names: Names,
    pub(super) scripts: Scripts,
    /// The multiplexed connection publishes go through.
    pub(super) publisher: ConnectionManager,
    /// The multiplexed connection history reads go through, apart from publishes.
    pub(super) reader: ConnectionManager,
    /// Opens the pub/sub connection again after it dropped.
    pub(super) client: Client,
    pub(super) settings: Settings,
    pub(super) stats: Stats,
}

/// Counters behind [`RedisDiagnostics`](crate::diagnostics::RedisDiagnostics).
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) connected: AtomicBool,
    pub(super) reconnects: AtomicU64,
    pub(super) subscribed: AtomicUsize,
    pub(super) malformed: AtomicU64,
    pub(super) gap_refills: AtomicU64,
    pub(super) published: AtomicU64,
}
