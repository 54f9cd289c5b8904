//! [`Diagnostics`]: a snapshot of what a backplane is doing, serializable for a `/diagnostics` route.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::registry::EventInfo;

/// A snapshot of a backplane's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Diagnostics {
    /// The transport: `"memory"` or `"redis"`.
    pub transport: &'static str,
    /// Channels with at least one local subscriber.
    pub total_channels: usize,
    /// Local subscribers over all channels.
    pub total_local_subscribers: usize,
    /// Local subscribers per channel, for channels that have any.
    pub channels: BTreeMap<String, usize>,
    /// Events published through this instance.
    pub published: u64,
    /// Events that reached a route or a typed [`Subscription`](crate::Subscription) of this
    /// instance on their channel but could not be delivered as its type: an event name the type
    /// does not have (such as a `snapshot` or `gap` published by another client of the
    /// transport), data a route cannot send over SSE, or data a subscription cannot decode. A
    /// route drops them (sending a `gap` for one of its own events), a subscription yields a
    /// [`SubscriptionError::Decode`](crate::SubscriptionError::Decode). Counted once per
    /// receiver: one such event on a channel with three open connections counts three.
    pub malformed_events: u64,
    /// Every event type registered in this program (from `#[derive(SseEvent)]`), sorted.
    pub events: Vec<EventInfo>,
    /// The Redis connection's state, on the Redis transport.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisDiagnostics>,
}

impl Diagnostics {
    /// Diagnostics for `transport` from per-channel local subscriber counts.
    #[must_use]
    pub fn from_counts(
        transport: &'static str,
        channels: BTreeMap<String, usize>,
        published: u64,
    ) -> Self {
        Self {
            transport,
            total_channels: channels.len(),
            total_local_subscribers: channels.values().sum(),
            channels,
            published,
            malformed_events: 0,
            events: crate::registry::events(),
            redis: None,
        }
    }
}

/// The state of the Redis transport's connections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RedisDiagnostics {
    /// Whether the pub/sub connection is up.
    pub connected: bool,
    /// How many times the pub/sub connection was re-established.
    pub reconnects: u64,
    /// Channels this instance is subscribed to on Redis.
    pub subscribed_channels: usize,
    /// Messages on project channels that were not valid envelopes, dropped.
    pub malformed_messages: u64,
    /// Recoveries started after a reconnect: each time a channel with local subscribers was
    /// subscribed again, its subscribers were told to refill from history what they may have
    /// missed (one per channel per reconnect, however many subscribers it has, and whether or
    /// not anything was missed). Those that failed are in
    /// [`refills_given_up`](Self::refills_given_up).
    pub recoveries: u64,
    /// History refills that a local subscriber gave up because history could not be read (after
    /// a reconnect, after lagging, or for a next page), yielding a [`Gap`](crate::Gap) instead
    /// and going on with live events: one per subscriber and failed read.
    pub refills_given_up: u64,
    /// On a Redis Cluster, slot moves seen: a node answered `MOVED` (or `ASK`, `TRYAGAIN`,
    /// `CLUSTERDOWN`) to a subscription, or unsubscribed a channel itself because its slot
    /// moved away. Always 0 on one Redis.
    pub migrations: u64,
    /// On a Redis Cluster, each node this instance has connections to, by address; the other
    /// fields are their sums (and [`connected`](Self::connected) says whether every master's
    /// pub/sub connection is up). Empty on one Redis.
    pub shards: Vec<ShardDiagnostics>,
}

/// The state of one node of a Redis Cluster, as one instance sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShardDiagnostics {
    /// The node's address, `host:port`, as the cluster names it.
    pub address: String,
    /// Whether this instance's pub/sub connection to it is up.
    pub connected: bool,
    /// Channels this instance is subscribed to on it.
    pub subscribed_channels: usize,
    /// How many times the pub/sub connection to it was re-established.
    pub reconnects: u64,
    /// Recoveries started on it: a channel subscribed again (after a reconnect, or moved here
    /// from another node) whose subscribers refilled from history.
    pub recoveries: u64,
    /// Slot moves it made this instance notice (see [`RedisDiagnostics::migrations`]).
    pub migrations: u64,
}

impl ShardDiagnostics {
    /// Used by the cluster transport (feature `redis-cluster`) only.
    #[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
    pub(crate) fn new(
        address: String,
        connected: bool,
        subscribed_channels: usize,
        reconnects: u64,
        recoveries: u64,
        migrations: u64,
    ) -> Self {
        Self {
            address,
            connected,
            subscribed_channels,
            reconnects,
            recoveries,
            migrations,
        }
    }
}
