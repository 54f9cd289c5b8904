//! [`serve`]: serves a router's HTTP/1 connections with hyper directly, each write given a
//! deadline ([`WriteDeadline`]); about 7 KiB less per open connection than `axum::serve`.

use std::io;
use std::time::Duration;

use axum::Router;
use axum::serve::Listener as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::{DEFAULT_WRITE_TIMEOUT, WriteDeadline};

/// Serves `router` on `listener` over HTTP/1.1 until the future is dropped, giving every write
/// the routes' default write timeout ([`DEFAULT_WRITE_TIMEOUT`]) as a deadline, as
/// [`WriteDeadline`] does.
///
/// An alternative to `axum::serve` for servers that hold many open SSE connections: each
/// connection is served by hyper's HTTP/1 connection directly, without `axum::serve`'s
/// HTTP-version detection, upgrade support and graceful-shutdown plumbing, which measured
/// 7 KiB per open connection (24.5 against 17.7 KiB per idle SSE connection in the load
/// benchmark's S3, `docs/BENCHMARKS.md`). It speaks HTTP/1.1 only: no HTTP/2, no upgrades
/// (`WebSockets`), no graceful shutdown (give the routes a [`Shutdown`](super::Shutdown) to end
/// the streams, then drop this future). A failed `accept` (out of file descriptors, for example)
/// is retried after a pause, as under `axum::serve`: the future never completes by itself.
///
/// # Errors
///
/// None at present: the `io::Result` is `axum::serve`'s, so that either can end a `main`.
///
/// # Examples
///
/// ```no_run
/// use axum::Router;
/// use statelesse::prelude::*;
///
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let app: Router = Router::new().with_state(Backplane::in_memory());
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
/// statelesse::routes::serve(listener, app).await
/// # }
/// ```
pub async fn serve(listener: TcpListener, router: Router) -> io::Result<()> {
    serve_with_write_deadline(listener, router, DEFAULT_WRITE_TIMEOUT).await
}

/// [`serve`], with `write_deadline` as every write's deadline (`Duration::ZERO`: none): give it
/// the routes' [`write_timeout`](super::SseRoutes::write_timeout) when that is not the default.
///
/// # Errors
///
/// None at present, as for [`serve`].
pub async fn serve_with_write_deadline(
    listener: TcpListener,
    router: Router,
    write_deadline: Duration,
) -> io::Result<()> {
    // hyper's defaults: none of its settings changes the memory of an open connection (its read
    // and write buffers start at 8 KiB whatever `max_buf_size`, `writev` or `half_close` say).
    let builder = hyper::server::conn::http1::Builder::new();
    let mut listener = WriteDeadline::new(listener, write_deadline);
    loop {
        // axum's `Listener::accept` for a `TcpListener` retries a failed accept after a pause.
        let (io, _addr) = listener.accept().await;
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(io), service);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::trace!(%err, "connection ended with an error");
            }
        });
    }
}
