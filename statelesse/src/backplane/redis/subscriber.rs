//! The subscriber: one task that owns this instance's pub/sub connection and the set of channels
//! it is subscribed to on Redis.
//!
//! Every decision about a channel's Redis subscription is taken here, one at a time, from the
//! number of local subscribers in the hub: a subscriber joins the hub first and then asks this
//! task to make sure the channel is subscribed (and waits for the confirmation); the last one to
//! leave tells it to check again. At most one SUBSCRIBE or UNSUBSCRIBE per channel is in flight,
//! and every reply re-checks what is wanted, so concurrent joins and leaves cannot race.
//!
//! Pushes are drained from redis-rs's unbounded channel as they come, decoded once, and handed
//! to the hub's bounded queues, which never block. After a reconnect, a channel's live messages
//! are held in a bounded buffer while its gap is read from its stream.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, MultiplexedConnection};
use ::redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, RedisError, Value};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use rand::Rng as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::envelope::{self, Names, Scripts, StreamState};
use super::redis_error;
use crate::backplane::hub::Hub;
use crate::backplane::transport::{BoxFuture, Delivery, Gap};
use crate::{BackplaneError, ErrorKind, EventId, Message};

/// How many channel names go into one SUBSCRIBE when resubscribing after a reconnect.
const RESUBSCRIBE_BATCH: usize = 256;

/// What the transport and the subscriber task share.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) hub: Hub<()>,
    pub(super) names: Names,
    pub(super) scripts: Scripts,
    pub(super) publisher: ConnectionManager,
    pub(super) client: Client,
    pub(super) settings: Settings,
    pub(super) stats: Stats,
}

/// The settings the running transport needs, taken from the config.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) history_len: usize,
    pub(super) history_ttl_ms: u64,
    pub(super) connect_timeout: Duration,
    pub(super) command_timeout: Duration,
    pub(super) reconnect_min: Duration,
    pub(super) reconnect_max: Duration,
    pub(super) health_check: Duration,
    pub(super) buffer: usize,
}

impl Settings {
    /// The longest a caller waits for one operation: a reconnect of the command connection
    /// plus the command itself.
    pub(super) fn call_timeout(&self) -> Duration {
        self.connect_timeout + self.command_timeout
    }
}

/// Counters behind [`RedisDiagnostics`](crate::RedisDiagnostics).
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) connected: AtomicBool,
    pub(super) reconnects: AtomicU64,
    pub(super) subscribed: AtomicUsize,
    pub(super) malformed: AtomicU64,
    pub(super) gap_refills: AtomicU64,
    pub(super) published: AtomicU64,
}

/// A request to the subscriber task.
#[derive(Debug)]
pub(super) enum Command {
    /// Make sure `channel` is subscribed on Redis; reply once it is (or cannot be).
    Ensure {
        channel: Box<str>,
        reply: oneshot::Sender<Result<(), BackplaneError>>,
    },
    /// The last local subscriber of `channel` left: unsubscribe unless another arrived.
    Release { channel: Box<str> },
    /// Unsubscribe everything, close the connection and stop.
    Shutdown { reply: oneshot::Sender<()> },
}

type Pushes = mpsc::UnboundedReceiver<PushInfo>;
type Reply = oneshot::Sender<Result<(), BackplaneError>>;

/// An open pub/sub connection.
pub(super) struct Link {
    con: MultiplexedConnection,
    pushes: Pushes,
    generation: u64,
    pinging: bool,
}

/// Opens a RESP3 connection whose pushes go to a fresh channel.
pub(super) async fn open_link(
    shared_client: &Client,
    settings: &Settings,
) -> Result<Link, RedisError> {
    let (sender, pushes) = mpsc::unbounded_channel();
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.command_timeout))
        .set_push_sender(sender);
    let con = shared_client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    Ok(Link {
        con,
        pushes,
        generation: 0,
        pinging: false,
    })
}

enum LinkState {
    Up(Link),
    Down {
        attempt: u32,
        retry_at: Instant,
        connecting: bool,
    },
}

