//! [`Shutdown`]: the signal that ends every open SSE stream of the routes given it.

use std::future::Future;

use tokio_util::sync::CancellationToken;

/// A signal that ends every open SSE stream of the routes it was given, so that axum's graceful
/// shutdown can finish.
///
/// `axum::serve(..).with_graceful_shutdown(..)` waits for every response body to end, and an SSE
/// body never ends by itself. Give the same `Shutdown` to every SSE route
/// ([`SseRoutes::shutdown`](super::SseRoutes::shutdown)) and trigger it when the server's
/// shutdown starts: each open stream then sends a final `: shutdown` comment and ends, and a
/// request arriving afterwards gets that same short stream (status 200 and a `retry` hint, so
/// browsers reconnect, to another instance, instead of giving up).
///
/// Cloning is cheap; every clone is the same signal. A client that stopped reading cannot receive
/// the final comment, and its connection stays open until it goes away: bound the drain with a
/// timeout (see the example).
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use axum::Router;
/// use statelesse::prelude::*;
/// use statelesse::routes::Shutdown;
///
/// #[derive(Clone, Serialize, Deserialize, SseEvent)]
/// # #[cfg_attr(feature = "typescript", derive(statelesse::ts_rs::TS), ts(crate = "statelesse::ts_rs"))]
/// #[sse(domain = "game", key = "game_id")]
/// pub struct PlayerJoined {
///     pub game_id: u64,
///     pub player_name: String,
/// }
///
/// # #[tokio::main]
/// # async fn main() -> std::io::Result<()> {
/// let shutdown = Shutdown::new();
/// let app: Router = Router::new()
///     .merge(PlayerJoined::sse_routes().shutdown(&shutdown))
///     .with_state(Backplane::in_memory());
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let signal = shutdown.clone();
/// let server = axum::serve(listener, app).with_graceful_shutdown(async move {
///     let _ = tokio::signal::ctrl_c().await;
///     signal.trigger(); // every SSE stream sends `: shutdown` and ends
/// });
/// // The drain is bounded: a client that stopped reading cannot hold the process.
/// let server = tokio::spawn(async move { server.await });
/// shutdown.triggered().await;
/// let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A signal not yet triggered.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Ends every open stream of the routes given this signal, and every later one at once.
    ///
    /// ```
    /// let shutdown = statelesse::routes::Shutdown::new();
    /// shutdown.trigger();
    /// assert!(shutdown.is_triggered());
    /// ```
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Whether [`trigger`](Self::trigger) was called (on any clone).
    #[must_use]
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once the signal is triggered: a future to hand to
    /// `with_graceful_shutdown` when something else calls [`trigger`](Self::trigger).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let shutdown = statelesse::routes::Shutdown::new();
    /// let waiter = tokio::spawn(shutdown.clone().triggered_owned());
    /// shutdown.trigger();
    /// waiter.await.unwrap();
    /// # }
    /// ```
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + '_ {
        self.token.cancelled()
    }

    /// As [`triggered`](Self::triggered), owning its signal so that it can be `'static`.
    pub fn triggered_owned(self) -> impl Future<Output = ()> + Send + 'static {
        self.token.cancelled_owned()
    }

    /// The cancellation token underneath, to tie the signal to other tasks.
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// A signal triggered when `token` is cancelled, and cancelling it when triggered.
impl From<CancellationToken> for Shutdown {
    fn from(token: CancellationToken) -> Self {
        Self { token }
    }
}
