//! [`BackplaneError`]: why a publish, subscribe or history read failed.

use std::error::Error as StdError;
use std::fmt;

type BoxError = Box<dyn StdError + Send + Sync>;

/// The error of a [`Backplane`](crate::Backplane) operation.
///
/// Opaque: ask it what happened with [`kind`](Self::kind) or the `is_*` predicates; the
/// transport's own error, when there is one, is its [`source`](StdError::source).
pub struct BackplaneError {
    kind: ErrorKind,
    channel: Option<Box<str>>,
    source: Option<BoxError>,
}

/// What kind of failure a [`BackplaneError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The backplane was shut down.
    Closed,
    /// The transport's server cannot be reached, or the connection broke during the call. A read
    /// was not done. A publish was not done when the connection could not be made, but when it
    /// broke while the command was on its way, the server may have run it: like
    /// [`Timeout`](Self::Timeout), its outcome is unknown, and retrying it may deliver the event
    /// twice (under `CLIENT KILL` every 300 ms, 326 of 2,043 publishes that failed this way had
    /// been delivered: `tests/chaos.rs`).
    Unavailable,
    /// The transport's server did not answer in time; the operation may or may not have happened.
    Timeout,
    /// The transport has not reached its server yet (a backplane built to connect in the
    /// background, such as a Redis backplane built with `Backplane::redis_lazy`, before its first
    /// connection); the operation was not done.
    NotConnected,
    /// The event could not be serialized.
    Encode,
    /// The serialized event is larger than the configured maximum.
    PayloadTooLarge,
    /// The transport's server answered something unexpected.
    Protocol,
    /// The configuration is invalid.
    Config,
    /// This instance is at its budget of concurrent history reads; retry shortly (an SSE route
    /// answers `503` with `Retry-After`).
    Busy,
    /// Two registered event types take the same name in one domain, so their channels could be
    /// the same; the source is the [`ChannelCollision`](crate::registry::ChannelCollision),
    /// naming both types. A program error, fixed by renaming one with `#[sse(name = "..")]`.
    ChannelCollision,
    /// The transport does not implement this operation (presence, on a transport that keeps
    /// none).
    Unsupported,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "backplane is shut down",
            Self::Unavailable => "backplane transport unavailable",
            Self::Timeout => "backplane transport timed out",
            Self::NotConnected => "backplane transport not connected yet",
            Self::Encode => "event could not be serialized",
            Self::PayloadTooLarge => "event payload too large",
            Self::Protocol => "unexpected answer from the backplane transport",
            Self::Config => "invalid backplane configuration",
            Self::Busy => "too many history reads in flight on this instance",
            Self::ChannelCollision => "two event types take this event's name in its domain",
            Self::Unsupported => "the backplane transport does not support this operation",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BackplaneError {
    /// An error of `kind`, with no further context.
    #[must_use]
    pub fn new(kind: ErrorKind) -> Self {
        Self {
            kind,
            channel: None,
            source: None,
        }
    }

    /// An error of `kind` caused by `source`.
    #[must_use]
    pub fn with_source(kind: ErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            channel: None,
            source: Some(source.into()),
        }
    }

    /// Adds the name of the channel the operation was for.
    #[must_use]
    pub fn on_channel(mut self, channel: &str) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The channel the failed operation was for, when known.
    #[must_use]
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// Whether the backplane was shut down.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.kind == ErrorKind::Closed
    }

    /// Whether the transport's server could not be reached ([`ErrorKind::Unavailable`], or
    /// [`ErrorKind::NotConnected`] before the first connection) or did not answer in time
    /// ([`ErrorKind::Timeout`]): worth retrying later.
    #[must_use]
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unavailable | ErrorKind::NotConnected | ErrorKind::Timeout
        )
    }
}

impl fmt::Debug for BackplaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BackplaneError");
        d.field("kind", &self.kind);
        if let Some(channel) = &self.channel {
            d.field("channel", channel);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for BackplaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if let Some(channel) = &self.channel {
            write!(f, " (channel `{channel}`)")?;
        }
        Ok(())
    }
}

impl StdError for BackplaneError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_and_channel() {
        let err = BackplaneError::new(ErrorKind::Closed).on_channel("game:1");
        assert_eq!(err.to_string(), "backplane is shut down (channel `game:1`)");
    }

    #[test]
    fn source_is_the_transport_error() {
        let io = std::io::Error::other("refused");
        let err = BackplaneError::with_source(ErrorKind::Unavailable, io);
        assert_eq!(err.source().unwrap().to_string(), "refused");
        assert!(err.is_connection_lost());
    }
}
