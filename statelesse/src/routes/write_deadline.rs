//! [`WriteDeadline`]: an `axum::serve` listener whose connections fail a write that makes no
//! progress for too long, so a client that stopped reading has its socket closed.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A [`Listener`] for `axum::serve` whose connections close when a write stays blocked for
/// `timeout`: the client's socket took no byte for that long.
///
/// A response body cannot close its connection itself: while the client's socket is full, hyper
/// waits on the socket and does not poll the body. An SSE route's
/// [`write_timeout`](super::SseRoutes::write_timeout) releases the subscription and the
/// connection slot of such a client, but its socket stays open until the client reads or goes
/// away. Serving through this listener gives every write a deadline: past it, the write fails
/// with [`io::ErrorKind::TimedOut`], hyper drops the connection and the kernel closes the socket.
/// Use the route's write timeout or a shorter one here.
///
/// Every connection of the server gets the deadline, not only SSE streams: a plain response
/// whose client takes no byte of it for `timeout` is closed too. `Duration::ZERO` sets no
/// deadline.
///
/// # Examples
///
/// ```no_run
/// use axum::Router;
/// use statelesse::prelude::*;
/// use statelesse::routes::{DEFAULT_WRITE_TIMEOUT, WriteDeadline};
///
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let app: Router = Router::new().with_state(Backplane::in_memory());
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
/// // Give the routes' write timeout to the sockets too.
/// axum::serve(WriteDeadline::new(listener, DEFAULT_WRITE_TIMEOUT), app).await
/// # }
/// ```
#[derive(Debug)]
pub struct WriteDeadline<L> {
    listener: L,
    timeout: Duration,
}

impl<L: Listener> WriteDeadline<L> {
    /// `listener`, whose connections' writes fail after `timeout` without progress.
    #[must_use]
    pub fn new(listener: L, timeout: Duration) -> Self {
        Self { listener, timeout }
    }
}

impl<L: Listener> Listener for WriteDeadline<L> {
    type Io = WriteDeadlineIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.listener.accept().await;
        (WriteDeadlineIo::new(io, self.timeout), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

/// A connection of a [`WriteDeadline`] listener: `Io` whose writes, flushes and shutdown fail
/// with [`io::ErrorKind::TimedOut`] once they stayed blocked for the timeout. Reads are untouched.
pub struct WriteDeadlineIo<Io> {
    io: Io,
    timeout: Duration,
    /// Armed while a write is blocked; allocated once per connection, on its first block.
    deadline: Option<Pin<Box<Sleep>>>,
    blocked: bool,
}

impl<Io> WriteDeadlineIo<Io> {
    /// `io` with writes that fail after `timeout` without progress; `ZERO`: no deadline.
    #[must_use]
    pub fn new(io: Io, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            deadline: None,
            blocked: false,
        }
    }

    /// The connection underneath.
    #[must_use]
    pub fn get_ref(&self) -> &Io {
        &self.io
    }

    /// `poll`, the result of a write-side operation, unless it has been blocked past the
    /// deadline: any progress disarms the deadline, a first block arms it.
    fn check<T>(&mut self, poll: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if poll.is_ready() || self.timeout.is_zero() {
            self.blocked = false;
            return poll;
        }
        let timeout = self.timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if !self.blocked {
            self.blocked = true;
            deadline.as_mut().reset(Instant::now() + timeout);
        }
        if deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer took no bytes for {timeout:?}"),
            )));
        }
        Poll::Pending
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for WriteDeadlineIo<Io> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for WriteDeadlineIo<Io> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.check(poll, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.check(poll, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.check(poll, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(poll, cx)
    }
}

impl<Io: fmt::Debug> fmt::Debug for WriteDeadlineIo<Io> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteDeadlineIo")
            .field("io", &self.io)
            .field("timeout", &self.timeout)
            .field("blocked", &self.blocked)
            .finish_non_exhaustive()
    }
}
