//! The subscriber: one task that owns this instance's pub/sub connection and performs what the
//! per-channel state in [`channels`](super::channels) decides.
//!
//! A local subscriber joins the hub first and then asks this task to make sure the channel is
//! subscribed (and waits for the confirmation); the last one to leave tells it to check again.
//! The task handles one input at a time (a request, a push, a finished operation, a timer), so
//! the state needs no lock; why it cannot race is said in [`channels`](super::channels).
//!
//! Pushes are drained from redis-rs's unbounded channel as they come, decoded once, and handed
//! to the hub's bounded queues, which never block. A push that is not a valid envelope, or whose
//! id is further ahead of this instance's clock than
//! [`MAX_CLOCK_SKEW_MS`](envelope::MAX_CLOCK_SKEW_MS), is counted and dropped before it can become a
//! channel's position; the warnings about them are rate-limited, since anyone allowed to
//! `PUBLISH` on our channels can send them. After a reconnect, each resubscribed channel's
//! subscribers are told to recover what they missed from history themselves, in pages.
//!
//! A transport built lazily starts this task without a connection: its first connection comes
//! from the same reconnect loop, and also connects the command connections and loads the scripts
//! before the transport is declared ready.
//!
//! In a Redis Cluster, each node that serves a channel with local interest has one of these
//! tasks, in sharded mode: `SSUBSCRIBE` and `SUNSUBSCRIBE`, one channel per command (after a
//! reconnect too, since one command's channels must share a slot and each reply is one push per
//! channel), and what only the cluster's router can handle is reported to it: a channel whose
//! slot is not served here any more (`MOVED`), and a lost connection (the node may have failed
//! over). An unsolicited `SUNSUBSCRIBE` (Redis sends one to every subscriber of a slot that moved
//! away) drops the connection on purpose: redis-rs takes any `sunsubscribe` push for the reply of
//! the oldest command in flight, so after one the replies of that connection cannot be trusted;
//! the reconnect subscribes every channel again, each on the node that now serves it, and their
//! subscribers recover the gap from history.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, RedisError, Value};
use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use rand::Rng as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::channels::{Action, Channels, Failure};
use super::config::Settings;
use super::envelope;
use super::publisher::{self, is_connection_error, redis_error};
use super::shared::{Phase, Shard, ShardReport, Shared};
use crate::backplane::error::{BackplaneError, ErrorKind};
use crate::backplane::transport::{BoxFuture, Delivery};
use crate::message::Message;

/// The longest wait between two attempts to reconnect while Redis refuses connections.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// How many channel names go into one SUBSCRIBE when resubscribing after a reconnect.
const RESUBSCRIBE_BATCH: usize = 256;

/// At most one warning about dropped malformed messages per this interval; the others are
/// counted in the next warning (and all of them in the diagnostics).
const MALFORMED_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A request to the subscriber task.
#[derive(Debug)]
// `Adopt` and `Evict` come only from the cluster transport's router (feature `redis-cluster`).
#[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
pub(super) enum Command {
    /// Make sure `channel` is subscribed on Redis; reply once it is (or cannot be).
    Ensure { channel: Box<str>, reply: Reply },
    /// The last local subscriber of `channel` left: unsubscribe unless another arrived.
    Release { channel: Box<str> },
    /// Unsubscribe everything, close the connection and stop.
    Shutdown { reply: oneshot::Sender<()> },
    /// In a cluster, `channel` belongs to this shard now: subscribe it, recover it, and
    /// confirm `waiters`.
    Adopt {
        channel: Box<str>,
        waiters: Vec<Reply>,
    },
    /// In a cluster, `channel` belongs to another shard now: forget it here and report it moved.
    Evict { channel: Box<str> },
}

type Pushes = mpsc::UnboundedReceiver<PushInfo>;

/// Where a local subscriber waits for its channel's subscription.
pub(super) type Reply = oneshot::Sender<Result<(), BackplaneError>>;

