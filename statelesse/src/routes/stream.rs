//! The body of one SSE connection ([`EventStream`]), and the watchdog of its write timeout.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use tracing::Span;

use super::frame;
use crate::backplane::subscription::RawSubscription;
use crate::backplane::transport::Interest;
use crate::telemetry::{OpenConnection, RouteMetrics};
use crate::{EventKind, Gap};

/// A future completing when the stream must end: the [`Shutdown`](super::Shutdown) signal.
pub(crate) type Cancelled = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The most bytes of frames gathered into one chunk (a single larger frame goes alone): bounds
/// the buffer one connection builds, however far behind it is.
pub(crate) const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// The most frames gathered into one chunk: bounds the work of one poll of one connection.
pub(crate) const MAX_CHUNK_FRAMES: usize = 256;

/// How many times per write timeout the watchdog samples its connection's progress: a stalled
/// connection is released between one timeout and `1 + 1/CHECKS_PER_TIMEOUT` timeouts after
/// its last chunk was handed out.
const CHECKS_PER_TIMEOUT: u32 = 4;

/// What one connection's stream sends besides its head: the events of `subscription` whose name
/// is one of `kind`'s, counting the others in `malformed`.
pub(crate) struct Events {
    pub(crate) subscription: RawSubscription,
    pub(crate) kind: EventKind,
    /// Whether `join` and `leave` are the route's too (a presence type).
    pub(crate) presence: bool,
    /// The connection's place among the channel's members, released with the stream.
    #[expect(dead_code, reason = "held for its drop, which leaves the channel")]
    pub(crate) lease: Option<Interest>,
    pub(crate) malformed: Arc<AtomicU64>,
}

/// What a connection streams after its head, and what observes it: its route's series and its
/// span.
pub(crate) struct Feed {
    pub(crate) source: Source,
    pub(crate) metrics: RouteMetrics,
    pub(crate) span: Span,
}

/// Where a connection's frames come from after its head: one channel (a single route), or several
/// (a [multiplexed route](super::MuxRoutes)).
pub(crate) enum Source {
    One(Events),
    Many(super::mux::Channels),
}

impl Events {
    /// Adds to `chunk` every frame the subscription has ready, until the chunk is full (a frame
    /// that does not fit goes to `carry`); `true` when the subscription ended (the backplane
    /// closed).
    fn fill(&mut self, cx: &mut Context<'_>, chunk: &mut Chunk, carry: &mut Option<Bytes>) -> bool {
        let Self {
            subscription,
            kind,
            presence,
            lease: _,
            malformed,
        } = self;
        while !chunk.is_full() {
            let frame = match Pin::new(&mut *subscription).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    if !forwards(*kind, *presence, message.event()) {
                        // Not this route's event: a client must never take it for one (a forged
                        // `snapshot` or `gap`, or another type's event on the same channel).
                        malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(channel = subscription.channel(), id = %message.id(), event = ?message.event(), "dropping an event not of the route's type");
                        continue;
                    }
                    if let Some(frame) = frame::message_ref(&message) {
                        if !chunk.push(frame) {
                            *carry = Some(frame.clone());
                            break;
                        }
                        continue;
                    }
                    // One of the route's events the client will not get: it must know.
                    malformed.fetch_add(1, Ordering::Relaxed);
                    subscription.undeliverable();
                    frame::gap(Gap { missed: Some(1) }, Some(message.id()))
                }
                Poll::Ready(Some(Err(gap))) => frame::gap(gap, subscription.last_id()),
                Poll::Ready(None) => return true,
                Poll::Pending => break,
            };
            if !chunk.push(&frame) {
                *carry = Some(frame);
                break;
            }
        }
        false
    }
}

/// Whether a route of `kind` forwards events named `event`: the type's own, and on a presence
/// type `join` and `leave`.
pub(crate) fn forwards(kind: EventKind, presence: bool, event: &str) -> bool {
    kind.has_event(event) || (presence && crate::protocol::is_presence_change(event))
}