/// What this task knows of one channel.
#[derive(Default)]
struct ChannelState {
    /// Confirmed subscribed on the current connection.
    subscribed: bool,
    /// A SUBSCRIBE or UNSUBSCRIBE of this channel is in flight.
    busy: bool,
    waiters: Vec<Reply>,
    /// The last event handed to the hub: live messages up to it are duplicates.
    last_delivered: Option<EventId>,
    /// The stream's last id when the channel was subscribed (`0-0` without a stream): where a
    /// refill starts when nothing was delivered yet. `None` when it could not be read.
    baseline: Option<EventId>,
    /// Set while the gap after a reconnect is read from the stream.
    refill: Option<Refill>,
}

impl ChannelState {
    fn resume_from(&self) -> Option<EventId> {
        match (self.last_delivered, self.baseline) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Live messages held back while a channel's gap is read.
#[derive(Default)]
struct Refill {
    buffer: VecDeque<Arc<Message>>,
    /// The buffer overflowed and was dropped: read the stream once more afterwards.
    overflowed: bool,
}

/// A finished operation.
enum Done {
    Connected(Result<Link, RedisError>),
    Subscribed {
        generation: u64,
        channel: Box<str>,
        result: Result<Option<EventId>, RedisError>,
    },
    Unsubscribed {
        generation: u64,
        channel: Box<str>,
    },
    Resubscribed {
        generation: u64,
        channels: Vec<Box<str>>,
        result: Result<(), RedisError>,
    },
    Refilled {
        generation: u64,
        channel: Box<str>,
        from: EventId,
        result: Result<Option<StreamState>, BackplaneError>,
    },
    Pinged {
        generation: u64,
        result: Result<(), RedisError>,
    },
}

/// The subscriber task's state.
pub(super) struct Subscriber {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    link: LinkState,
    generation: u64,
    channels: HashMap<Box<str>, ChannelState>,
    ops: FuturesUnordered<BoxFuture<'static, Done>>,
}

impl Subscriber {
    pub(super) fn new(
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
        mut link: Link,
    ) -> Self {
        link.generation = 1;
        shared.stats.connected.store(true, Ordering::Relaxed);
        Self {
            shared,
            commands,
            link: LinkState::Up(link),
            generation: 1,
            channels: HashMap::new(),
            ops: FuturesUnordered::new(),
        }
    }

    /// Runs until shut down, or until the transport and every subscription are dropped.
    pub(super) async fn run(mut self) {
        let mut health = tokio::time::interval(self.shared.settings.health_check);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let retry_at = match &self.link {
                LinkState::Down {
                    retry_at,
                    connecting: false,
                    ..
                } => Some(*retry_at),
                _ => None,
            };
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                push = next_push(&mut self.link) => self.on_push(push),
                Some(done) = self.ops.next(), if !self.ops.is_empty() => self.on_done(done),
                () = sleep_until(retry_at) => self.connect(),
                _ = health.tick() => self.health_check(),
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Ensure { channel, reply } => {
                if matches!(self.link, LinkState::Down { .. }) {
                    let _ = reply.send(Err(unavailable("the Redis pub/sub connection is down")));
                } else {
                    self.channels
                        .entry(channel.clone())
                        .or_default()
                        .waiters
                        .push(reply);
                }
                self.reconcile(&channel);
            }
            Command::Release { channel } => self.reconcile(&channel),
            Command::Shutdown { .. } => {}
        }
    }

    fn wanted(&self, channel: &str) -> bool {
        self.shared.hub.subscriber_count(channel) > 0
    }

    /// Brings `channel`'s Redis subscription in line with its local subscribers.
    fn reconcile(&mut self, channel: &str) {
        let wanted = self.wanted(channel);
        let Some(state) = self.channels.get_mut(channel) else {
            return;
        };
        let LinkState::Up(link) = &self.link else {
            if !wanted {
                self.channels.remove(channel);
            }
            return;
        };
        if state.busy {
            return;
        }
        match (wanted, state.subscribed) {
            (true, true) => {
                for waiter in state.waiters.drain(..) {
                    let _ = waiter.send(Ok(()));
                }
            }
            (true, false) => {
                state.busy = true;
                let op = subscribe_op(&self.shared, link, channel.into());
                self.ops.push(op);
            }
            (false, true) => {
                state.busy = true;
                let op = unsubscribe_op(&self.shared, link, channel.into());
                self.ops.push(op);
            }
            (false, false) => {
                self.channels.remove(channel);
            }
        }
    }

    fn on_push(&mut self, push: Option<PushInfo>) {
        let Some(push) = push else {
            self.link_lost("the pub/sub connection closed");
            return;
        };
        match push.kind {
            PushKind::Disconnection => self.link_lost("the pub/sub connection was lost"),
            PushKind::Message => self.on_message(push.data),
            _ => {}
        }
    }

    fn on_message(&mut self, data: Vec<Value>) {
        let Ok([Value::BulkString(name), Value::BulkString(payload)]) =
            <[Value; 2]>::try_from(data)
        else {
            return;
        };
        let Some(channel) = self.shared.names.channel_of(&name) else {
            return;
        };
        let message = match envelope::decode(&Bytes::from(payload)) {
            Ok(message) => Arc::new(message),
            Err(reason) => {
                self.shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(channel, %reason, "dropping a message that is not a statelesse envelope");
                return;
            }
        };
        let Some(state) = self.channels.get_mut(channel) else {
            return;
        };
        if let Some(refill) = &mut state.refill {
            if refill.overflowed {
                return;
            }
            if refill.buffer.len() >= self.shared.settings.buffer {
                // Everything dropped here is in the stream: the refill reads it again.
                refill.overflowed = true;
                refill.buffer.clear();
                return;
            }
            refill.buffer.push_back(message);
            return;
        }
        deliver(&self.shared.hub, channel, state, message);
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Connected(result) => self.on_connected(result),
            Done::Subscribed {
                generation,
                channel,
                result,
            } => {
                if generation != self.generation {
                    return;
                }
                let Some(state) = self.channels.get_mut(&channel) else {
                    return;
                };
                state.busy = false;
                match result {
                    Ok(baseline) => {
                        state.subscribed = true;
                        state.baseline = baseline;
                        self.count_subscribed();
                        self.reconcile(&channel);
                    }
                    Err(err) => {
                        let lost = is_connection_error(&err);
                        let err = redis_error(err).on_channel(&channel);
                        tracing::warn!(channel = &*channel, error = %err, "SUBSCRIBE failed");
                        // No reconcile here: the waiters' subscribers release the channel as
                        // they see the error, and retrying for them would only fail again.
                        for waiter in state.waiters.drain(..) {
                            let _ = waiter.send(Err(redis_error_kind(err.kind(), &channel)));
                        }
                        if lost {
                            self.link_lost("SUBSCRIBE failed");
                        }
                    }
                }
            }
            Done::Unsubscribed {
                generation,
                channel,
            } => {
                if generation != self.generation {
                    return;
                }
                if let Some(state) = self.channels.get_mut(&channel) {
                    state.busy = false;
                    state.subscribed = false;
                    // Continuity is broken: a later subscription starts afresh.
                    state.last_delivered = None;
                    state.baseline = None;
                    state.refill = None;
                }
                self.count_subscribed();
                self.reconcile(&channel);
            }
            Done::Resubscribed {
                generation,
                channels,
                result,
            } => {
                if generation != self.generation {
                    return;
                }
                if let Err(err) = result {
                    tracing::warn!(error = %err, "resubscribing after a reconnect failed");
                    self.link_lost("resubscribing failed");
                    return;
                }
                for channel in &channels {
                    if let Some(state) = self.channels.get_mut(channel) {
                        state.busy = false;
                        state.subscribed = true;
                    }
                }
                self.count_subscribed();
                for channel in channels {
                    self.start_refill(channel, Duration::ZERO);
                }
            }
            Done::Refilled {
                generation,
                channel,
                from,
                result,
            } => {
                if generation == self.generation {
                    self.on_refilled(channel, from, result);
                }
            }
            Done::Pinged { generation, result } => {
                if generation != self.generation {
                    return;
                }
                if let LinkState::Up(link) = &mut self.link {
                    link.pinging = false;
                }
                if let Err(err) = result {
                    tracing::warn!(error = %err, "the pub/sub connection did not answer PING");
                    self.link_lost("health check failed");
                }
            }
        }
    }