/// An open pub/sub connection.
pub(super) struct Link {
    con: MultiplexedConnection,
    pushes: Pushes,
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

/// A finished operation, tagged with the generation of the connection it ran on.
enum Done {
    Connected(Result<Link, RedisError>),
    Subscribed {
        generation: u64,
        channel: Box<str>,
        result: Result<(), RedisError>,
    },
    Unsubscribed {
        generation: u64,
        channel: Box<str>,
    },
    Resubscribed {
        generation: u64,
        channels: Vec<Box<str>>,
        /// In a cluster, the channels the node refused with `MOVED`.
        moved: Vec<Box<str>>,
        result: Result<(), RedisError>,
    },
    Pinged {
        generation: u64,
        result: Result<(), RedisError>,
    },
    /// An operation whose outcome changes nothing.
    Forgotten,
}

/// The subscriber task's state.
pub(super) struct Subscriber {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    link: LinkState,
    channels: Channels<Reply>,
    ops: FuturesUnordered<BoxFuture<'static, Done>>,
    /// Whether the transport has connected at least once (from the start when built eagerly).
    ready: bool,
    malformed_log: MalformedLog,
}

/// Rate-limits the warnings about malformed messages: whoever can `PUBLISH` on a channel of ours
/// could otherwise fill the log.
#[derive(Debug, Default)]
struct MalformedLog {
    /// When the next warning may be written; `None` before the first.
    next: Option<Instant>,
    /// Malformed messages dropped without a warning since the last one.
    suppressed: u64,
}

impl MalformedLog {
    fn dropped(&mut self, channel: &str, reason: &envelope::Malformed) {
        let now = Instant::now();
        if self.next.is_some_and(|next| now < next) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            channel,
            %reason,
            dropped_since_last_warning = self.suppressed,
            "dropping a malformed message on a statelesse channel"
        );
        self.suppressed = 0;
        self.next = Some(now + MALFORMED_LOG_INTERVAL);
    }
}

impl Subscriber {
    pub(super) fn new(
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
        link: Link,
    ) -> Self {
        shared.stats.set_connected(true);
        let channels = Channels::new();
        Self {
            shared,
            commands,
            link: LinkState::Up(link),
            channels,
            ops: FuturesUnordered::new(),
            ready: true,
            malformed_log: MalformedLog::default(),
        }
    }