/// The frames of one SSE connection: the head (retry hint, snapshot), then its subscription's
/// events and gaps, with keep-alive comments when idle; a final comment on shutdown, when the
/// backplane closes or when the write timeout fired, then the end.
///
/// Each poll hands hyper every frame its subscription holds ready, as one chunk (bounded by
/// [`MAX_CHUNK_BYTES`] and [`MAX_CHUNK_FRAMES`]), so that a connection behind by several events
/// costs one body poll, one chunk header and one share of a `writev`, not one each per event.
/// A single ready frame is handed over as the message's cached bytes, uncopied.
///
/// Each connection's body is polled by its own connection task, so a client that stops reading
/// stops only this stream; its subscription lags and is refilled from history, or reports a gap,
/// when it is read again. While the client's socket is full, hyper does not poll the body at
/// all, so the body cannot see a stalled client itself: with a write timeout, a watchdog task
/// releases the subscription and the connection slot once a chunk handed to hyper was not
/// followed by another poll for that long.
pub(crate) struct EventStream {
    head: VecDeque<Bytes>,
    /// The subscription and the connection slot, shared with the watchdog.
    slot: Arc<Slot>,
    /// Whether a watchdog runs: only then is progress published to it.
    watched: bool,
    /// Polls so far: what the watchdog samples, through [`Slot::progress`].
    polls: u64,
    /// A frame taken from the subscription that did not fit in the last chunk: the next one's
    /// first.
    carry: Option<Bytes>,
    shutdown: Option<Cancelled>,
    keep_alive: Option<KeepAlive>,
    /// The route's series, for a stream with events (a connection, not a refusal).
    metrics: Option<RouteMetrics>,
    /// The connection's span: its events (gaps, close) are recorded in it.
    span: Span,
    /// Why the stream ended, once it did: logged on drop.
    ended: Option<&'static str>,
}

/// The keep-alive timer: it ticks every half interval, and a tick that finds nothing sent since
/// the previous one sends a comment. So a comment follows between a half and a whole interval
/// of silence, comments are one interval apart while the stream stays silent, and a stream
/// sending more often than every half interval sends none; sending a frame only sets a flag,
/// with no clock read and no timer reset.
struct KeepAlive {
    tick: Pin<Box<Sleep>>,
    /// Half the interval.
    period: Duration,
    /// A frame went out since the last tick.
    sent: bool,
}

/// What a connection holds and its watchdog may release: see [`EventStream`].
struct Slot {
    state: Mutex<SlotState>,
    /// `polls << 1 | 1` after a poll that handed out a chunk, `polls << 1` after one that did
    /// not: a stalled connection is one whose value stays the same, odd, for a whole timeout.
    /// hyper polls the body again as soon as it has room for more, so a chunk waiting that long
    /// was not taken.
    progress: AtomicU64,
}

struct SlotState {
    /// The subscription (or subscriptions) the frames come from.
    source: Option<Source>,
    /// Held for the connection's life: the slot of a [`ConnectionLimit`](super::ConnectionLimit).
    permit: Option<OwnedSemaphorePermit>,
    /// Held for the connection's life: its place in `statelesse_connections_open`.
    open: Option<OpenConnection>,
    /// The watchdog released the connection: the stream ends at its next poll.
    timed_out: bool,
    /// The stream was dropped: the watchdog stops watching it.
    dropped: bool,
}

impl SlotState {
    /// Takes what the connection holds, to drop once the lock is released.
    fn release(
        &mut self,
    ) -> (
        Option<Source>,
        Option<OwnedSemaphorePermit>,
        Option<OpenConnection>,
    ) {
        (self.source.take(), self.permit.take(), self.open.take())
    }
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // Nothing holding the lock can leave the state half-updated, so a poisoned lock is as
        // good as a clean one.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The frames of one poll, gathered: the first kept as it is, later ones appended to a buffer.
#[derive(Default)]
pub(crate) struct Chunk {
    first: Option<Bytes>,
    /// The first frame and those after it, once there are two.
    joined: BytesMut,
    frames: usize,
}

impl Chunk {
    fn len(&self) -> usize {
        if self.frames > 1 {
            self.joined.len()
        } else {
            self.first.as_ref().map_or(0, Bytes::len)
        }
    }

    /// Whether no further frame may join.
    pub(crate) fn is_full(&self) -> bool {
        self.frames >= MAX_CHUNK_FRAMES || self.len() >= MAX_CHUNK_BYTES
    }

    /// Adds `frame`; `false` when it does not fit (the chunk is not empty then).
    pub(crate) fn push(&mut self, frame: &Bytes) -> bool {
        let fits = self.frames == 0
            || (self.frames < MAX_CHUNK_FRAMES && self.len() + frame.len() <= MAX_CHUNK_BYTES);
        if fits {
            self.append(frame);
        }
        fits
    }

