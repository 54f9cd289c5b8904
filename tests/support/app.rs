//! A test server: an axum app served on `127.0.0.1:0` with graceful shutdown.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::serve::Listener;
use statelesse::routes::{Shutdown, WriteDeadline};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running app; its server task is aborted on drop.
#[derive(Debug)]
pub struct TestApp {
    addr: SocketAddr,
    shutdown: Shutdown,
    server: JoinHandle<std::io::Result<()>>,
}

/// Serves `router` on a free loopback port; [`TestApp::stop`] shuts it down gracefully.
pub async fn spawn_app(router: Router) -> TestApp {
    spawn_app_with_shutdown(router, Shutdown::new()).await
}

/// Serves `router` on a free loopback port, shutting down gracefully once `shutdown` is
/// triggered: give the same signal to the app's SSE routes.
pub async fn spawn_app_with_shutdown(router: Router, shutdown: Shutdown) -> TestApp {
    serve(|listener| listener, router, shutdown).await
}

/// Serves `router` on a free loopback port through [`WriteDeadline`]: a connection whose client
/// takes no byte for `timeout` is closed.
pub async fn spawn_app_with_write_deadline(router: Router, timeout: Duration) -> TestApp {
    let deadline = move |listener| WriteDeadline::new(listener, timeout);
    serve(deadline, router, Shutdown::new()).await
}

/// Serves `router` on a free loopback port, through the listener `wrap` makes of it.
async fn serve<L: Listener>(
    wrap: impl FnOnce(TcpListener) -> L,
    router: Router,
    shutdown: Shutdown,
) -> TestApp
where
    L::Addr: std::fmt::Debug,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = wrap(listener);
    let signal = shutdown.clone().triggered_owned();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await
    });
    TestApp {
        addr,
        shutdown,
        server,
    }
}

impl TestApp {
    /// The address the app listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on this app.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The app's shutdown signal.
    #[must_use]
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Triggers the shutdown signal and waits, at most 5 seconds, for the server to finish;
    /// returns how long it took. Panics if it did not finish.
    pub async fn stop(mut self) -> Duration {
        let start = Instant::now();
        self.shutdown.trigger();
        let finished = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
        assert!(finished.is_ok(), "the server did not shut down within 5 s");
        if let Ok(result) = finished {
            result.unwrap().unwrap();
        }
        start.elapsed()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}
