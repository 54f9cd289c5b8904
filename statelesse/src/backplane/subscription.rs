//! Subscriptions: a channel's events as a [`Stream`], with resume and lag recovery built in.
//!
//! # Ordering and duplicates
//!
//! Events arrive in publish order, each at most once. A subscription opened with a last seen id
//! subscribes first, then reads the history after that id, then continues with live events,
//! dropping the live events it already replayed: no gap and no duplicate at the seam.
//!
//! # Lagging
//!
//! Each subscriber buffers a bounded number of events. One that falls further behind (even before
//! its first event) is refilled from the channel's history, transparently; so is every
//! subscriber after the transport lost and regained its connection. When history cannot cover
//! what it missed (history off, trimmed or expired), the stream yields a [`Gap`] and goes on with
//! the events it still has, so the reader can refetch state; it is never a silent skip. A resume
//! id ahead of the channel's last id (forged, or from a channel since deleted) is a [`Gap`] too,
//! and the stream goes on from the channel's end.
//!
//! # Paging
//!
//! History is replayed a page at a time, through the instance's shared reader (see
//! [`replay`](super::replay)): a subscription holds at most one page, and reads the next one
//! only when its reader has taken every event of the previous one, so a reader that stops
//! reading stops costing reads.
//!
//! # Closing
//!
//! The stream ends when the backplane shuts down. Dropping it unsubscribes.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Instant;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::error::{BackplaneError, ErrorKind};
use super::replay::Replayer;
use super::transport::{BoxFuture, Delivery, Gap, HistoryPage, Interest, LiveFeed};
use crate::event::SseEvent;
use crate::id::EventId;
use crate::message::Message;
use crate::telemetry::{EventMetrics, GapCause};

/// A channel's events as raw [`Message`]s: the untyped core of [`Subscription`], used by the SSE
/// routes, which forward the bytes without decoding them.
pub struct RawSubscription {
    channel: Arc<str>,
    replayer: Arc<Replayer>,
    live: BroadcastStream<Delivery>,
    _interest: Interest,
    /// The last event yielded (or resumed after): live events up to it are duplicates.
    last: Option<EventId>,
    /// Where a refill starts when nothing was yielded yet: the channel's position read before
    /// the live feed opened, so nothing published after it can be missed.
    floor: EventId,
    /// Since when the live feed has carried every event of the channel; a read of the channel's
    /// last page must start after it (see [`replay`](super::replay)).
    live_since: Instant,
    /// The page being replayed: at most one page is held.
    replay: VecDeque<Arc<Message>>,
    /// History holds more after the page being replayed: read on once it is taken.
    more: bool,
    refill: Option<BoxFuture<'static, Result<Arc<HistoryPage>, BackplaneError>>>,
    gap: Option<(Gap, GapCause)>,
    /// The series of the subscription's event type.
    metrics: EventMetrics,
}

/// How long a subscription already streaming waits before asking again for a read the
/// instance's budget refused.
const BUSY_RETRY: Duration = Duration::from_millis(50);

impl RawSubscription {
    /// Subscribes to `channel`; with `after`, reads the first page of history after that id
    /// before returning, so a read the instance has no budget for fails here
    /// ([`ErrorKind::Busy`](super::error::ErrorKind::Busy)) rather than mid-stream.
    pub(crate) async fn open(
        replayer: Arc<Replayer>,
        channel: &str,
        after: Option<EventId>,
        metrics: EventMetrics,
    ) -> Result<Self, BackplaneError> {
        let floor = match after {
            Some(after) => after,
            // Read before the subscribe, never after (a floor past events the feed carries would
            // skip them on a refill); shared with the streams opening at the same time, which
            // is as safe: see `Replayer::position`.
            None => replayer.position(channel).await?,
        };
        let LiveFeed { receiver, interest } = replayer.transport().subscribe(channel).await?;
        let live_since = Instant::now();
        let mut subscription = Self {
            channel: channel.into(),
            replayer,
            live: BroadcastStream::new(receiver),
            _interest: interest,
            last: after,
            floor,
            live_since,
            replay: VecDeque::new(),
            more: false,
            refill: None,
            gap: None,
            metrics,
        };
        if let Some(after) = after {
            let page = subscription
                .replayer
                .page(channel, after, live_since)
                .await?;
            subscription.take_page(&page);
        }
        Ok(subscription)
    }

