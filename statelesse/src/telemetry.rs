//! The metrics the runtime records through the `metrics` facade (feature `metrics`): every
//! series' name, and the handles each part records with, registered once per event type or route.
//!
//! Without the feature every handle is empty and every call compiles to nothing. The series, their
//! types, units and labels are listed in `docs/observability.md`; the labels are bounded, the
//! event type's domain and name (plus a reason, cause or error kind from a fixed set), never a key.

// Without the feature the methods keep their signatures and lose their bodies.
#![cfg_attr(
    not(feature = "metrics"),
    allow(clippy::unused_self, clippy::needless_pass_by_value)
)]

#[cfg(feature = "metrics")]
use std::any::TypeId;
#[cfg(feature = "metrics")]
use std::collections::HashMap;
#[cfg(feature = "metrics")]
use std::sync::{Arc, PoisonError, RwLock};

#[cfg(feature = "metrics")]
use metrics::{Counter, Gauge, Histogram};

use crate::event::SseEvent;
use crate::id::EventId;
use crate::{BackplaneError, ErrorKind};

/// The series' names, as documented in `docs/observability.md`.
#[cfg(feature = "metrics")]
mod names {
    pub(super) const PUBLISHED: &str = "statelesse_published_events_total";
    pub(super) const PUBLISH_ERRORS: &str = "statelesse_publish_errors_total";
    pub(super) const PUBLISH_DURATION: &str = "statelesse_publish_duration_seconds";
    pub(super) const DELIVERIES: &str = "statelesse_deliveries_total";
    pub(super) const DELIVERY_LATENCY: &str = "statelesse_delivery_latency_seconds";
    pub(super) const REPLAYED: &str = "statelesse_replayed_events_total";
    pub(super) const LAGS: &str = "statelesse_subscriber_lags_total";
    pub(super) const GAPS: &str = "statelesse_gaps_total";
    pub(super) const CONNECTIONS_OPEN: &str = "statelesse_connections_open";
    pub(super) const CONNECTIONS_REJECTED: &str = "statelesse_connections_rejected_total";
    pub(super) const WRITTEN_BYTES: &str = "statelesse_written_bytes_total";
    pub(super) const REPLAY_READS: &str = "statelesse_replay_reads_total";
    #[cfg(feature = "redis")]
    pub(super) const REDIS_CONNECTED: &str = "statelesse_redis_connected";
    #[cfg(feature = "redis")]
    pub(super) const REDIS_RECONNECTS: &str = "statelesse_redis_reconnects_total";
    #[cfg(feature = "redis")]
    pub(super) const REDIS_RECOVERIES: &str = "statelesse_redis_recoveries_total";
    #[cfg(feature = "redis")]
    pub(super) const REDIS_REFILLS_GIVEN_UP: &str = "statelesse_redis_refills_given_up_total";
    #[cfg(feature = "redis")]
    pub(super) const REDIS_MALFORMED: &str = "statelesse_redis_malformed_messages_total";
}

/// Why a subscription yielded a gap: the `cause` label of `statelesse_gaps_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GapCause {
    /// History no longer reaches back to the position (trimmed, expired, unknown id).
    HistoryTrimmed,
    /// The resume id is ahead of the channel's last id.
    IdAhead,
    /// History could not be read (server down, read failed).
    HistoryUnavailable,
    /// The transport itself reported lost events.
    Transport,
    /// One of the route's events could not be framed for SSE.
    Undeliverable,
}

impl GapCause {
    #[cfg(feature = "metrics")]
    const ALL: [Self; 5] = [
        Self::HistoryTrimmed,
        Self::IdAhead,
        Self::HistoryUnavailable,
        Self::Transport,
        Self::Undeliverable,
    ];

    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::HistoryTrimmed => "history_trimmed",
            Self::IdAhead => "id_ahead",
            Self::HistoryUnavailable => "history_unavailable",
            Self::Transport => "transport",
            Self::Undeliverable => "undeliverable",
        }
    }
}

/// Why a route answered a request without opening a stream: the `reason` label of
/// `statelesse_connections_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) enum Rejection {
    InvalidKey,
    InvalidLastEventId,
    ShuttingDown,
    TooManyConnections,
    Denied,
    BackplaneUnavailable,
    SnapshotFailed,
    /// A presence route's member identity did not serialize, or was too large.
    MemberFailed,
    /// A multiplexed route's query named no channel, an unknown type, a bad key or too many.
    InvalidChannels,
    /// A multiplexed route's cursor was not one it wrote.
    InvalidCursor,
}