    /// The task of a transport built lazily: no connection yet, a first attempt at once.
    pub(super) fn starting(
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        let mut channels = Channels::new();
        // No channel exists yet: this only marks the connection down.
        channels.disconnected(|_| false);
        Self {
            shared,
            commands,
            link: LinkState::Down {
                attempt: 0,
                retry_at: Instant::now(),
                connecting: false,
            },
            channels,
            ops: FuturesUnordered::new(),
            ready: false,
            malformed_log: MalformedLog::default(),
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
        let actions = match command {
            Command::Ensure { channel, reply } => {
                let wanted = self.wanted(&channel);
                self.channels.ensure(&channel, reply, wanted)
            }
            Command::Release { channel } => {
                let wanted = self.wanted(&channel);
                self.channels.reconcile(&channel, wanted)
            }
            Command::Adopt { channel, waiters } => {
                let wanted = self.wanted(&channel);
                self.channels.adopt(&channel, waiters, wanted)
            }
            Command::Evict { channel } => {
                self.evict(channel);
                Vec::new()
            }
            Command::Shutdown { .. } => Vec::new(),
        };
        self.perform(actions);
    }

    /// In a cluster: forgets `channel`, which another shard serves now, and hands it (with
    /// whoever waits for it) to the router.
    fn evict(&mut self, channel: Box<str>) {
        let Some(shard) = &self.shared.shard else {
            return;
        };
        let Some((waiters, subscribed)) = self.channels.evict(&channel) else {
            return;
        };
        if subscribed && let LinkState::Up(link) = &self.link {
            // Best effort: the slot left this node, which usually dropped it already.
            let mut con = link.con.clone();
            let name = self.shared.names.pubsub(&channel);
            self.ops.push(Box::pin(async move {
                let _ = ::redis::cmd("SUNSUBSCRIBE")
                    .arg(name)
                    .query_async::<Value>(&mut con)
                    .await;
                Done::Forgotten
            }));
        }
        let _ = shard.reports.send(ShardReport::Moved {
            from: Arc::clone(&shard.address),
            channel,
            waiters,
        });
        self.count_subscribed();
    }

    /// In a cluster: `channel` was refused with a redirection: counted, and evicted.
    fn moved(&mut self, channel: Box<str>) {
        self.shared.stats.migrations.fetch_add(1, Ordering::Relaxed);
        self.evict(channel);
    }

    fn wanted(&self, channel: &str) -> bool {
        self.shared.hub.subscriber_count(channel) > 0
    }

    /// Performs what the channel state decided, in order.
    fn perform(&mut self, actions: Vec<Action<Reply>>) {
        for action in actions {
            match action {
                Action::Subscribe(channel) => self.subscribe(channel),
                Action::Unsubscribe(channel) => self.unsubscribe(channel),
                Action::Resubscribe(channels) => self.resubscribe(channels),
                Action::Confirm(waiters) => {
                    for waiter in waiters {
                        let _ = waiter.send(Ok(()));
                    }
                }
                Action::Fail(waiters, failure) => {
                    for waiter in waiters {
                        let _ = waiter.send(Err(failure_error(failure)));
                    }
                }
                Action::Recover(channel) => self.recover(&channel),
            }
        }
    }

    /// Hands `message` to `channel`'s local subscribers.
    fn deliver(&self, channel: &str, message: Arc<Message>) {
        if let Some(slot) = self.shared.hub.lock().get(channel) {
            slot.deliver(Delivery::Event(message));
        }
    }

    /// Tells `channel`'s local subscribers to read what they missed from history: the channel
    /// carries every event again from now on.
    fn recover(&self, channel: &str) {
        let since = Instant::now();
        // Counted first, so that a subscriber that saw the recovery (or the gap it ended in)
        // sees it in the diagnostics.
        self.shared.stats.count_recovery();
        if let Some(slot) = self.shared.hub.lock().get(channel) {
            slot.deliver(Delivery::Recover { since });
        }
    }

    fn on_push(&mut self, push: Option<PushInfo>) {
        let Some(push) = push else {
            self.link_lost("the pub/sub connection closed");
            return;
        };
        match push.kind {
            PushKind::Disconnection => self.link_lost("the pub/sub connection was lost"),
            PushKind::Message | PushKind::SMessage => self.on_message(push.data),
            PushKind::SUnsubscribe => self.on_sunsubscribe(&push.data),
            _ => {}
        }
    }

    /// A `SUNSUBSCRIBE` push, in a cluster: unless it confirms one of ours, the node dropped a
    /// channel whose slot moved away (see the module docs for why the link is dropped too).
    fn on_sunsubscribe(&mut self, data: &[Value]) {
        if self.shared.shard.is_none() {
            return;
        }
        let Some(Value::BulkString(name)) = data.first() else {
            return;
        };
        let Some(channel) = self.shared.names.channel_of(name) else {
            return;
        };
        if self.channels.is_settled(channel) {
            tracing::info!(channel, "a slot moved away from this node; resubscribing");
            self.shared.stats.migrations.fetch_add(1, Ordering::Relaxed);
            self.link_lost("a slot moved to another node");
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
        // The events of an envelope share their entry's id, so one check covers them all.
        let decoded = envelope::decode(&Bytes::from(payload)).and_then(|messages| {
            match messages.last() {
                Some(last) => envelope::check_not_ahead(last, now_ms()),
                None => Ok(()),
            }
            .map(|()| messages)
        });
        let messages = match decoded {
            Ok(messages) => messages,
            Err(reason) => {
                self.shared.stats.count_malformed();
                self.malformed_log.dropped(channel, &reason);
                return;
            }
        };
        for message in messages {
            if let Some(message) = self.channels.message(channel, Arc::new(message)) {
                self.deliver(channel, message);
            }
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Connected(result) => self.on_connected(result),
            Done::Subscribed {
                generation,
                channel,
                result,
            } => self.on_subscribed(generation, &channel, result),
            Done::Unsubscribed {
                generation,
                channel,
            } => self.on_unsubscribed(generation, &channel),
            Done::Resubscribed {
                generation,
                channels,
                moved,
                result,
            } => self.on_resubscribed(generation, channels, moved, result),
            Done::Pinged { generation, result } => self.on_pinged(generation, result),
            Done::Forgotten => {}
        }
    }

    fn on_subscribed(&mut self, generation: u64, channel: &str, result: Result<(), RedisError>) {
        match result {
            Ok(()) => {
                let wanted = self.wanted(channel);
                let actions = self
                    .channels
                    .subscribe_succeeded(generation, channel, wanted);
                self.count_subscribed();
                self.perform(actions);
            }
            Err(err) if self.shared.shard.is_some() && is_redirect(&err) => {
                if self.channels.is_current(generation) {
                    self.moved(channel.into());
                }
            }
            Err(err) => {
                let Some(waiters) = self.channels.subscribe_failed(generation, channel) else {
                    return;
                };
                let lost = is_connection_error(&err);
                let err = redis_error(err).on_channel(channel);
                tracing::warn!(channel, error = %err, "SUBSCRIBE failed");
                for waiter in waiters {
                    let _ = waiter.send(Err(BackplaneError::new(err.kind()).on_channel(channel)));
                }
                if lost {
                    self.link_lost("SUBSCRIBE failed");
                }
            }
        }
    }

    fn on_unsubscribed(&mut self, generation: u64, channel: &str) {
        let wanted = self.wanted(channel);
        let actions = self.channels.unsubscribed(generation, channel, wanted);
        self.count_subscribed();
        self.perform(actions);
    }

    fn on_resubscribed(
        &mut self,
        generation: u64,
        mut channels: Vec<Box<str>>,
        moved: Vec<Box<str>>,
        result: Result<(), RedisError>,
    ) {
        if self.channels.is_current(generation) {
            channels.retain(|channel| !moved.contains(channel));
            for channel in moved {
                self.moved(channel);
            }
        }
        if let Err(err) = result {
            if self.channels.is_current(generation) {
                tracing::warn!(error = %err, "resubscribing after a reconnect failed");
                self.link_lost("resubscribing failed");
            }
            return;
        }
        let hub = &self.shared.hub;
        let actions = self.channels.resubscribed(generation, channels, |channel| {
            hub.subscriber_count(channel) > 0
        });
        self.count_subscribed();
        self.perform(actions);
    }

    fn on_pinged(&mut self, generation: u64, result: Result<(), RedisError>) {
        if !self.channels.is_current(generation) {
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

    /// SUBSCRIBEs `channel`.
    fn subscribe(&mut self, channel: Box<str>) {
        let LinkState::Up(link) = &self.link else {
            return;
        };
        let mut con = link.con.clone();
        let generation = self.channels.generation();
        let name = self.shared.names.pubsub(&channel);
        let sharded = self.shared.shard.is_some();
        self.ops.push(Box::pin(async move {
            let result = if sharded {
                ssubscribe(&mut con, &name).await
            } else {
                con.subscribe(name).await
            };
            Done::Subscribed {
                generation,
                channel,
                result,
            }
        }));
    }

    fn unsubscribe(&mut self, channel: Box<str>) {
        let LinkState::Up(link) = &self.link else {
            return;
        };
        let mut con = link.con.clone();
        let generation = self.channels.generation();
        let name = self.shared.names.pubsub(&channel);
        let sharded = self.shared.shard.is_some();
        self.ops.push(Box::pin(async move {
            let result = if sharded {
                ::redis::cmd("SUNSUBSCRIBE")
                    .arg(&name)
                    .query_async::<Value>(&mut con)
                    .await
                    .map(drop)
            } else {
                con.unsubscribe(&name).await
            };
            if let Err(err) = result {
                tracing::debug!(channel = &*channel, error = %err, "UNSUBSCRIBE failed");
            }
            Done::Unsubscribed {
                generation,
                channel,
            }
        }));
    }

    /// SUBSCRIBEs `channels` again after a reconnect, in batches.
    fn resubscribe(&mut self, channels: Vec<Box<str>>) {
        let LinkState::Up(link) = &self.link else {
            return;
        };
        let names: Vec<String> = channels
            .iter()
            .map(|c| self.shared.names.pubsub(c))
            .collect();
        let mut con = link.con.clone();
        let generation = self.channels.generation();
        if self.shared.shard.is_some() {
            self.ops.push(Box::pin(async move {
                let (moved, result) = ssubscribe_each(&mut con, &channels, &names).await;
                Done::Resubscribed {
                    generation,
                    channels,
                    moved,
                    result,
                }
            }));
            return;
        }
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
                moved: Vec::new(),
                result,
            }
        }));
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
        self.shared.stats.set_connected(false);
        let hub = &self.shared.hub;
        let actions = self
            .channels
            .disconnected(|channel| hub.subscriber_count(channel) > 0);
        self.perform(actions);
        self.count_subscribed();
        if let Some(Shard { address, reports }) = &self.shared.shard {
            let _ = reports.send(ShardReport::Down {
                from: Arc::clone(address),
            });
        }
    }

