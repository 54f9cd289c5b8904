//! [`EventStream`]: one connection's response body, from its subscription to frames.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

use super::frame;
use crate::backplane::subscription::RawSubscription;

/// A future completing when the stream must end: the [`Shutdown`](super::Shutdown) signal.
pub(crate) type Cancelled = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The frames of one SSE connection: the head (retry hint, snapshot), then its subscription's
/// events and gaps, with keep-alive comments when idle; a final comment on shutdown or when the
/// backplane closes, then the end.
///
/// Each connection's body is polled by its own connection task, so a client that stops reading
/// stops only this stream; its subscription lags and is refilled from history, or reports a gap,
/// when it is read again.
pub(crate) struct EventStream {
    head: VecDeque<Bytes>,
    subscription: Option<RawSubscription>,
    shutdown: Option<Cancelled>,
    keep_alive: Option<(Pin<Box<Sleep>>, Duration)>,
    /// Held for the connection's life: the slot of a [`ConnectionLimit`](super::ConnectionLimit).
    permit: Option<OwnedSemaphorePermit>,
}

impl EventStream {
    pub(crate) fn new(
        head: VecDeque<Bytes>,
        subscription: Option<RawSubscription>,
        shutdown: Option<Cancelled>,
        keep_alive: Duration,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Self {
        let keep_alive =
            (!keep_alive.is_zero()).then(|| (Box::pin(tokio::time::sleep(keep_alive)), keep_alive));
        Self {
            head,
            subscription,
            shutdown,
            keep_alive,
            permit,
        }
    }

    /// Sends `last` and ends: releases the subscription and the connection slot now, not when the
    /// client finally goes away.
    fn finish(&mut self, last: Bytes) -> Poll<Option<Result<Bytes, Infallible>>> {
        self.head.clear();
        self.subscription = None;
        self.shutdown = None;
        self.keep_alive = None;
        self.permit = None;
        Poll::Ready(Some(Ok(last)))
    }

    fn send(&mut self, frame: Bytes) -> Poll<Option<Result<Bytes, Infallible>>> {
        if let Some((sleep, interval)) = &mut self.keep_alive {
            sleep.as_mut().reset(Instant::now() + *interval);
        }
        Poll::Ready(Some(Ok(frame)))
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this
            .shutdown
            .as_mut()
            .is_some_and(|shutdown| shutdown.as_mut().poll(cx).is_ready())
        {
            return this.finish(frame::shutdown());
        }
        if let Some(frame) = this.head.pop_front() {
            return this.send(frame);
        }
        let Some(subscription) = this.subscription.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            match Pin::new(&mut *subscription).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => {
                    if let Some(frame) = frame::message(&message) {
                        return this.send(frame);
                    }
                }
                Poll::Ready(Some(Err(gap))) => return this.send(frame::gap(gap)),
                Poll::Ready(None) => return this.finish(frame::closed()),
                Poll::Pending => break,
            }
        }
        if let Some((sleep, _)) = &mut this.keep_alive
            && sleep.as_mut().poll(cx).is_ready()
        {
            return this.send(frame::keep_alive());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::backplane::Backplane;
    use crate::backplane::memory::MemoryConfig;

    async fn subscription(bp: &Backplane, channel: &str) -> RawSubscription {
        bp.subscribe_raw(channel, None).await.unwrap()
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
            Some(sub),
            None,
            Duration::from_secs(15),
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
        let mut stream = EventStream::new(VecDeque::new(), Some(sub), None, Duration::ZERO, None);
        let next = tokio::time::timeout(Duration::from_hours(1), stream.next()).await;
        assert!(next.is_err(), "no frame without events");
    }

    #[tokio::test]
    async fn head_frames_come_first_then_events() {
        let bp = Backplane::in_memory();
        let sub = subscription(&bp, "c").await;
        publish(&bp, "c", "1").await;
        let head = VecDeque::from([frame::retry(Duration::from_secs(3)), frame::snapshot("{}")]);
        let mut stream = EventStream::new(head, Some(sub), None, Duration::from_secs(15), None);
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
            Some(sub),
            Some(Box::pin(token.clone().cancelled_owned())),
            Duration::from_secs(15),
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
            Some(sub),
            None,
            Duration::from_secs(15),
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
        let mut stream = EventStream::new(VecDeque::new(), Some(sub), None, Duration::ZERO, None);
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
        assert_eq!(frames[0], "event: gap\ndata: {\"missed\":null}\n\n");
        for (frame, data) in frames[1..].iter().zip(["5", "6", "7"]) {
            assert!(frame.ends_with(&format!("data: {data}\n\n")), "{frames:?}");
        }
    }
}
