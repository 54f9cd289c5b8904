//! The body of one SSE connection ([`EventStream`]), and the watchdog of its write timeout.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep};

use super::frame;
use crate::backplane::subscription::RawSubscription;
use crate::{EventKind, Gap};

/// A future completing when the stream must end: the [`Shutdown`](super::Shutdown) signal.
pub(crate) type Cancelled = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What one connection's stream sends besides its head: the events of `subscription` whose name
/// is one of `kind`'s, counting the others in `malformed`.
pub(crate) struct Events {
    pub(crate) subscription: RawSubscription,
    pub(crate) kind: EventKind,
    pub(crate) malformed: Arc<AtomicU64>,
}

/// The frames of one SSE connection: the head (retry hint, snapshot), then its subscription's
/// events and gaps, with keep-alive comments when idle; a final comment on shutdown, when the
/// backplane closes or when the write timeout fired, then the end.
///
/// Each connection's body is polled by its own connection task, so a client that stops reading
/// stops only this stream; its subscription lags and is refilled from history, or reports a gap,
/// when it is read again. While the client's socket is full, hyper does not poll the body at
/// all, so the body cannot see a stalled client itself: with a write timeout, a watchdog task
/// releases the subscription and the connection slot once a frame handed to hyper was not
/// followed by another poll for that long.
pub(crate) struct EventStream {
    head: VecDeque<Bytes>,
    kind: Option<(EventKind, Arc<AtomicU64>)>,
    /// The subscription and the connection slot, shared with the watchdog.
    slot: Arc<Slot>,
    /// Whether a watchdog runs: only then is the time of each frame recorded.
    watched: bool,
    shutdown: Option<Cancelled>,
    keep_alive: Option<(Pin<Box<Sleep>>, Duration)>,
}

/// What a connection holds and its watchdog may release: see [`EventStream`].
struct Slot {
    state: Mutex<SlotState>,
    /// Wakes the watchdog when the stream is dropped.
    notify: Notify,
}

struct SlotState {
    subscription: Option<RawSubscription>,
    /// Held for the connection's life: the slot of a [`ConnectionLimit`](super::ConnectionLimit).
    permit: Option<OwnedSemaphorePermit>,
    /// When the last poll handed out a frame, if hyper has not polled since: hyper polls the
    /// body again as soon as it has room for more, so a frame waiting this long was not taken.
    handed_out: Option<Instant>,
    /// The watchdog released the connection: the stream ends at its next poll.
    timed_out: bool,
    /// The stream was dropped: the watchdog ends.
    dropped: bool,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // Nothing holding the lock can leave the state half-updated, so a poisoned lock is as
        // good as a clean one.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventStream {
    /// A stream sending `head`, then `events` if any, with keep-alive comments every
    /// `keep_alive` (`ZERO`: none) and, with a non-zero `write_timeout`, a watchdog; must be
    /// created within a Tokio runtime when it has one.
    pub(crate) fn new(
        head: VecDeque<Bytes>,
        events: Option<Events>,
        shutdown: Option<Cancelled>,
        keep_alive: Duration,
        write_timeout: Duration,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        let keep_alive =
            (!keep_alive.is_zero()).then(|| (Box::pin(tokio::time::sleep(keep_alive)), keep_alive));
        let (subscription, kind) = match events {
            Some(events) => (
                Some(events.subscription),
                Some((events.kind, events.malformed)),
            ),
            None => (None, None),
        };
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState {
                subscription,
                permit,
                handed_out: None,
                timed_out: false,
                dropped: false,
            }),
            notify: Notify::new(),
        });
        let watched = !write_timeout.is_zero();
        if watched {
            tokio::spawn(watch(Arc::clone(&slot), write_timeout));
        }
        Self {
            head,
            kind,
            slot,
            watched,
            shutdown,
            keep_alive,
        }
    }

    /// Sends `last` and ends: releases the subscription and the connection slot now, not when the
    /// client finally goes away.
    fn finish(&mut self, last: Bytes) -> Poll<Option<Result<Bytes, Infallible>>> {
        self.head.clear();
        let mut state = self.slot.lock();
        let released = (state.subscription.take(), state.permit.take());
        drop(state);
        drop(released);
        self.shutdown = None;
        self.keep_alive = None;
        Poll::Ready(Some(Ok(last)))
    }

    fn send(&mut self, frame: Bytes) -> Poll<Option<Result<Bytes, Infallible>>> {
        if let Some((sleep, interval)) = &mut self.keep_alive {
            sleep.as_mut().reset(Instant::now() + *interval);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        if self
            .shutdown
            .as_mut()
            .is_some_and(|shutdown| shutdown.as_mut().poll(cx).is_ready())
        {
            return self.finish(frame::shutdown());
        }
        if std::mem::take(&mut self.slot.lock().timed_out) {
            return self.finish(frame::timed_out());
        }
        if let Some(frame) = self.head.pop_front() {
            return self.send(frame);
        }
        let mut state = self.slot.lock();
        let Some(subscription) = state.subscription.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            match Pin::new(&mut *subscription).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    let Some((kind, malformed)) = &self.kind else {
                        continue;
                    };
                    if !kind.has_event(message.event()) {
                        // Not this route's event: a client must never take it for one (a forged
                        // `snapshot` or `gap`, or another type's event on the same channel).
                        malformed.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(channel = subscription.channel(), id = %message.id(), event = ?message.event(), "dropping an event not of the route's type");
                        continue;
                    }
                    // One of the route's events the client will not get: it must know.
                    let frame = frame::message(&message).unwrap_or_else(|| {
                        malformed.fetch_add(1, Ordering::Relaxed);
                        frame::gap(Gap { missed: Some(1) }, Some(message.id()))
                    });
                    drop(state);
                    return self.send(frame);
                }
                Poll::Ready(Some(Err(gap))) => {
                    let frame = frame::gap(gap, subscription.last_id());
                    drop(state);
                    return self.send(frame);
                }
                Poll::Ready(None) => {
                    drop(state);
                    return self.finish(frame::closed());
                }
                Poll::Pending => break,
            }
        }
        drop(state);
        if let Some((sleep, _)) = &mut self.keep_alive
            && sleep.as_mut().poll(cx).is_ready()
        {
            return self.send(frame::keep_alive());
        }
        Poll::Pending
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let poll = this.poll_frame(cx);
        if this.watched {
            // Read by the watchdog when it wakes: no wake-up per frame.
            this.slot.lock().handed_out = matches!(poll, Poll::Ready(Some(_))).then(Instant::now);
        }
        poll
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        // Released here, not when the watchdog (which shares the slot) next wakes.
        let mut state = self.slot.lock();
        let released = (state.subscription.take(), state.permit.take());
        state.dropped = true;
        drop(state);
        drop(released);
        if self.watched {
            self.slot.notify.notify_one();
        }
    }
}

