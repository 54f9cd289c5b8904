//! Observability: each documented series (docs/observability.md) moves as documented for a
//! scripted run (connect, publish, resume, gap, lag, deny, Redis blip), read from `metrics-util`'s
//! debugging recorder; and `Backplane::health` with its readiness route.
//!
//! Each test installs its own recorder as the default of its thread (tests run on a
//! current-thread runtime, so every task of the test records there) and uses event types of its
//! own, so that parallel tests never see each other's series.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics::LocalRecorderGuard;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use statelesse::SubscriptionError;
use statelesse::prelude::*;
use statelesse::routes::{Denied, MuxRoutes, readiness};
use statelesse::{HealthStatus, MemoryConfig, RedisConfig};
use statelesse_test_redis::{RedisCluster, RedisServer};
use statelesse_tests::app::spawn_app;
use statelesse_tests::sse::SseClient;
use statelesse_tests::suite::{PATIENCE, Tick, eventually, next_event, next_item, publish_all};

/// A series: its name and its labels, sorted.
type SeriesKey = (String, Vec<(String, String)>);

/// Every series recorded on this thread while it lives, accumulated over snapshots (the
/// debugging recorder's snapshot drains counters and histograms).
struct Recorded {
    snapshotter: Snapshotter,
    counters: HashMap<SeriesKey, u64>,
    gauges: HashMap<SeriesKey, f64>,
    histograms: HashMap<SeriesKey, Vec<f64>>,
    _guard: LocalRecorderGuard<'static>,
}

impl Recorded {
    fn start() -> Self {
        // Leaked: the guard borrows it for the whole test, and handles outlive the test body.
        let recorder: &'static DebuggingRecorder = Box::leak(Box::new(DebuggingRecorder::new()));
        Self {
            snapshotter: recorder.snapshotter(),
            counters: HashMap::new(),
            gauges: HashMap::new(),
            histograms: HashMap::new(),
            _guard: metrics::set_default_local_recorder(recorder),
        }
    }

    fn update(&mut self) {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            let series = (key.name().to_owned(), labels);
            match value {
                DebugValue::Counter(n) => *self.counters.entry(series).or_default() += n,
                DebugValue::Gauge(v) => {
                    self.gauges.insert(series, v.into_inner());
                }
                DebugValue::Histogram(samples) => self
                    .histograms
                    .entry(series)
                    .or_default()
                    .extend(samples.into_iter().map(|s| s.0)),
            }
        }
    }

    fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
        let mut labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        labels.sort();
        (name.to_owned(), labels)
    }

    fn counter(&mut self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.update();
        self.counters
            .get(&Self::key(name, labels))
            .copied()
            .unwrap_or(0)
    }

    fn gauge(&mut self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.update();
        self.gauges.get(&Self::key(name, labels)).copied()
    }

    fn histogram(&mut self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.update();
        self.histograms
            .get(&Self::key(name, labels))
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until `condition` holds of the series.
    async fn eventually(&mut self, what: &str, mut condition: impl FnMut(&mut Self) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !condition(self) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting until {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "published", key = "room")]
struct Posted {
    room: u32,
}

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "connected", key = "room")]
struct Streamed {
    room: u32,
    n: u64,
}

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "resumed", key = "room")]
struct Replayed {
    room: u32,
    n: u64,
}

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "gapped", key = "room")]
struct Trimmed {
    room: u32,
    n: u64,
}

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "lagged", key = "room")]
struct Flooded {
    room: u32,
    n: u64,
}

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "denied", key = "room")]
struct Guarded {
    room: u32,
}

const fn labels(domain: &'static str, event: &'static str) -> [(&'static str, &'static str); 2] {
    [("domain", domain), ("event", event)]
}