    /// Adds `frame` whatever the bounds: for the last frame of a stream.
    fn append(&mut self, frame: &Bytes) {
        let Some(first) = &self.first else {
            self.first = Some(frame.clone());
            self.frames = 1;
            return;
        };
        if self.frames == 1 {
            // Room for a few more of the same size, without growing past the bound.
            let wanted = first.len() + frame.len();
            self.joined
                .reserve((4 * wanted).clamp(wanted, MAX_CHUNK_BYTES.max(wanted)));
            self.joined.extend_from_slice(first);
        }
        self.joined.extend_from_slice(frame);
        self.frames += 1;
    }

    fn into_bytes(self) -> Option<Bytes> {
        if self.frames > 1 {
            Some(self.joined.freeze())
        } else {
            self.first
        }
    }
}

impl EventStream {
    /// A stream sending `head`, then `feed` if any, with keep-alive comments every `keep_alive`
    /// (`ZERO`: none), watched by `watchdog` if any; must be created within a Tokio runtime when
    /// it has one.
    pub(crate) fn new(
        head: VecDeque<Bytes>,
        feed: Option<Feed>,
        shutdown: Option<Cancelled>,
        keep_alive: Duration,
        watchdog: Option<&Watchdog>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        let keep_alive = (!keep_alive.is_zero()).then(|| {
            let period = keep_alive / 2;
            KeepAlive {
                tick: Box::pin(tokio::time::sleep(period)),
                period,
                // The stream's start counts as a frame: the first comment comes a whole interval
                // after it.
                sent: true,
            }
        });
        let (source, metrics, span) = match feed {
            Some(feed) => (Some(feed.source), Some(feed.metrics), feed.span),
            None => (None, None, Span::none()),
        };
        let open = metrics.as_ref().map(RouteMetrics::open);
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                source,
                permit,
                open,
                timed_out: false,
                dropped: false,
            }),
            progress: AtomicU64::new(0),
        });
        if let Some(watchdog) = watchdog {
            watchdog.watch(&slot);
        }
        let watched = watchdog.is_some();
        Self {
            head,
            slot,
            watched,
            polls: 0,
            carry: None,
            shutdown,
            keep_alive,
            metrics,
            span,
            ended: None,
        }
    }

    /// Sends `last` and ends, for `reason`: releases the subscription and the connection slot
    /// now, not when the client finally goes away.
    fn finish(
        &mut self,
        last: Bytes,
        reason: &'static str,
    ) -> Poll<Option<Result<Bytes, Infallible>>> {
        self.head.clear();
        self.carry = None;
        let released = self.slot.lock().release();
        drop(released);
        self.shutdown = None;
        self.keep_alive = None;
        self.ended = Some(reason);
        self.written(&last);
        Poll::Ready(Some(Ok(last)))
    }

    fn send(&mut self, chunk: Bytes) -> Poll<Option<Result<Bytes, Infallible>>> {
        if let Some(keep_alive) = &mut self.keep_alive {
            keep_alive.sent = true;
        }
        self.written(&chunk);
        Poll::Ready(Some(Ok(chunk)))
    }

    #[inline]
    fn written(&self, chunk: &Bytes) {
        if let Some(metrics) = &self.metrics {
            metrics.written(chunk.len());
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        // Once per poll, not per frame: a chunk is bounded, so shutdown waits for one at most.
        if self
            .shutdown
            .as_mut()
            .is_some_and(|shutdown| shutdown.as_mut().poll(cx).is_ready())
        {
            return self.finish(frame::shutdown(), "shutdown");
        }
        let mut state = self.slot.lock();
        if std::mem::take(&mut state.timed_out) {
            drop(state);
            return self.finish(frame::timed_out(), "write_timeout");
        }
        if let Some(frame) = self.head.pop_front() {
            drop(state);
            return self.send(frame);
        }
        let Some(source) = state.source.as_mut() else {
            return Poll::Ready(None);
        };
        let mut chunk = Chunk::default();
        if let Some(carried) = self.carry.take() {
            chunk.push(&carried);
        }
        let closed = match source {
            Source::One(events) => events.fill(cx, &mut chunk, &mut self.carry),
            Source::Many(channels) => channels.fill(cx, &mut chunk, &mut self.carry),
        };
        drop(state);
        if closed {
            // What was ready, then the final comment.
            chunk.append(&frame::closed());
            let last = chunk.into_bytes().unwrap_or_else(frame::closed);
            return self.finish(last, "backplane_closed");
        }
        if let Some(chunk) = chunk.into_bytes() {
            return self.send(chunk);
        }
        if let Some(keep_alive) = &mut self.keep_alive {
            while keep_alive.tick.as_mut().poll(cx).is_ready() {
                keep_alive
                    .tick
                    .as_mut()
                    .reset(Instant::now() + keep_alive.period);
                if !std::mem::take(&mut keep_alive.sent) {
                    return self.send(frame::keep_alive());
                }
            }
        }
        Poll::Pending
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // What the subscription logs (gaps, failed reads) belongs to this connection; taken out
        // for the poll rather than cloned, which would cost a reference count per poll.
        let span = std::mem::replace(&mut this.span, Span::none());
        let entered = span.enter();
        let poll = this.poll_frame(cx);
        drop(entered);
        this.span = span;
        if this.watched {
            // Sampled by the watchdog when it wakes: no wake-up, lock or clock read per poll.
            this.polls += 1;
            let handed_out = u64::from(matches!(poll, Poll::Ready(Some(_))));
            this.slot
                .progress
                .store(this.polls << 1 | handed_out, Ordering::Relaxed);
        }
        poll
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        // Released here, not when the watchdog (which can reach the slot) next samples it.
        let mut state = self.slot.lock();
        let released = state.release();
        state.dropped = true;
        // Released by the watchdog, and never polled again to say so.
        let timed_out = state.timed_out;
        drop(state);
        drop(released);
        if self.metrics.is_some() {
            let reason = match self.ended {
                Some(reason) => reason,
                None if timed_out => "write_timeout",
                None => "client_gone",
            };
            tracing::info!(parent: &self.span, reason, "SSE connection closed");
        }
    }
}

