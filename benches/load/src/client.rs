//! The load generator's clients: SSE subscribers that check every event, and HTTP publishers.
//!
//! Each subscriber is one task holding one HTTP/1.1 connection (hyper's client connection, driven
//! in the same task). It checks that the sequence numbers of its key arrive in order with no hole
//! and no repeat, and records publish-to-receive latency from the send time stamped in each event.
//! Each publisher is one task holding one keep-alive connection; it owns a set of keys, so the
//! events of a key are published one after the other, in order.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

use crate::{BoxError, Tick};

/// Nanoseconds since the first call, on the monotonic clock: the time base of `sent_ns`.
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A histogram of nanoseconds, from 1 ns to 10 minutes, 3 significant digits.
pub(crate) fn histogram() -> Result<Histogram<u64>, BoxError> {
    Ok(Histogram::new_with_bounds(1, 600_000_000_000, 3)?)
}

/// What every client task reports to.
#[derive(Debug)]
pub(crate) struct Shared {
    stats: Mutex<Stats>,
    /// Subscribers that got their response headers.
    pub(crate) connected: AtomicUsize,
    /// Per key, how many events were published (the next sequence number).
    pub(crate) published: Vec<AtomicU64>,
    /// Events published after this instant (ns) mark a subscriber as resumed (S4).
    pub(crate) resume_after_ns: AtomicU64,
    /// Subscribers that received an event published after `resume_after_ns`.
    pub(crate) resumed: AtomicUsize,
}

/// The counters and histograms of one phase.
#[derive(Debug)]
pub(crate) struct Stats {
    /// Publish-to-receive latency of every event received in order.
    pub(crate) latency: Histogram<u64>,
    /// From the reconnect to the first event published after it, per subscriber (S4).
    pub(crate) resume: Histogram<u64>,
    /// Round trip of each HTTP publish.
    pub(crate) publish: Histogram<u64>,
    /// Events received in order, each once.
    pub(crate) received: u64,
    /// Sequence numbers skipped (events never received).
    pub(crate) lost: u64,
    /// Events received again, or out of order.
    pub(crate) duplicated: u64,
    /// `gap` events received.
    pub(crate) gaps: u64,
    /// Connection or protocol errors of subscribers and publishers.
    pub(crate) errors: u64,
    pub(crate) first_error: Option<String>,
    /// When the last event was received.
    pub(crate) last_receive: Option<Instant>,
}

impl Shared {
    pub(crate) fn new(keys: u32) -> Result<Arc<Self>, BoxError> {
        Ok(Arc::new(Self {
            stats: Mutex::new(Stats {
                latency: histogram()?,
                resume: histogram()?,
                publish: histogram()?,
                received: 0,
                lost: 0,
                duplicated: 0,
                gaps: 0,
                errors: 0,
                first_error: None,
                last_receive: None,
            }),
            connected: AtomicUsize::new(0),
            published: (0..keys).map(|_| AtomicU64::new(0)).collect(),
            resume_after_ns: AtomicU64::new(u64::MAX),
            resumed: AtomicUsize::new(0),
        }))
    }

    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn error(&self, err: impl std::fmt::Display) {
        let mut stats = self.stats();
        stats.errors += 1;
        if stats.first_error.is_none() {
            stats.first_error = Some(err.to_string());
        }
    }

    /// Events published on `room` so far.
    pub(crate) fn published_on(&self, room: u32) -> u64 {
        self.published[room as usize].load(Ordering::Acquire)
    }

    /// Every event that should have reached `subscribers` (one entry per subscriber's key).
    pub(crate) fn expected(&self, rooms: &[u32]) -> u64 {
        rooms.iter().map(|&room| self.published_on(room)).sum()
    }
}

/// A subscriber's position, kept across reconnects.
#[derive(Debug, Clone)]
pub(crate) struct Position {
    pub(crate) room: u32,
    /// The next sequence number expected.
    pub(crate) next: u64,
    /// The SSE id of the last event received, sent as `Last-Event-ID` on reconnect.
    pub(crate) last_id: Option<Bytes>,
    /// Waiting for the first event published after `resume_after_ns`.
    pub(crate) resuming: bool,
}

impl Position {
    pub(crate) fn new(room: u32) -> Self {
        Self {
            room,
            next: 0,
            last_id: None,
            resuming: false,
        }
    }
}

/// The fields of a [`Tick`] the subscriber checks.
#[derive(Deserialize)]
struct Probe {
    room: u32,
    seq: u64,
    sent_ns: u64,
}

/// One SSE connection to `addr` for the rooms of `positions` (a room's route for one, the
/// multiplexed route for more), until `stop` or the end of the stream; returns the positions
/// reached. `gate` limits how many connect at once.
pub(crate) async fn subscriber(
    addr: SocketAddr,
    mut positions: Vec<Position>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    gate: Option<Arc<Semaphore>>,
) -> Vec<Position> {
    if let Err(err) = subscribe(addr, &mut positions, &shared, &mut stop, gate).await {
        let rooms: Vec<u32> = positions.iter().map(|p| p.room).collect();
        shared.error(format!("subscriber of rooms {rooms:?}: {err}"));
    }
    positions
}

/// The path of the stream of `positions`' rooms.
fn path(positions: &[Position]) -> String {
    if let [position] = positions {
        return format!("/sse/bench/{}/tick", position.room);
    }
    let query: Vec<String> = positions
        .iter()
        .map(|p| format!("Tick={}", p.room))
        .collect();
    format!("/sse/bench/mux?{}", query.join("&"))
}