#[tokio::test]
async fn a_publish_counts_the_event_and_its_duration() {
    let mut recorded = Recorded::start();
    let bp = Backplane::in_memory();
    Posted::publish(&bp, Posted { room: 1 }).await.unwrap();
    bp.publish_many(&[Posted { room: 1 }, Posted { room: 2 }])
        .await
        .unwrap();

    let posted = labels("published", "Posted");
    assert_eq!(
        recorded.counter("statelesse_published_events_total", &posted),
        3
    );
    // One sample per call.
    let durations = recorded.histogram("statelesse_publish_duration_seconds", &posted);
    assert_eq!(durations.len(), 2);
    assert!(durations.iter().all(|d| *d >= 0.0));
}

#[tokio::test]
async fn a_failed_publish_counts_an_error_by_kind() {
    let mut recorded = Recorded::start();
    let bp = Backplane::in_memory();
    bp.shutdown().await;
    Posted::publish(&bp, Posted { room: 1 }).await.unwrap_err();

    let [domain, event] = labels("published", "Posted");
    assert_eq!(
        recorded.counter(
            "statelesse_publish_errors_total",
            &[domain, event, ("kind", "closed")]
        ),
        1
    );
    assert_eq!(
        recorded.counter("statelesse_published_events_total", &[domain, event]),
        0
    );
}

#[tokio::test]
async fn an_sse_connection_is_counted_open_until_its_client_goes_away() {
    let mut recorded = Recorded::start();
    let app = spawn_app(Streamed::sse_route().with_state(Backplane::in_memory())).await;
    let streamed = labels("connected", "Streamed");

    let client = SseClient::subscribe(&app.url("/sse/connected/1/streamed")).await;
    assert_eq!(
        recorded.gauge("statelesse_connections_open", &streamed),
        Some(1.0)
    );
    drop(client);
    recorded
        .eventually("the connection is no longer counted", |r| {
            r.gauge("statelesse_connections_open", &streamed) == Some(0.0)
        })
        .await;
}

#[tokio::test]
async fn a_live_event_counts_a_delivery_its_latency_and_the_bytes_written() {
    let mut recorded = Recorded::start();
    let bp = Backplane::in_memory();
    let app = spawn_app(Streamed::sse_route().with_state(bp.clone())).await;
    let streamed = labels("connected", "Streamed");

    let mut client = SseClient::subscribe(&app.url("/sse/connected/1/streamed")).await;
    Streamed::publish(&bp, Streamed { room: 1, n: 7 })
        .await
        .unwrap();
    let frame = client.next_event().await.unwrap();
    assert_eq!(frame.json()["n"], 7);

    assert_eq!(
        recorded.counter("statelesse_deliveries_total", &streamed),
        1
    );
    assert_eq!(
        recorded
            .histogram("statelesse_delivery_latency_seconds", &streamed)
            .len(),
        1
    );
    assert_eq!(
        recorded.counter("statelesse_replayed_events_total", &streamed),
        0
    );
    // The retry hint and the event, at least.
    let written = recorded.counter("statelesse_written_bytes_total", &streamed);
    assert!(written > 40, "{written}");
}

#[tokio::test]
async fn a_resume_counts_the_replayed_events_and_the_history_reads() {
    let mut recorded = Recorded::start();
    let bp = Backplane::in_memory();
    let app = spawn_app(Replayed::sse_route().with_state(bp.clone())).await;
    let replayed = labels("resumed", "Replayed");
    let first = Replayed::publish(&bp, Replayed { room: 1, n: 0 })
        .await
        .unwrap();
    for n in 1..3 {
        Replayed::publish(&bp, Replayed { room: 1, n })
            .await
            .unwrap();
    }

    let mut client = SseClient::request(&app.url("/sse/resumed/1/replayed"))
        .last_event_id(&first.to_string())
        .open()
        .await;
    for n in 1..3 {
        assert_eq!(client.next_event().await.unwrap().json()["n"], n);
    }

    assert_eq!(
        recorded.counter("statelesse_replayed_events_total", &replayed),
        2
    );
    assert_eq!(
        recorded.counter("statelesse_deliveries_total", &replayed),
        2
    );
    assert!(recorded.counter("statelesse_replay_reads_total", &[]) >= 1);
    assert!(
        recorded
            .histogram("statelesse_delivery_latency_seconds", &replayed)
            .is_empty(),
        "replayed events are not live deliveries"
    );
}

