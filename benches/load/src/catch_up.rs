//! S6, a resume storm with large events: one channel's history holds 1,000 events of about
//! 100 KB, and N clients open its SSE route at once with `Last-Event-ID: 0-0`, each reading the
//! whole history (100 MB) until it has every event.
//!
//! What it measures is what such a storm costs the server side, Redis's memory and the instance's
//! resident memory, and how long until every client caught up. It runs on a Redis of its own,
//! started for it, so that `used_memory_peak` and Redis's `VmHWM` start from this scenario
//! rather than from whatever an earlier one reached (Redis 7.0 has no `MEMORY RESET-STATS`; it
//! is tried anyway, for a Redis that has it, so that publishing the history does not count).
//!
//! The clients must stay cheap next to the server, as they read N × 100 MB: each scans the
//! stream with `memchr`, keeps only the first bytes of each line (`id:`, `event:`, and the start
//! of `data:`, where `"seq":` is), never buffers an event, and decodes no JSON. Like the other
//! scenarios' clients, each checks the sequence numbers: received in order, lost, duplicated, and
//! `gap` events. A `503` (the route's answer when it cannot subscribe, or past a connection limit)
//! is retried after its `Retry-After` on a new connection, as a browser application would.

use std::net::SocketAddr;
use std::pin::pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper::header::{ACCEPT, HOST, RETRY_AFTER};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use statelesse::RedisConfig;
use statelesse::prelude::*;
use statelesse_test_redis::RedisServer;
use tokio::net::TcpStream;

use crate::client::now_ns;
use crate::measure::Env;
use crate::procfs::{self, Pinning};
use crate::server::{Impl, Role, ServerProcess};
use crate::{BoxError, Tick};

/// Events in the channel's history, and the history length of the server: the default.
pub(crate) const EVENTS: u64 = 1000;

/// Filler bytes of each event: with its other fields, about 100 KB of JSON.
pub(crate) const EVENT_BYTES: usize = 100_000;

/// The channel's key: one channel, which every client reads.
const ROOM: u32 = 0;

/// How many `503` answers one client retries before it counts as an error.
const MAX_RETRIES: u64 = 20;

/// How long a client waits for its next event before it gives up. Nothing is published during
/// the storm, so silence this long means the stream will bring nothing more.
const STALLED: Duration = Duration::from_mins(1);

/// The same after a `gap` event: what history still had is sent right after the gap, from the
/// same read, so a short silence then is already the end.
const AFTER_GAP: Duration = Duration::from_secs(5);

/// The first bytes kept of each line: `id: <ms>-<seq>`, `event: <name>`, and the data line's
/// start up to past `"seq":<n>` all fit, whatever the event's size.
const LINE_HEAD: usize = 96;

/// What one client saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Outcome {
    /// Events received in order, each once.
    pub(crate) received: u64,
    /// Sequence numbers skipped, or never received before the client stopped.
    pub(crate) lost: u64,
    /// Events received again, or out of order.
    pub(crate) duplicated: u64,
    /// `gap` events received.
    pub(crate) gaps: u64,
    /// `503` answers.
    pub(crate) unavailable: u64,
    /// `503` answers retried after their `Retry-After`.
    pub(crate) retries: u64,
    /// From the start of the storm to the first event.
    pub(crate) first_event: Option<Duration>,
    /// From the start of the storm to the first `gap` event.
    pub(crate) first_gap: Option<Duration>,
    /// From the start of the storm to the last of the [`EVENTS`].
    pub(crate) caught_up: Option<Duration>,
    /// Response body bytes received.
    pub(crate) bytes: u64,
    /// What went wrong, if anything (a connection error, another status, a stalled stream).
    pub(crate) error: Option<String>,
}

