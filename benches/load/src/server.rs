//! The `serve` subcommand (one server instance, a child process of the load generator) and the
//! handle the load generator keeps of it.

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use statelesse::RedisConfig;
use statelesse::prelude::*;
use statelesse::routes::MuxRoutes;
use std::convert::Infallible;

use crate::procfs::Pinning;
use crate::{BoxError, Tick, baseline};

/// Which server an instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Impl {
    /// The hand-written axum + Redis pub/sub + broadcast server (`baseline.rs`).
    Baseline,
    /// statelesse: `Tick::sse_route()` and `Tick::publish`.
    Statelesse,
    /// The floor of memory per connection: an axum SSE route whose stream never yields, no
    /// Redis, no channel: what hyper and axum alone hold for an open SSE connection.
    Floor,
}

impl Impl {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Statelesse => "statelesse",
            Self::Floor => "floor",
        }
    }

    pub(crate) fn parse(name: &str) -> Result<Self, BoxError> {
        match name {
            "baseline" => Ok(Self::Baseline),
            "statelesse" => Ok(Self::Statelesse),
            "floor" => Ok(Self::Floor),
            other => Err(format!("unknown implementation `{other}`").into()),
        }
    }
}

/// `serve <baseline|statelesse> <redis url> <history length>`: binds `127.0.0.1:0`, prints
/// `LISTENING <port>`, and serves until its standard input closes (the load generator ended).
pub(crate) fn main(args: &[String]) -> Result<(), BoxError> {
    let [kind, url, history] = args else {
        return Err("usage: serve <baseline|statelesse> <redis url> <history length>".into());
    };
    let kind = Impl::parse(kind)?;
    let history: usize = history.parse()?;
    rlimit::increase_nofile_limit(u64::MAX)?;
    std::thread::spawn(|| {
        let _ = std::io::stdin().read(&mut [0; 1]);
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let knobs = Knobs::from_env()?;
    runtime.block_on(async {
        let app = match kind {
            Impl::Baseline => baseline::app(url).await?,
            Impl::Statelesse => statelesse_app(url, history, &knobs).await?,
            Impl::Floor => floor_app(),
        };
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        // A large backlog, so that a storm of reconnects is not slowed by SYN retries.
        let listener = socket.listen(4096)?;
        println!("LISTENING {}", listener.local_addr()?.port());
        match knobs.http1 {
            Some(Serve::Library) => statelesse::routes::serve(listener, app).await?,
            Some(Serve::Http1(settings)) => serve_http1(listener, app, settings).await,
            None => axum::serve(listener, app).await?,
        }
        Ok(())
    })
}

/// The environment variables through which the load generator passes server settings
/// (`--write-timeout`, `--subscriber-buffer`, `--http1`) to the instances it starts.
const WRITE_TIMEOUT_ENV: &str = "STATELESSE_LOAD_WRITE_TIMEOUT_MS";
const SUBSCRIBER_BUFFER_ENV: &str = "STATELESSE_LOAD_SUBSCRIBER_BUFFER";
const HTTP1_ENV: &str = "STATELESSE_LOAD_HTTP1";
const PUBLISH_LINGER_ENV: &str = "STATELESSE_LOAD_PUBLISH_LINGER_MS";

/// The settings the load generator's options give every instance it starts, as environment
/// variables; set once, from the options, before any instance starts.
pub(crate) static SERVER_ENV: OnceLock<Vec<(&'static str, String)>> = OnceLock::new();

/// The server environment for `options`: only the settings given.
pub(crate) fn server_env(options: &crate::options::Options) -> Vec<(&'static str, String)> {
    let mut env = Vec::new();
    if let Some(ms) = options.write_timeout_ms {
        env.push((WRITE_TIMEOUT_ENV, ms.to_string()));
    }
    if let Some(len) = options.subscriber_buffer {
        env.push((SUBSCRIBER_BUFFER_ENV, len.to_string()));
    }
    if let Some(settings) = &options.http1 {
        env.push((HTTP1_ENV, settings.clone()));
    }
    if let Some(ms) = options.publish_linger_ms {
        env.push((PUBLISH_LINGER_ENV, ms.to_string()));
    }
    env
}

/// Server settings besides the defaults, for S3's memory rows.
struct Knobs {
    /// statelesse's `write_timeout` (`ZERO`: no watchdog), instead of the default.
    write_timeout: Option<Duration>,
    /// statelesse's subscriber buffer, instead of the default 1,024.
    subscriber_buffer: Option<usize>,
    /// Serve with `hyper::server::conn::http1::Builder` and these settings, or through
    /// `statelesse::routes::serve`, instead of `axum::serve` (`hyper_util`'s auto builder).
    http1: Option<Serve>,
    /// statelesse's publish linger, instead of none.
    publish_linger: Option<Duration>,
}

/// How an instance serves its router when not through `axum::serve`.
#[derive(Debug, Clone, Copy)]
enum Serve {
    /// `statelesse::routes::serve`.
    Library,
    /// `http1::Builder` with these settings.
    Http1(Http1Settings),
}

/// `hyper::server::conn::http1::Builder` settings: `writev=BOOL,max_buf_size=N,half_close=BOOL`,
/// any of them (an empty list: hyper's defaults).
#[derive(Debug, Clone, Copy, Default)]
struct Http1Settings {
    writev: Option<bool>,
    max_buf_size: Option<usize>,
    half_close: Option<bool>,
}

impl Knobs {
    fn from_env() -> Result<Self, BoxError> {
        let var = |name| std::env::var(name).ok();
        let http1 = var(HTTP1_ENV)
            .map(|list| {
                if list == "routes::serve" {
                    return Ok(Serve::Library);
                }
                let mut settings = Http1Settings::default();
                for item in list.split(',').filter(|item| !item.is_empty()) {
                    let (name, value) = item
                        .split_once('=')
                        .ok_or_else(|| format!("`{item}`: expected NAME=VALUE"))?;
                    match name {
                        "writev" => settings.writev = Some(value.parse()?),
                        "max_buf_size" => settings.max_buf_size = Some(value.parse()?),
                        "half_close" => settings.half_close = Some(value.parse()?),
                        other => return Err(format!("unknown HTTP/1 setting `{other}`").into()),
                    }
                }
                Ok::<_, BoxError>(Serve::Http1(settings))
            })
            .transpose()?;
        Ok(Self {
            write_timeout: var(WRITE_TIMEOUT_ENV)
                .map(|ms| ms.parse().map(Duration::from_millis))
                .transpose()?,
            subscriber_buffer: var(SUBSCRIBER_BUFFER_ENV)
                .map(|len| len.parse())
                .transpose()?,
            http1,
            publish_linger: var(PUBLISH_LINGER_ENV)
                .map(|ms| {
                    ms.parse()
                        .map(|ms: f64| Duration::from_secs_f64(ms / 1000.0))
                })
                .transpose()?,
        })
    }
}

/// Serves `app` on `listener` with one `http1::Builder` connection per client: no HTTP/2
/// detection, no graceful-shutdown plumbing, `settings` applied.
async fn serve_http1(listener: tokio::net::TcpListener, app: Router, settings: Http1Settings) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    if let Some(writev) = settings.writev {
        builder.writev(writev);
    }
    if let Some(max) = settings.max_buf_size {
        builder.max_buf_size(max);
    }
    if let Some(half_close) = settings.half_close {
        builder.half_close(half_close);
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors, for example: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}

/// The statelesse server: the event's SSE route, and a publish endpoint.
async fn statelesse_app(url: &str, history: usize, knobs: &Knobs) -> Result<Router, BoxError> {
    // Before the backplane and the route, which register their series when built.
    #[cfg(feature = "metrics")]
    let metrics = prometheus()?;
    let mut config = RedisConfig::new(url)?.with_history_len(history);
    if let Some(len) = knobs.subscriber_buffer {
        config = config.with_subscriber_buffer(len);
    }
    if let Some(linger) = knobs.publish_linger {
        config = config.with_publish_linger(linger);
    }
    let backplane = Backplane::redis(config).await?;
    let mut routes = Tick::sse_routes::<Backplane>();
    // S7: many rooms on one connection, `?Tick=1&Tick=2..`.
    let mut mux = MuxRoutes::new("/sse/bench/mux").event(Tick::sse_routes());
    if let Some(timeout) = knobs.write_timeout {
        routes = routes.write_timeout(timeout);
        mux = mux.write_timeout(timeout);
    }
    let app = Router::new()
        .merge(routes.into_router())
        .merge(mux)
        .route("/publish", post(publish));
    #[cfg(feature = "metrics")]
    let app = app.route(
        "/metrics",
        get(move || std::future::ready(metrics.render())),
    );
    Ok(app.with_state(backplane))
}

/// Installs the Prometheus recorder, folding histogram samples into buckets every 5 s as the
/// exporter's own listener would.
#[cfg(feature = "metrics")]
fn prometheus() -> Result<metrics_exporter_prometheus::PrometheusHandle, BoxError> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let buckets = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)?
        .install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// `204 No Content` once published, as the baseline answers (its id is not needed here).
async fn publish(State(backplane): State<Backplane>, Json(tick): Json<Tick>) -> Response {
    match Tick::publish(&backplane, tick).await {
        Ok(_id) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
}

/// The floor: an SSE route that holds the connection open and never sends an event.
fn floor_app() -> Router {
    let sse = || async {
        let events = futures_util::stream::pending::<Result<Event, Infallible>>();
        Sse::new(events).keep_alive(KeepAlive::default())
    };
    Router::new().route("/sse/bench/{room}/tick", get(sse))
}

/// Which instance a server is: A holds the SSE connections, B takes the publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    A,
    B,
}

/// A running server instance; asked to exit on drop (its standard input closes), then killed.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    /// Held open: the child exits when it closes.
    stdin: Option<ChildStdin>,
    addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `kind` on the server core and waits until it listens.
    pub(crate) fn start(
        pinning: Pinning,
        role: Role,
        kind: Impl,
        redis_url: &str,
        history: usize,
    ) -> Result<Self, BoxError> {
        // Profiling hook: `STATELESSE_LOAD_WRAP_A="valgrind --tool=callgrind"` runs instance A
        // under that command.
        let wrap = std::env::var("STATELESSE_LOAD_WRAP_A")
            .ok()
            .filter(|_| role == Role::A);
        let mut words = wrap.as_deref().unwrap_or_default().split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = pinning.command(Pinning::SERVER_CORE, program);
                command.args(words).arg(std::env::current_exe()?);
                command
            }
            None => pinning.command(Pinning::SERVER_CORE, std::env::current_exe()?),
        };
        let mut child = command
            .args(["serve", kind.name(), redis_url, &history.to_string()])
            .envs(SERVER_ENV.get().into_iter().flatten().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = line
            .strip_prefix("LISTENING ")
            .ok_or_else(|| format!("{} server did not start: {line:?}", kind.name()))?
            .trim()
            .parse()?;
        Ok(Self {
            child,
            stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing its standard input makes it exit by itself (and a profiler wrapping it write
        // its output); kill it if it does not within 30 s.
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