#[tokio::test]
async fn a_gap_is_counted_by_its_cause() {
    let mut recorded = Recorded::start();
    let bp = Backplane::in_memory_with(MemoryConfig::default().with_history_len(2));
    let app = spawn_app(Trimmed::sse_route().with_state(bp.clone())).await;
    let [domain, event] = labels("gapped", "Trimmed");
    let first = Trimmed::publish(&bp, Trimmed { room: 1, n: 0 })
        .await
        .unwrap();
    for n in 1..5 {
        Trimmed::publish(&bp, Trimmed { room: 1, n }).await.unwrap();
    }
    let url = app.url("/sse/gapped/1/trimmed");

    let mut trimmed = SseClient::request(&url)
        .last_event_id(&first.to_string())
        .open()
        .await;
    assert_eq!(trimmed.next_event().await.unwrap().event(), "gap");
    let mut ahead = SseClient::request(&url)
        .last_event_id("99999999999999-0")
        .open()
        .await;
    assert_eq!(ahead.next_event().await.unwrap().event(), "gap");

    let gaps = |recorded: &mut Recorded, cause| {
        recorded.counter("statelesse_gaps_total", &[domain, event, ("cause", cause)])
    };
    assert_eq!(gaps(&mut recorded, "history_trimmed"), 1);
    assert_eq!(gaps(&mut recorded, "id_ahead"), 1);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_its_buffer_is_counted_as_lagging() {
    let mut recorded = Recorded::start();
    let bp = Backplane::in_memory_with(MemoryConfig::default().with_subscriber_buffer(2));
    let mut flooded = Flooded::stream(&bp, &1).await.unwrap();
    for n in 0..10 {
        Flooded::publish(&bp, Flooded { room: 1, n }).await.unwrap();
    }
    for n in 0..10 {
        assert_eq!(flooded.next().await.unwrap().unwrap().event.n, n);
    }

    let lagged = labels("lagged", "Flooded");
    assert_eq!(
        recorded.counter("statelesse_subscriber_lags_total", &lagged),
        1
    );
    assert_eq!(recorded.counter("statelesse_deliveries_total", &lagged), 10);
}

#[tokio::test]
async fn a_rejected_request_is_counted_by_its_reason() {
    let mut recorded = Recorded::start();
    let routes = Guarded::sse_routes()
        .authorize(|_parts, room: u32, _state: Backplane| async move {
            if room == 1 {
                Ok(())
            } else {
                Err(Denied::Forbidden)
            }
        })
        .max_connections(1);
    let app = spawn_app(
        Router::new()
            .merge(routes)
            .with_state(Backplane::in_memory()),
    )
    .await;
    let [domain, event] = labels("denied", "Guarded");

    let denied = SseClient::request(&app.url("/sse/denied/2/guarded"))
        .send()
        .await;
    assert_eq!(denied.status(), 403);
    let bad_key = SseClient::request(&app.url("/sse/denied/x/guarded"))
        .send()
        .await;
    assert_eq!(bad_key.status(), 400);
    let _open = SseClient::subscribe(&app.url("/sse/denied/1/guarded")).await;
    let over = SseClient::request(&app.url("/sse/denied/1/guarded"))
        .send()
        .await;
    assert_eq!(over.status(), 503);

    let rejected = |recorded: &mut Recorded, reason| {
        recorded.counter(
            "statelesse_connections_rejected_total",
            &[domain, event, ("reason", reason)],
        )
    };
    assert_eq!(rejected(&mut recorded, "denied"), 1);
    assert_eq!(rejected(&mut recorded, "invalid_key"), 1);
    assert_eq!(rejected(&mut recorded, "too_many_connections"), 1);
}

/// A multiplexed route is observed as a single one is: its connection counted open under its
/// path, its rejections by reason (including its own, a bad query or a cursor it did not write),
/// and each delivery under the channel's event type.
#[tokio::test]
async fn a_multiplexed_route_counts_its_connections_rejections_and_deliveries_per_event_type() {
    let mut recorded = Recorded::start();
    let bp = Backplane::in_memory();
    let route = MuxRoutes::new("/sse/mux")
        .event(Streamed::sse_routes())
        .event(Posted::sse_routes());
    let app = spawn_app(Router::new().merge(route).with_state(bp.clone())).await;
    let mux = labels("mux", "/sse/mux");

    let mut client = SseClient::subscribe(&app.url("/sse/mux?Streamed=1&Posted=2")).await;
    assert_eq!(
        recorded.gauge("statelesse_connections_open", &mux),
        Some(1.0)
    );
    Streamed::publish(&bp, Streamed { room: 1, n: 7 })
        .await
        .unwrap();
    Posted::publish(&bp, Posted { room: 2 }).await.unwrap();
    client.next_event().await.unwrap();
    client.next_event().await.unwrap();
    let streamed = labels("connected", "Streamed");
    assert_eq!(
        recorded.counter("statelesse_deliveries_total", &streamed),
        1
    );
    let posted = labels("published", "Posted");
    assert_eq!(recorded.counter("statelesse_deliveries_total", &posted), 1);
    let written = recorded.counter("statelesse_written_bytes_total", &mux);
    assert!(written > 40, "{written}");

    let unknown = SseClient::request(&app.url("/sse/mux?Unknown=1"))
        .send()
        .await;
    assert_eq!(unknown.status(), 400);
    let foreign = SseClient::request(&app.url("/sse/mux?Streamed=1"))
        .last_event_id("1-0.AAAAAAAAAAAAAAAA")
        .send()
        .await;
    assert_eq!(foreign.status(), 400);
    let [domain, event] = mux;
    let rejected = |recorded: &mut Recorded, reason| {
        recorded.counter(
            "statelesse_connections_rejected_total",
            &[domain, event, ("reason", reason)],
        )
    };
    assert_eq!(rejected(&mut recorded, "invalid_channels"), 1);
    assert_eq!(rejected(&mut recorded, "invalid_cursor"), 1);

    drop(client);
    recorded
        .eventually("the connection is no longer counted", |r| {
            r.gauge("statelesse_connections_open", &mux) == Some(0.0)
        })
        .await;
}

/// Redis that stops and comes back: the connection gauge drops and returns, the reconnect and
/// the channel's recovery are counted, and so is a message that is not an envelope.
#[tokio::test]
async fn a_redis_blip_moves_the_redis_series() {
    let mut recorded = Recorded::start();
    let mut server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .with_prefix("blip")
        .with_reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .with_health_check_interval(Duration::from_secs(1));
    let bp = Backplane::redis(config).await.unwrap();
    let _subscription = Posted::stream(&bp, &1).await.unwrap();
    assert_eq!(recorded.gauge("statelesse_redis_connected", &[]), Some(1.0));

    server.kill();
    recorded
        .eventually("the connection is down", |r| {
            r.gauge("statelesse_redis_connected", &[]) == Some(0.0)
        })
        .await;
    server.restart();
    recorded
        .eventually("the connection is back", |r| {
            r.gauge("statelesse_redis_connected", &[]) == Some(1.0)
        })
        .await;
    // The channel is subscribed again, and told to recover, once the connection is back.
    recorded
        .eventually("the channel recovered", |r| {
            r.counter("statelesse_redis_recoveries_total", &[]) == 1
        })
        .await;
    assert_eq!(
        recorded.counter("statelesse_redis_reconnects_total", &[]),
        1
    );

    let pubsub = format!("blip:{{{}}}", Posted::channel(&1).name());
    assert_eq!(server.cmd(&["PUBLISH", &pubsub, "not an envelope"]), "1");
    recorded
        .eventually("the foreign message is counted", |r| {
            r.counter("statelesse_redis_malformed_messages_total", &[]) == 1
        })
        .await;
}

/// A reconnect whose refill cannot read history (an ACL forbids the read): the subscriber gets a
/// gap, counted by its cause, and the refill given up is counted.
#[tokio::test]
async fn a_refill_that_cannot_read_history_counts_a_gap_and_a_refill_given_up() {
    let mut recorded = Recorded::start();
    let server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .with_reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200));
    let bp = Backplane::redis(config).await.unwrap();
    let mut subscription = Tick::stream(&bp, &1).await.unwrap();
    publish_all(&bp, 1, [0]).await;
    assert_eq!(next_event(&mut subscription).await.event.n, 0);

    // Publishing stays allowed; reading a stream's state (every history read) does not.
    assert_eq!(server.cmd(&["ACL", "SETUSER", "default", "-xinfo"]), "OK");
    assert_eq!(server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    publish_all(&bp, 1, [1]).await;
    assert!(matches!(
        next_item(&mut subscription).await,
        Err(SubscriptionError::Gap(_))
    ));

    let [domain, event] = labels("suite", "Tick");
    assert_eq!(
        recorded.counter(
            "statelesse_gaps_total",
            &[domain, event, ("cause", "history_unavailable")]
        ),
        1
    );
    assert_eq!(
        recorded.counter("statelesse_redis_refills_given_up_total", &[]),
        1
    );
}

