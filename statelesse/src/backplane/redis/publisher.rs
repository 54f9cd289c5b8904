//! The commands on the publisher connection (publish batches, history reads), and what a Redis
//! error means to a caller.
//!
//! Publishes go through one multiplexed connection, grouped by the [`Batcher`] into one script
//! call at a time, and history reads through another, many in flight at once; every call is
//! bounded by [`Settings::call_timeout`](super::config::Settings::call_timeout).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionLike as _, ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Value};
use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use super::config::Settings;
use super::envelope::{self, Outgoing, StreamState};
use super::shared::Shared;
use super::slot;
use crate::backplane::error::{BackplaneError, ErrorKind};
use crate::backplane::transport::PageLimits;
use crate::id::EventId;

/// Opens a command connection (for publishes, or for history reads), which reconnects by itself.
pub(super) async fn connect(
    client: &Client,
    settings: &Settings,
) -> Result<ConnectionManager, BackplaneError> {
    tokio::time::timeout(
        settings.open_timeout(),
        client.get_connection_manager_with_config(manager_config(settings)),
    )
    .await
    .map_err(|_| BackplaneError::new(ErrorKind::Timeout))?
    .map_err(redis_error)
}

/// A command connection that connects on its first use, without any I/O now (it needs a Tokio
/// runtime, which the caller checked).
pub(super) fn connect_lazy(
    client: &Client,
    settings: &Settings,
) -> Result<ConnectionManager, BackplaneError> {
    client
        .get_connection_manager_lazy(manager_config(settings))
        .map_err(redis_error)
}

fn manager_config(settings: &Settings) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.command_timeout))
        // Fail fast while Redis is down: one quick retry, then the caller gets the error.
        .set_number_of_retries(1)
        .set_min_delay(settings.reconnect_min)
        .set_max_delay(settings.reconnect_max)
}

/// Connects the publisher and reader connections of a lazily built transport and loads the
/// scripts each runs, so that once this succeeds the transport is as if it had connected
/// eagerly. Bounded by [`Settings::call_timeout`](super::config::Settings::call_timeout).
pub(super) async fn warm_up(shared: &Shared) -> Result<(), RedisError> {
    let mut publisher = shared.publisher.clone();
    let mut reader = shared.reader.clone();
    let (publish, history) = (
        shared.scripts.publish.prepare_invoke(),
        shared.scripts.history.prepare_invoke(),
    );
    let load = async {
        tokio::try_join!(
            publish.load_async(&mut publisher),
            history.load_async(&mut reader)
        )
    };
    match tokio::time::timeout(shared.settings.call_timeout(), load).await {
        Ok(loaded) => loaded.map(drop),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "loading the scripts timed out",
        )
        .into()),
    }
}

/// The most events one script call carries.
pub(super) const MAX_BATCH_EVENTS: usize = 256;

/// The most bytes (data, event names and channel names) one script call carries, unless its
/// first event alone is larger: a batch holds at least one event. This bounds how long one script
/// run blocks Redis.
pub(super) const MAX_BATCH_BYTES: usize = 512 * 1024;

/// The most channels whose last time-to-live refresh the publisher remembers. Forgetting a
/// channel only costs one more `PEXPIRE`, so past this the memory is emptied, never grown.
pub(super) const MAX_REMEMBERED_CHANNELS: usize = 16_384;

/// One event waiting for a script call.
struct Pending {
    channel: Box<str>,
    event: Cow<'static, str>,
    data: Bytes,
    reply: oneshot::Sender<Result<EventId, BackplaneError>>,
}

impl Pending {
    /// What it adds to a call, as [`MAX_BATCH_BYTES`] counts: its data, its event name, and its
    /// channel twice (the stream key and the pub/sub channel).
    fn size(&self) -> usize {
        2 * self.channel.len() + self.event.len() + self.data.len()
    }
}