    /// Reads the gap of `channel` from its stream, after `delay`.
    fn start_refill(&mut self, channel: Box<str>, delay: Duration) {
        let Some(state) = self.channels.get_mut(&channel) else {
            return;
        };
        if state.refill.is_none() || !state.subscribed {
            return;
        }
        let Some(from) = state.resume_from() else {
            // Nothing is known of where this channel was: say so, and go on live.
            tracing::warn!(
                channel = &*channel,
                "cannot refill a channel whose position is unknown; reporting a gap"
            );
            deliver_gap(&self.shared.hub, &channel);
            self.finish_refill(&channel);
            return;
        };
        let shared = Arc::clone(&self.shared);
        let generation = self.generation;
        self.ops.push(Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let result = read_stream(&shared, &channel, Some(from)).await;
            Done::Refilled {
                generation,
                channel,
                from,
                result,
            }
        }));
    }

    fn on_refilled(
        &mut self,
        channel: Box<str>,
        from: EventId,
        result: Result<Option<StreamState>, BackplaneError>,
    ) {
        let Some(state) = self.channels.get_mut(&channel) else {
            return;
        };
        if state.refill.is_none() {
            return;
        }
        let stream = match result {
            Ok(stream) => stream,
            Err(err) => {
                tracing::warn!(channel = &*channel, error = %err, "reading a channel's gap failed; retrying");
                let delay = self
                    .shared
                    .settings
                    .reconnect_min
                    .max(Duration::from_millis(50));
                self.start_refill(channel, delay);
                return;
            }
        };
        let complete = match &stream {
            // No stream: nothing was ever published, unless it expired or was deleted.
            None => from == EventId::default(),
            Some(stream) => stream.covers(from),
        };
        if !complete {
            tracing::warn!(channel = &*channel, after = %from, "history does not cover a reconnect's gap; reporting it");
            deliver_gap(&self.shared.hub, &channel);
        }
        for message in stream.map(|s| s.events).unwrap_or_default() {
            deliver(&self.shared.hub, &channel, state, message);
        }
        if let Some(refill) = &mut state.refill
            && refill.overflowed
        {
            *refill = Refill::default();
            self.start_refill(channel, Duration::ZERO);
            return;
        }
        self.finish_refill(&channel);
    }

    /// Hands the held-back live messages over and goes back to live delivery.
    fn finish_refill(&mut self, channel: &str) {
        let Some(state) = self.channels.get_mut(channel) else {
            return;
        };
        let Some(refill) = state.refill.take() else {
            return;
        };
        for message in refill.buffer {
            deliver(&self.shared.hub, channel, state, message);
        }
        self.shared
            .stats
            .gap_refills
            .fetch_add(1, Ordering::Relaxed);
        self.reconcile(channel);
    }

    /// Forgets the connection, fails what waited on it, and schedules a reconnect.
    fn link_lost(&mut self, why: &str) {
        if !matches!(self.link, LinkState::Up(_)) {
            return;
        }
        tracing::warn!(
            reason = why,
            "lost the Redis pub/sub connection; reconnecting"
        );
        self.link = LinkState::Down {
            attempt: 0,
            retry_at: Instant::now() + self.backoff(0),
            connecting: false,
        };
        self.generation += 1;
        self.shared.stats.connected.store(false, Ordering::Relaxed);
        for state in self.channels.values_mut() {
            state.subscribed = false;
            state.busy = false;
            state.refill = None;
            for waiter in state.waiters.drain(..) {
                let _ = waiter.send(Err(unavailable("the Redis pub/sub connection was lost")));
            }
        }
        let hub = &self.shared.hub;
        self.channels
            .retain(|channel, _| hub.subscriber_count(channel) > 0);
        self.count_subscribed();
    }

    fn connect(&mut self) {
        let LinkState::Down { connecting, .. } = &mut self.link else {
            return;
        };
        *connecting = true;
        let shared = Arc::clone(&self.shared);
        self.ops.push(Box::pin(async move {
            Done::Connected(open_link(&shared.client, &shared.settings).await)
        }));
    }

    fn on_connected(&mut self, result: Result<Link, RedisError>) {
        let LinkState::Down { attempt, .. } = self.link else {
            return;
        };
        let mut link = match result {
            Ok(link) => link,
            Err(err) => {
                tracing::debug!(error = %err, attempt, "reconnecting to Redis failed");
                let next = attempt.saturating_add(1);
                self.link = LinkState::Down {
                    attempt: next,
                    retry_at: Instant::now() + self.backoff(next),
                    connecting: false,
                };
                return;
            }
        };
        self.generation += 1;
        link.generation = self.generation;
        self.link = LinkState::Up(link);
        self.shared.stats.connected.store(true, Ordering::Relaxed);
        self.shared.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        tracing::info!("reconnected to Redis; resubscribing");
        self.resubscribe();
    }

    /// Subscribes again every channel that still has local subscribers, holding their live
    /// messages back until their gaps are read.
    fn resubscribe(&mut self) {
        let hub = &self.shared.hub;
        self.channels
            .retain(|channel, _| hub.subscriber_count(channel) > 0);
        let LinkState::Up(link) = &self.link else {
            return;
        };
        let channels: Vec<Box<str>> = self.channels.keys().cloned().collect();
        if channels.is_empty() {
            return;
        }
        for state in self.channels.values_mut() {
            state.busy = true;
            state.refill = Some(Refill::default());
        }
        let names: Vec<String> = channels
            .iter()
            .map(|c| self.shared.names.pubsub(c))
            .collect();
        let mut con = link.con.clone();
        let generation = self.generation;
        self.ops.push(Box::pin(async move {
            let mut result = Ok(());
            for batch in names.chunks(RESUBSCRIBE_BATCH) {
                result = con.subscribe(batch).await;
                if result.is_err() {
                    break;
                }
            }
            Done::Resubscribed {
                generation,
                channels,
                result,
            }
        }));
    }

    fn health_check(&mut self) {
        let LinkState::Up(link) = &mut self.link else {
            return;
        };
        if link.pinging {
            return;
        }
        link.pinging = true;
        let mut con = link.con.clone();
        let generation = link.generation;
        self.ops.push(Box::pin(async move {
            let result = ::redis::cmd("PING").query_async::<()>(&mut con).await;
            Done::Pinged { generation, result }
        }));
    }

    async fn shutdown(&mut self) {
        if let LinkState::Up(link) = &mut self.link {
            let names: Vec<String> = self
                .channels
                .iter()
                .filter(|(_, state)| state.subscribed)
                .map(|(channel, _)| self.shared.names.pubsub(channel))
                .collect();
            if !names.is_empty() {
                let unsubscribe = link.con.unsubscribe(&names);
                if let Ok(Err(err)) =
                    tokio::time::timeout(self.shared.settings.command_timeout, unsubscribe).await
                {
                    tracing::debug!(error = %err, "UNSUBSCRIBE at shutdown failed");
                }
            }
        }
        for state in self.channels.values_mut() {
            for waiter in state.waiters.drain(..) {
                let _ = waiter.send(Err(BackplaneError::new(ErrorKind::Closed)));
            }
        }
        self.channels.clear();
        self.ops = FuturesUnordered::new();
        self.link = LinkState::Down {
            attempt: 0,
            retry_at: Instant::now(),
            connecting: true,
        };
        self.shared.stats.connected.store(false, Ordering::Relaxed);
        self.shared.stats.subscribed.store(0, Ordering::Relaxed);
    }

    fn count_subscribed(&self) {
        let count = self.channels.values().filter(|s| s.subscribed).count();
        self.shared.stats.subscribed.store(count, Ordering::Relaxed);
    }

    /// The delay before reconnect attempt `attempt`: exponential, capped, jittered down by up
    /// to half so that many instances do not reconnect in step.
    fn backoff(&self, attempt: u32) -> Duration {
        let settings = &self.shared.settings;
        let factor = 1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX);
        let delay = settings
            .reconnect_min
            .saturating_mul(factor)
            .min(settings.reconnect_max);
        let jitter = rand::rng().random_range(0.5..=1.0);
        delay.mul_f64(jitter)
    }
}