async fn subscribe(
    addr: SocketAddr,
    positions: &mut [Position],
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    gate: Option<Arc<Semaphore>>,
) -> Result<(), BoxError> {
    let permit = match gate {
        Some(gate) => Some(gate.acquire_owned().await?),
        None => None,
    };
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    let mut conn = pin!(conn);
    let mut request = Request::get(path(positions))
        .header(HOST, "127.0.0.1")
        .header(ACCEPT, "text/event-stream");
    // The connection's last id (a cursor of every room, on the multiplexed route) is kept by its
    // first position.
    if let Some(id) = positions.first().and_then(|p| p.last_id.as_ref()) {
        request = request.header("last-event-id", id.as_ref());
    }
    let request = request.body(Empty::new())?;
    let response = tokio::select! {
        response = sender.send_request(request) => response?,
        result = &mut conn => return Err(format!("connection closed before the response: {result:?}").into()),
        _ = stop.changed() => return Ok(()),
    };
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()).into());
    }
    drop(permit);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                        read_events(&mut buffer, positions, shared)?;
                    }
                }
                Some(Err(err)) => return Err(err.into()),
                None => return Ok(()),
            },
            result = &mut conn => return result.map_err(Into::into),
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Takes every complete event out of `buffer` and checks it: `Tick` and `gap` on a room's route,
/// `<n>:Tick.Tick` and `<n>:Tick.gap` for the `n`th room on the multiplexed route.
fn read_events(
    buffer: &mut BytesMut,
    positions: &mut [Position],
    shared: &Shared,
) -> Result<(), BoxError> {
    while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
        let block = buffer.split_to(end + 2).freeze();
        let (mut id, mut event, mut data) = (None, &b""[..], &b""[..]);
        for line in block.split(|&b| b == b'\n') {
            if let Some(value) = line.strip_prefix(b"id: ") {
                id = Some(block.slice_ref(value));
            } else if let Some(value) = line.strip_prefix(b"event: ") {
                event = value;
            } else if let Some(value) = line.strip_prefix(b"data: ") {
                data = value;
            }
        }
        let (channel, event) = match event.iter().position(|&b| b == b':') {
            Some(colon) => {
                let channel: usize = std::str::from_utf8(&event[..colon])?.parse()?;
                let name = &event[colon + 1..];
                (channel, name.strip_prefix(b"Tick.").unwrap_or(name))
            }
            None => (0, event),
        };
        if id.is_some() && matches!(event, b"Tick" | b"gap" | b"cursor") {
            positions[0].last_id.clone_from(&id);
        }
        let Some(position) = positions.get_mut(channel) else {
            return Err(format!("an event of channel {channel}").into());
        };
        match event {
            b"Tick" => {
                let probe: Probe = serde_json::from_slice(data)?;
                if probe.room != position.room {
                    return Err(
                        format!("event of room {} on room {}", probe.room, position.room).into(),
                    );
                }
                on_tick(&probe, position, shared);
            }
            b"gap" => shared.stats().gaps += 1,
            _ => {}
        }
    }
    Ok(())
}

fn on_tick(probe: &Probe, position: &mut Position, shared: &Shared) {
    let now = now_ns();
    let mut stats = shared.stats();
    if probe.seq < position.next {
        stats.duplicated += 1;
        return;
    }
    stats.lost += probe.seq - position.next;
    position.next = probe.seq + 1;
    stats.received += 1;
    let _ = stats
        .latency
        .record(now.saturating_sub(probe.sent_ns).max(1));
    stats.last_receive = Some(Instant::now());
    let resume_after = shared.resume_after_ns.load(Ordering::Relaxed);
    if position.resuming && probe.sent_ns >= resume_after {
        position.resuming = false;
        let _ = stats.resume.record(now.saturating_sub(resume_after).max(1));
        shared.resumed.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a publisher does.
#[derive(Debug, Clone)]
pub(crate) struct Publishing {
    /// The keys this publisher owns, published round robin.
    pub(crate) rooms: Vec<u32>,
    /// Publishes per second of this publisher; `None` for as fast as possible.
    pub(crate) rate: Option<f64>,
    /// When to publish first: publishers at a rate start staggered, so that together they
    /// publish evenly spaced events rather than bursts.
    pub(crate) start: Instant,
    /// When to stop.
    pub(crate) until: Instant,
    /// The filler of each event.
    pub(crate) text: String,
}

/// Publishes through `addr`'s `POST /publish` as `plan` says; returns how many it published.
pub(crate) async fn publisher(addr: SocketAddr, plan: Publishing, shared: Arc<Shared>) -> u64 {
    match publish(addr, &plan, &shared).await {
        Ok(count) => count,
        Err(err) => {
            shared.error(format!("publisher: {err}"));
            0
        }
    }
}

async fn publish(addr: SocketAddr, plan: &Publishing, shared: &Shared) -> Result<u64, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut ticks = plan.rate.map(|rate| {
        let period = Duration::from_secs_f64(1.0 / rate);
        let mut ticks = tokio::time::interval_at(plan.start.into(), period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        ticks
    });
    let mut count = 0;
    for &room in plan.rooms.iter().cycle() {
        if let Some(ticks) = &mut ticks {
            ticks.tick().await;
        }
        if Instant::now() >= plan.until {
            break;
        }
        let seq = shared.published_on(room);
        let sent_ns = now_ns();
        let body = serde_json::to_vec(&Tick {
            room,
            seq,
            sent_ns,
            text: plan.text.clone(),
        })?;
        let request = Request::post("/publish")
            .header(HOST, "127.0.0.1")
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("status {status}: {}", String::from_utf8_lossy(&body)).into());
        }
        shared.published[room as usize].fetch_add(1, Ordering::Release);
        let _ = shared
            .stats()
            .publish
            .record(now_ns().saturating_sub(sent_ns).max(1));
        count += 1;
    }
    Ok(count)
}