/// Groups concurrent publishes into script calls on the publisher connection.
///
/// One script call is in flight at a time. A publish that finds the connection free goes at once,
/// alone (no timer, no waiting for company); publishes that arrive while a call is in flight
/// queue up, and as soon as it returns, everything queued (up to [`MAX_BATCH_EVENTS`] and
/// [`MAX_BATCH_BYTES`]) goes in the next call, or, with a
/// [publish linger](super::RedisConfig::with_publish_linger), as soon as as many events are
/// queued as the call carried (its callers are expected back), or a full call's worth, or the
/// linger has passed. The queue is first in, first out and only one call
/// is in flight, so events reach Redis in the order they were queued; the batch script appends
/// and publishes each in that order. Under load this amortizes the per-call cost of `EVALSHA`
/// (about 3 µs of Redis CPU) over the whole batch.
#[derive(Debug, Default)]
pub(super) struct Batcher {
    state: Mutex<Queue>,
    /// Woken when the queue reaches what a linger waits for, which ends it.
    enough: Notify,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Pending>,
    /// The size of `waiting`, as [`Pending::size`] counts it.
    bytes: usize,
    /// While the sender lingers, how many queued events end the linger; `0` otherwise.
    awaited: usize,
    /// Whether a task is sending batches.
    busy: bool,
    refreshed: Refreshed,
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("waiting", &self.waiting.len())
            .field("busy", &self.busy)
            .finish_non_exhaustive()
    }
}

/// When the publisher last asked Redis to refresh each channel's stream time-to-live, so that it
/// does so at most once per half TTL instead of on every publish.
///
/// Bounded by [`MAX_REMEMBERED_CHANNELS`]: when full, entries older than half a TTL (useless
/// anyway) are dropped, and if that is not enough, all of them. Forgetting is always safe: it
/// only makes the next publish refresh again.
#[derive(Default)]
struct Refreshed {
    at: HashMap<Box<str>, Instant>,
}

impl Refreshed {
    /// Whether a publish on `channel` at `now` must refresh its stream's TTL; if so, remembers it.
    fn due(&mut self, channel: &str, now: Instant, half_ttl: Duration) -> bool {
        if let Some(at) = self.at.get_mut(channel) {
            if now.saturating_duration_since(*at) < half_ttl {
                return false;
            }
            *at = now;
            return true;
        }
        if self.at.len() >= MAX_REMEMBERED_CHANNELS {
            self.at
                .retain(|_, at| now.saturating_duration_since(*at) < half_ttl);
            if self.at.len() >= MAX_REMEMBERED_CHANNELS {
                self.at.clear();
            }
        }
        self.at.insert(channel.into(), now);
        true
    }

    /// Forgets `channel`: its refresh may not have happened.
    fn forget(&mut self, channel: &str) {
        self.at.remove(channel);
    }
}

/// The events of one script call, and which of them refresh their stream's TTL.
struct Batch {
    events: Vec<Pending>,
    refresh: Vec<bool>,
}

impl Batcher {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Queue {
    /// Whether a linger waiting for `awaited` events (or a full call's worth) is over.
    fn enough(&self, awaited: usize) -> bool {
        self.waiting.len() >= awaited.min(MAX_BATCH_EVENTS) || self.bytes >= MAX_BATCH_BYTES
    }

    fn push(&mut self, pending: Pending) {
        self.bytes += pending.size();
        self.waiting.push_back(pending);
    }

