//! [`MemoryTransport`]: the embedded default transport, for one process and no server.
//!
//! Every channel keeps a bounded history ring, so `Last-Event-ID` resume works in one process
//! exactly as it does on Redis. A channel's state is dropped once it has no local subscriber and
//! its last publish is older than the history time-to-live, so churned keys do not grow memory.
//! Presence is a map of each channel's members, their connections and since when.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::error::{BackplaneError, ErrorKind};
use super::hub::Hub;
use super::replay::config::ReplayConfig;
use super::transport::{
    BoxFuture, Delivery, HistoryPage, Interest, LiveFeed, PageLimits, Transport,
};
use crate::diagnostics::Diagnostics;
use crate::health::{CLOSED, Health};
use crate::id::EventId;
use crate::message::Message;
use crate::presence::{self, PresenceEntry};

/// Settings of a [`MemoryTransport`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use statelesse::{Backplane, MemoryConfig};
///
/// let bp = Backplane::in_memory_with(
///     MemoryConfig::default()
///         .with_history_len(100)
///         .with_history_ttl(Duration::from_secs(60)),
/// );
/// # drop(bp);
/// ```
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    history_len: usize,
    history_ttl: Duration,
    subscriber_buffer: usize,
    replay: ReplayConfig,
}

impl Default for MemoryConfig {
    /// 1,000 events of history per channel kept for 10 minutes; 1,024 events buffered per subscriber.
    fn default() -> Self {
        Self {
            history_len: 1000,
            history_ttl: Duration::from_mins(10),
            subscriber_buffer: 1024,
            replay: ReplayConfig::default(),
        }
    }
}

impl MemoryConfig {
    /// Sets how many events each channel keeps for resume; `0` turns history off.
    #[must_use]
    pub fn with_history_len(mut self, len: usize) -> Self {
        self.history_len = len;
        self
    }

    /// Sets how long a channel without local subscribers keeps its history after its last publish.
    #[must_use]
    pub fn with_history_ttl(mut self, ttl: Duration) -> Self {
        self.history_ttl = ttl;
        self
    }

    /// Sets how history is replayed: page size, shared reads and read budget (see
    /// [`replay`](super::replay)); the same settings as on Redis, with the same bounds.
    #[must_use]
    pub fn with_replay(mut self, replay: ReplayConfig) -> Self {
        self.replay = replay;
        self
    }

    /// Sets how many events a subscriber may fall behind before it lags (at least 1).
    #[must_use]
    pub fn with_subscriber_buffer(mut self, len: usize) -> Self {
        self.subscriber_buffer = len.max(1);
        self
    }
}

/// The in-memory transport; build a [`Backplane`](crate::Backplane) over it with
/// [`Backplane::in_memory`](crate::Backplane::in_memory).
#[derive(Debug, Clone)]
pub struct MemoryTransport {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    hub: Hub<Log>,
    config: MemoryConfig,
    closed: AtomicBool,
    published: AtomicU64,
    last_sweep: Mutex<Instant>,
    /// The last id this transport gave: one sequence for every channel, so ids stay strictly
    /// increasing on a channel even while no state is kept for it (history off, nobody
    /// listening).
    last_id: Mutex<EventId>,
    /// Each channel's members, by identity (compact JSON). Taken before the hub's lock, never
    /// after it, so that a member's `join` and `leave` are published in the order they happen.
    presence: Mutex<HashMap<String, HashMap<Bytes, Seat>>>,
}

/// One member of a channel: its open connections, and when the first of them opened.
#[derive(Debug, Clone, Copy)]
struct Seat {
    connections: u64,
    since: u64,
}

/// A channel's history and id sequence.
#[derive(Debug)]
struct Log {
    history: VecDeque<Arc<Message>>,
    last_id: EventId,
    /// Every id up to this one is unknown to this log: trimmed, or from before it existed.
    forgotten_through: EventId,
    /// Whether any event was trimmed: a read from the very beginning is complete until then.
    trimmed: bool,
    touched: Instant,
}

impl Log {
    /// A log that knows nothing up to `floor`, the transport's last id.
    fn new(floor: EventId) -> Self {
        Self {
            history: VecDeque::new(),
            last_id: floor,
            forgotten_through: floor,
            trimmed: false,
            touched: Instant::now(),
        }
    }