    /// The channel's name.
    #[must_use]
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The id of the last event this subscription yielded (or resumed after).
    #[must_use]
    pub fn last_id(&self) -> Option<EventId> {
        self.last
    }

    /// Where a resume of this subscription would start: after the last event it yielded (or
    /// resumed after), else after the channel's last event when it opened. Unlike
    /// [`last_id`](Self::last_id) it is known from the start, so a client can resume a channel
    /// that has had no event yet.
    #[cfg(feature = "axum")]
    pub(crate) fn position(&self) -> EventId {
        self.last.unwrap_or(self.floor)
    }

    /// Records one of the subscription's events that its reader cannot pass on (an SSE route's
    /// event that cannot be framed), which the reader reports as a gap.
    #[cfg_attr(not(feature = "axum"), allow(dead_code))]
    pub(crate) fn undeliverable(&self) {
        self.metrics.gap(GapCause::Undeliverable);
    }

    /// Starts reading the next page after the last event yielded.
    fn start_refill(&mut self) {
        let replayer = Arc::clone(&self.replayer);
        let channel = Arc::clone(&self.channel);
        let after = self.last.unwrap_or(self.floor);
        let since = self.live_since;
        self.refill = Some(Box::pin(async move {
            loop {
                match replayer.page(&channel, after, since).await {
                    Err(err) if err.kind() == ErrorKind::Busy => {
                        tokio::time::sleep(BUSY_RETRY).await;
                    }
                    result => return result,
                }
            }
        }));
    }

    /// Queues what `page` holds after the last event yielded, and says a gap first where
    /// history no longer reaches back to it.
    fn take_page(&mut self, page: &HistoryPage) {
        let after = self.last.unwrap_or(self.floor);
        if after > page.end {
            // An id ahead of the channel (forged, or from a channel since deleted) would drop
            // every live event up to it: go on from the channel's end instead.
            self.gap = Some((Gap { missed: None }, GapCause::IdAhead));
            self.last = Some(page.end);
            self.more = false;
            return;
        }
        if !page.complete {
            self.gap = Some((Gap { missed: None }, GapCause::HistoryTrimmed));
        }
        self.replay.extend(
            page.events
                .iter()
                .filter(|m| m.id() > after)
                .map(Arc::clone),
        );
        self.more = page.more;
    }

    fn yield_message(&mut self, message: Arc<Message>) -> Poll<Option<Result<Arc<Message>, Gap>>> {
        self.last = Some(message.id());
        Poll::Ready(Some(Ok(message)))
    }

    fn yield_gap(&self, gap: Gap, cause: GapCause) -> Poll<Option<Result<Arc<Message>, Gap>>> {
        self.metrics.gap(cause);
        tracing::debug!(channel = %self.channel, cause = cause.label(), missed = ?gap.missed, "gap");
        Poll::Ready(Some(Err(gap)))
    }
}

impl Stream for RawSubscription {
    type Item = Result<Arc<Message>, Gap>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some((gap, cause)) = this.gap.take() {
                return this.yield_gap(gap, cause);
            }
            if let Some(message) = this.replay.pop_front() {
                this.metrics.delivered_replayed();
                return this.yield_message(message);
            }
            if let Some(refill) = this.refill.as_mut() {
                let result = ready!(refill.as_mut().poll(cx));
                this.refill = None;
                match result {
                    Ok(page) => this.take_page(&page),
                    Err(err) => {
                        tracing::warn!(channel = %this.channel, error = %err, "history read failed; reporting a gap");
                        this.replayer.transport().refill_given_up(&this.channel);
                        this.gap = Some((Gap { missed: None }, GapCause::HistoryUnavailable));
                        this.more = false;
                    }
                }
                continue;
            }
            if this.more {
                this.more = false;
                this.start_refill();
                continue;
            }
            match ready!(Pin::new(&mut this.live).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Ok(Delivery::Gap(gap))) => this.gap = Some((gap, GapCause::Transport)),
                Some(Ok(Delivery::Recover { since })) => {
                    this.live_since = since;
                    this.start_refill();
                }
                Some(Ok(Delivery::Event(message))) => {
                    if this.last.is_some_and(|last| message.id() <= last) {
                        continue;
                    }
                    this.metrics.delivered_live(message.id());
                    return this.yield_message(message);
                }
                Some(Err(BroadcastStreamRecvError::Lagged(_))) => {
                    this.metrics.lagged();
                    this.start_refill();
                }
            }
        }
    }
}