    fn connect(&mut self) {
        let LinkState::Down { connecting, .. } = &mut self.link else {
            return;
        };
        *connecting = true;
        let shared = Arc::clone(&self.shared);
        let first = !self.ready;
        self.ops.push(Box::pin(async move {
            let mut result = open_link(&shared.client, &shared.settings).await;
            if first && result.is_ok() {
                // The first connection of a lazily built transport: the command connections
                // and scripts too, so that once ready it is as if it had connected eagerly.
                result = match publisher::warm_up(&shared).await {
                    Ok(()) => result,
                    Err(err) => Err(err),
                };
            }
            Done::Connected(result)
        }));
    }

    fn on_connected(&mut self, result: Result<Link, RedisError>) {
        let LinkState::Down { attempt, .. } = self.link else {
            return;
        };
        let link = match result {
            Ok(link) => link,
            Err(err) => {
                if self.ready || err.is_connection_refusal() {
                    tracing::debug!(error = %err, attempt, "reconnecting to Redis failed");
                } else {
                    // Never connected, and not because Redis is down: likely a wrong setting
                    // (password, ACL, TLS), which nothing else would report.
                    tracing::warn!(error = %err, attempt, "connecting to Redis failed");
                }
                let next = attempt.saturating_add(1);
                // A refused connection costs Redis nothing (nobody listens): try again soon, so
                // the link is back within a probe interval of Redis returning. Anything else
                // (a server that answers, but wrongly or slowly) backs off exponentially.
                let delay = if err.is_connection_refusal() {
                    self.backoff(next).min(PROBE_INTERVAL)
                } else {
                    self.backoff(next)
                };
                self.link = LinkState::Down {
                    attempt: next,
                    retry_at: Instant::now() + delay,
                    connecting: false,
                };
                return;
            }
        };
        self.link = LinkState::Up(link);
        self.shared.stats.set_connected(true);
        if self.ready {
            self.shared.stats.count_reconnect();
            tracing::info!("reconnected to Redis; resubscribing");
        } else {
            self.ready = true;
            self.shared.phase.send_if_modified(|phase| {
                let starting = *phase == Phase::Starting;
                if starting {
                    *phase = Phase::Ready;
                }
                starting
            });
            tracing::info!(attempts = attempt.saturating_add(1), "connected to Redis");
        }
        let hub = &self.shared.hub;
        let actions = self
            .channels
            .reconnected(|channel| hub.subscriber_count(channel) > 0);
        self.perform(actions);
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
        let generation = self.channels.generation();
        self.ops.push(Box::pin(async move {
            let result = ::redis::cmd("PING").query_async::<()>(&mut con).await;
            Done::Pinged { generation, result }
        }));
    }

