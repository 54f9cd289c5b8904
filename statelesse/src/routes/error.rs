//! Rejections of the SSE routes: one type per failure, each answering a fixed status and a plain
//! text body before any stream opens.

use std::fmt;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cursor::CursorError;
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

/// Defines a rejection type and its five impls from one row, as axum's `define_rejection!` does:
/// `body_text` and `status` (axum's rejections have both), `Display` (the body), `Error` (with
/// `source` when given) and `IntoResponse` (logged, then `Retry-After` when given).
///
/// The row's functions are closures rather than expressions over `self`, which a `macro_rules!`
/// body cannot share with its caller (hygiene); each is coerced to a `fn` pointer, so it can
/// capture nothing.
macro_rules! define_rejection {
    (
        $(#[$attr:meta])*
        pub $kind:ident $name:ident $def:tt
        status: $code:ident, $status_doc:literal;
        $($rest:tt)*
    ) => {
        define_rejection! {
            $(#[$attr])*
            pub $kind $name $def
            status: |_| StatusCode::$code, $status_doc;
            $($rest)*
        }
    };
    (
        $(#[$attr:meta])*
        pub $kind:ident $name:ident $def:tt
        status: $status:expr, $status_doc:literal;
        display: $display:expr;
        $(source: $source:expr;)?
        $(log: $log:expr;)?
        $(retry_after: $retry_after:expr;)?
    ) => {
        $(#[$attr])*
        pub $kind $name $def

        impl $name {
            /// The response body text used for this rejection.
            #[must_use]
            pub fn body_text(&self) -> String {
                self.to_string()
            }

            #[doc = concat!("The status code used for this rejection: ", $status_doc, ".")]
            #[must_use]
            pub fn status(&self) -> StatusCode {
                let status: fn(&Self) -> StatusCode = $status;
                status(self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let display: fn(&Self, &mut fmt::Formatter<'_>) -> fmt::Result = $display;
                display(self, f)
            }
        }

        impl std::error::Error for $name {
            $(
                fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                    let source: fn(&Self) -> Option<&(dyn std::error::Error + 'static)> = $source;
                    source(self)
                }
            )?
        }

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                $(
                    let log: fn(&Self) = $log;
                    log(&self);
                )?
                let response = plain(self.status(), self.body_text(), stringify!($name));
                $(
                    let retry_after: fn(&Self) -> Duration = $retry_after;
                    let response = with_retry_after(response, retry_after(&self));
                )?
                response
            }
        }
    };
}

define_rejection! {
    /// The key segment of the URL is not a valid key of the event's key type: `400 Bad Request`.
    ///
    /// The body names the text and the expected type, e.g. ``invalid key `abc`: expected u64``.
    #[derive(Debug)]
    pub struct InvalidKey {
        source: Option<KeyParseError>,
    }
    status: BAD_REQUEST, "`400 Bad Request`";
    display: |this, f| match &this.source {
        Some(source) => fmt::Display::fmt(source, f),
        None => f.write_str("invalid key: not UTF-8 once percent-decoded"),
    };
    source: |this| this.source.as_ref().map(|e| e as _);
}

define_rejection! {
    /// The route was mounted at a path without the key's placeholder: `500 Internal Server Error`.
    ///
    /// Cannot happen with [`SseRoutes::into_router`](super::SseRoutes::into_router), which mounts the
    /// route at the event's own path, even when nested.
    #[derive(Debug)]
    pub struct MissingKeyParam {
        name: &'static str,
    }
    status: INTERNAL_SERVER_ERROR, "`500 Internal Server Error`";
    display: |this, f| write!(f, "the route has no `{{{}}}` path parameter", this.name);
    log: |this| tracing::error!(param = this.name, "SSE route mounted without its key parameter");
}

define_rejection! {
    /// The `Last-Event-ID` header or `lastEventId` query parameter is not an event id:
    /// `400 Bad Request`.
    #[derive(Debug)]
    pub struct InvalidLastEventId {
        text: String,
    }
    status: BAD_REQUEST, "`400 Bad Request`";
    display: |this, f| {
        write!(
            f,
            "invalid Last-Event-ID `{}`: expected `<milliseconds>-<sequence>`",
            this.text.escape_debug()
        )
    };
}

define_rejection! {
    /// The instance has as many SSE connections open as its [`ConnectionLimit`](super::ConnectionLimit)
    /// allows: `503 Service Unavailable` with `Retry-After`.
    #[derive(Debug)]
    pub struct TooManyConnections {
        retry_after: Duration,
    }
    status: SERVICE_UNAVAILABLE, "`503 Service Unavailable`";
    display: |_, f| f.write_str("too many open event streams");
    retry_after: |this| this.retry_after;
}

define_rejection! {
    /// The backplane could not subscribe (closed, or its server is down):
    /// `503 Service Unavailable` with `Retry-After`.
    #[derive(Debug)]
    pub struct BackplaneUnavailable {
        source: BackplaneError,
        retry_after: Duration,
    }
    status: SERVICE_UNAVAILABLE, "`503 Service Unavailable`";
    display: |_, f| f.write_str("event backplane unavailable");
    source: |this| Some(&this.source);
    log: |this| tracing::warn!(error = %this.source, "SSE route could not subscribe");
    retry_after: |this| this.retry_after;
}

define_rejection! {
    /// The value returned by the initial state hook did not serialize:
    /// `500 Internal Server Error`.
    #[derive(Debug)]
    pub struct SnapshotFailed {
        source: serde_json::Error,
    }
    status: INTERNAL_SERVER_ERROR, "`500 Internal Server Error`";
    display: |_, f| f.write_str("initial state could not be encoded");
    source: |this| Some(&this.source);
    log: |this| tracing::error!(error = %this.source, "SSE initial state could not be encoded");
}

define_rejection! {
    /// The member identity returned by a presence route's member hook did not serialize, or is
    /// larger than [`MAX_MEMBER_BYTES`](crate::presence::MAX_MEMBER_BYTES):
    /// `500 Internal Server Error`.
    #[derive(Debug)]
    pub struct MemberFailed {
        source: crate::BackplaneError,
    }
    status: INTERNAL_SERVER_ERROR, "`500 Internal Server Error`";
    display: |_, f| f.write_str("member identity could not be encoded");
    source: |this| Some(&this.source);
    log: |this| tracing::error!(error = %this.source, "SSE member identity could not be encoded");
}

define_rejection! {
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
    status: |this| match this {
        Self::Unauthorized => StatusCode::UNAUTHORIZED,
        Self::Forbidden => StatusCode::FORBIDDEN,
    }, "401 or 403";
    display: |this, f| {
        f.write_str(match this {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
        })
    };
}

define_rejection! {
    /// The `Last-Event-ID` header or `lastEventId` query parameter of a
    /// [multiplexed route](super::MuxRoutes) is not one of its cursors (from another route,
    /// truncated or altered): `400 Bad Request`.
    #[derive(Debug)]
    pub struct InvalidCursor {
        source: CursorError,
    }
    status: BAD_REQUEST, "`400 Bad Request`";
    display: |this, f| write!(f, "invalid Last-Event-ID: {}", this.source);
    source: |this| Some(&this.source);
}

define_rejection! {
    /// The channels asked of a [multiplexed route](super::MuxRoutes) are not a valid set: none,
    /// more than its maximum, an unknown event type, a key that does not parse (the body names
    /// it), a key given to a keyless type or one channel twice: `400 Bad Request`.
    #[derive(Debug)]
    pub struct InvalidChannels {
        problem: ChannelsProblem,
    }
    status: BAD_REQUEST, "`400 Bad Request`";
    display: |this, f| fmt::Display::fmt(&this.problem, f);
    source: |this| match &this.problem {
        ChannelsProblem::Key { source, .. } => Some(source),
        _ => None,
    };
}

/// What is wrong with the channels of a request: the body of [`InvalidChannels`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChannelsProblem {
    #[error("invalid query string")]
    Query,
    #[error("no channel requested: name event types as query parameters")]
    NoChannel,
    #[error("too many channels: at most {max} per connection")]
    TooMany { max: usize },
    #[error("unknown event type `{name}`")]
    UnknownType { name: String },
    #[error("`{event}` is keyless: give it no key")]
    KeyOfKeyless { event: &'static str },
    #[error("`{event}`: {source}")]
    Key {
        event: &'static str,
        source: KeyParseError,
    },
    #[error("`{event}` key `{key}` requested twice")]
    Duplicate { event: &'static str, key: String },
}

impl InvalidCursor {
    pub(crate) fn new(source: CursorError) -> Self {
        Self { source }
    }
}

impl InvalidChannels {
    pub(crate) fn new(problem: ChannelsProblem) -> Self {
        Self { problem }
    }
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
}

impl MissingKeyParam {
    pub(crate) fn new(name: &'static str) -> Self {
        Self { name }
    }
}

impl InvalidLastEventId {
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.chars().take(64).collect(),
        }
    }
}

impl TooManyConnections {
    pub(crate) fn new(retry_after: Duration) -> Self {
        Self { retry_after }
    }
}

impl BackplaneUnavailable {
    pub(crate) fn new(source: BackplaneError, retry_after: Duration) -> Self {
        Self {
            source,
            retry_after,
        }
    }
}

impl MemberFailed {
    pub(crate) fn new(source: crate::BackplaneError) -> Self {
        Self { source }
    }
}

impl SnapshotFailed {
    pub(crate) fn new(source: serde_json::Error) -> Self {
        Self { source }
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
