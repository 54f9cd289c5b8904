//! Rejections of the SSE routes: one type per failure, each answering a fixed status and a plain
//! text body before any stream opens.

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::{BackplaneError, KeyParseError};

/// A `(status, text/plain body)` response, logged like axum's own rejections.
fn plain(status: StatusCode, body: String, rejection: &'static str) -> Response {
    tracing::debug!(status = status.as_u16(), body = %body, rejection, "rejecting SSE request");
    (status, body).into_response()
}

/// Adds `Retry-After: <whole seconds, at least 1>` to `response`.
fn with_retry_after(mut response: Response, after: Duration) -> Response {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    response
}

/// The key segment of the URL is not a valid key of the event's key type: `400 Bad Request`.
///
/// The body names the text and the expected type, e.g. ``invalid key `abc`: expected u64``.
#[derive(Debug)]
pub struct InvalidKey {
    source: Option<KeyParseError>,
}

impl InvalidKey {
    pub(crate) fn parse(source: KeyParseError) -> Self {
        Self {
            source: Some(source),
        }
    }

    pub(crate) fn not_utf8() -> Self {
        Self { source: None }
    }

    /// The parse error, unless the segment was not UTF-8 once percent-decoded.
    #[must_use]
    pub fn key_error(&self) -> Option<&KeyParseError> {
        self.source.as_ref()
    }

    /// The response body text used for this rejection.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }

    /// The status code used for this rejection: `400 Bad Request`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => source.fmt(f),
            None => f.write_str("invalid key: not UTF-8 once percent-decoded"),
        }
    }
}

impl std::error::Error for InvalidKey {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

impl IntoResponse for InvalidKey {
    fn into_response(self) -> Response {
        plain(self.status(), self.body_text(), "InvalidKey")
    }
}

/// The route was mounted at a path without the key's placeholder: `500 Internal Server Error`.
///
/// Cannot happen with [`SseRoutes::into_router`](super::SseRoutes::into_router), which mounts the
/// route at the event's own path, even when nested.
#[derive(Debug)]
pub struct MissingKeyParam {
    name: &'static str,
}

impl MissingKeyParam {
    pub(crate) fn new(name: &'static str) -> Self {
        Self { name }
    }

    /// The response body text used for this rejection.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }

    /// The status code used for this rejection: `500 Internal Server Error`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl fmt::Display for MissingKeyParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the route has no `{{{}}}` path parameter", self.name)
    }
}

impl std::error::Error for MissingKeyParam {}

impl IntoResponse for MissingKeyParam {
    fn into_response(self) -> Response {
        tracing::error!(
            param = self.name,
            "SSE route mounted without its key parameter"
        );
        plain(self.status(), self.body_text(), "MissingKeyParam")
    }
}

/// The `Last-Event-ID` header or `lastEventId` query parameter is not an event id:
/// `400 Bad Request`.
#[derive(Debug)]
pub struct InvalidLastEventId {
    text: String,
}

impl InvalidLastEventId {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.chars().take(64).collect(),
        }
    }

    /// The response body text used for this rejection.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }

    /// The status code used for this rejection: `400 Bad Request`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

impl fmt::Display for InvalidLastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid Last-Event-ID `{}`: expected `<milliseconds>-<sequence>`",
            self.text.escape_debug()
        )
    }
}

impl std::error::Error for InvalidLastEventId {}

impl IntoResponse for InvalidLastEventId {
    fn into_response(self) -> Response {
        plain(self.status(), self.body_text(), "InvalidLastEventId")
    }
}

/// The instance has as many SSE connections open as its [`ConnectionLimit`](super::ConnectionLimit)
/// allows: `503 Service Unavailable` with `Retry-After`.
#[derive(Debug)]
pub struct TooManyConnections {
    retry_after: Duration,
}

impl TooManyConnections {
    pub(crate) fn new(retry_after: Duration) -> Self {
        Self { retry_after }
    }

    /// The response body text used for this rejection.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }

    /// The status code used for this rejection: `503 Service Unavailable`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl fmt::Display for TooManyConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("too many open event streams")
    }
}

impl std::error::Error for TooManyConnections {}

impl IntoResponse for TooManyConnections {
    fn into_response(self) -> Response {
        let response = plain(self.status(), self.body_text(), "TooManyConnections");
        with_retry_after(response, self.retry_after)
    }
}

/// The backplane could not subscribe (closed, or its server is down):
/// `503 Service Unavailable` with `Retry-After`.
#[derive(Debug)]
pub struct BackplaneUnavailable {
    source: BackplaneError,
    retry_after: Duration,
}

impl BackplaneUnavailable {
    pub(crate) fn new(source: BackplaneError, retry_after: Duration) -> Self {
        Self {
            source,
            retry_after,
        }
    }

    /// The response body text used for this rejection.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }

    /// The status code used for this rejection: `503 Service Unavailable`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl fmt::Display for BackplaneUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("event backplane unavailable")
    }
}

impl std::error::Error for BackplaneUnavailable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl IntoResponse for BackplaneUnavailable {
    fn into_response(self) -> Response {
        tracing::warn!(error = %self.source, "SSE route could not subscribe");
        let response = plain(self.status(), self.body_text(), "BackplaneUnavailable");
        with_retry_after(response, self.retry_after)
    }
}

/// The value returned by the initial state hook did not serialize:
/// `500 Internal Server Error`.
#[derive(Debug)]
pub struct SnapshotFailed {
    source: serde_json::Error,
}

impl SnapshotFailed {
    pub(crate) fn new(source: serde_json::Error) -> Self {
        Self { source }
    }

    /// The response body text used for this rejection.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }

    /// The status code used for this rejection: `500 Internal Server Error`.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

impl fmt::Display for SnapshotFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("initial state could not be encoded")
    }
}

impl std::error::Error for SnapshotFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl IntoResponse for SnapshotFailed {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.source, "SSE initial state could not be encoded");
        plain(self.status(), self.body_text(), "SnapshotFailed")
    }
}

/// A denial returned by an authorization hook ([`SseRoutes::authorize`](super::SseRoutes::authorize)).
///
/// Any `IntoResponse` can deny a request; this one answers the usual statuses with a plain body.
///
/// # Examples
///
/// ```
/// use axum::response::IntoResponse;
/// use statelesse::routes::Denied;
///
/// assert_eq!(Denied::Unauthorized.into_response().status(), 401);
/// assert_eq!(Denied::Forbidden.into_response().status(), 403);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denied {
    /// The request did not say who is asking: `401 Unauthorized`.
    Unauthorized,
    /// The requester may not open this stream: `403 Forbidden`.
    Forbidden,
}

impl Denied {
    /// The response body text used for this rejection.
    #[must_use]
    pub fn body_text(&self) -> String {
        self.to_string()
    }

    /// The status code used for this rejection: 401 or 403.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
        })
    }
}

impl std::error::Error for Denied {}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        plain(self.status(), self.body_text(), "Denied")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let header = |after| {
            TooManyConnections::new(after).into_response().headers()[header::RETRY_AFTER].clone()
        };
        assert_eq!(header(Duration::from_secs(3)), "3");
        assert_eq!(header(Duration::from_millis(2500)), "3");
        assert_eq!(header(Duration::ZERO), "1");
    }

    #[test]
    fn bodies_are_plain_text() {
        let response = InvalidLastEventId::new("x\ny").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            InvalidLastEventId::new("x\ny").body_text(),
            "invalid Last-Event-ID `x\\ny`: expected `<milliseconds>-<sequence>`"
        );
    }
}