    /// Takes the next batch from the front of the queue, deciding which events refresh.
    fn take_batch(&mut self, ttl_ms: u64) -> Batch {
        let now = Instant::now();
        let half_ttl = Duration::from_millis(ttl_ms / 2);
        let mut batch = Batch {
            events: Vec::with_capacity(self.waiting.len().min(MAX_BATCH_EVENTS)),
            refresh: Vec::with_capacity(self.waiting.len().min(MAX_BATCH_EVENTS)),
        };
        let mut bytes = 0;
        while batch.events.len() < MAX_BATCH_EVENTS {
            let Some(next) = self.waiting.front() else {
                break;
            };
            let size = next.size();
            if !batch.events.is_empty() && bytes + size > MAX_BATCH_BYTES {
                break;
            }
            bytes += size;
            let Some(next) = self.waiting.pop_front() else {
                break;
            };
            self.bytes -= size;
            batch
                .refresh
                .push(ttl_ms > 0 && self.refreshed.due(&next.channel, now, half_ttl));
            batch.events.push(next);
        }
        batch
    }
}

/// Publishes events in order, batched with concurrent publishes; returns each event's id or
/// error, in order.
pub(super) async fn publish(
    shared: &Arc<Shared>,
    batcher: &Arc<Batcher>,
    events: impl IntoIterator<Item = (Box<str>, Cow<'static, str>, Bytes)>,
) -> Vec<Result<EventId, BackplaneError>> {
    let mut replies = Vec::new();
    let first = {
        let mut queue = batcher.lock();
        for (channel, event, data) in events {
            let (reply, receiver) = oneshot::channel();
            replies.push(receiver);
            if !envelope::is_event_name(&event) {
                // It would break the framing of the events sharing its entry.
                let err = BackplaneError::with_source(
                    ErrorKind::Encode,
                    "an event name must be non-empty, without CR, LF or NUL",
                );
                let _ = reply.send(Err(err.on_channel(&channel)));
                continue;
            }
            queue.push(Pending {
                channel,
                event,
                data,
                reply,
            });
        }
        if queue.busy {
            if queue.awaited > 0 && queue.enough(queue.awaited) {
                queue.awaited = 0;
                batcher.enough.notify_one();
            }
            None
        } else if queue.waiting.is_empty() {
            None
        } else {
            queue.busy = true;
            Some(queue.take_batch(shared.settings.history_ttl_ms))
        }
    };
    if let Some(batch) = first {
        // A task of its own sends this batch and the ones queued behind it, so that a caller
        // that stops waiting (its future dropped) never strands the queue.
        let sender = Sender {
            shared: Arc::clone(shared),
            batcher: Arc::clone(batcher),
            finished: false,
        };
        tokio::spawn(sender.run(batch));
    }
    let mut results = Vec::with_capacity(replies.len());
    for reply in replies {
        results.push(reply.await.unwrap_or_else(|_| {
            // The sending task ended without answering: the runtime is shutting down.
            Err(BackplaneError::new(ErrorKind::Closed))
        }));
    }
    results
}

/// The task that sends batches while any are queued.
struct Sender {
    shared: Arc<Shared>,
    batcher: Arc<Batcher>,
    /// Whether it ended normally, with nothing queued.
    finished: bool,
}

impl Sender {
    async fn run(mut self, mut batch: Batch) {
        let linger = self.shared.settings.publish_linger;
        loop {
            let carried = batch.events.len();
            self.send(batch).await;
            // Lingers only after a call that carried more than one event: under load, never
            // after a lone publish. Also with nothing queued: the callers just answered often
            // publish again at once (a bulk publisher, a closed loop), and without waiting the
            // first of them would go out alone with the rest queued behind it, calls then
            // alternating between one event and a full batch. Waiting for as many as the call
            // carried, not for a full call, keeps a few publishers (fewer in flight than a call
            // holds) from waiting the whole linger every time.
            if !linger.is_zero() && carried > 1 {
                self.linger(carried, linger).await;
            }
            let mut queue = self.batcher.lock();
            if queue.waiting.is_empty() {
                queue.busy = false;
                drop(queue);
                self.finished = true;
                return;
            }
            batch = queue.take_batch(self.shared.settings.history_ttl_ms);
        }
    }

    /// Waits, up to `linger`, until as many events are queued as the call just answered carried
    /// (its callers, publishing again, are expected back) or a full call's worth.
    async fn linger(&self, carried: usize, linger: Duration) {
        let deadline = tokio::time::Instant::now() + linger;
        loop {
            let wake = {
                let mut queue = self.batcher.lock();
                if queue.enough(carried) {
                    queue.awaited = 0;
                    return;
                }
                queue.awaited = carried;
                // Registered before the lock is released, so that a publish reaching the count
                // in between still wakes it.
                let mut wake = Box::pin(self.batcher.enough.notified());
                wake.as_mut().enable();
                wake
            };
            if tokio::time::timeout_at(deadline, wake).await.is_err() {
                self.batcher.lock().awaited = 0;
                return;
            }
        }
    }

    /// Runs one batch and answers each of its callers.
    ///
    /// In a cluster, a script's keys must share a hash slot: the batch becomes one script call
    /// per slot, all sent at once on the node's connection (pipelined, one round trip), each
    /// slot's events in their order.
    async fn send(&self, batch: Batch) {
        let groups = if self.shared.shard.is_some() {
            slot_groups(&batch.events)
        } else {
            vec![(0..batch.events.len()).collect()]
        };
        let answers =
            futures_util::future::join_all(groups.iter().map(|group| self.call(&batch, group)))
                .await;
        let mut results: Vec<Option<Result<EventId, BackplaneError>>> =
            (0..batch.events.len()).map(|_| None).collect();
        for (group, answer) in groups.iter().zip(answers) {
            for (&index, result) in group.iter().zip(answer) {
                results[index] = result;
            }
        }
        self.answer(batch, results);
    }

    /// One script call for the events of `batch` at `indices`, grouped by channel (one stream
    /// entry and one message per channel): each event's result, in the order of `indices`.
    async fn call(
        &self,
        batch: &Batch,
        indices: &[usize],
    ) -> Vec<Option<Result<EventId, BackplaneError>>> {
        let shared = &self.shared;
        let settings = &shared.settings;
        // Each channel's events, as positions in `indices`.
        let channels = envelope::by_channel(indices.iter().map(|&i| &*batch.events[i].channel));
        let outgoing: Vec<Outgoing<'_>> = channels
            .iter()
            .map(|members| Outgoing {
                channel: &batch.events[indices[members[0]]].channel,
                events: members
                    .iter()
                    .map(|&m| {
                        let pending = &batch.events[indices[m]];
                        (&*pending.event, &pending.data[..])
                    })
                    .collect(),
                refresh: members.iter().any(|&m| batch.refresh[indices[m]]),
            })
            .collect();
        let command = shared.scripts.publish_command(
            &shared.names,
            (settings.history_len, settings.history_ttl_ms),
            &outgoing,
        );
        drop(outgoing);
        let mut con = shared.publisher.clone();
        let script = &shared.scripts.publish;
        let count = channels.len();
        let reply = tokio::time::timeout(settings.call_timeout(), async {
            let reply = evalsha(script, &command, &mut con).await?;
            replicated(&mut con, settings).await.map(|()| reply)
        })
        .await;
        // One reply per channel, or why the call failed; an error is built once per event.
        let call_error = |reason: &CallFailure| match reason {
            CallFailure::Timeout => BackplaneError::new(ErrorKind::Timeout),
            CallFailure::Redis(err) => redis_error(err.clone()),
            CallFailure::Reply(reason) => {
                BackplaneError::with_source(ErrorKind::Protocol, reason.clone())
            }
        };
        let replies: Result<Vec<Value>, CallFailure> = match reply {
            Err(_) => Err(CallFailure::Timeout),
            Ok(Err(err)) => Err(CallFailure::Redis(err)),
            Ok(Ok(Value::Array(values))) if values.len() == count => Ok(values),
            Ok(Ok(other)) => Err(CallFailure::Reply(format!(
                "the publish script answered {}, not a list of {count} stream ids",
                describe(&other)
            ))),
        };
        // Each event's result: its channel's entry id, taken `before` events back, or an error.
        let mut results: Vec<Option<Result<EventId, BackplaneError>>> =
            (0..indices.len()).map(|_| None).collect();
        for (c, members) in channels.iter().enumerate() {
            for (position, &m) in members.iter().enumerate() {
                let before = u32::try_from(members.len() - 1 - position).unwrap_or(u32::MAX);
                results[m] = Some(match &replies {
                    Ok(values) => stream_id(&values[c]).map(|id| EventId::in_entry(id, before)),
                    Err(reason) => Err(call_error(reason)),
                });
            }
        }
        results
    }

    /// Counts the published events and answers each caller of `batch` with its result.
    fn answer(&self, batch: Batch, results: Vec<Option<Result<EventId, BackplaneError>>>) {
        let shared = &self.shared;
        // Counted before anyone is answered, so a caller sees its publish in the diagnostics.
        let published = results
            .iter()
            .filter(|result| matches!(result, Some(Ok(_))))
            .count();
        shared
            .stats
            .published
            .fetch_add(published as u64, Ordering::Relaxed);
        let mut unsure = Vec::new();
        for ((pending, refresh), result) in batch.events.into_iter().zip(batch.refresh).zip(results)
        {
            let result = result.unwrap_or_else(|| Err(no_result()));
            if refresh && result.is_err() {
                unsure.push(pending.channel.clone());
            }
            let _ = pending
                .reply
                .send(result.map_err(|err| err.on_channel(&pending.channel)));
        }
        if !unsure.is_empty() {
            // Its refresh may not have happened: the next publish on it refreshes.
            let mut queue = self.batcher.lock();
            for channel in unsure {
                queue.refreshed.forget(&channel);
            }
        }
    }
}

/// The error of an event a publish path found no result for: a bug, never the caller's doing.
pub(super) fn no_result() -> BackplaneError {
    BackplaneError::with_source(ErrorKind::Protocol, "no result")
}

/// The result of a publish of one event on `channel`: the one of `results`.
pub(super) fn lone_result(
    mut results: Vec<Result<EventId, BackplaneError>>,
    channel: &str,
) -> Result<EventId, BackplaneError> {
    results
        .pop()
        .unwrap_or_else(|| Err(no_result().on_channel(channel)))
}

/// The indices of `events` grouped by hash slot, each group in the events' order.
fn slot_groups(events: &[Pending]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let slot = slot::key_slot(event.channel.as_bytes());
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, group)) => group.push(index),
            None => groups.push((slot, vec![index])),
        }
    }
    groups.into_iter().map(|(_, group)| group).collect()
}

