//! The object-safe, bytes-level [`Transport`] trait that a backplane transport implements.
//!
//! The typed core ([`Backplane`](crate::Backplane), [`Subscription`](crate::Subscription)) is
//! written against this trait only; it never knows which transport runs. Channels here are plain
//! names built by [`Channel`](crate::Channel): the escape hatch for code that needs raw names.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::{BackplaneError, Diagnostics, EventId, Message};

/// A boxed, sendable future, as returned by [`Transport`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries published events between instances and to this instance's subscribers.
///
/// Implementations: [`MemoryTransport`](crate::MemoryTransport) and, with the `redis` feature,
/// `RedisTransport`. A transport must give each channel's events strictly increasing ids, deliver
/// them to local subscribers in that order, and keep every subscriber's buffer bounded.
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Publishes one event on `channel`; returns the id it was given.
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Cow<'static, str>,
        data: Bytes,
    ) -> BoxFuture<'a, Result<EventId, BackplaneError>>;

    /// Subscribes this instance to `channel`; the feed receives every event published after the
    /// returned future completes.
    fn subscribe<'a>(&'a self, channel: &'a str)
    -> BoxFuture<'a, Result<LiveFeed, BackplaneError>>;

    /// The events of `channel` after `after`, oldest first, from the channel's history.
    fn history_after<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
    ) -> BoxFuture<'a, Result<History, BackplaneError>>;

    /// The number of local subscribers of `channel`.
    fn local_subscriber_count(&self, channel: &str) -> usize;

    /// A snapshot of the transport's state.
    fn diagnostics(&self) -> Diagnostics;

    /// Ends every local feed, releases the transport's resources, and makes every later publish
    /// and subscribe fail with [`ErrorKind::Closed`](crate::ErrorKind::Closed).
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// The result of [`Transport::history_after`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct History {
    /// The events after the requested id, oldest first.
    pub events: Vec<Arc<Message>>,
    /// `false` when events after the requested id are no longer in history (trimmed, expired,
    /// or the id is unknown), so a reader cannot assume it saw everything.
    pub complete: bool,
}

impl History {
    /// A history read that returned `events`; `complete` says whether nothing was missing.
    #[must_use]
    pub fn new(events: Vec<Arc<Message>>, complete: bool) -> Self {
        Self { events, complete }
    }
}

/// One local subscriber's live feed of a channel: a bounded queue, plus the interest that keeps
/// the transport subscribed while the feed lives.
#[derive(Debug)]
pub struct LiveFeed {
    pub(crate) receiver: broadcast::Receiver<Arc<Message>>,
    pub(crate) interest: Interest,
}

impl LiveFeed {
    /// A feed reading `receiver`; `interest` is dropped with the feed.
    #[must_use]
    pub fn new(receiver: broadcast::Receiver<Arc<Message>>, interest: Interest) -> Self {
        Self { receiver, interest }
    }
}

/// Runs a release action when dropped: how a transport learns that a subscriber left.
pub struct Interest(Option<Box<dyn FnOnce() + Send + Sync>>);

impl Interest {
    /// An interest that calls `release` when dropped.
    #[must_use]
    pub fn new(release: impl FnOnce() + Send + Sync + 'static) -> Self {
        Self(Some(Box::new(release)))
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Interest")
    }
}