/// What the storm measured.
#[derive(Debug)]
pub(crate) struct Storm {
    /// One per client.
    pub(crate) outcomes: Vec<Outcome>,
    /// From the first connect to the last client done.
    pub(crate) seconds: f64,
    /// From the first connect until the instance and Redis went quiet.
    pub(crate) busy: f64,
    /// Redis's `used_memory` just before the storm, bytes.
    pub(crate) redis_used_before: u64,
    /// Redis's `used_memory_peak` just before the storm (after the reset when there is one).
    pub(crate) redis_peak_before: u64,
    /// Redis's `used_memory_peak` after the storm.
    pub(crate) redis_peak_after: u64,
    /// Whether `MEMORY RESET-STATS` reset the peak before the storm.
    pub(crate) peak_reset: bool,
    /// Redis's `VmRSS` before and `VmHWM` after the storm, KiB.
    pub(crate) redis_rss: (u64, u64),
    /// The instance's `VmRSS` before and `VmHWM` after the storm, KiB.
    pub(crate) server_rss: (u64, u64),
    /// CPU seconds during the storm: the instance, Redis, the load generator.
    pub(crate) cpu: (f64, f64, f64),
}

impl Storm {
    /// The growth of Redis's `used_memory_peak` over its `used_memory` before the storm, bytes.
    pub(crate) fn redis_peak_growth(&self) -> u64 {
        self.redis_peak_after.saturating_sub(self.redis_used_before)
    }
}

/// Runs S6 with `clients` clients: a fresh Redis, one statelesse instance, the history
/// published, then the storm.
pub(crate) async fn storm(env: &Env, clients: usize) -> Result<Storm, BoxError> {
    let redis = RedisServer::try_start_with(&[])?;
    let redis_pid = redis.pid().ok_or("redis-server is not running")?;
    env.pinning.place(redis_pid, Pinning::SERVER_CORE)?;
    // The history length is the scenario's, not `--history`: with less, clients resuming from
    // 0-0 would get a gap by design.
    let history = usize::try_from(EVENTS)?;
    let server = ServerProcess::start(
        env.pinning,
        Role::A,
        Impl::Statelesse,
        &redis.url(),
        history,
    )?;
    publish_history(&redis.url(), history).await?;
    // Let the instance and Redis settle before the "before" figures.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let peak_reset = redis.try_cmd(&["MEMORY", "RESET-STATS"]).is_ok();
    let info = redis.try_cmd(&["INFO", "memory"])?;
    let redis_used_before = info_field(&info, "used_memory")?;
    let redis_peak_before = info_field(&info, "used_memory_peak")?;
    let redis_rss_before = procfs::rss_kib(redis_pid)?;
    let server_rss_before = procfs::rss_kib(server.pid())?;
    let cpu_before = (
        procfs::cpu_seconds(server.pid())?,
        procfs::cpu_seconds(redis_pid)?,
        procfs::cpu_seconds(std::process::id())?,
    );

    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(catch_up(server.addr(), start)))
        .collect();
    let mut outcomes = Vec::with_capacity(clients);
    for task in tasks {
        outcomes.push(task.await?);
    }
    let seconds = start.elapsed().as_secs_f64();
    // A client that got a gap is done while Redis may still be working through the reads the
    // instance asked for (a timed-out command is not cancelled in Redis): wait for both to go
    // quiet, so that the CPU and memory figures include that work.
    wait_quiet(&[server.pid(), redis_pid]).await?;
    let busy = start.elapsed().as_secs_f64();

    let cpu = (
        procfs::cpu_seconds(server.pid())? - cpu_before.0,
        procfs::cpu_seconds(redis_pid)? - cpu_before.1,
        procfs::cpu_seconds(std::process::id())? - cpu_before.2,
    );
    let info = redis.try_cmd(&["INFO", "memory"])?;
    let storm = Storm {
        outcomes,
        seconds,
        busy,
        redis_used_before,
        redis_peak_before,
        redis_peak_after: info_field(&info, "used_memory_peak")?,
        peak_reset,
        redis_rss: (redis_rss_before, procfs::peak_rss_kib(redis_pid)?),
        server_rss: (server_rss_before, procfs::peak_rss_kib(server.pid())?),
        cpu,
    };
    drop(server);
    drop(redis);
    Ok(storm)
}

/// Waits until the processes `pids` use less than 5% of a core over half a second, at most 10
/// minutes.
async fn wait_quiet(pids: &[u32]) -> Result<(), BoxError> {
    const WINDOW: Duration = Duration::from_millis(500);
    let cpu =
        || -> Result<f64, BoxError> { pids.iter().map(|&pid| procfs::cpu_seconds(pid)).sum() };
    let deadline = Instant::now() + Duration::from_mins(10);
    let mut before = cpu()?;
    while Instant::now() < deadline {
        tokio::time::sleep(WINDOW).await;
        let now = cpu()?;
        if now - before < 0.05 * WINDOW.as_secs_f64() {
            return Ok(());
        }
        before = now;
    }
    Err("the instance and Redis stayed busy for 10 minutes after the storm".into())
}

