//! What the transport handle and its subscriber task share: the hub, the publisher connection,
//! the Redis names and scripts, the settings, whether the transport has connected yet, and the
//! counters behind the diagnostics. In a cluster, each node has one, sharing the hub.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ::redis::Client;
use ::redis::aio::ConnectionManager;
use tokio::sync::{mpsc, watch};

use super::config::Settings;
use super::envelope::{Names, Scripts};
use crate::backplane::hub::Hub;
use crate::telemetry::RedisMetrics;

/// What the transport and the subscriber task share.
#[derive(Debug)]
pub(super) struct Shared {
    /// The local fan-out; in a cluster, one for every node.
    pub(super) hub: Arc<Hub<()>>,
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
    /// In a cluster, the node this is one shard of: its subscriber uses sharded pub/sub and
    /// reports to the cluster's router, and its publish batches are split by slot.
    pub(super) shard: Option<Shard>,
}

/// One node of a cluster, as its [`Shared`] knows it.
#[derive(Debug)]
pub(super) struct Shard {
    /// `host:port`, as the cluster names it.
    pub(super) address: Arc<str>,
    /// Where the node's subscriber tells the router what only the router can handle.
    pub(super) reports: mpsc::UnboundedSender<ShardReport>,
}

/// What a shard's subscriber tells the cluster's router.
#[derive(Debug)]
// Read only by the cluster transport's router (feature `redis-cluster`).
#[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
pub(super) enum ShardReport {
    /// `channel` is no longer served by the shard at `from` (a `MOVED` reply, or an unsolicited
    /// `SUNSUBSCRIBE`): subscribe it on its owner, and hand it `waiters`.
    Moved {
        from: Arc<str>,
        channel: Box<str>,
        waiters: Vec<super::subscriber::Reply>,
    },
    /// The shard at `from` lost its connection: its slots may have a new owner.
    Down { from: Arc<str> },
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
#[derive(Debug)]
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
    /// Slot moves seen by a cluster shard: `MOVED` replies and unsolicited `SUNSUBSCRIBE`s.
    pub(super) migrations: AtomicU64,
    /// The pub/sub connections behind the one `connected` gauge: this one alone on one Redis,
    /// every shard's in a cluster.
    links: Arc<Links>,
    /// Whether this connection is counted in `links` as lost.
    lost: AtomicBool,
    metrics: RedisMetrics,
}

/// How many of the pub/sub connections behind the `connected` gauge are lost: the gauge says 1
/// only while none is, so a cluster reports connected like one Redis, only with every shard up.
#[derive(Debug, Default)]
struct Links {
    lost: Mutex<usize>,
}

impl Stats {
    /// The counters of another connection behind the same `connected` gauge: a cluster's shard.
    #[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
    pub(super) fn sibling(&self) -> Self {
        Self::sharing(Arc::clone(&self.links))
    }

    fn sharing(links: Arc<Links>) -> Self {
        Self {
            connected: AtomicBool::default(),
            reconnects: AtomicU64::default(),
            subscribed: AtomicUsize::default(),
            malformed: AtomicU64::default(),
            recoveries: AtomicU64::default(),
            refills_given_up: AtomicU64::default(),
            published: AtomicU64::default(),
            migrations: AtomicU64::default(),
            links,
            lost: AtomicBool::default(),
            metrics: RedisMetrics::default(),
        }
    }

    pub(super) fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
        let mut lost = self
            .links
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let was_lost = self.lost.swap(!up, Ordering::Relaxed);
        // Lost and back, or up and lost.
        if was_lost == up {
            *lost = if up {
                lost.saturating_sub(1)
            } else {
                *lost + 1
            };
        }
        // Set under the lock, so that the last change is the last value set.
        self.metrics.connected(*lost == 0);
    }

    /// The connection is closed for good (shut down, or its node dropped): it no longer counts
    /// as lost; the gauge says 0 unless other connections share it (a cluster's other shards).
    pub(super) fn set_closed(&self) {
        self.connected.store(false, Ordering::Relaxed);
        let mut lost = self
            .links
            .lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.lost.swap(false, Ordering::Relaxed) {
            *lost = lost.saturating_sub(1);
        }
        self.metrics
            .connected(*lost == 0 && Arc::strong_count(&self.links) > 1);
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

/// One Redis: a connection of its own behind the gauge.
impl Default for Stats {
    fn default() -> Self {
        Self::sharing(Arc::default())
    }
}

/// A cluster node dropped while its connection was lost (no master any more) no longer holds
/// the other shards' gauge at 0.
impl Drop for Stats {
    fn drop(&mut self) {
        if *self.lost.get_mut() {
            self.set_closed();
        }
    }
}