/// Why a whole script call failed.
enum CallFailure {
    Timeout,
    Redis(RedisError),
    Reply(String),
}

/// If the sending task is dropped mid-batch (its runtime shut down), the queue must not stay
/// busy forever: the next publish starts a sender again. The callers still queued get `Closed`.
impl Drop for Sender {
    fn drop(&mut self) {
        if !self.finished {
            let mut queue = self.batcher.lock();
            queue.busy = false;
            queue.waiting.clear();
            queue.bytes = 0;
            queue.awaited = 0;
        }
    }
}

/// Waits until the configured number of replicas received every write of `con` so far, when
/// one is configured (`WAIT`); a timeout error when fewer did within half the command timeout
/// (half, so that Redis answers before the connection's own timeout for the reply fires).
async fn replicated(con: &mut ConnectionManager, settings: &Settings) -> Result<(), RedisError> {
    if settings.replica_acks == 0 {
        return Ok(());
    }
    let timeout_ms = u64::try_from(settings.command_timeout.as_millis() / 2)
        .unwrap_or(u64::MAX)
        .max(1);
    let acked: u64 = ::redis::cmd("WAIT")
        .arg(settings.replica_acks)
        .arg(timeout_ms)
        .query_async(con)
        .await?;
    if acked >= u64::from(settings.replica_acks) {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "published, but acknowledged by {acked} of the {} replicas required",
                settings.replica_acks
            ),
        )
        .into())
    }
}