/// Hands `message` to the channel's local subscribers unless it was already delivered.
fn deliver(hub: &Hub<()>, channel: &str, state: &mut ChannelState, message: Arc<Message>) {
    if state
        .last_delivered
        .is_some_and(|last| message.id() <= last)
    {
        return;
    }
    state.last_delivered = Some(message.id());
    if let Some(slot) = hub.lock().get(channel) {
        slot.deliver(Delivery::Event(message));
    }
}

fn deliver_gap(hub: &Hub<()>, channel: &str) {
    if let Some(slot) = hub.lock().get(channel) {
        slot.deliver(Delivery::Gap(Gap { missed: None }));
    }
}

fn subscribe_op(shared: &Arc<Shared>, link: &Link, channel: Box<str>) -> BoxFuture<'static, Done> {
    let mut con = link.con.clone();
    let generation = link.generation;
    let shared = Arc::clone(shared);
    Box::pin(async move {
        let result = match con.subscribe(shared.names.pubsub(&channel)).await {
            // Read after the subscription is confirmed, so every later event is pushed to us.
            Ok(()) => Ok(baseline(&shared, &channel).await),
            Err(err) => Err(err),
        };
        Done::Subscribed {
            generation,
            channel,
            result,
        }
    })
}

fn unsubscribe_op(
    shared: &Arc<Shared>,
    link: &Link,
    channel: Box<str>,
) -> BoxFuture<'static, Done> {
    let mut con = link.con.clone();
    let generation = link.generation;
    let name = shared.names.pubsub(&channel);
    Box::pin(async move {
        if let Err(err) = con.unsubscribe(&name).await {
            tracing::debug!(channel = &*channel, error = %err, "UNSUBSCRIBE failed");
        }
        Done::Unsubscribed {
            generation,
            channel,
        }
    })
}