impl fmt::Debug for RawSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawSubscription")
            .field("channel", &self.channel)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

/// One event received from a [`Subscription`], with its id.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Received<E> {
    /// The event's id on its channel (its SSE `id`).
    pub id: EventId,
    /// The event.
    pub event: E,
}

/// Why a [`Subscription`] yielded an error item; the stream goes on after it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// Events were lost here; refetch state if you need it to be complete.
    #[error(transparent)]
    Gap(#[from] Gap),
    /// An event could not be decoded as the subscription's type: its name is not one of the
    /// type's (published raw by another client of the transport) or its data does not decode
    /// (published by another version?). Counted in
    /// [`Diagnostics::malformed_events`](crate::Diagnostics::malformed_events).
    #[error("event {id} (`{event}`) could not be decoded")]
    Decode {
        /// The undecodable event's id.
        id: EventId,
        /// Its SSE event name.
        event: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// The events of one [`Channel`](crate::Channel) of `E`, as a [`Stream`].
///
/// Returned by [`SseEventExt::stream`](super::SseEventExt::stream) and
/// [`Backplane::subscribe`](super::Backplane::subscribe).
/// See the [module documentation](self) for ordering, lagging and closing.
pub struct Subscription<E> {
    raw: RawSubscription,
    /// [`Diagnostics::malformed_events`](crate::Diagnostics::malformed_events) of its backplane.
    malformed: Arc<AtomicU64>,
    event: PhantomData<fn() -> E>,
}

impl<E: SseEvent> Subscription<E> {
    pub(crate) fn new(raw: RawSubscription, malformed: Arc<AtomicU64>) -> Self {
        Self {
            raw,
            malformed,
            event: PhantomData,
        }
    }

    /// The id of the last event yielded (or resumed after); after a [`Gap`], the position the
    /// stream goes on after (the channel's end after a resume id ahead of it).
    #[must_use]
    pub fn last_id(&self) -> Option<EventId> {
        self.raw.last_id()
    }

    /// The untyped subscription underneath.
    #[must_use]
    pub fn into_raw(self) -> RawSubscription {
        self.raw
    }
}

/// Whether `event` is a `join` or `leave` on a channel of `E`, a presence type: typed readers
/// pass over them.
pub(crate) fn is_presence_change_of<E: SseEvent>(event: &str) -> bool {
    E::PRESENCE && crate::protocol::is_presence_change(event)
}

/// Decodes `message` as one of `E`'s events, as every typed reader does (subscriptions and
/// history reads). A name that is not one of `E`'s (a `snapshot`, `gap` or other event published
/// on the channel by another client) is an error even when its data would fit `E`: the caller
/// reports and counts it, as the routes count the ones they drop.
pub(crate) fn decode<E: SseEvent>(message: &Message) -> Result<E, serde_json::Error> {
    if E::KIND.has_event(message.event()) {
        E::from_data(message.event(), message.data())
    } else {
        Err(serde::de::Error::custom(format_args!(
            "`{}` is not an event name of `{}`",
            message.event().escape_debug(),
            E::KIND.name()
        )))
    }
}

impl<E: SseEvent> Stream for Subscription<E> {
    type Item = Result<Received<E>, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = loop {
            let item = ready!(Pin::new(&mut self.raw).poll_next(cx));
            // A presence type's channel also carries `join` and `leave`: not events of the type,
            // and not malformed either. Its members are read with `PresenceExt::presence`.
            if let Some(Ok(message)) = &item
                && is_presence_change_of::<E>(message.event())
            {
                continue;
            }
            break item;
        };
        Poll::Ready(item.map(|item| {
            let message = item?;
            let decoded = decode::<E>(&message);
            decoded
                .map(|event| Received {
                    id: message.id(),
                    event,
                })
                .map_err(|source| {
                    self.malformed.fetch_add(1, Ordering::Relaxed);
                    SubscriptionError::Decode {
                        id: message.id(),
                        event: message.event().to_owned(),
                        source,
                    }
                })
        }))
    }
}

impl<E> fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.raw.channel)
            .field("last", &self.raw.last)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use bytes::Bytes;
    use futures_util::StreamExt as _;
    use tokio::sync::broadcast;

    use super::*;
    use crate::backplane::replay::config::ReplayConfig;
    use crate::backplane::transport::{PageLimits, Transport};
    use crate::diagnostics::Diagnostics;

    /// A transport whose one live feed the test writes to directly, as a transport's task would;
    /// dropping the test's sender ends the feed.
    #[derive(Debug)]
    struct Scripted(std::sync::Mutex<Option<broadcast::Receiver<Delivery>>>);

    impl Transport for Scripted {
        fn publish<'a>(
            &'a self,
            channel: &'a str,
            _event: Cow<'static, str>,
            _data: Bytes,
        ) -> BoxFuture<'a, Result<EventId, BackplaneError>> {
            let err = BackplaneError::new(ErrorKind::Closed).on_channel(channel);
            Box::pin(std::future::ready(Err(err)))
        }

        fn subscribe<'a>(
            &'a self,
            channel: &'a str,
        ) -> BoxFuture<'a, Result<LiveFeed, BackplaneError>> {
            let feed = match self.0.lock().unwrap().take() {
                Some(receiver) => Ok(LiveFeed::new(receiver, Interest::new(|| ()))),
                None => Err(BackplaneError::new(ErrorKind::Closed).on_channel(channel)),
            };
            Box::pin(std::future::ready(feed))
        }

        fn history_page<'a>(
            &'a self,
            _channel: &'a str,
            _after: EventId,
            _limits: PageLimits,
        ) -> BoxFuture<'a, Result<HistoryPage, BackplaneError>> {
            let page = HistoryPage::new(Vec::new(), true, false, EventId::default());
            Box::pin(std::future::ready(Ok(page)))
        }

        fn local_subscriber_count(&self, _channel: &str) -> usize {
            usize::from(self.0.lock().unwrap().is_none())
        }

        fn diagnostics(&self) -> Diagnostics {
            Diagnostics::from_counts("scripted", std::collections::BTreeMap::new(), 0)
        }

        fn shutdown(&self) -> BoxFuture<'_, ()> {
            Box::pin(std::future::ready(()))
        }
    }

    fn event(millis: u64) -> Delivery {
        Delivery::Event(Arc::new(Message::new(
            EventId::new(millis, 0),
            "E",
            Bytes::from_static(b"{}"),
        )))
    }

    #[tokio::test]
    async fn a_gap_from_the_transport_is_yielded_where_it_happened() {
        let (sender, receiver) = broadcast::channel(8);
        let transport = Arc::new(Scripted(std::sync::Mutex::new(Some(receiver))));
        let replayer = Arc::new(Replayer::new(transport, ReplayConfig::default()));
        let metrics = EventMetrics::new("test", "E");
        let mut sub = RawSubscription::open(replayer, "c", None, metrics)
            .await
            .unwrap();
        for delivery in [event(1), Delivery::Gap(Gap { missed: None }), event(2)] {
            sender.send(delivery).unwrap();
        }
        drop(sender);

        let mut items = Vec::new();
        while let Some(item) = sub.next().await {
            items.push(item.map(|m| m.id().millis()));
        }
        assert_eq!(items, [Ok(1), Err(Gap { missed: None }), Ok(2)]);
    }
}