/// The write-timeout watchdog of one route: a single task, shared by every connection of the
/// route, releases the subscription and slot of each connection whose chunk handed out was not
/// taken within `timeout`.
///
/// One task for all connections, not one each: a task, its timer and its wake-up handle cost
/// about 0.9 KiB per connection, more than the rest of statelesse's per-connection state. The
/// task samples every connection's progress [`CHECKS_PER_TIMEOUT`] times per `timeout`,
/// whatever the traffic: a chunk still out, with no poll since, at that many samples in a row
/// after the first has waited at least `timeout`, and at most a sampling period more. The task
/// starts with the first connection and ends when no connection is left to watch.
#[derive(Clone)]
pub(crate) struct Watchdog(Arc<WatchdogShared>);

struct WatchdogShared {
    timeout: Duration,
    state: Mutex<WatchdogState>,
}

struct WatchdogState {
    /// Connections opened since the task last took them.
    added: Vec<Weak<Slot>>,
    /// Whether the task runs.
    running: bool,
}

impl Watchdog {
    /// The watchdog of a route whose write timeout is `timeout`; `None` for `ZERO` (off).
    pub(crate) fn new(timeout: Duration) -> Option<Self> {
        (!timeout.is_zero()).then(|| {
            Self(Arc::new(WatchdogShared {
                timeout,
                state: Mutex::new(WatchdogState {
                    added: Vec::new(),
                    running: false,
                }),
            }))
        })
    }

    /// Watches `slot` from now on; starts the task if none runs.
    fn watch(&self, slot: &Arc<Slot>) {
        let mut state = self.0.lock();
        state.added.push(Arc::downgrade(slot));
        if !std::mem::replace(&mut state.running, true) {
            drop(state);
            tokio::spawn(sweep(Running(Some(Arc::clone(&self.0)))));
        }
    }
}

impl WatchdogShared {
    fn lock(&self) -> MutexGuard<'_, WatchdogState> {
        // Only pushes and swaps under the lock: a poisoned one is as good as a clean one.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The watchdog task's hold on its route: marks the task stopped however it ends (its runtime
/// shutting down drops it mid-sleep), so that the next connection starts another.
struct Running(Option<Arc<WatchdogShared>>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            shared.lock().running = false;
        }
    }
}