/// The stream's last id now (`0-0` when there is no stream), or `None` if it cannot be read.
async fn baseline(shared: &Shared, channel: &str) -> Option<EventId> {
    match read_stream(shared, channel, None).await {
        Ok(state) => Some(state.map_or_else(EventId::default, |s| s.last)),
        Err(err) => {
            tracing::warn!(channel, error = %err, "could not read a channel's position");
            None
        }
    }
}

/// Reads the state of `channel`'s stream and, with `after`, its entries after that id.
pub(super) async fn read_stream(
    shared: &Shared,
    channel: &str,
    after: Option<EventId>,
) -> Result<Option<StreamState>, BackplaneError> {
    let mut con = shared.publisher.clone();
    let mut invocation = shared.scripts.history.key(shared.names.stream(channel));
    invocation.arg(after.map(|id| id.to_string()).unwrap_or_default());
    let value: Value = tokio::time::timeout(
        shared.settings.call_timeout(),
        invocation.invoke_async(&mut con),
    )
    .await
    .map_err(|_| BackplaneError::new(ErrorKind::Timeout))?
    .map_err(redis_error)?;
    let state = envelope::parse_history(value)
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

fn is_connection_error(err: &RedisError) -> bool {
    err.is_io_error() || err.is_unrecoverable_error() || err.is_connection_dropped()
}

fn unavailable(why: &'static str) -> BackplaneError {
    BackplaneError::with_source(ErrorKind::Unavailable, why)
}

fn redis_error_kind(kind: ErrorKind, channel: &str) -> BackplaneError {
    BackplaneError::new(kind).on_channel(channel)
}

async fn next_push(link: &mut LinkState) -> Option<PushInfo> {
    match link {
        LinkState::Up(link) => link.pushes.recv().await,
        LinkState::Down { .. } => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