/// The id of one event in the batch script's reply, or its own error.
fn stream_id(value: &Value) -> Result<EventId, BackplaneError> {
    let id = match value {
        Value::BulkString(id) => envelope::parse_id(id),
        Value::SimpleString(id) => envelope::parse_id(id.as_bytes()),
        Value::ServerError(err) => return Err(redis_error(RedisError::from(err.clone()))),
        _ => None,
    };
    id.ok_or_else(|| {
        BackplaneError::with_source(
            ErrorKind::Protocol,
            format!(
                "the publish script answered {}, not a stream id",
                describe(value)
            ),
        )
    })
}

/// What kind of reply `value` is, in a few words: never the reply itself, which could be large.
fn describe(value: &Value) -> String {
    match value {
        Value::Array(values) => format!("an array of {}", values.len()),
        Value::BulkString(bytes) => format!("a string of {} bytes", bytes.len()),
        Value::Nil => "nil".to_owned(),
        Value::Int(_) => "an integer".to_owned(),
        other => format!("a {}", value_kind(other)),
    }
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::SimpleString(_) => "status",
        Value::ServerError(_) => "error",
        Value::Map(_) => "map",
        _ => "value of another type",
    }
}

/// Reads the state of `channel`'s stream and, with `page`, one page of its entries after an id.
///
/// Reads go through their own connection, so a slow read never delays a publish queued behind
/// it, and a burst of publishes never delays a resume.
pub(super) async fn read_stream(
    shared: &Shared,
    channel: &str,
    page: Option<(EventId, PageLimits)>,
) -> Result<Option<StreamState>, BackplaneError> {
    let mut con = shared.reader.clone();
    let mut invocation = shared.scripts.history.key(shared.names.stream(channel));
    match page {
        // A reader that stopped inside an entry reads that entry again, from its next event.
        Some((after, limits)) => invocation
            .arg(after.entry().to_string())
            .arg(limits.events)
            .arg(limits.bytes)
            .arg(u8::from(after.before() > 0)),
        None => invocation.arg("").arg(0).arg(0).arg(0),
    };
    let value: Value = tokio::time::timeout(
        shared.settings.call_timeout(),
        invocation.invoke_async(&mut con),
    )
    .await
    .map_err(|_| BackplaneError::new(ErrorKind::Timeout))?
    .map_err(redis_error)?;
    let after = page.map(|(after, _)| after).unwrap_or_default();
    let state = envelope::parse_history(value, after)
        .map_err(|reason| BackplaneError::with_source(ErrorKind::Protocol, reason))?;
    if let Some(state) = &state
        && state.malformed > 0
    {
        shared
            .stats
            .malformed
            .fetch_add(state.malformed, Ordering::Relaxed);
    }
    Ok(state)
}

