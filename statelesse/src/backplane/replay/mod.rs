//! Paged history replay, shared by every subscription of an instance: however many clients resume
//! a channel together, each page is read once, only a few reads are in flight, and no read or
//! connection holds more than one page.
//!
//! # The rules
//!
//! - **Pages.** A read returns at most [`ReplayConfig::page_events`] events and at most
//!   [`ReplayConfig::page_bytes`] bytes of payload (a single event larger than that is a page of
//!   its own). The Redis transport stores the events one publish call sent to a channel as one
//!   stream entry and ends a page at an entry's end, so its pages may exceed either limit by the
//!   rest of one entry (at most 255 events and 512 KiB). A subscription asks for the next page only when its reader has taken every event of
//!   the previous one, so a client that stops reading stops the reads.
//! - **Shared reads.** Reads of the same page (channel and starting id) in flight at the same time
//!   are one read. A page that stopped at a limit (more events follow) can never change, so it is
//!   kept in a per-instance cache of [`ReplayConfig::cache_bytes`], evicted oldest first, and served
//!   to every later reader of that position. The last page of a channel may grow, so a reader joins
//!   an earlier read of it only if that read started after the reader's live feed did (otherwise
//!   events published in between would be neither in the page nor in the feed).
//! - **Positions.** A new stream reads its channel's position (the last id) before it subscribes,
//!   so that a refill before its first event starts there; streams opening together on a channel
//!   share one read of it (any read in flight finishes before they subscribe, which is all the
//!   rule asks). A position read carries no events, so it takes nothing from the budget below; it
//!   is not cached, as an old position would replay events older than the stream.
//! - **Abandoned reads.** A reader that goes away mid-read (its client disconnected) leaves the
//!   read to the readers that joined it; the last one to go takes the read with it, so nothing is
//!   left behind however many resumes are abandoned.
//! - **Budget.** At most [`ReplayConfig::concurrent_reads`] distinct reads run at once per
//!   instance. A new stream waits up to [`ReplayConfig::read_wait`] for one, then fails with
//!   [`ErrorKind::Busy`] (an SSE route answers `503` with `Retry-After`); a stream already open
//!   waits its turn.
//!
//! Memory for history is therefore bounded per instance by
//! `cache_bytes + concurrent_reads × page` for reads, plus at most one page per replaying
//! connection, where `page = max(page_bytes, largest event)`; pages shared by several connections
//! are held once.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OnceCell, Semaphore};
use tokio::time::Instant;

use crate::backplane::error::{BackplaneError, ErrorKind};
use crate::backplane::transport::{HistoryPage, PageLimits, Transport};
use crate::id::EventId;
use crate::telemetry::ReplayMetrics;

pub(crate) mod config;

pub use config::ReplayConfig;

/// How long a cached full page is served: long enough for a burst of resumes to share it, short
/// enough that a channel whose history was deleted and rebuilt is not served stale pages.
const CACHE_TTL: Duration = Duration::from_secs(30);

/// Reads history pages through a transport under the rules of the [module](self).
pub(crate) struct Replayer {
    transport: Arc<dyn Transport>,
    config: ReplayConfig,
    limits: PageLimits,
    permits: Semaphore,
    state: Mutex<State>,
    metrics: ReplayMetrics,
}

#[derive(Default)]
struct State {
    flights: HashMap<FlightKey, InFlight>,
    cache: PageCache,
}

/// A flight and how many readers wait for it (counted under the lock).
struct InFlight {
    flight: Arc<Flight>,
    waiters: usize,
}

type PageKey = (Box<str>, EventId);

/// A read in flight: of a channel's page after an id, or of its position.
type FlightKey = (Box<str>, Read);

/// What a flight reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Read {
    /// The page after this id.
    Page(EventId),
    /// Only the channel's position: kept apart from the page after `0-0`, which it is not.
    Position,
}

/// One read of a page, shared by every reader that asks for it while it runs.
struct Flight {
    created: Instant,
    page: OnceCell<Result<Arc<HistoryPage>, SharedError>>,
}

/// A reader's hold on a flight. Dropped before the flight landed (the reader's future was dropped:
/// its client went away), it retires the flight if no other reader waits for it; otherwise the
/// read goes on for the others (the next of them runs it if it was this reader's).
struct Waiter<'a> {
    replayer: &'a Replayer,
    key: FlightKey,
    flight: Arc<Flight>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut state = self.replayer.lock();
        // Only this flight's count: a newer flight of the same key may have replaced it.
        let Some(entry) = state
            .flights
            .get_mut(&self.key)
            .filter(|entry| Arc::ptr_eq(&entry.flight, &self.flight))
        else {
            return; // landed already, or replaced
        };
        entry.waiters -= 1;
        if entry.waiters == 0 {
            // Nobody is left to fill the cell or read it; a reader arriving now starts afresh.
            state.flights.remove(&self.key);
        }
    }
}