/// Publishes the [`EVENTS`] of the channel from Rust, one after the other so that their ids
/// follow their sequence numbers.
async fn publish_history(url: &str, history: usize) -> Result<(), BoxError> {
    let config = RedisConfig::new(url)?.with_history_len(history);
    let backplane = Backplane::redis(config).await?;
    let text = "x".repeat(EVENT_BYTES);
    for seq in 0..EVENTS {
        let tick = Tick {
            room: ROOM,
            seq,
            sent_ns: now_ns(),
            text: text.clone(),
        };
        Tick::publish(&backplane, tick).await?;
    }
    backplane.shutdown().await;
    Ok(())
}

/// The number after `field:` in an `INFO` reply.
fn info_field(info: &str, field: &str) -> Result<u64, BoxError> {
    info.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .ok_or_else(|| format!("no {field} in INFO"))?
        .trim()
        .parse()
        .map_err(Into::into)
}

/// One client: opens the channel's SSE route with `Last-Event-ID: 0-0`, retrying `503`s, and
/// reads until it has every event, gives up, or fails.
async fn catch_up(addr: SocketAddr, start: Instant) -> Outcome {
    let mut outcome = Outcome::default();
    let mut reader = Reader::default();
    loop {
        match read(addr, start, &mut reader, &mut outcome).await {
            Ok(None) => break,
            Ok(Some(retry_after)) if outcome.retries < MAX_RETRIES => {
                outcome.retries += 1;
                tokio::time::sleep(retry_after).await;
            }
            Ok(Some(_)) => {
                outcome.error = Some(format!("still 503 after {MAX_RETRIES} retries"));
                break;
            }
            Err(err) => {
                outcome.error = Some(err.to_string());
                break;
            }
        }
    }
    // What never arrived is lost, as the other scenarios count the tail.
    outcome.lost += EVENTS.saturating_sub(reader.next);
    outcome
}

/// One connection: `Some(delay)` for a `503` to retry after `delay`, `None` once the stream is
/// read (every event received, or given up after a gap).
async fn read(
    addr: SocketAddr,
    start: Instant,
    reader: &mut Reader,
    outcome: &mut Outcome,
) -> Result<Option<Duration>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    // Driven in this task, as the other subscribers do: one task per client, and the connection
    // closes as soon as this function returns.
    let mut conn = pin!(conn);
    let request = Request::get(format!("/sse/bench/{ROOM}/tick"))
        .header(HOST, "127.0.0.1")
        .header(ACCEPT, "text/event-stream")
        .header("last-event-id", "0-0")
        .body(Empty::new())?;
    let response = tokio::select! {
        response = sender.send_request(request) => response?,
        result = &mut conn => return Err(format!("connection closed before the response: {result:?}").into()),
    };
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        outcome.unavailable += 1;
        // `Retry-After` in seconds, as the routes send it; a browser waits 1 s without one.
        let seconds = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok()?.trim().parse().ok())
            .unwrap_or(1);
        return Ok(Some(Duration::from_secs(seconds)));
    }
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()).into());
    }
    let mut body = response.into_body();
    // When the last event or gap arrived: what the patience counts from.
    let mut last_progress = Instant::now();
    loop {
        let patience = if outcome.gaps > 0 { AFTER_GAP } else { STALLED };
        let frame = tokio::select! {
            frame = body.frame() => frame,
            result = &mut conn => {
                result?;
                return Err("connection closed before every event arrived".into());
            }
            () = tokio::time::sleep_until((last_progress + patience).into()) => {
                if outcome.gaps > 0 {
                    return Ok(None);
                }
                return Err(format!("no event for {} s", patience.as_secs()).into());
            }
        };
        let data = match frame {
            Some(frame) => match frame?.into_data() {
                Ok(data) => data,
                Err(_) => continue,
            },
            None => return Err("stream ended before every event arrived".into()),
        };
        outcome.bytes += data.len() as u64;
        let (next, gaps) = (reader.next, outcome.gaps);
        reader.feed(&data, outcome);
        if reader.next != next {
            last_progress = Instant::now();
            outcome.first_event.get_or_insert_with(|| start.elapsed());
        }
        if outcome.gaps != gaps {
            last_progress = Instant::now();
            outcome.first_gap.get_or_insert_with(|| start.elapsed());
        }
        if reader.next >= EVENTS {
            outcome.caught_up = Some(start.elapsed());
            return Ok(None);
        }
    }
}

