//! [`readiness`]: the backplane's [`Health`](crate::Health) as an HTTP readiness probe.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::Backplane;

/// A readiness probe: `200 OK` when the backplane is ready, `503 Service Unavailable` when it is
/// degraded or down, with the [`Health`](crate::Health) as a JSON body
/// (`{"status":"degraded","reasons":["…"]}`).
///
/// A degraded instance answers 503 because new connections would fail there too: on Redis, a
/// lost pub/sub connection makes every subscribe fail until it is back. Streams already open are
/// not affected by readiness, and resume from history once Redis is back. Use it for readiness
/// only, never liveness: restarting an instance does not bring Redis back. See
/// `docs/observability.md` for a Kubernetes probe.
///
/// Works with any state from which a [`Backplane`] is taken.
///
/// # Examples
///
/// ```
/// use axum::Router;
/// use axum::routing::get;
/// use statelesse::Backplane;
/// use statelesse::routes::readiness;
///
/// let app: Router = Router::new()
///     .route("/ready", get(readiness))
///     .with_state(Backplane::in_memory());
/// # drop(app);
/// ```
pub async fn readiness(State(backplane): State<Backplane>) -> Response {
    let health = backplane.health();
    let status = if health.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // A struct of a status and strings always serializes.
    let body = serde_json::to_string(&health).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