impl Rejection {
    #[cfg(feature = "metrics")]
    const ALL: [Self; 10] = [
        Self::InvalidKey,
        Self::InvalidLastEventId,
        Self::ShuttingDown,
        Self::TooManyConnections,
        Self::Denied,
        Self::BackplaneUnavailable,
        Self::SnapshotFailed,
        Self::MemberFailed,
        Self::InvalidChannels,
        Self::InvalidCursor,
    ];

    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::InvalidKey => "invalid_key",
            Self::InvalidLastEventId => "invalid_last_event_id",
            Self::ShuttingDown => "shutting_down",
            Self::TooManyConnections => "too_many_connections",
            Self::Denied => "denied",
            Self::BackplaneUnavailable => "backplane_unavailable",
            Self::SnapshotFailed => "snapshot_failed",
            Self::MemberFailed => "member_failed",
            Self::InvalidChannels => "invalid_channels",
            Self::InvalidCursor => "invalid_cursor",
        }
    }
}

impl ErrorKind {
    #[cfg(feature = "metrics")]
    const ALL: [Self; 11] = [
        Self::Closed,
        Self::Unavailable,
        Self::Timeout,
        Self::NotConnected,
        Self::Encode,
        Self::PayloadTooLarge,
        Self::Protocol,
        Self::Config,
        Self::Busy,
        Self::ChannelCollision,
        Self::Unsupported,
    ];

    /// The `kind` label of `statelesse_publish_errors_total`.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::NotConnected => "not_connected",
            Self::Encode => "encode",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Protocol => "protocol",
            Self::Config => "config",
            Self::Busy => "busy",
            Self::ChannelCollision => "channel_collision",
            Self::Unsupported => "unsupported",
        }
    }
}

/// The series of one event type, for its publishes and subscriptions: registered once per type
/// and backplane ([`EventMetricsCache`]), then shared by a reference count.
#[derive(Debug, Clone)]
pub(crate) struct EventMetrics {
    #[cfg(feature = "metrics")]
    series: Arc<EventSeries>,
}

#[cfg(feature = "metrics")]
#[derive(Debug)]
struct EventSeries {
    labels: [(&'static str, &'static str); 2],
    published: Counter,
    publish_duration: Histogram,
    deliveries: Counter,
    delivery_latency: Histogram,
    replayed: Counter,
    lags: Counter,
    /// By [`GapCause`], in [`GapCause::ALL`]'s order.
    gaps: [Counter; 5],
    /// By [`ErrorKind`], in [`ErrorKind::ALL`]'s order.
    publish_errors: [Counter; 11],
}

/// The handles of `name` for each of `values` as the label `label`, beside `labels`: every
/// series of a fixed label set exists from the start, at zero, so that `increase()` sees the
/// first event.
#[cfg(feature = "metrics")]
fn counters<T: Copy, const N: usize>(
    name: &'static str,
    labels: [(&'static str, &'static str); 2],
    label: &'static str,
    values: [T; N],
    value: impl Fn(T) -> &'static str,
) -> [Counter; N] {
    let [domain, event] = labels;
    values.map(|v| metrics::counter!(name, &[domain, event, (label, value(v))]))
}

/// Each event type's [`EventMetrics`], registered at the type's first use on a backplane: a
/// publish then costs a map lookup, not a registration by name.
#[derive(Debug, Default)]
pub(crate) struct EventMetricsCache {
    #[cfg(feature = "metrics")]
    types: RwLock<HashMap<TypeId, EventMetrics>>,
}

impl EventMetricsCache {
    /// The series of `E`.
    #[inline]
    pub(crate) fn get<E: SseEvent>(&self) -> EventMetrics {
        #[cfg(feature = "metrics")]
        {
            let id = TypeId::of::<E>();
            let types = self.types.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(metrics) = types.get(&id) {
                return metrics.clone();
            }
            drop(types);
            let mut types = self.types.write().unwrap_or_else(PoisonError::into_inner);
            types
                .entry(id)
                .or_insert_with(EventMetrics::of::<E>)
                .clone()
        }
        #[cfg(not(feature = "metrics"))]
        EventMetrics::of::<E>()
    }
}