/// One watched connection and what the watchdog saw of it.
struct Watched {
    slot: Weak<Slot>,
    /// The progress at the last sample.
    last: u64,
    /// Samples in a row that found the same chunk still out.
    repeats: u32,
}

impl Watched {
    /// Samples the connection; releases it if its chunk has been out too long. `false` once
    /// there is nothing left to watch: dropped, ended (shutdown, closed backplane: the last frame
    /// must stay the last) or released.
    fn sample(&mut self, timeout: Duration) -> bool {
        let Some(slot) = self.slot.upgrade() else {
            return false;
        };
        let mut state = slot.lock();
        if state.dropped || state.source.is_none() {
            return false;
        }
        let progress = slot.progress.load(Ordering::Relaxed);
        if progress & 1 == 1 && progress == self.last {
            self.repeats += 1;
        } else {
            self.last = progress;
            self.repeats = 0;
        }
        if self.repeats < CHECKS_PER_TIMEOUT {
            return true;
        }
        state.timed_out = true;
        let released = state.release();
        drop(state);
        tracing::debug!(
            ?timeout,
            "releasing an SSE connection whose client took no frame within the write timeout"
        );
        drop(released);
        false
    }
}

/// The watchdog task: samples every watched connection once per period, from its start (a
/// connection is first sampled at the first tick after it opened), until none is left.
async fn sweep(mut running: Running) {
    let Some(shared) = running.0.clone() else {
        return;
    };
    let timeout = shared.timeout;
    let mut watched: Vec<Watched> = Vec::new();
    let mut ticks = tokio::time::interval(timeout / CHECKS_PER_TIMEOUT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let added = std::mem::take(&mut shared.lock().added);
        watched.extend(added.into_iter().map(|slot| Watched {
            slot,
            // A value the stream never stores: the first sample is never a repeat.
            last: u64::MAX,
            repeats: 0,
        }));
        watched.retain_mut(|connection| connection.sample(timeout));
        if watched.is_empty() {
            let mut state = shared.lock();
            if state.added.is_empty() {
                state.running = false;
                drop(state);
                running.0 = None;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::backplane::Backplane;
    use crate::backplane::memory::MemoryConfig;

    /// The events of `channel` for a route of the event type named `E`.
    async fn subscription(bp: &Backplane, channel: &str) -> Option<Feed> {
        let events = Events {
            subscription: bp.subscribe_name(channel).await,
            kind: EventKind::Keyed { name: "E" },
            presence: false,
            lease: None,
            malformed: Arc::clone(bp.malformed_counter()),
        };
        Some(Feed {
            source: Source::One(events),
            metrics: crate::telemetry::EventMetrics::new("test", "E").route(),
            span: Span::none(),
        })
    }

    /// A stream of `sub` alone: no head, shutdown, write timeout or connection slot.
    fn bare(sub: Option<Feed>, keep_alive: Duration) -> EventStream {
        EventStream::new(VecDeque::new(), sub, None, keep_alive, None, None)
    }

    async fn publish(bp: &Backplane, channel: &str, data: &'static str) {
        bp.transport()
            .publish(channel, "E".into(), Bytes::from_static(data.as_bytes()))
            .await
            .unwrap();
    }

    fn text(frame: &Bytes) -> &str {
        std::str::from_utf8(frame).unwrap()
    }

    /// The next `n` frames, however the stream chunked them (a frame never spans chunks).
    async fn frames(stream: &mut EventStream, n: usize) -> Vec<String> {
        let mut frames = Vec::new();
        while frames.len() < n {
            let chunk = stream.next().await.unwrap().unwrap();
            frames.extend(text(&chunk).split_inclusive("\n\n").map(str::to_owned));
        }
        assert_eq!(frames.len(), n, "{frames:?}");
        frames
    }

    /// A stream of the events of channel `c`, with no head, keep-alive or write timeout.
    async fn bare_stream(bp: &Backplane) -> EventStream {
        let sub = subscription(bp, "c").await;
        bare(sub, Duration::ZERO)
    }

    #[tokio::test]
    async fn events_ready_together_go_out_as_one_chunk_in_order() {
        let bp = Backplane::in_memory();
        let mut stream = bare_stream(&bp).await;
        for data in ["1", "2", "3"] {
            publish(&bp, "c", data).await;
        }
        let chunk = stream.next().await.unwrap().unwrap();
        let frames: Vec<_> = text(&chunk).split_inclusive("\n\n").collect();
        assert_eq!(frames.len(), 3, "{frames:?}");
        for (frame, data) in frames.iter().zip(["1", "2", "3"]) {
            assert!(
                frame.ends_with(&format!("event: E\ndata: {data}\n\n")),
                "{frames:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_single_ready_event_is_its_cached_frame_uncopied() {
        let bp = Backplane::in_memory();
        let mut live = bp.subscribe_name("c").await;
        let mut stream = bare_stream(&bp).await;
        publish(&bp, "c", "1").await;
        let message = live.next().await.unwrap().unwrap();
        let cached = frame::message(&message).unwrap();
        let chunk = stream.next().await.unwrap().unwrap();
        assert_eq!(chunk.as_ptr(), cached.as_ptr());
    }

    #[tokio::test]
    async fn a_chunk_stays_within_its_bound_and_the_rest_follows_in_order() {
        let bp = Backplane::in_memory_with(MemoryConfig::default().with_subscriber_buffer(4096));
        let mut stream = bare_stream(&bp).await;
        // 1 KiB of data each: 100 of them are more than one chunk holds.
        for seq in 0..100 {
            let data: &'static str = format!("{seq:03}{}", "x".repeat(1024)).leak();
            publish(&bp, "c", data).await;
        }
        let mut seen = Vec::new();
        let mut chunks = 0;
        while seen.len() < 100 {
            let chunk = stream.next().await.unwrap().unwrap();
            assert!(chunk.len() <= MAX_CHUNK_BYTES, "{} bytes", chunk.len());
            for frame in text(&chunk).split_inclusive("\n\n") {
                let (_, data) = frame.split_once("data: ").unwrap();
                seen.push(data[..3].parse::<u32>().unwrap());
            }
            chunks += 1;
        }
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert!(chunks > 1, "100 KiB in one chunk");
        let idle = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
        assert!(idle.is_err(), "a frame too many: {idle:?}");
    }

    #[tokio::test]
    async fn events_ready_before_the_backplane_closed_precede_the_final_comment() {
        let bp = Backplane::in_memory();
        let mut stream = bare_stream(&bp).await;
        publish(&bp, "c", "1").await;
        bp.shutdown().await;
        let frames = frames(&mut stream, 2).await;
        assert!(frames[0].ends_with("data: 1\n\n"), "{frames:?}");
        assert_eq!(frames[1], ": closed\n\n");
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn keep_alive_comments_are_one_interval_apart_in_silence() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let mut stream = bare(sub, Duration::from_secs(15));
        let start = Instant::now();
        for n in 1..=3 {
            assert_eq!(stream.next().await.unwrap().unwrap(), frame::keep_alive());
            assert_eq!(start.elapsed(), Duration::from_secs(15) * n);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_keep_alive_comment_follows_half_to_one_interval_of_silence_after_an_event() {
        for after in [1, 5, 7, 8, 10, 14] {
            let bp = Backplane::in_memory();
            let sub = subscription(&bp, "c").await;
            let mut stream = bare(sub, Duration::from_secs(15));
            assert_eq!(stream.next().await.unwrap().unwrap(), frame::keep_alive());
            tokio::time::sleep(Duration::from_secs(after)).await;
            publish(&bp, "c", "1").await;
            assert!(text(&stream.next().await.unwrap().unwrap()).contains("data: 1"));
            let sent = Instant::now();
            assert_eq!(stream.next().await.unwrap().unwrap(), frame::keep_alive());
            let silence = sent.elapsed();
            assert!(
                (Duration::from_millis(7500)..=Duration::from_secs(15)).contains(&silence),
                "a comment {silence:?} after an event sent {after} s after the last comment"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn events_more_often_than_half_the_interval_get_no_keep_alive_comment() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let mut stream = bare(sub, Duration::from_secs(15));
        for _ in 0..20 {
            publish(&bp, "c", "1").await;
            assert!(text(&stream.next().await.unwrap().unwrap()).contains("data: 1"));
            let idle = tokio::time::timeout(Duration::from_secs(7), stream.next()).await;
            assert!(idle.is_err(), "a frame between events: {idle:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn zero_interval_turns_keep_alive_off() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let mut stream = bare(sub, Duration::ZERO);
        let next = tokio::time::timeout(Duration::from_hours(1), stream.next()).await;
        assert!(next.is_err(), "no frame without events");
    }

    #[tokio::test]
    async fn head_frames_come_first_then_events() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        publish(&bp, "c", "1").await;
        let head = VecDeque::from([frame::retry(Duration::from_secs(3)), frame::snapshot("{}")]);
        let mut stream = EventStream::new(head, sub, None, Duration::from_secs(15), None, None);
        assert_eq!(stream.next().await.unwrap().unwrap(), "retry: 3000\n\n");
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            "event: snapshot\ndata: {}\n\n"
        );
        assert!(text(&stream.next().await.unwrap().unwrap()).ends_with("event: E\ndata: 1\n\n"));
    }

    #[tokio::test]
    async fn shutdown_sends_a_final_comment_releases_everything_and_ends() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let limit = super::super::ConnectionLimit::new(1);
        let token = CancellationToken::new();
        let mut stream = EventStream::new(
            VecDeque::new(),
            sub,
            Some(Box::pin(token.clone().cancelled_owned())),
            Duration::from_secs(15),
            None,
            limit.try_acquire(),
        );
        assert_eq!(bp.transport().local_subscriber_count("c"), 1);
        token.cancel();
        assert_eq!(stream.next().await.unwrap().unwrap(), frame::shutdown());
        assert_eq!(bp.transport().local_subscriber_count("c"), 0);
        assert_eq!(limit.active(), 0);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_closed_backplane_ends_the_stream_with_a_comment() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let mut stream = bare(sub, Duration::from_secs(15));
        bp.shutdown().await;
        assert_eq!(stream.next().await.unwrap().unwrap(), frame::closed());
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn a_lagging_reader_is_refilled_or_told_of_the_gap() {
        let bp = Backplane::in_memory_with(
            MemoryConfig::default()
                .with_subscriber_buffer(2)
                .with_history_len(3),
        );
        let sub = subscription(&bp, "c").await;
        let mut stream = bare(sub, Duration::ZERO);
        publish(&bp, "c", "1").await;
        assert!(text(&stream.next().await.unwrap().unwrap()).ends_with("data: 1\n\n"));
        for data in ["2", "3", "4", "5", "6", "7"] {
            publish(&bp, "c", data).await;
        }
        // 2 to 4 were trimmed from history: the stream says so, then goes on from what it has.
        let frames = frames(&mut stream, 4).await;
        assert!(
            frames[0].starts_with("id: ")
                && frames[0].ends_with("\nevent: gap\ndata: {\"missed\":null}\n\n"),
            "{frames:?}"
        );
        for (frame, data) in frames[1..].iter().zip(["5", "6", "7"]) {
            assert!(frame.ends_with(&format!("data: {data}\n\n")), "{frames:?}");
        }
    }

    async fn publish_named(
        bp: &Backplane,
        channel: &str,
        event: &'static str,
        data: &'static [u8],
    ) {
        bp.transport()
            .publish(channel, event.into(), Bytes::from_static(data))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn events_not_of_the_route_type_are_dropped_and_counted() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let mut stream = bare(sub, Duration::ZERO);
        for name in ["snapshot", "gap", "Other"] {
            publish_named(&bp, "c", name, b"{}").await;
        }
        publish(&bp, "c", "1").await;
        assert!(text(&stream.next().await.unwrap().unwrap()).ends_with("event: E\ndata: 1\n\n"));
        assert_eq!(bp.diagnostics().malformed_events, 3);
    }

    #[tokio::test]
    async fn an_event_that_cannot_be_framed_is_a_gap_of_one_resuming_after_it() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let mut stream = bare(sub, Duration::ZERO);
        publish_named(&bp, "c", "E", b"\xff").await;
        let id = bp
            .transport()
            .history_page(
                "c",
                crate::EventId::default(),
                crate::backplane::transport::PageLimits::POSITION,
            )
            .await
            .unwrap()
            .end;
        assert_eq!(
            text(&stream.next().await.unwrap().unwrap()),
            format!("id: {id}\nevent: gap\ndata: {{\"missed\":1}}\n\n")
        );
        assert_eq!(bp.diagnostics().malformed_events, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_not_taken_within_the_write_timeout_releases_the_connection() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let limit = super::super::ConnectionLimit::new(1);
        let head = VecDeque::from([frame::retry(Duration::from_secs(3))]);
        let mut stream = EventStream::new(
            head,
            sub,
            None,
            Duration::ZERO,
            Watchdog::new(Duration::from_secs(5)).as_ref(),
            limit.try_acquire(),
        );
        // Handed out, never followed by another poll: hyper is stuck on a full socket.
        stream.next().await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(4900)).await;
        assert_eq!(limit.active(), 1, "released before the timeout");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(limit.active(), 0);
        assert_eq!(bp.transport().local_subscriber_count("c"), 0);
        // If the client reads after all, it is told, and the stream ends.
        assert_eq!(stream.next().await.unwrap().unwrap(), frame::timed_out());
        assert!(stream.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn one_watchdog_releases_only_its_stalled_connections() {
        let bp = Backplane::in_memory();
        let watchdog = Watchdog::new(Duration::from_secs(5));
        let limit = super::super::ConnectionLimit::new(2);
        let open = |channel: &'static str| {
            let bp = bp.clone();
            let limit = limit.clone();
            let watchdog = watchdog.clone();
            async move {
                let head = VecDeque::from([frame::retry(Duration::from_secs(3))]);
                EventStream::new(
                    head,
                    subscription(&bp, channel).await,
                    None,
                    Duration::ZERO,
                    watchdog.as_ref(),
                    limit.try_acquire(),
                )
            }
        };
        let mut stalled = open("stalled").await;
        let mut reading = open("reading").await;
        stalled.next().await.unwrap().unwrap();
        reading.next().await.unwrap().unwrap();
        // The reading client's socket took the frame: hyper polls again, nothing to send.
        let idle = tokio::time::timeout(Duration::from_secs(10), reading.next()).await;
        assert!(idle.is_err());
        assert_eq!(limit.active(), 1);
        assert_eq!(bp.transport().local_subscriber_count("stalled"), 0);
        assert_eq!(bp.transport().local_subscriber_count("reading"), 1);
        publish(&bp, "reading", "1").await;
        assert!(text(&reading.next().await.unwrap().unwrap()).ends_with("data: 1\n\n"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_watchdog_left_without_connections_watches_the_next_one() {
        let bp = Backplane::in_memory();
        let watchdog = Watchdog::new(Duration::from_secs(5));
        let limit = super::super::ConnectionLimit::new(1);
        let first = EventStream::new(
            VecDeque::new(),
            subscription(&bp, "c").await,
            None,
            Duration::ZERO,
            watchdog.as_ref(),
            limit.try_acquire(),
        );
        drop(first);
        // Long enough for the watchdog's task to find nothing left and end.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let head = VecDeque::from([frame::retry(Duration::from_secs(3))]);
        let mut second = EventStream::new(
            head,
            subscription(&bp, "c").await,
            None,
            Duration::ZERO,
            watchdog.as_ref(),
            limit.try_acquire(),
        );
        second.next().await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(6300)).await;
        assert_eq!(limit.active(), 0);
        assert_eq!(second.next().await.unwrap().unwrap(), frame::timed_out());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_waiting_for_events_is_never_timed_out() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let limit = super::super::ConnectionLimit::new(1);
        let head = VecDeque::from([frame::retry(Duration::from_secs(3))]);
        let mut stream = EventStream::new(
            head,
            sub,
            None,
            Duration::ZERO,
            Watchdog::new(Duration::from_secs(5)).as_ref(),
            limit.try_acquire(),
        );
        stream.next().await.unwrap().unwrap();
        // Polled again at once, as hyper does when the socket takes the frame: nothing to send.
        let idle = tokio::time::timeout(Duration::from_mins(1), stream.next()).await;
        assert!(idle.is_err());
        assert_eq!(limit.active(), 1);
        publish(&bp, "c", "1").await;
        assert!(text(&stream.next().await.unwrap().unwrap()).ends_with("data: 1\n\n"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_ended_is_not_timed_out_after_its_last_frame() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let token = CancellationToken::new();
        let mut stream = EventStream::new(
            VecDeque::new(),
            sub,
            Some(Box::pin(token.clone().cancelled_owned())),
            Duration::ZERO,
            Watchdog::new(Duration::from_secs(5)).as_ref(),
            None,
        );
        token.cancel();
        assert_eq!(stream.next().await.unwrap().unwrap(), frame::shutdown());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            stream.next().await.is_none(),
            "the shutdown comment stays the last frame"
        );
    }
}