/// A failed read as every waiter of a flight sees it.
#[derive(Clone)]
struct SharedError {
    kind: ErrorKind,
    message: Arc<str>,
}

impl Replayer {
    pub(crate) fn new(transport: Arc<dyn Transport>, config: ReplayConfig) -> Self {
        Self {
            // More permits than a semaphore holds is no limit at all: cap rather than panic.
            permits: Semaphore::new(config.concurrent_reads().min(Semaphore::MAX_PERMITS)),
            limits: PageLimits::new(config.page_events(), config.page_bytes()),
            transport,
            config,
            state: Mutex::new(State::default()),
            metrics: ReplayMetrics::new(),
        }
    }

    /// The page of `channel` after `after`, for a reader whose live feed has carried every event
    /// of the channel since `live_since`.
    pub(crate) async fn page(
        &self,
        channel: &str,
        after: EventId,
        live_since: Instant,
    ) -> Result<Arc<HistoryPage>, BackplaneError> {
        self.shared(channel, Read::Page(after), |flight| {
            flight.created >= live_since
        })
        .await
    }

    /// The position of `channel` (its last id, `0-0` when it has none), for a stream about to
    /// subscribe: it replays from there when it must refill before its first event.
    ///
    /// The rule: the position must be read *before* the stream subscribes. Then every event after
    /// it is either in the live feed or in history after the position, and a refill from it
    /// misses nothing. A position read after the subscribe could be past events the feed already
    /// carried, and a refill from it would skip them silently. So a reader may join any read of
    /// the position in flight, however early it started: it waits for that read to finish, and
    /// only then subscribes. A position cached from an earlier read would be as correct, but a
    /// refill from it would replay events older than the stream, so positions are not cached.
    pub(crate) async fn position(&self, channel: &str) -> Result<EventId, BackplaneError> {
        let page = self.shared(channel, Read::Position, |_| true).await?;
        Ok(page.end)
    }

    /// Serves `read` from the cache, or from a read in flight that `joinable` accepts, or from a
    /// new read.
    async fn shared(
        &self,
        channel: &str,
        read: Read,
        joinable: impl FnOnce(&Flight) -> bool,
    ) -> Result<Arc<HistoryPage>, BackplaneError> {
        let key: FlightKey = (channel.into(), read);
        let waiter = {
            let mut state = self.lock();
            if let Read::Page(after) = read
                && let Some(page) = state.cache.get(&(channel.into(), after))
            {
                return Ok(page);
            }
            let flight = match state.flights.get_mut(&key) {
                Some(entry) if joinable(&entry.flight) => {
                    entry.waiters += 1;
                    Arc::clone(&entry.flight)
                }
                _ => {
                    let flight = Arc::new(Flight {
                        created: Instant::now(),
                        page: OnceCell::new(),
                    });
                    let entry = InFlight {
                        flight: Arc::clone(&flight),
                        waiters: 1,
                    };
                    state.flights.insert(key.clone(), entry);
                    flight
                }
            };
            Waiter {
                replayer: self,
                key,
                flight,
            }
        };
        let result = waiter
            .flight
            .page
            .get_or_init(|| self.read(channel, read))
            .await
            .clone();
        self.land(&waiter.key, &waiter.flight, &result);
        drop(waiter);
        result.map_err(|err| {
            BackplaneError::with_source(err.kind, err.message.to_string()).on_channel(channel)
        })
    }

    /// The transport this reader reads through.
    pub(crate) fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    async fn read(&self, channel: &str, read: Read) -> Result<Arc<HistoryPage>, SharedError> {
        let result = match read {
            Read::Page(after) => {
                let permit = tokio::time::timeout(self.config.read_wait(), self.permits.acquire())
                    .await
                    .map_err(|_| SharedError {
                        kind: ErrorKind::Busy,
                        message: format!(
                            "{} history reads in flight on this instance; retry shortly",
                            self.config.concurrent_reads()
                        )
                        .into(),
                    })?;
                self.metrics.read();
                let result = self
                    .transport
                    .history_page(channel, after, self.limits)
                    .await;
                drop(permit);
                result
            }
            Read::Position => {
                self.transport
                    .history_page(channel, EventId::default(), PageLimits::POSITION)
                    .await
            }
        };
        result.map(Arc::new).map_err(|err| SharedError {
            kind: err.kind(),
            message: err.to_string().into(),
        })
    }