impl EventMetrics {
    /// The series of `E`, registered with the recorder installed now.
    pub(crate) fn of<E: SseEvent>() -> Self {
        Self::new(E::DOMAIN, E::KIND.name())
    }

    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(domain: &'static str, event: &'static str) -> Self {
        #[cfg(feature = "metrics")]
        {
            let labels = [("domain", domain), ("event", event)];
            Self {
                series: Arc::new(EventSeries {
                    labels,
                    published: metrics::counter!(names::PUBLISHED, &labels),
                    publish_duration: metrics::histogram!(names::PUBLISH_DURATION, &labels),
                    deliveries: metrics::counter!(names::DELIVERIES, &labels),
                    delivery_latency: metrics::histogram!(names::DELIVERY_LATENCY, &labels),
                    replayed: metrics::counter!(names::REPLAYED, &labels),
                    lags: metrics::counter!(names::LAGS, &labels),
                    gaps: counters(names::GAPS, labels, "cause", GapCause::ALL, GapCause::label),
                    publish_errors: counters(
                        names::PUBLISH_ERRORS,
                        labels,
                        "kind",
                        ErrorKind::ALL,
                        ErrorKind::label,
                    ),
                }),
            }
        }
        #[cfg(not(feature = "metrics"))]
        Self {}
    }

    /// Records one publish call started at `started`: its duration, and each event's outcome.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn published<'a>(
        &self,
        started: Started,
        outcomes: impl IntoIterator<Item = &'a Result<EventId, BackplaneError>>,
    ) {
        #[cfg(feature = "metrics")]
        {
            self.series.publish_duration.record(started.at.elapsed());
            let mut published = 0;
            for outcome in outcomes {
                match outcome {
                    Ok(_) => published += 1,
                    Err(err) => self.publish_error(err.kind()),
                }
            }
            self.series.published.increment(published);
        }
    }

    /// Records a publish that failed with `kind`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn publish_error(&self, kind: ErrorKind) {
        #[cfg(feature = "metrics")]
        self.series.publish_errors[kind as usize].increment(1);
    }

    /// Records a live event handed to a subscriber, and how long after its publish (by its
    /// id's clock) that was.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn delivered_live(&self, id: EventId) {
        #[cfg(feature = "metrics")]
        {
            self.series.deliveries.increment(1);
            self.series.delivery_latency.record(since_publish(id));
        }
    }

    /// Records an event from history handed to a subscriber.
    #[inline]
    pub(crate) fn delivered_replayed(&self) {
        #[cfg(feature = "metrics")]
        {
            self.series.deliveries.increment(1);
            self.series.replayed.increment(1);
        }
    }

    /// Records a subscriber that fell behind its buffer.
    #[inline]
    pub(crate) fn lagged(&self) {
        #[cfg(feature = "metrics")]
        self.series.lags.increment(1);
    }

    /// Records a gap yielded to a subscriber.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn gap(&self, cause: GapCause) {
        #[cfg(feature = "metrics")]
        self.series.gaps[cause as usize].increment(1);
    }

    /// The series of a route of this event type, registered once per route.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn route(&self) -> RouteMetrics {
        #[cfg(feature = "metrics")]
        {
            let [(_, domain), (_, event)] = self.series.labels;
            RouteMetrics::new(domain, event)
        }
        #[cfg(not(feature = "metrics"))]
        RouteMetrics {}
    }
}

/// When a publish call started (nothing without the `metrics` feature: no clock read).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started {
    #[cfg(feature = "metrics")]
    at: std::time::Instant,
}

impl Started {
    /// Now, for a publish call's duration.
    #[inline]
    pub(crate) fn now() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            at: std::time::Instant::now(),
        }
    }
}

/// How long ago the event with `id` was published: the id's milliseconds are the publishing
/// clock's (Redis's `TIME` on Redis, this process's on the memory transport), so across machines
/// the figure includes their clock skew; a clock behind the publisher's reads as zero.
#[cfg(feature = "metrics")]
fn since_publish(id: EventId) -> std::time::Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(std::time::Duration::from_millis(id.millis()))
}

/// The series of one route: open connections, bytes written, requests rejected.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) struct RouteMetrics {
    #[cfg(feature = "metrics")]
    open: Gauge,
    #[cfg(feature = "metrics")]
    written: Counter,
    /// By [`Rejection`], in [`Rejection::ALL`]'s order.
    #[cfg(feature = "metrics")]
    rejected: Arc<[Counter; 10]>,
}

#[cfg_attr(not(feature = "axum"), allow(dead_code))]
impl RouteMetrics {
    /// The series of a route labelled `domain` and `event`, registered with the recorder
    /// installed now.
    #[cfg(feature = "metrics")]
    fn new(domain: &'static str, event: impl Into<metrics::SharedString>) -> Self {
        let labels = [
            metrics::Label::new("domain", domain),
            metrics::Label::new("event", event),
        ];
        let rejected = Rejection::ALL.map(|reason| {
            let mut labels = labels.to_vec();
            labels.push(metrics::Label::new("reason", reason.label()));
            metrics::counter!(names::CONNECTIONS_REJECTED, labels)
        });
        Self {
            open: metrics::gauge!(names::CONNECTIONS_OPEN, labels.to_vec()),
            written: metrics::counter!(names::WRITTEN_BYTES, labels.to_vec()),
            rejected: Arc::new(rejected),
        }
    }