#[tokio::test]
async fn health_is_degraded_while_redis_is_down_and_ready_once_it_is_back() {
    let mut server = RedisServer::start();
    let config = RedisConfig::new(&server.url())
        .unwrap()
        .with_reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .with_health_check_interval(Duration::from_secs(1));
    let bp = Backplane::redis(config).await.unwrap();
    assert_eq!(bp.health().status, HealthStatus::Ready);

    server.kill();
    eventually("health is degraded", || {
        bp.health().status == HealthStatus::Degraded
    })
    .await;
    assert_eq!(bp.health().reasons.len(), 1);
    server.restart();
    eventually("health is ready", || bp.health().is_ready()).await;
    assert!(bp.health().reasons.is_empty());
}

/// A cluster with one shard down is degraded, naming that shard, and ready once it is back.
#[tokio::test]
async fn a_cluster_is_degraded_while_a_shard_is_down_and_ready_once_it_is_back() {
    // No replicas: the slot map keeps naming the killed master, which nobody replaces.
    let mut cluster = RedisCluster::try_start_masters(3).unwrap();
    let urls = cluster.urls();
    let config = RedisConfig::cluster(urls.iter().map(String::as_str))
        .unwrap()
        .with_prefix("shards")
        .with_reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .with_health_check_interval(Duration::from_secs(1));
    let bp = Backplane::redis_cluster(config).await.unwrap();
    assert!(bp.health().is_ready());

    cluster.kill(1);
    eventually("health is degraded", || {
        bp.health().status == HealthStatus::Degraded
    })
    .await;
    let reasons = bp.health().reasons;
    let port = format!(":{}", cluster.nodes()[1].port());
    assert!(
        reasons.len() == 1 && reasons[0].contains(&port),
        "{reasons:?}"
    );
    cluster.restart(1);
    eventually("health is ready", || bp.health().is_ready()).await;
    bp.shutdown().await;
}

#[tokio::test]
async fn health_is_down_once_the_backplane_is_shut_down() {
    let bp = Backplane::in_memory();
    assert!(bp.health().is_ready());
    bp.shutdown().await;
    assert_eq!(bp.health().status, HealthStatus::Down);
}

#[tokio::test]
async fn the_readiness_route_answers_200_when_ready_and_503_when_not() {
    let bp = Backplane::in_memory();
    let app = Router::new()
        .route("/ready", get(readiness))
        .with_state(bp.clone());
    let app = spawn_app(app).await;

    let ready = reqwest::get(app.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.text().await.unwrap(),
        r#"{"status":"ready","reasons":[]}"#
    );
    bp.shutdown().await;
    let down = reqwest::get(app.url("/ready")).await.unwrap();
    assert_eq!(down.status(), 503);
    assert_eq!(
        down.text().await.unwrap(),
        r#"{"status":"down","reasons":["the backplane is shut down"]}"#
    );
}