    /// The page of history after `after`, within `limits`.
    fn page(&self, after: EventId, limits: PageLimits) -> HistoryPage {
        let start = self.history.partition_point(|m| m.id() <= after);
        let mut events = Vec::new();
        let mut bytes = 0;
        for message in self.history.range(start..).take(limits.events) {
            let size = message.data().len();
            if !events.is_empty() && bytes + size > limits.bytes {
                break;
            }
            bytes += size;
            events.push(Arc::clone(message));
        }
        let more = start + events.len() < self.history.len();
        // `0-0` asks for everything: complete unless something was trimmed (as on Redis).
        let from_start = after == EventId::default() && !self.trimmed;
        let complete = (from_start || after >= self.forgotten_through) && after <= self.last_id;
        HistoryPage::new(events, complete, more, self.last_id)
    }

    fn is_live(&self, ttl: Duration) -> bool {
        !self.history.is_empty() && self.touched.elapsed() < ttl
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Inner {
    /// The next id: the clock's millisecond, or one more than the last id within it.
    fn next_id(&self) -> EventId {
        let mut last = self.last_id.lock().unwrap_or_else(PoisonError::into_inner);
        let now = now_millis();
        *last = if now > last.millis() {
            EventId::new(now, 0)
        } else {
            last.successor()
        };
        *last
    }

    fn last_id(&self) -> EventId {
        *self.last_id.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl MemoryTransport {
    /// A transport with `config`.
    #[must_use]
    pub fn new(config: MemoryConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                hub: Hub::new(config.subscriber_buffer),
                config,
                closed: AtomicBool::new(false),
                published: AtomicU64::new(0),
                last_sweep: Mutex::new(Instant::now()),
                last_id: Mutex::new(EventId::default()),
                presence: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Counts one connection of `member` on `channel`; publishes its `join` when it is the
    /// member's first.
    fn enter(&self, channel: &str, member: Bytes) -> Interest {
        let mut channels = self.lock_presence();
        let seats = channels.entry(channel.to_owned()).or_default();
        let seat = seats.entry(member.clone()).or_insert(Seat {
            connections: 0,
            since: presence::now_millis(),
        });
        seat.connections += 1;
        if seat.connections == 1 {
            let since = seat.since;
            self.publish_now(
                channel,
                crate::protocol::JOIN_EVENT.into(),
                presence::join_data(&member, since),
            );
        }
        drop(channels);
        let transport = self.clone();
        let channel = channel.to_owned();
        Interest::new(move || transport.leave(&channel, &member))
    }

    /// Releases one connection of `member` on `channel`; publishes its `leave` when it was the
    /// member's last.
    fn leave(&self, channel: &str, member: &Bytes) {
        let mut channels = self.lock_presence();
        let Some(seats) = channels.get_mut(channel) else {
            return;
        };
        let Some(seat) = seats.get_mut(member) else {
            return;
        };
        seat.connections -= 1;
        if seat.connections > 0 {
            return;
        }
        seats.remove(member);
        if seats.is_empty() {
            channels.remove(channel);
        }
        if !self.inner.closed.load(Ordering::Acquire) {
            self.publish_now(
                channel,
                crate::protocol::LEAVE_EVENT.into(),
                presence::leave_data(member),
            );
        }
    }

    fn lock_presence(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<Bytes, Seat>>> {
        self.inner
            .presence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of channels whose state is held (subscribed, or with unexpired history).
    #[must_use]
    pub fn retained_channels(&self) -> usize {
        self.inner.hub.lock().len()
    }

    fn closed_error(&self, channel: &str) -> Option<BackplaneError> {
        self.inner
            .closed
            .load(Ordering::Acquire)
            .then(|| BackplaneError::new(ErrorKind::Closed).on_channel(channel))
    }

    fn publish_now(&self, channel: &str, event: Cow<'static, str>, data: Bytes) -> EventId {
        let inner = &self.inner;
        let keep = inner.config.history_len;
        let id = {
            let mut channels = inner.hub.lock();
            if keep == 0 && !channels.contains_key(channel) {
                // Nobody listens and nothing is kept: there is nothing to deliver or remember.
                return inner.next_id();
            }
            let slot = inner
                .hub
                .slot(&mut channels, channel, || Log::new(inner.last_id()));
            let id = inner.next_id();
            slot.state.last_id = id;
            let message = Arc::new(Message::new(id, event, data));
            let log = &mut slot.state;
            log.touched = Instant::now();
            if keep == 0 {
                log.forgotten_through = id;
                log.trimmed = true;
            } else {
                log.history.push_back(Arc::clone(&message));
                while log.history.len() > keep {
                    if let Some(evicted) = log.history.pop_front() {
                        log.forgotten_through = evicted.id();
                        log.trimmed = true;
                    }
                }
            }
            slot.deliver(Delivery::Event(message));
            id
        };
        inner.published.fetch_add(1, Ordering::Relaxed);
        self.sweep_expired();
        id
    }

    /// Drops the state of channels nobody listens to whose history expired, at most once per
    /// second (amortized over publishes, so no background task is needed).
    fn sweep_expired(&self) {
        let inner = &self.inner;
        {
            let mut last = inner
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() < Duration::from_secs(1) {
                return;
            }
            *last = Instant::now();
        }
        let ttl = inner.config.history_ttl;
        inner
            .hub
            .lock()
            .retain(|_, slot| slot.subscribers > 0 || slot.state.is_live(ttl));
    }
}

impl Default for MemoryTransport {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

impl Transport for MemoryTransport {
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Cow<'static, str>,
        data: Bytes,
    ) -> BoxFuture<'a, Result<EventId, BackplaneError>> {
        let result = match self.closed_error(channel) {
            Some(err) => Err(err),
            None => Ok(self.publish_now(channel, event, data)),
        };
        Box::pin(std::future::ready(result))
    }

    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<LiveFeed, BackplaneError>> {
        if let Some(err) = self.closed_error(channel) {
            return Box::pin(std::future::ready(Err(err)));
        }
        let inner = Arc::clone(&self.inner);
        let (receiver, _first) = inner.hub.subscribe(channel, || Log::new(inner.last_id()));
        let name = channel.to_owned();
        let interest = Interest::new(move || {
            let ttl = inner.config.history_ttl;
            inner.hub.release(&name, |log| log.is_live(ttl));
        });
        Box::pin(std::future::ready(Ok(LiveFeed::new(receiver, interest))))
    }

    fn history_page<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        limits: PageLimits,
    ) -> BoxFuture<'a, Result<HistoryPage, BackplaneError>> {
        let page = match self.inner.hub.lock().get(channel) {
            None => HistoryPage::new(Vec::new(), false, false, EventId::default()),
            Some(slot) => slot.state.page(after, limits),
        };
        Box::pin(std::future::ready(Ok(page)))
    }

    fn replay_config(&self) -> ReplayConfig {
        self.inner.config.replay.clone()
    }

    fn local_subscriber_count(&self, channel: &str) -> usize {
        self.inner.hub.subscriber_count(channel)
    }

    fn presence_enter<'a>(
        &'a self,
        channel: &'a str,
        member: Bytes,
    ) -> BoxFuture<'a, Result<Interest, BackplaneError>> {
        let result = match self.closed_error(channel) {
            Some(err) => Err(err),
            None => presence::check_member(channel, &member).map(|()| self.enter(channel, member)),
        };
        Box::pin(std::future::ready(result))
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PresenceEntry>, BackplaneError>> {
        let mut entries: Vec<PresenceEntry> = self
            .lock_presence()
            .get(channel)
            .map(|seats| {
                seats
                    .iter()
                    .map(|(member, seat)| {
                        PresenceEntry::new(member.clone(), seat.connections, seat.since)
                    })
                    .collect()
            })
            .unwrap_or_default();
        presence::sort_and_cap(&mut entries);
        Box::pin(std::future::ready(Ok(entries)))
    }

    fn presence_count<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<usize, BackplaneError>> {
        let count = self.lock_presence().get(channel).map_or(0, HashMap::len);
        Box::pin(std::future::ready(Ok(count)))
    }

    fn health(&self) -> Health {
        if self.inner.closed.load(Ordering::Acquire) {
            Health::down(CLOSED)
        } else {
            Health::ready()
        }
    }

    fn diagnostics(&self) -> Diagnostics {
        Diagnostics::from_counts(
            "memory",
            self.inner.hub.counts(),
            self.inner.published.load(Ordering::Relaxed),
        )
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.inner.closed.store(true, Ordering::Release);
        self.lock_presence().clear();
        self.inner.hub.clear();
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    async fn publish(t: &MemoryTransport, channel: &str) -> EventId {
        t.publish(channel, "E".into(), data("{}")).await.unwrap()
    }

    const ALL: PageLimits = PageLimits::new(usize::MAX, usize::MAX);

    #[tokio::test]
    async fn ids_increase_with_history_off_and_nobody_listening() {
        let t = MemoryTransport::new(MemoryConfig::default().with_history_len(0));
        let mut last = EventId::default();
        for _ in 0..1000 {
            let id = publish(&t, "c").await;
            assert!(id > last, "{id} after {last}");
            last = id;
        }
        let _feed = t.subscribe("c").await.unwrap();
        assert!(publish(&t, "c").await > last);
    }

    #[tokio::test]
    async fn a_page_says_whether_more_events_follow_and_where_the_channel_ends() {
        let t = MemoryTransport::default();
        let first = publish(&t, "c").await;
        publish(&t, "c").await;
        let last = publish(&t, "c").await;
        let page = t
            .history_page("c", first, PageLimits::new(1, usize::MAX))
            .await
            .unwrap();
        assert_eq!(page.events.len(), 1);
        assert!(page.more && page.complete);
        assert_eq!(page.end, last);
        let rest = t.history_page("c", first, ALL).await.unwrap();
        assert_eq!(rest.events.len(), 2);
        assert!(!rest.more);
    }

    #[tokio::test]
    async fn a_page_of_no_events_reads_only_the_position() {
        let t = MemoryTransport::default();
        let last = publish(&t, "c").await;
        let page = t
            .history_page("c", EventId::default(), PageLimits::POSITION)
            .await
            .unwrap();
        assert!(page.events.is_empty());
        assert_eq!(page.end, last);
    }

    #[tokio::test]
    async fn ids_increase_along_a_channel() {
        let t = MemoryTransport::default();
        let a = publish(&t, "c").await;
        let b = publish(&t, "c").await;
        assert!(b > a);
    }

    #[tokio::test]
    async fn a_history_page_returns_later_events_in_order() {
        let t = MemoryTransport::default();
        let first = publish(&t, "c").await;
        let second = publish(&t, "c").await;
        let third = publish(&t, "c").await;
        let history = t.history_page("c", first, ALL).await.unwrap();
        let ids: Vec<_> = history.events.iter().map(|m| m.id()).collect();
        assert_eq!(ids, [second, third]);
        assert!(history.complete);
    }

    #[tokio::test]
    async fn history_is_incomplete_after_trimming() {
        let t = MemoryTransport::new(MemoryConfig::default().with_history_len(2));
        let first = publish(&t, "c").await;
        for _ in 0..3 {
            publish(&t, "c").await;
        }
        let history = t.history_page("c", first, ALL).await.unwrap();
        assert_eq!(history.events.len(), 2);
        assert!(!history.complete);
    }

    #[tokio::test]
    async fn reading_from_the_start_is_complete_until_something_is_trimmed() {
        let t = MemoryTransport::new(MemoryConfig::default().with_history_len(2));
        publish(&t, "c").await;
        publish(&t, "c").await;
        assert!(
            t.history_page("c", EventId::default(), ALL)
                .await
                .unwrap()
                .complete
        );
        publish(&t, "c").await;
        assert!(
            !t.history_page("c", EventId::default(), ALL)
                .await
                .unwrap()
                .complete
        );
    }

    #[tokio::test]
    async fn unknown_future_id_is_incomplete() {
        let t = MemoryTransport::default();
        let id = publish(&t, "c").await;
        let history = t.history_page("c", id.successor(), ALL).await.unwrap();
        assert!(!history.complete);
    }

    #[tokio::test]
    async fn channel_state_is_dropped_when_last_subscriber_leaves_without_history() {
        let t = MemoryTransport::new(MemoryConfig::default().with_history_len(0));
        let feed = t.subscribe("c").await.unwrap();
        publish(&t, "c").await;
        assert_eq!(t.retained_channels(), 1);
        drop(feed);
        assert_eq!(t.retained_channels(), 0);
    }

    #[tokio::test]
    async fn publishing_without_listeners_or_history_keeps_nothing() {
        let t = MemoryTransport::new(MemoryConfig::default().with_history_len(0));
        for i in 0..100 {
            t.publish(&format!("c{i}"), "E".into(), data("{}"))
                .await
                .unwrap();
        }
        assert_eq!(t.retained_channels(), 0);
    }

    #[tokio::test]
    async fn expired_history_is_swept() {
        let t = MemoryTransport::new(MemoryConfig::default().with_history_ttl(Duration::ZERO));
        publish(&t, "old").await;
        *t.inner.last_sweep.lock().unwrap() -= Duration::from_secs(2);
        publish(&t, "new").await;
        assert_eq!(t.retained_channels(), 0);
    }
}