/// Runs `command`, an `EVALSHA` of `script`; when the server does not know the script (it
/// restarted, or its scripts were flushed), loads it and runs the command once more, as
/// `ScriptInvocation::invoke_async` does. An error inside the reply (one event's, in a batch) is
/// left in it, for its caller.
async fn evalsha(
    script: &::redis::Script,
    command: &::redis::Cmd,
    con: &mut ConnectionManager,
) -> Result<Value, RedisError> {
    match request(command, con).await {
        Err(err)
            if err.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
        {
            script.prepare_invoke().load_async(con).await?;
            request(command, con).await
        }
        result => result,
    }
}

/// Sends `command`; an error reply is an error, an error inside an array reply is not.
async fn request(command: &::redis::Cmd, con: &mut ConnectionManager) -> Result<Value, RedisError> {
    match con.req_packed_command(command).await? {
        Value::ServerError(err) => Err(err.into()),
        value => Ok(value),
    }
}

/// Maps a Redis error to the kind of failure it is.
pub(super) fn redis_error(err: RedisError) -> BackplaneError {
    use ::redis::{ErrorKind as Kind, ServerErrorKind as Server};
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
        || matches!(
            err.kind(),
            Kind::Server(
                Server::BusyLoading | Server::MasterDown | Server::TryAgain | Server::ClusterDown
            ) | Kind::ClusterConnectionNotFound
        )
    {
        ErrorKind::Unavailable
    } else if matches!(
        err.kind(),
        Kind::AuthenticationFailed | Kind::InvalidClientConfig | Kind::RESP3NotSupported
    ) {
        ErrorKind::Config
    } else {
        ErrorKind::Protocol
    };
    BackplaneError::with_source(kind, err)
}

/// Whether `err` means the connection it came from is gone.
pub(super) fn is_connection_error(err: &RedisError) -> bool {
    err.is_io_error() || err.is_unrecoverable_error() || err.is_connection_dropped()
}
