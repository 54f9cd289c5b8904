//! `/metrics`: statelesse's series in the Prometheus text format, through
//! `metrics-exporter-prometheus`; the series are listed in `docs/observability.md`.

use std::sync::OnceLock;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The buckets of every `_seconds` histogram (publish duration, delivery latency): from half a
/// millisecond, a delivery on the same machine, to ten seconds, a client far behind.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets between scrapes, so that they do
/// not pile up when nobody scrapes.
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed by the first call: statelesse registers its series
/// when a backplane or route is built, so this must run before them. `None` when another recorder
/// was installed first.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            installed
                .map_err(|err| tracing::warn!(error = %err, "no /metrics: {err}"))
                .ok()
        })
        .as_ref()
}

/// `GET /metrics`.
pub(crate) async fn render() -> Response {
    match prometheus() {
        Some(handle) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no metrics recorder").into_response(),
    }
}

/// Folds histogram samples into buckets every [`UPKEEP`], for as long as it runs.
pub(crate) async fn upkeep() {
    let Some(handle) = prometheus() else {
        return;
    };
    let mut ticks = tokio::time::interval(UPKEEP);
    loop {
        ticks.tick().await;
        handle.run_upkeep();
    }
}