    async fn shutdown(&mut self) {
        if let LinkState::Up(link) = &mut self.link {
            let names: Vec<String> = self
                .channels
                .subscribed()
                .map(|channel| self.shared.names.pubsub(channel))
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
        let actions = self.channels.close();
        self.perform(actions);
        self.ops = FuturesUnordered::new();
        self.link = LinkState::Down {
            attempt: 0,
            retry_at: Instant::now(),
            connecting: true,
        };
        self.shared.stats.set_closed();
        self.shared.stats.subscribed.store(0, Ordering::Relaxed);
    }

    fn count_subscribed(&self) {
        let count = self.channels.subscribed_count();
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

/// This instance's clock, in milliseconds since the Unix epoch, as Redis stream ids count them.
fn now_ms() -> u64 {
    // A clock set before 1970 is broken: refusing every id as "ahead" of it would mute every
    // channel, so the bound is lifted instead.
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(u64::MAX, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}

/// `SSUBSCRIBE`s one channel: sent as a plain command, since redis-rs offers it only on its
/// cluster connection, whose own re-subscriptions this transport does not use. One channel a
/// command, so its one confirmation push is its reply.
async fn ssubscribe(con: &mut MultiplexedConnection, name: &str) -> Result<(), RedisError> {
    ::redis::cmd("SSUBSCRIBE")
        .arg(name)
        .query_async::<Value>(con)
        .await
        .map(drop)
}

/// `SSUBSCRIBE`s each of `channels` (whose names are `names`), one at a time: the channels the
/// node refused with a redirection, and the first other error, which stops the rest.
async fn ssubscribe_each(
    con: &mut MultiplexedConnection,
    channels: &[Box<str>],
    names: &[String],
) -> (Vec<Box<str>>, Result<(), RedisError>) {
    let mut moved = Vec::new();
    for (channel, name) in channels.iter().zip(names) {
        match ssubscribe(con, name).await {
            Ok(()) => {}
            Err(err) if is_redirect(&err) => moved.push(channel.clone()),
            Err(err) => return (moved, Err(err)),
        }
    }
    (moved, Ok(()))
}

/// Whether `err` says another node serves the slot (or will, once a failover or migration ends).
pub(super) fn is_redirect(err: &RedisError) -> bool {
    use ::redis::{ErrorKind as Kind, ServerErrorKind as Server};
    matches!(
        err.kind(),
        Kind::Server(Server::Moved | Server::Ask | Server::TryAgain | Server::ClusterDown)
    )
}

/// The error a waiter gets for `failure`.
fn failure_error(failure: Failure) -> BackplaneError {
    let why = match failure {
        Failure::Down => "the Redis pub/sub connection is down",
        Failure::Lost => "the Redis pub/sub connection was lost",
        Failure::Closed => return BackplaneError::new(ErrorKind::Closed),
    };
    BackplaneError::with_source(ErrorKind::Unavailable, why)
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