    /// The series of the multiplexed route at `path`: `domain="mux"`, `event=<path>`, a route
    /// carrying several event types (whose deliveries count under their own types).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn multiplexed(path: &str) -> Self {
        #[cfg(feature = "metrics")]
        return Self::new("mux", path.to_owned());
        #[cfg(not(feature = "metrics"))]
        Self {}
    }

    /// Counts a connection open until the returned guard drops.
    pub(crate) fn open(&self) -> OpenConnection {
        #[cfg(feature = "metrics")]
        {
            self.open.increment(1);
            OpenConnection(self.open.clone())
        }
        #[cfg(not(feature = "metrics"))]
        OpenConnection {}
    }

    /// Records `bytes` handed to a connection's socket.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn written(&self, bytes: usize) {
        #[cfg(feature = "metrics")]
        self.written.increment(bytes as u64);
    }

    /// Records a request answered without a stream.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn rejected(&self, reason: Rejection) {
        #[cfg(feature = "metrics")]
        self.rejected[reason as usize].increment(1);
    }
}

/// One open connection in `statelesse_connections_open`, until dropped.
#[derive(Debug)]
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) struct OpenConnection(#[cfg(feature = "metrics")] Gauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        self.0.decrement(1);
    }
}

/// The series of the shared history reader: reads that went to the transport.
#[derive(Debug, Clone)]
pub(crate) struct ReplayMetrics {
    #[cfg(feature = "metrics")]
    reads: Counter,
}

impl ReplayMetrics {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            reads: metrics::counter!(names::REPLAY_READS),
        }
    }

    /// Records one page read from the transport (shared by every reader that waited on it).
    #[inline]
    pub(crate) fn read(&self) {
        #[cfg(feature = "metrics")]
        self.reads.increment(1);
    }
}

/// The series of the Redis transport's connection.
#[derive(Debug)]
#[cfg(feature = "redis")]
pub(crate) struct RedisMetrics {
    #[cfg(feature = "metrics")]
    connected: Gauge,
    #[cfg(feature = "metrics")]
    reconnects: Counter,
    #[cfg(feature = "metrics")]
    recoveries: Counter,
    #[cfg(feature = "metrics")]
    refills_given_up: Counter,
    #[cfg(feature = "metrics")]
    malformed: Counter,
}

#[cfg(feature = "redis")]
// Without `metrics` the struct is empty and `#[derive(Default)]` would do; with it, it would not.
#[cfg_attr(not(feature = "metrics"), allow(clippy::derivable_impls))]
impl Default for RedisMetrics {
    fn default() -> Self {
        Self {
            #[cfg(feature = "metrics")]
            connected: metrics::gauge!(names::REDIS_CONNECTED),
            #[cfg(feature = "metrics")]
            reconnects: metrics::counter!(names::REDIS_RECONNECTS),
            #[cfg(feature = "metrics")]
            recoveries: metrics::counter!(names::REDIS_RECOVERIES),
            #[cfg(feature = "metrics")]
            refills_given_up: metrics::counter!(names::REDIS_REFILLS_GIVEN_UP),
            #[cfg(feature = "metrics")]
            malformed: metrics::counter!(names::REDIS_MALFORMED),
        }
    }
}

#[cfg(feature = "redis")]
impl RedisMetrics {
    /// Records whether the pub/sub connection is up.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn connected(&self, up: bool) {
        #[cfg(feature = "metrics")]
        self.connected.set(if up { 1.0 } else { 0.0 });
    }

    pub(crate) fn reconnected(&self) {
        #[cfg(feature = "metrics")]
        self.reconnects.increment(1);
    }

    pub(crate) fn recovery(&self) {
        #[cfg(feature = "metrics")]
        self.recoveries.increment(1);
    }

    pub(crate) fn refill_given_up(&self) {
        #[cfg(feature = "metrics")]
        self.refills_given_up.increment(1);
    }

    pub(crate) fn malformed(&self) {
        #[cfg(feature = "metrics")]
        self.malformed.increment(1);
    }
}

#[cfg(all(test, feature = "metrics"))]
mod tests {
    use super::*;

    #[test]
    fn each_label_set_lists_its_values_in_declaration_order() {
        // The handles are indexed by `value as usize`.
        assert!(
            GapCause::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(
            Rejection::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
        assert!(
            ErrorKind::ALL
                .iter()
                .enumerate()
                .all(|(i, v)| *v as usize == i)
        );
    }
}