/// A streaming SSE scanner that keeps only the first [`LINE_HEAD`] bytes of each line, and the
/// client's position: what makes reading 100 MB per client cheap.
#[derive(Debug, Default)]
struct Reader {
    /// The current line's first bytes.
    line: Vec<u8>,
    /// The current event's name.
    event: Vec<u8>,
    /// The current event's `"seq"`, from its data line.
    seq: Option<u64>,
    /// The next sequence number expected.
    next: u64,
}

impl Reader {
    /// Scans `chunk`, counting each complete event into `outcome`.
    fn feed(&mut self, mut chunk: &[u8], outcome: &mut Outcome) {
        while !chunk.is_empty() {
            let end = memchr::memchr(b'\n', chunk);
            let part = &chunk[..end.unwrap_or(chunk.len())];
            let room = LINE_HEAD.saturating_sub(self.line.len());
            self.line.extend_from_slice(&part[..part.len().min(room)]);
            let Some(end) = end else { break };
            self.end_line(outcome);
            chunk = &chunk[end + 1..];
        }
    }

    fn end_line(&mut self, outcome: &mut Outcome) {
        if self.line.is_empty() {
            self.end_event(outcome);
        } else if let Some(name) = self.line.strip_prefix(b"event: ") {
            self.event.clear();
            self.event.extend_from_slice(name);
        } else if let Some(data) = self.line.strip_prefix(b"data: ") {
            self.seq = seq_of(data);
        }
        self.line.clear();
    }

    /// A blank line: the event is complete. Counted as client.rs counts, by sequence number.
    fn end_event(&mut self, outcome: &mut Outcome) {
        match (self.event.as_slice(), self.seq) {
            (b"Tick", Some(seq)) if seq < self.next => outcome.duplicated += 1,
            (b"Tick", Some(seq)) => {
                outcome.lost += seq - self.next;
                outcome.received += 1;
                self.next = seq + 1;
            }
            (b"gap", _) => outcome.gaps += 1,
            // The `retry` hint and keep-alive comments.
            _ => {}
        }
        self.event.clear();
        self.seq = None;
    }
}

/// The number after `"seq":` at the start of a Tick's JSON (its second field).
fn seq_of(data: &[u8]) -> Option<u64> {
    let at = memchr::memmem::find(data, b"\"seq\":")? + b"\"seq\":".len();
    let digits = &data[at..];
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_counts_events_split_anywhere_and_keeps_no_more_than_a_line_head() {
        let text = "x".repeat(1000);
        let mut stream = b"retry: 3000\n\n".to_vec();
        for seq in [0, 1, 1, 3] {
            stream.extend_from_slice(
                format!("id: 17-{seq}\nevent: Tick\ndata: {{\"room\":0,\"seq\":{seq},\"sent_ns\":5,\"text\":\"{text}\"}}\n\n")
                    .as_bytes(),
            );
        }
        stream.extend_from_slice(b": keep-alive\n\nevent: gap\ndata: {\"missed\":null}\n\n");
        for split in [1, 7, 100, stream.len()] {
            let (mut reader, mut outcome) = (Reader::default(), Outcome::default());
            for chunk in stream.chunks(split) {
                reader.feed(chunk, &mut outcome);
                assert!(reader.line.len() <= LINE_HEAD);
            }
            assert_eq!(
                (outcome.received, outcome.duplicated, outcome.lost),
                (3, 1, 1)
            );
            assert_eq!((outcome.gaps, reader.next), (1, 4));
        }
    }

    #[test]
    fn info_fields_are_read_by_exact_name() {
        let info =
            "# Memory\r\nused_memory:100\r\nused_memory_human:100B\r\nused_memory_peak:250\r\n";
        assert_eq!(info_field(info, "used_memory").unwrap(), 100);
        assert_eq!(info_field(info, "used_memory_peak").unwrap(), 250);
    }
}
