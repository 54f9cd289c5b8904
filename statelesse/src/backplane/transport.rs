//! The object-safe, bytes-level [`Transport`] trait that a backplane transport implements.
//!
//! The typed core ([`Backplane`](super::Backplane) and its
//! [`Subscription`](super::subscription::Subscription)) is written against this trait only; it
//! never knows which transport runs. Channels here are plain names built by
//! [`Channel`](crate::Channel): the escape hatch for code that needs raw names.
//!
//! A transport hands each local subscriber a [`Delivery`]: an event, or a [`Gap`] where events
//! were lost and could not be refilled. The gap travels in the same queue as the events, so a
//! subscriber sees it exactly where it happened.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

use super::error::BackplaneError;
use super::replay::config::ReplayConfig;
use crate::diagnostics::Diagnostics;
use crate::health::Health;
use crate::id::EventId;
use crate::message::Message;
use crate::presence::PresenceEntry;

/// A boxed, sendable future, as returned by [`Transport`] methods.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Carries published events between instances and to this instance's subscribers.
///
/// Implementations: [`MemoryTransport`](crate::MemoryTransport) and, with the `redis` feature,
/// `RedisTransport`. A transport must give each channel's events strictly increasing ids, deliver
/// them to local subscribers in that order, keep every subscriber's buffer bounded, and send a
/// [`Delivery::Gap`] rather than skip events silently.
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// Publishes one event on `channel`; returns the id it was given.
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Cow<'static, str>,
        data: Bytes,
    ) -> BoxFuture<'a, Result<EventId, BackplaneError>>;

    /// Publishes `events` in order; returns each one's id or error, in the same order.
    ///
    /// Events on one channel are appended in the order given, so their ids increase along it.
    /// The default publishes them one after the other with [`publish`](Self::publish); a
    /// transport with a cheaper bulk path overrides it (Redis: one script call for the lot).
    fn publish_many(
        &self,
        events: Vec<OutgoingEvent>,
    ) -> BoxFuture<'_, Vec<Result<EventId, BackplaneError>>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(events.len());
            for event in events {
                results.push(self.publish(&event.channel, event.event, event.data).await);
            }
            results
        })
    }

    /// Subscribes this instance to `channel`; the feed receives every event published after the
    /// returned future completes.
    fn subscribe<'a>(&'a self, channel: &'a str)
    -> BoxFuture<'a, Result<LiveFeed, BackplaneError>>;

    /// One page of `channel`'s history after `after`, oldest first: at most `limits.events`
    /// events and at most `limits.bytes` bytes of data, but at least one event when one
    /// follows `after`. With `limits.events == 0` it reads only the channel's position
    /// ([`HistoryPage::end`]). A [`Backplane`](super::Backplane) calls it through its shared,
    /// budgeted reader (see [`replay`](super::replay)), a page at a time.
    fn history_page<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        limits: PageLimits,
    ) -> BoxFuture<'a, Result<HistoryPage, BackplaneError>>;

    /// How this transport's history is replayed: page size and read budget.
    fn replay_config(&self) -> ReplayConfig {
        ReplayConfig::default()
    }

    /// Called when a subscription of `channel` gave up a refill from history because the read
    /// failed, and yields a [`Gap`] instead; a transport may count it in its diagnostics. The
    /// default does nothing.
    fn refill_given_up(&self, channel: &str) {
        let _ = channel;
    }

    /// Whether the transport can serve: see [`Backplane::health`](super::Backplane::health). The
    /// default is always ready.
    fn health(&self) -> Health {
        Health::ready()
    }

    /// The number of local subscribers of `channel`.
    fn local_subscriber_count(&self, channel: &str) -> usize;

    /// Counts one local connection of `member` (its identity, compact JSON) on `channel`, until
    /// the returned [`Interest`] is dropped.
    ///
    /// The member's first connection on any instance publishes a
    /// [`JOIN_EVENT`](crate::protocol::JOIN_EVENT) on `channel`, its last one closing (or, on
    /// another instance, expiring) a [`LEAVE_EVENT`](crate::protocol::LEAVE_EVENT): a
    /// transport counts connections per member locally and tells the other instances only when
    /// a member's local count goes from 0 to 1 or from 1 to 0. The future completes once the
    /// member is listed by [`presence`](Self::presence) on every instance. The default refuses
    /// with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    fn presence_enter<'a>(
        &'a self,
        channel: &'a str,
        member: Bytes,
    ) -> BoxFuture<'a, Result<Interest, BackplaneError>> {
        let _ = member;
        Box::pin(std::future::ready(Err(unsupported(channel))))
    }

    /// The members of `channel` on every instance, oldest first, at most
    /// [`MAX_PRESENCE_MEMBERS`](crate::presence::MAX_PRESENCE_MEMBERS); entries of an instance
    /// that stopped refreshing them are not listed. The default refuses with
    /// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PresenceEntry>, BackplaneError>> {
        Box::pin(std::future::ready(Err(unsupported(channel))))
    }

    /// The number of members of `channel` on every instance (not capped). The default refuses
    /// with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
    fn presence_count<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<usize, BackplaneError>> {
        Box::pin(std::future::ready(Err(unsupported(channel))))
    }

    /// A snapshot of the transport's state.
    fn diagnostics(&self) -> Diagnostics;

    /// Ends every local feed, releases the transport's resources, and makes every later publish
    /// and subscribe fail with [`ErrorKind::Closed`](crate::ErrorKind::Closed).
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// The error of a presence operation on a transport that keeps no presence.
fn unsupported(channel: &str) -> BackplaneError {
    BackplaneError::with_source(
        super::error::ErrorKind::Unsupported,
        "this transport keeps no presence",
    )
    .on_channel(channel)
}