    /// Retires a finished flight: a full page goes to the cache, anything else is forgotten so
    /// the next reader reads afresh.
    fn land(
        &self,
        key: &FlightKey,
        flight: &Arc<Flight>,
        result: &Result<Arc<HistoryPage>, SharedError>,
    ) {
        let mut state = self.lock();
        if state
            .flights
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(&current.flight, flight))
        {
            state.flights.remove(key);
            if let (channel, Read::Page(after)) = key
                && let Ok(page) = result
                && page.more
            {
                state.cache.insert(
                    (channel.clone(), *after),
                    Arc::clone(page),
                    self.config.cache_bytes(),
                );
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The maps stay consistent across a panic: every update is a single insert or remove.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The bytes of pages held in the cache now.
    #[cfg(test)]
    fn cached_bytes(&self) -> usize {
        self.lock().cache.bytes
    }

    /// The reads in flight now.
    #[cfg(test)]
    fn flights(&self) -> usize {
        self.lock().flights.len()
    }
}

impl fmt::Debug for Replayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Full pages by position, oldest first, within a byte budget.
#[derive(Default)]
struct PageCache {
    pages: HashMap<PageKey, (Arc<HistoryPage>, Instant)>,
    order: VecDeque<PageKey>,
    bytes: usize,
}

impl PageCache {
    fn get(&mut self, key: &PageKey) -> Option<Arc<HistoryPage>> {
        let (page, stored) = self.pages.get(key)?;
        if stored.elapsed() < CACHE_TTL {
            return Some(Arc::clone(page));
        }
        self.remove(key);
        None
    }

    fn insert(&mut self, key: PageKey, page: Arc<HistoryPage>, budget: usize) {
        let size = page.bytes();
        if size > budget || self.pages.contains_key(&key) {
            return;
        }
        while self.bytes + size > budget {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((evicted, _)) = self.pages.remove(&oldest) {
                self.bytes -= evicted.bytes();
            }
        }
        self.bytes += size;
        self.order.push_back(key.clone());
        self.pages.insert(key, (page, Instant::now()));
    }

    fn remove(&mut self, key: &PageKey) {
        if let Some((page, _)) = self.pages.remove(key) {
            self.bytes -= page.bytes();
            self.order.retain(|k| k != key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;

    use std::num::NonZeroUsize;

    use super::*;
    use crate::backplane::memory::{MemoryConfig, MemoryTransport};
    use crate::backplane::subscription::RawSubscription;
    use crate::backplane::transport::{BoxFuture, LiveFeed};
    use crate::diagnostics::Diagnostics;
    use crate::telemetry::EventMetrics;

    /// A memory transport that counts history reads and can hold them until released.
    #[derive(Debug)]
    struct Counting {
        inner: MemoryTransport,
        reads: AtomicUsize,
        /// Held for writing by a test to hold every read back.
        gate: tokio::sync::RwLock<()>,
    }

    impl Counting {
        fn new(history: usize) -> Arc<Self> {
            Arc::new(Self {
                inner: MemoryTransport::new(MemoryConfig::default().with_history_len(history)),
                reads: AtomicUsize::new(0),
                gate: tokio::sync::RwLock::new(()),
            })
        }
    }

    impl Transport for Counting {
        fn publish<'a>(
            &'a self,
            channel: &'a str,
            event: Cow<'static, str>,
            data: Bytes,
        ) -> BoxFuture<'a, Result<EventId, BackplaneError>> {
            self.inner.publish(channel, event, data)
        }

        fn subscribe<'a>(
            &'a self,
            channel: &'a str,
        ) -> BoxFuture<'a, Result<LiveFeed, BackplaneError>> {
            self.inner.subscribe(channel)
        }

        fn history_page<'a>(
            &'a self,
            channel: &'a str,
            after: EventId,
            limits: PageLimits,
        ) -> BoxFuture<'a, Result<HistoryPage, BackplaneError>> {
            Box::pin(async move {
                self.reads.fetch_add(1, Ordering::SeqCst);
                let _pass = self.gate.read().await;
                self.inner.history_page(channel, after, limits).await
            })
        }

        fn local_subscriber_count(&self, channel: &str) -> usize {
            self.inner.local_subscriber_count(channel)
        }

        fn diagnostics(&self) -> Diagnostics {
            self.inner.diagnostics()
        }