/// The watchdog of one connection: releases its subscription and slot once a frame handed out
/// was not taken within `timeout`; ends then, or when the stream is dropped.
///
/// It wakes once per `timeout` at most, not per frame: a frame handed out at `t` is checked at
/// `t + timeout` at the latest, since every wake-up sleeps until the current frame's deadline,
/// or for a whole `timeout` when none is out.
async fn watch(slot: Arc<Slot>, timeout: Duration) {
    loop {
        let dropped = slot.notify.notified();
        tokio::pin!(dropped);
        let wake_at = {
            let mut state = slot.lock();
            // Dropped, or ended (shutdown, closed backplane): nothing left to release, and the
            // last frame must stay the last.
            if state.dropped || state.subscription.is_none() {
                return;
            }
            match state.handed_out {
                Some(handed_out) if Instant::now() >= handed_out + timeout => {
                    state.timed_out = true;
                    let released = (state.subscription.take(), state.permit.take());
                    drop(state);
                    tracing::debug!(
                        ?timeout,
                        "releasing an SSE connection whose client took no frame within the write timeout"
                    );
                    drop(released);
                    return;
                }
                Some(handed_out) => handed_out + timeout,
                None => Instant::now() + timeout,
            }
        };
        tokio::select! {
            () = &mut dropped => {}
            () = tokio::time::sleep_until(wake_at) => {}
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
    async fn subscription(bp: &Backplane, channel: &str) -> Option<Events> {
        Some(Events {
            subscription: bp.subscribe_name(channel).await,
            kind: EventKind::Keyed { name: "E" },
            malformed: Arc::clone(bp.malformed_counter()),
        })
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

    #[tokio::test(start_paused = true)]
    async fn keep_alive_comments_fill_idle_time_only() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let mut stream = EventStream::new(
            VecDeque::new(),
            sub,
            None,
            Duration::from_secs(15),
            Duration::ZERO,
            None,
        );

        let start = Instant::now();
        assert_eq!(stream.next().await.unwrap().unwrap(), frame::keep_alive());
        assert_eq!(start.elapsed(), Duration::from_secs(15));

        tokio::time::sleep(Duration::from_secs(10)).await;
        publish(&bp, "c", "1").await;
        assert!(text(&stream.next().await.unwrap().unwrap()).contains("data: 1"));
        // The event reset the timer: the next comment is 15 s after it, not after the last one.
        let sent = Instant::now();
        assert_eq!(stream.next().await.unwrap().unwrap(), frame::keep_alive());
        assert_eq!(sent.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn zero_interval_turns_keep_alive_off() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        let mut stream = EventStream::new(
            VecDeque::new(),
            sub,
            None,
            Duration::ZERO,
            Duration::ZERO,
            None,
        );
        let next = tokio::time::timeout(Duration::from_hours(1), stream.next()).await;
        assert!(next.is_err(), "no frame without events");
    }

    #[tokio::test]
    async fn head_frames_come_first_then_events() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        publish(&bp, "c", "1").await;
        let head = VecDeque::from([frame::retry(Duration::from_secs(3)), frame::snapshot("{}")]);
        let mut stream = EventStream::new(
            head,
            sub,
            None,
            Duration::from_secs(15),
            Duration::ZERO,
            None,
        );
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
            Duration::ZERO,
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
        let mut stream = EventStream::new(
            VecDeque::new(),
            sub,
            None,
            Duration::from_secs(15),
            Duration::ZERO,
            None,
        );
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
        let mut stream = EventStream::new(
            VecDeque::new(),
            sub,
            None,
            Duration::ZERO,
            Duration::ZERO,
            None,
        );
        publish(&bp, "c", "1").await;
        assert!(text(&stream.next().await.unwrap().unwrap()).ends_with("data: 1\n\n"));
        for data in ["2", "3", "4", "5", "6", "7"] {
            publish(&bp, "c", data).await;
        }
        // 2 to 4 were trimmed from history: the stream says so, then goes on from what it has.
        let mut frames = Vec::new();
        for _ in 0..4 {
            frames.push(String::from_utf8(stream.next().await.unwrap().unwrap().to_vec()).unwrap());
        }
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
        let mut stream = EventStream::new(
            VecDeque::new(),
            sub,
            None,
            Duration::ZERO,
            Duration::ZERO,
            None,
        );
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
        let mut stream = EventStream::new(
            VecDeque::new(),
            sub,
            None,
            Duration::ZERO,
            Duration::ZERO,
            None,
        );
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
            Duration::from_secs(5),
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
            Duration::from_secs(5),
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
            Duration::from_secs(5),
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
