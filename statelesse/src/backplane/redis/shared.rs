//! What the transport handle and its subscriber task share: the hub, the publisher connection,
//! the Redis names and scripts, the settings, whether the transport has connected yet, and the
//! counters behind the diagnostics.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use ::redis::Client;
use ::redis::aio::ConnectionManager;
use tokio::sync::watch;

use super::config::Settings;
use super::envelope::{Names, Scripts};
use crate::backplane::hub::Hub;
use crate::telemetry::RedisMetrics;

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
    /// Whether the transport has reached Redis yet: [`Phase::Ready`] from the start when built
    /// eagerly; set by the subscriber task once a lazily built transport first connected.
    pub(super) phase: watch::Sender<Phase>,
}

/// How far a transport got in reaching Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Built lazily and not connected yet: publishes fail with `NotConnected`, subscribes wait.
    Starting,
    /// Connected at least once: from now on it behaves as if built eagerly.
    Ready,
    /// Shut down.
    Closed,
}

/// Counters behind [`RedisDiagnostics`](crate::diagnostics::RedisDiagnostics), and the metrics
/// that follow them (one method per change, so the two never drift apart).
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) connected: AtomicBool,
    pub(super) reconnects: AtomicU64,
    pub(super) subscribed: AtomicUsize,
    pub(super) malformed: AtomicU64,
    /// Channels told to recover from history after a reconnect.
    pub(super) recoveries: AtomicU64,
    /// History refills that local subscribers gave up on, reporting a gap.
    pub(super) refills_given_up: AtomicU64,
    pub(super) published: AtomicU64,
    metrics: RedisMetrics,
}

impl Stats {
    pub(super) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
        self.metrics.connected(up);
    }

    pub(super) fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        self.metrics.reconnected();
    }

    pub(super) fn count_recovery(&self) {
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        self.metrics.recovery();
    }

    pub(super) fn count_malformed(&self) {
        self.malformed.fetch_add(1, Ordering::Relaxed);
        self.metrics.malformed();
    }

    pub(super) fn count_refill_given_up(&self) {
        self.refills_given_up.fetch_add(1, Ordering::Relaxed);
        self.metrics.refill_given_up();
    }
}