        fn shutdown(&self) -> BoxFuture<'_, ()> {
            self.inner.shutdown()
        }
    }

    async fn publish(transport: &Counting, channel: &str, n: usize, size: usize) {
        for _ in 0..n {
            transport
                .publish(channel, "E".into(), Bytes::from(vec![b'1'; size]))
                .await
                .unwrap();
        }
    }

    fn n(value: usize) -> NonZeroUsize {
        NonZeroUsize::new(value).unwrap()
    }

    fn replayer(transport: &Arc<Counting>, config: ReplayConfig) -> Replayer {
        Replayer::new(Arc::clone(transport) as Arc<dyn Transport>, config)
    }

    #[tokio::test]
    async fn a_page_stops_at_the_event_limit() {
        let transport = Counting::new(100);
        publish(&transport, "c", 10, 4).await;
        let replay = replayer(&transport, ReplayConfig::default().with_page_events(n(4)));
        let page = replay
            .page("c", EventId::default(), Instant::now())
            .await
            .unwrap();
        assert_eq!(page.events.len(), 4);
        assert!(page.more);
    }

    #[tokio::test]
    async fn a_page_stops_at_the_byte_limit_but_holds_at_least_one_event() {
        let transport = Counting::new(100);
        publish(&transport, "c", 10, 1000).await;
        let replay = replayer(&transport, ReplayConfig::default().with_page_bytes(n(2500)));
        let page = replay
            .page("c", EventId::default(), Instant::now())
            .await
            .unwrap();
        assert_eq!(page.events.len(), 2);
        let tiny = replayer(&transport, ReplayConfig::default().with_page_bytes(n(10)));
        let page = tiny
            .page("c", EventId::default(), Instant::now())
            .await
            .unwrap();
        assert_eq!(page.events.len(), 1);
    }

    #[tokio::test]
    async fn concurrent_readers_of_one_page_share_one_read() {
        let transport = Counting::new(100);
        publish(&transport, "c", 10, 4).await;
        let replay = replayer(&transport, ReplayConfig::default());
        let since = Instant::now();
        let pass = transport.gate.write().await;
        let readers = futures_util::future::join_all(
            (0..50).map(|_| replay.page("c", EventId::default(), since)),
        );
        let release = async {
            tokio::task::yield_now().await;
            drop(pass);
        };
        let (pages, ()) = tokio::join!(readers, release);
        assert!(
            pages
                .iter()
                .all(|page| page.as_ref().unwrap().events.len() == 10)
        );
        assert_eq!(transport.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn full_pages_are_cached_for_later_readers() {
        let transport = Counting::new(100);
        publish(&transport, "c", 10, 4).await;
        let replay = replayer(&transport, ReplayConfig::default().with_page_events(n(5)));
        for _ in 0..3 {
            let page = replay
                .page("c", EventId::default(), Instant::now())
                .await
                .unwrap();
            assert!(page.more);
        }
        assert_eq!(transport.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_last_page_is_read_again_by_a_later_reader() {
        let transport = Counting::new(100);
        publish(&transport, "c", 3, 4).await;
        let replay = replayer(&transport, ReplayConfig::default());
        let first = replay
            .page("c", EventId::default(), Instant::now())
            .await
            .unwrap();
        publish(&transport, "c", 1, 4).await;
        let second = replay
            .page("c", EventId::default(), Instant::now())
            .await
            .unwrap();
        assert_eq!((first.events.len(), second.events.len()), (3, 4));
        assert_eq!(transport.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_reader_does_not_join_a_read_of_the_last_page_that_started_before_its_feed() {
        let transport = Counting::new(100);
        publish(&transport, "c", 3, 4).await;
        let replay = replayer(&transport, ReplayConfig::default());
        let pass = transport.gate.write().await;
        let early = replay.page("c", EventId::default(), Instant::now());
        let late = async {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
            let page = replay.page("c", EventId::default(), Instant::now());
            drop(pass);
            page.await
        };
        let (early, late) = tokio::join!(early, late);
        assert!(early.is_ok() && late.is_ok());
        assert_eq!(transport.reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn reads_beyond_the_budget_wait_then_fail_busy() {
        let transport = Counting::new(100);
        publish(&transport, "a", 1, 4).await;
        publish(&transport, "b", 1, 4).await;
        let replay = replayer(
            &transport,
            ReplayConfig::default()
                .with_concurrent_reads(n(1))
                .with_read_wait(Duration::from_millis(100)),
        );
        let pass = transport.gate.write().await;
        let since = Instant::now();
        let held = replay.page("a", EventId::default(), since);
        let refused = replay.page("b", EventId::default(), since);
        let (held, refused) = tokio::join!(held, async {
            let result = refused.await;
            drop(pass);
            result
        });
        assert!(held.is_ok());
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::Busy);
    }

    /// Polls `read` once, so that it registers its flight, then drops it, as a server drops
    /// the response of a client that disconnected.
    async fn abandon<F: std::future::Future>(read: F) {
        let mut read = std::pin::pin!(read);
        assert!(futures_util::poll!(read.as_mut()).is_pending());
    }

    #[tokio::test]
    async fn an_abandoned_read_leaves_no_flight_behind() {
        let transport = Counting::new(100);
        publish(&transport, "c", 3, 4).await;
        let replay = replayer(&transport, ReplayConfig::default());
        let pass = transport.gate.write().await;
        abandon(replay.page("c", EventId::default(), Instant::now())).await;
        abandon(replay.position("c")).await;
        drop(pass);
        assert_eq!(replay.flights(), 0);
    }

    #[tokio::test]
    async fn a_shared_read_goes_on_for_the_reader_left_when_the_other_is_dropped() {
        let transport = Counting::new(100);
        publish(&transport, "c", 3, 4).await;
        let replay = replayer(&transport, ReplayConfig::default());
        let since = Instant::now();
        let pass = transport.gate.write().await;
        // The first reader runs the read, the second joins it; then the first goes away.
        let mut runner = Box::pin(replay.page("c", EventId::default(), since));
        assert!(futures_util::poll!(runner.as_mut()).is_pending());
        let mut left = std::pin::pin!(replay.page("c", EventId::default(), since));
        assert!(futures_util::poll!(left.as_mut()).is_pending());
        drop(runner);
        assert_eq!(replay.flights(), 1);
        // A reader arriving now still joins the same flight rather than starting another.
        let late = replay.page("c", EventId::default(), since);
        drop(pass);
        let (left, late) = tokio::join!(left, late);
        assert_eq!(left.unwrap().events.len(), 3);
        assert_eq!(late.unwrap().events.len(), 3);
        assert_eq!(replay.flights(), 0);
    }

    #[tokio::test]
    async fn streams_opened_together_on_one_channel_read_its_position_once() {
        let transport = Counting::new(100);
        publish(&transport, "c", 3, 4).await;
        let replay = Arc::new(replayer(&transport, ReplayConfig::default()));
        let pass = transport.gate.write().await;
        let opening = futures_util::future::join_all((0..1000).map(|_| {
            let metrics = EventMetrics::new("test", "E");
            RawSubscription::open(Arc::clone(&replay), "c", None, metrics)
        }));
        let release = async {
            tokio::task::yield_now().await;
            drop(pass);
        };
        let (opened, ()) = tokio::join!(opening, release);
        assert!(opened.iter().all(Result::is_ok));
        assert_eq!(transport.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_position_is_read_afresh_once_the_shared_read_is_done() {
        let transport = Counting::new(100);
        publish(&transport, "c", 3, 4).await;
        let replay = replayer(&transport, ReplayConfig::default());
        let before = replay.position("c").await.unwrap();
        publish(&transport, "c", 1, 4).await;
        let after = replay.position("c").await.unwrap();
        assert!(after > before);
    }

    #[tokio::test]
    async fn a_position_read_is_not_served_as_the_first_page() {
        let transport = Counting::new(100);
        publish(&transport, "c", 3, 4).await;
        let replay = replayer(&transport, ReplayConfig::default().with_page_events(n(2)));
        replay.position("c").await.unwrap();
        let page = replay
            .page("c", EventId::default(), Instant::now())
            .await
            .unwrap();
        assert_eq!(page.events.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_position_read_takes_none_of_the_read_budget() {
        let transport = Counting::new(100);
        publish(&transport, "a", 1, 4).await;
        let replay = replayer(
            &transport,
            ReplayConfig::default()
                .with_concurrent_reads(n(1))
                .with_read_wait(Duration::from_millis(100)),
        );
        let permit = replay.permits.acquire().await.unwrap();
        assert!(replay.position("a").await.is_ok());
        drop(permit);
    }

    #[tokio::test]
    async fn the_cache_keeps_within_its_byte_budget() {
        let transport = Counting::new(1000);
        publish(&transport, "c", 100, 1000).await;
        let replay = replayer(
            &transport,
            ReplayConfig::default()
                .with_page_events(n(10))
                .with_cache_bytes(25_000),
        );
        let mut after = EventId::default();
        loop {
            let page = replay.page("c", after, Instant::now()).await.unwrap();
            assert!(replay.cached_bytes() <= 25_000);
            let Some(last) = page.events.last() else {
                break;
            };
            after = last.id();
        }
        assert!(replay.cached_bytes() > 0);
    }
}