/// One event of a [`Transport::publish_many`] call: where it goes and what it carries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OutgoingEvent {
    /// The channel's name.
    pub channel: String,
    /// The SSE event name.
    pub event: Cow<'static, str>,
    /// The serialized data.
    pub data: Bytes,
}

impl OutgoingEvent {
    /// The event `event` carrying `data`, for `channel`.
    #[must_use]
    pub fn new(channel: impl Into<String>, event: Cow<'static, str>, data: Bytes) -> Self {
        Self {
            channel: channel.into(),
            event,
            data,
        }
    }
}

/// The most a [`Transport::history_page`] read returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageLimits {
    /// The most events in the page; `0` reads only the position. A transport that stores events
    /// in groups (Redis: one stream entry per channel per publish call) may end the page at the
    /// end of the group that reaches the limit.
    pub events: usize,
    /// The most bytes of event data in the page, but always one event (or group) if one follows.
    pub bytes: usize,
}

impl PageLimits {
    /// At most `events` events and `bytes` bytes of data.
    #[must_use]
    pub const fn new(events: usize, bytes: usize) -> Self {
        Self { events, bytes }
    }

    /// No events: only the channel's position.
    pub const POSITION: Self = Self::new(0, 0);
}

/// The result of [`Transport::history_page`].
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct HistoryPage {
    /// The events after the requested id, oldest first.
    pub events: Vec<Arc<Message>>,
    /// `false` when events after the requested id are no longer in history (trimmed, expired,
    /// or the id is unknown), so a reader cannot assume it saw everything.
    pub complete: bool,
    /// Whether more events follow this page in history.
    pub more: bool,
    /// The channel's last id when the page was read (`0-0` when it has none): where a reader
    /// whose id is ahead of the channel goes on from.
    pub end: EventId,
}

impl HistoryPage {
    /// A page of `events`; `complete` says whether nothing before them was missing, `more`
    /// whether events follow, `end` is the channel's last id.
    #[must_use]
    pub fn new(events: Vec<Arc<Message>>, complete: bool, more: bool, end: EventId) -> Self {
        Self {
            events,
            complete,
            more,
            end,
        }
    }

    /// The bytes of event data in the page.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.events.iter().map(|m| m.data().len()).sum()
    }
}

/// Events were lost between the previous item of a subscription and the next.
///
/// A transport reports one as [`Delivery::Gap`]; a subscription also finds one when a lagging
/// reader cannot be refilled from history, and yields it either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .missed {
    Some(n) => format!("subscription missed {n} events"),
    None => "subscription missed events no longer in history".to_owned(),
})]
pub struct Gap {
    /// How many events were missed, when known.
    pub missed: Option<u64>,
}

/// One item of a [`LiveFeed`]: what a transport hands every local subscriber of a channel.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Delivery {
    /// A published event, shared by every subscriber (a reference count, not a copy).
    Event(Arc<Message>),
    /// Events may have been lost before the next one, and history cannot tell which; a
    /// subscription yields it as a [`Gap`] and goes on.
    Gap(Gap),
    /// Events may have been lost before the next one (the transport lost its connection and
    /// subscribed again at `since`): each subscription reads them from history, after the last
    /// event it yielded, through the shared paged reader, then goes on live.
    Recover {
        /// When the feed carried every event again.
        since: tokio::time::Instant,
    },
}

/// One local subscriber's live feed of a channel: a bounded queue, plus the interest that keeps
/// the transport subscribed while the feed lives.
#[derive(Debug)]
pub struct LiveFeed {
    pub(crate) receiver: broadcast::Receiver<Delivery>,
    pub(crate) interest: Interest,
}

impl LiveFeed {
    /// A feed reading `receiver`; `interest` is dropped with the feed.
    #[must_use]
    pub fn new(receiver: broadcast::Receiver<Delivery>, interest: Interest) -> Self {
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
