//! [`RedisTransport`]: the backplane for many server instances, over Redis pub/sub and Streams.
//!
//! The behaviour (layout on Redis, ids, subscriptions, resume, reconnects) is documented on
//! [`RedisTransport`], the public face of this module. Behind it, each file depends only on the
//! ones listed after it:
//!
//! - `subscriber`: the task that owns the pub/sub connection and performs what `channels` decides;
//! - `channels`: the per-channel state as plain data, whose methods return actions;
//! - `publisher`: the commands on the publisher connection, and what a Redis error means;
//! - `shared`: what the handle and the task share;
//! - `envelope`: the names, envelope, stream entries and scripts on Redis; `config`: the settings;
//!   `slot`: Redis Cluster hash slots.
//!
//! `cluster` (feature `redis-cluster`) builds the transport for a Redis Cluster from these same
//! pieces, one set per node.

mod channels;
#[cfg(feature = "redis-cluster")]
mod cluster;
mod config;
pub(crate) mod envelope;
mod presence;
mod publisher;
mod shared;
mod slot;
mod subscriber;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ::redis::aio::ConnectionManager;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

#[cfg(feature = "redis-cluster")]
pub use cluster::RedisClusterTransport;
pub use config::RedisConfig;

use super::Backplane;
use super::error::{BackplaneError, ErrorKind};
use super::hub::Hub;
use super::replay::config::ReplayConfig;
use super::transport::{
    BoxFuture, HistoryPage, Interest, LiveFeed, OutgoingEvent, PageLimits, Transport,
};
use crate::diagnostics::{Diagnostics, RedisDiagnostics};
use crate::health::{CLOSED, Health};
use crate::id::EventId;
use envelope::{Names, Scripts};
use publisher::redis_error;
use shared::{Phase, Shared, Stats};
use subscriber::{Command, Subscriber};

/// The Redis transport, for many server instances; build a [`Backplane`] over it with
/// [`Backplane::redis`].
///
/// Cloning is cheap; every clone shares the same connections and subscriber task. Redis 7 or
/// later is expected; [`RedisConfig`] lists the settings and their defaults.
///
/// # Layout on Redis
///
/// Every name starts with the configured prefix (default `statelesse`), and wraps the channel in
/// a hash tag, so a channel's stream and messages share one Redis Cluster slot (on a cluster,
/// feature `redis-cluster`, the same names carry sharded pub/sub). Channel names never contain
/// `{` or `}` (keys are escaped), so the tag is exactly the channel.
///
/// | what | name | holds |
/// |---|---|---|
/// | pub/sub channel | `{prefix}:{<channel>}` | one envelope per publish call, carrying that call's events for the channel |
/// | stream (history) | `{prefix}:h:{<channel>}` | one entry per publish call, field `b`: the same events as the envelope |
///
/// | presence (types with `#[sse(presence = ..)]`) | `{prefix}:p:{<channel>}`, `{prefix}:pc:{<channel>}`, `{prefix}:pm:{<channel>}` | the channel's members per instance, see below |
///
/// For example `statelesse:{game:42:PlayerJoined}` and `statelesse:h:{game:42:PlayerJoined}`.
/// A stream expires after the [history time-to-live](RedisConfig::with_history_ttl) without
/// publishes.
///
/// An envelope is `statelesse/3\n<id>\n<count>\n` then, for each of `<count>` events,
/// `<event name>\n<length>\n<data>`: a magic line carrying the format version, the stream entry
/// id, then each event's SSE name and JSON data verbatim, oldest first. The last event's id is
/// the entry id; the one `k` places before it has the id `<entry id>-<k>` (see [`EventId`]). A
/// stream entry holds the same body (from `<count>` on) in its field `b`. A message on one of
/// our channels that is not a valid envelope (no magic line, another version, a bad id, an event
/// name that is empty or holds CR, LF or NUL, lengths that do not add up), one whose id is more
/// than 5 minutes ahead of this instance's clock (Redis makes ids from its own clock, so only
/// clock skew puts a genuine one ahead; a forged one, trusted, would become the channel's
/// position and mute it), and a stream entry without `b` (or version 2's `e` and `d`), are
/// counted in [`RedisDiagnostics::malformed_messages`], logged
/// through `tracing` (at most one warning every 10 seconds), and dropped.
///
/// Version 3 put the events one publish call sends to a channel in one envelope and one entry
/// (version 2 had one per event, with fields `e` and `d`, which stay readable in history).
/// Version 2 of the envelope came with the enum streams' channel names
/// (`{domain}:{key}:{EnumName}`, where version 1 had `{domain}:{key}`). Instances of the two
/// versions drop each other's envelopes (the log says when one came from an older statelesse),
/// so every instance of a deployment must be upgraded together. Stream entries keep their
/// format: the history of keyed and broadcast channels written by version 1 stays readable,
/// while an enum stream starts a new history under its new name (a resume from an id of the old
/// one is a [`Gap`](crate::Gap)).
///
/// # Publishing and ids
///
/// Publishes run one Lua script (`EVALSHA`, loaded again after a server restart) that, for each
/// channel of the call, appends its events as one entry to the channel's stream (`XADD … MAXLEN ~
/// <history length>`) and `PUBLISH`es the envelope, atomically. The stream entry id
/// (`<ms>-<seq>`) is the id of the entry's last event, the earlier ones get `<ms>-<seq>-<k>`, so
/// ids increase strictly along a channel whichever instance publishes. Trimming counts entries
/// and is approximate: a stream holds at least `<history length>` entries (so at least as many
/// events), and usually up to one stream node (100 entries) more.
/// With history off the script still appends, with `MAXLEN 0`: the stream stays empty but keeps
/// its last id, so ids keep increasing.
///
/// Concurrent publishes share script calls: one call is in flight on the publisher connection
/// at a time; a publish that finds it free goes at once, alone (no timer, no added latency), and
/// publishes that arrive meanwhile queue up and go together in the next call, up to 256 events
/// and 512 KiB, in the order they were queued. Each caller gets its own event's id or error:
/// the script checks all its arguments before its first write, and the events of a channel
/// whose append fails (its stream key holds another type) fail alone. [`Backplane::publish_many`] queues
/// many events at once, so an idle backplane sends them in one call.
///
/// The stream's time-to-live is refreshed (`PEXPIRE`) at most once per half TTL per channel and
/// instance, so a stream published on more often than that never expires; an instance remembers
/// the refreshes of up to 16,384 channels (past that it forgets, and refreshes again). Between
/// refreshes the script appends with `NOMKSTREAM`, so a stream that was lost meanwhile (deleted,
/// flushed, or a server restart) is created again with its TTL in the same script run.
///
/// While Redis is unreachable a publish fails with [`ErrorKind::Unavailable`], or
/// [`ErrorKind::Timeout`] when the server stopped answering (the event may or may not have been
/// published); it is never dropped silently.
///
/// # Subscribing
///
/// Each instance has one dedicated pub/sub connection (RESP3). It subscribes a channel when its
/// first local subscriber arrives, and unsubscribes when the last one leaves, so an instance
/// receives only what its clients want. [`subscribe`](Transport::subscribe) returns once Redis
/// confirmed the subscription, and fails fast with [`ErrorKind::Unavailable`] while the
/// connection is down. Pushes are drained from the connection at once; each message is decoded
/// once and shared by every local subscriber; each subscriber's queue is bounded, and one that
/// falls behind lags alone and is refilled from history (without history, it gets a
/// [`Gap`](crate::Gap)).
///
/// # Resume and history
///
/// [`history_page`](Transport::history_page) reads one page of a stream and its `XINFO` in one
/// script, on a connection of its own (reads never queue behind publishes, nor publishes behind
/// reads). The script fetches the page with exclusive `XRANGE .. COUNT` calls in small chunks
/// sized from the largest entry seen so far, and stops at the page's event or byte limit, so
/// neither the script nor the reply ever holds a whole stream of large events (see
/// [`replay`](crate::backplane::replay) for the limits and how reads are shared). It reports the
/// history as complete when the id is the stream's last id, or is at or after the oldest entry
/// the stream still holds (trimming removes the oldest entries, so everything after it is still
/// there), and no entry after it was deleted (`XDEL`). An older id and any id on a stream that
/// does not exist (never published, expired, or lost by a server restart) are incomplete: the
/// subscription yields a [`Gap`](crate::Gap) first, never a silent skip. An id newer than the
/// stream's last one is a gap too, after which the subscription goes on from the stream's end.
///
/// # Reconnecting
///
/// When the pub/sub connection drops (or stops answering the periodic `PING`), the transport
/// reconnects with capped exponential backoff and jitter, except that while Redis refuses
/// connections (it is down: a refused connection costs it nothing) it tries again every 200 ms at
/// most, so the link is back within that of Redis returning; then it subscribes again every
/// channel that still has local subscribers. Once a channel is subscribed again, its subscribers are told to
/// recover: each reads what it missed from the stream after the last event it yielded, a page at
/// a time through the shared reader, so a thousand subscribers of a busy channel cost one read
/// per page, and nobody's queue overflows with a long gap. Live messages wait in each
/// subscriber's bounded queue meanwhile and those already replayed are dropped: subscribers see
/// every event once, in order. When history cannot cover the gap (history off, trimmed, or the
/// server lost its data), subscriptions yield a [`Gap`](crate::Gap) instead of skipping
/// silently. With history off that check can only compare ids, so a reconnect during which the
/// channel received any event reports a gap, even when those events then arrived live.
/// [`RedisDiagnostics`] counts the reconnects, the recoveries (one per channel and reconnect) and
/// the refills given up (one per subscriber whose read of history failed, which yields a
/// [`Gap`](crate::Gap) and goes on with live events).
///
/// # Presence
///
/// Each instance counts its connections per member locally and writes to Redis only when a
/// member's local count goes from 0 to 1 or from 1 to 0, in batches (one script call per
/// channel with changes), plus a heartbeat every third of the
/// [presence TTL](RedisConfig::with_presence_ttl). Entries of an instance that stopped
/// refreshing expire after the TTL and are swept (with their members' `leave`) by the next
/// script call on the channel. The model, its bounds and its cost:
/// [`docs/presence.md`](https://github.com/statelesse/statelesse/blob/main/docs/presence.md).
///
/// # Starting while Redis is down
///
/// [`connect`](Self::connect) (and [`Backplane::redis`]) connects before returning, and fails
/// when Redis cannot be reached. [`connect_lazy`](Self::connect_lazy) (and
/// [`Backplane::redis_lazy`]) returns at once and connects in the background, with the reconnect
/// timing above; until it first connected, publishes fail at once with
/// [`ErrorKind::NotConnected`] and new streams wait for it up to the connect timeout.
///
/// # Shutting down
///
/// [`Backplane::shutdown`] unsubscribes, closes the connections, and ends every local stream;
/// later operations fail with [`ErrorKind::Closed`].
///
/// # Examples
///
/// ```no_run
/// use statelesse::{Backplane, RedisConfig, RedisTransport};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), statelesse::BackplaneError> {
/// let transport = RedisTransport::connect(RedisConfig::new("redis://127.0.0.1/")?).await?;
/// let bp = Backplane::new(transport);
/// # drop(bp);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisTransport {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    /// Groups concurrent publishes into script calls.
    batcher: Arc<publisher::Batcher>,
    commands: mpsc::UnboundedSender<Command>,
    closed: AtomicBool,
    prefix: String,
    replay: ReplayConfig,
    /// This instance's members, and the task that writes them.
    presence: Arc<presence::Presence>,
}

impl RedisTransport {
    /// Connects to Redis with `config`: opens the command connection and the pub/sub
    /// connection, and starts the task that owns the latter.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for an invalid configuration, [`ErrorKind::Unavailable`] or
    /// [`ErrorKind::Timeout`] when Redis cannot be reached.
    pub async fn connect(config: RedisConfig) -> Result<Self, BackplaneError> {
        config.validate()?;
        install_tls_provider();
        let settings = config.settings();
        let (publisher, reader) = tokio::try_join!(
            publisher::connect(&config.client, &settings),
            publisher::connect(&config.client, &settings)
        )?;
        let link = tokio::time::timeout(
            settings.open_timeout(),
            subscriber::open_link(&config.client, &settings),
        )
        .await
        .map_err(|_| BackplaneError::new(ErrorKind::Timeout))?
        .map_err(redis_error)?;
        Ok(Self::start(
            config,
            settings,
            (publisher, reader),
            Some(link),
        ))
    }

    /// Builds the transport at once, without any network round trip, and connects in the
    /// background: for a service that must start while Redis may be down.
    ///
    /// The connections are opened by the task that re-establishes a lost pub/sub connection, with
    /// the same timing (while Redis refuses connections, an attempt every 200 ms at most;
    /// otherwise the [reconnect backoff](RedisConfig::with_reconnect_backoff)). The first attempt
    /// that succeeds also opens the command connections and loads the scripts; from then on the
    /// transport behaves exactly as one built with [`connect`](Self::connect), outages included.
    /// Until then:
    ///
    /// - a publish fails at once with [`ErrorKind::NotConnected`] (nothing was sent);
    /// - a subscribe, and a history read (so a new stream, or an SSE route's request), waits for
    ///   the first connection for at most the [connect timeout](RedisConfig::with_connect_timeout)
    ///   (2 s by default), then fails with [`ErrorKind::NotConnected`], which an SSE route
    ///   answers with `503 Service Unavailable` and `Retry-After`;
    /// - [`diagnostics`](Transport::diagnostics) say `connected: false`.
    ///
    /// A separate constructor rather than a setting: it is synchronous, so its signature says it
    /// does no I/O (as `sqlx`'s `connect_lazy` does), and [`connect`](Self::connect) keeps
    /// reporting an unreachable or misconfigured server at start-up, when it is easiest to fix.
    /// Each failed attempt is logged through `tracing`: at `debug` while Redis refuses
    /// connections (it is down), at `warn` otherwise (a wrong password or ACL, say, which nothing
    /// else would report).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for an invalid configuration, or when called outside a Tokio runtime
    /// (the background task needs one).
    ///
    /// # Examples
    ///
    /// ```
    /// use statelesse::{ErrorKind, RedisConfig, RedisTransport};
    /// use statelesse::backplane::transport::Transport;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), statelesse::BackplaneError> {
    /// // Nothing listens on port 1: construction still succeeds, at once.
    /// let transport = RedisTransport::connect_lazy(RedisConfig::new("redis://127.0.0.1:1/")?)?;
    /// let err = transport.publish("c", "E".into(), "{}".into()).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotConnected);
    /// assert!(!transport.diagnostics().redis.unwrap().connected);
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect_lazy(config: RedisConfig) -> Result<Self, BackplaneError> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BackplaneError::with_source(
                ErrorKind::Config,
                "RedisTransport::connect_lazy must be called within a Tokio runtime",
            ));
        }
        install_tls_provider();
        let settings = config.settings();
        let publisher = publisher::connect_lazy(&config.client, &settings)?;
        let reader = publisher::connect_lazy(&config.client, &settings)?;
        Ok(Self::start(config, settings, (publisher, reader), None))
    }

    /// Shares the connections with a new subscriber task, connected with `link`, or connecting
    /// in the background without.
    fn start(
        config: RedisConfig,
        settings: config::Settings,
        (publisher, reader): (ConnectionManager, ConnectionManager),
        link: Option<subscriber::Link>,
    ) -> Self {
        let phase = if link.is_some() {
            Phase::Ready
        } else {
            Phase::Starting
        };
        let shared = Arc::new(Shared {
            hub: Arc::new(Hub::new(settings.buffer)),
            names: Names::new(&config.prefix),
            scripts: Scripts::new(),
            publisher,
            reader,
            client: config.client,
            settings,
            stats: Stats::default(),
            phase: watch::Sender::new(phase),
            shard: None,
        });
        let (commands, receiver) = mpsc::unbounded_channel();
        let task = match link {
            Some(link) => Subscriber::new(Arc::clone(&shared), receiver, link),
            None => Subscriber::starting(Arc::clone(&shared), receiver),
        };
        tokio::spawn(task.run());
        let transport = Self {
            inner: Arc::new(Inner {
                presence: presence::Presence::new(shared.settings.presence_ttl),
                shared,
                batcher: Arc::default(),
                commands,
                closed: AtomicBool::new(false),
                prefix: config.prefix,
                replay: config.replay,
            }),
        };
        let weak = Arc::downgrade(&transport.inner);
        transport
            .inner
            .presence
            .spawn(move || weak.upgrade().map(|inner| Self { inner }));
        transport
    }

    /// The prefix of every key and channel name this transport uses.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The Redis pub/sub channel carrying `channel`: `{prefix}:{<channel>}`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), statelesse::BackplaneError> {
    /// # let transport = statelesse::RedisTransport::connect(statelesse::RedisConfig::new("redis://127.0.0.1/")?).await?;
    /// assert_eq!(transport.pubsub_channel("game:1:Started"), "statelesse:{game:1:Started}");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn pubsub_channel(&self, channel: &str) -> String {
        self.inner.shared.names.pubsub(channel)
    }

    /// The Redis key of `channel`'s history stream: `{prefix}:h:{<channel>}`.
    #[must_use]
    pub fn stream_key(&self, channel: &str) -> String {
        self.inner.shared.names.stream(channel)
    }

    fn closed_error(&self, channel: &str) -> Option<BackplaneError> {
        self.inner
            .closed
            .load(Ordering::Acquire)
            .then(|| BackplaneError::new(ErrorKind::Closed).on_channel(channel))
    }

    /// Fails at once while a lazily built transport has not connected yet.
    fn check_ready(&self) -> Result<(), BackplaneError> {
        match *self.inner.shared.phase.borrow() {
            Phase::Ready => Ok(()),
            Phase::Starting => Err(not_connected()),
            Phase::Closed => Err(BackplaneError::new(ErrorKind::Closed)),
        }
    }

    /// Whether an operation on `channel` may go ahead: not after a shutdown, and once the
    /// transport has finished starting; else why not, on `channel`.
    async fn ready_for(&self, channel: &str) -> Result<(), BackplaneError> {
        if let Some(err) = self.closed_error(channel) {
            return Err(err);
        }
        self.wait_ready()
            .await
            .map_err(|err| err.on_channel(channel))
    }

    /// Waits, for at most the connect timeout, until a lazily built transport first connected.
    async fn wait_ready(&self) -> Result<(), BackplaneError> {
        let mut phase = self.inner.shared.phase.subscribe();
        let wait = self.inner.shared.settings.connect_timeout;
        match tokio::time::timeout(wait, phase.wait_for(|p| *p != Phase::Starting)).await {
            Ok(Ok(_)) => self.check_ready(),
            // The sender lives in `Shared`, which `self` holds: it cannot be dropped here.
            Ok(Err(_)) => Err(BackplaneError::new(ErrorKind::Closed)),
            Err(_) => Err(not_connected()),
        }
    }

    async fn subscribe_now(&self, channel: &str) -> Result<LiveFeed, BackplaneError> {
        let shared = &self.inner.shared;
        subscribe_through(
            &shared.hub,
            &self.inner.commands,
            shared.settings.call_timeout(),
            channel,
        )
        .await
    }
}

impl presence::Store for RedisTransport {
    fn run<'a>(
        &'a self,
        channel: &'a str,
        script: &'a ::redis::Script,
        keys: [String; 3],
        args: Vec<Vec<u8>>,
    ) -> BoxFuture<'a, Result<::redis::Value, BackplaneError>> {
        Box::pin(run_script(&self.inner.shared, channel, script, keys, args))
    }

    fn publish(
        &self,
        events: Vec<OutgoingEvent>,
    ) -> BoxFuture<'_, Vec<Result<EventId, BackplaneError>>> {
        self.publish_many(events)
    }

    fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    fn count_malformed(&self) {
        self.inner.shared.stats.count_malformed();
    }
}

/// Runs `script` with `keys` and `args` on the publisher connection of `shared`, within the call
/// timeout (loading it first if the server does not know it).
async fn run_script(
    shared: &Shared,
    channel: &str,
    script: &::redis::Script,
    keys: [String; 3],
    args: Vec<Vec<u8>>,
) -> Result<::redis::Value, BackplaneError> {
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(key);
    }
    for arg in args {
        invocation.arg(arg);
    }
    let mut con = shared.publisher.clone();
    match tokio::time::timeout(
        shared.settings.call_timeout(),
        invocation.invoke_async::<::redis::Value>(&mut con),
    )
    .await
    {
        Ok(result) => result.map_err(|err| redis_error(err).on_channel(channel)),
        Err(_) => Err(BackplaneError::new(ErrorKind::Timeout).on_channel(channel)),
    }
}

/// Joins `channel` in `hub` and asks the task behind `commands` (a subscriber, or a cluster's
/// router) to make sure it is subscribed on Redis; returns the feed once that is confirmed, or
/// the error, within `timeout`.
async fn subscribe_through(
    hub: &Arc<Hub<()>>,
    commands: &mpsc::UnboundedSender<Command>,
    timeout: std::time::Duration,
    channel: &str,
) -> Result<LiveFeed, BackplaneError> {
    let (receiver, _first) = hub.subscribe(channel, || ());
    let interest = {
        let hub = Arc::clone(hub);
        let commands = commands.clone();
        let channel: Box<str> = channel.into();
        Interest::new(move || {
            if hub.release(&channel, |()| false) {
                let _ = commands.send(Command::Release { channel });
            }
        })
    };
    let (reply, confirmed) = oneshot::channel();
    let ensure = Command::Ensure {
        channel: channel.into(),
        reply,
    };
    if commands.send(ensure).is_err() {
        return Err(BackplaneError::new(ErrorKind::Closed));
    }
    match tokio::time::timeout(timeout, confirmed).await {
        Ok(Ok(Ok(()))) => Ok(LiveFeed::new(receiver, interest)),
        Ok(Ok(Err(err))) => Err(err),
        Ok(Err(_)) => Err(BackplaneError::new(ErrorKind::Closed)),
        Err(_) => Err(BackplaneError::new(ErrorKind::Timeout)),
    }
}

impl Transport for RedisTransport {
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Cow<'static, str>,
        data: Bytes,
    ) -> BoxFuture<'a, Result<EventId, BackplaneError>> {
        Box::pin(async move {
            if let Some(err) = self.closed_error(channel) {
                return Err(err);
            }
            self.check_ready().map_err(|err| err.on_channel(channel))?;
            let inner = &self.inner;
            let event = (channel.into(), event, data);
            let results = publisher::publish(&inner.shared, &inner.batcher, [event]).await;
            publisher::lone_result(results, channel)
        })
    }

    fn publish_many(
        &self,
        events: Vec<OutgoingEvent>,
    ) -> BoxFuture<'_, Vec<Result<EventId, BackplaneError>>> {
        Box::pin(async move {
            let refused = match events.first() {
                None => return Vec::new(),
                Some(first) => self
                    .closed_error(&first.channel)
                    .map(|err| err.kind())
                    .or_else(|| self.check_ready().err().map(|err| err.kind())),
            };
            if let Some(kind) = refused {
                return events
                    .iter()
                    .map(|event| Err(refusal(kind).on_channel(&event.channel)))
                    .collect();
            }
            let events = events
                .into_iter()
                .map(|event| (event.channel.into_boxed_str(), event.event, event.data));
            publisher::publish(&self.inner.shared, &self.inner.batcher, events).await
        })
    }

    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<LiveFeed, BackplaneError>> {
        Box::pin(async move {
            self.ready_for(channel).await?;
            self.subscribe_now(channel)
                .await
                .map_err(|err| err.on_channel(channel))
        })
    }

    fn history_page<'a>(
        &'a self,
        channel: &'a str,
        after: EventId,
        limits: PageLimits,
    ) -> BoxFuture<'a, Result<HistoryPage, BackplaneError>> {
        Box::pin(async move {
            self.ready_for(channel).await?;
            let page = (limits.events > 0).then_some((after, limits));
            let state = publisher::read_stream(&self.inner.shared, channel, page)
                .await
                .map_err(|err| err.on_channel(channel))?;
            Ok(history_page(state, after))
        })
    }

    fn replay_config(&self) -> ReplayConfig {
        self.inner.replay.clone()
    }

    fn refill_given_up(&self, _channel: &str) {
        self.inner.shared.stats.count_refill_given_up();
    }

    fn local_subscriber_count(&self, channel: &str) -> usize {
        self.inner.shared.hub.subscriber_count(channel)
    }

    fn presence_enter<'a>(
        &'a self,
        channel: &'a str,
        member: Bytes,
    ) -> BoxFuture<'a, Result<Interest, BackplaneError>> {
        Box::pin(async move {
            crate::presence::check_member(channel, &member)?;
            self.ready_for(channel).await?;
            self.inner.presence.enter(channel, member).await
        })
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::presence::PresenceEntry>, BackplaneError>> {
        Box::pin(async move {
            self.ready_for(channel).await?;
            let (members, _) = self.inner.presence.read(self, channel, false).await?;
            Ok(members)
        })
    }

    fn presence_count<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<usize, BackplaneError>> {
        Box::pin(async move {
            self.ready_for(channel).await?;
            let (_, count) = self.inner.presence.read(self, channel, true).await?;
            Ok(count)
        })
    }

    fn health(&self) -> Health {
        let shared = &self.inner.shared;
        match *shared.phase.borrow() {
            Phase::Closed => Health::down(CLOSED),
            Phase::Starting => Health::down("not connected to Redis yet"),
            Phase::Ready if !shared.stats.connected.load(Ordering::Relaxed) => {
                Health::degraded("the Redis pub/sub connection is down; reconnecting")
            }
            Phase::Ready => Health::ready(),
        }
    }

    fn diagnostics(&self) -> Diagnostics {
        let shared = &self.inner.shared;
        let stats = &shared.stats;
        let mut diagnostics = Diagnostics::from_counts(
            "redis",
            shared.hub.counts(),
            stats.published.load(Ordering::Relaxed),
        );
        diagnostics.redis = Some(RedisDiagnostics {
            connected: stats.connected.load(Ordering::Relaxed),
            reconnects: stats.reconnects.load(Ordering::Relaxed),
            subscribed_channels: stats.subscribed.load(Ordering::Relaxed),
            malformed_messages: stats.malformed.load(Ordering::Relaxed),
            recoveries: stats.recoveries.load(Ordering::Relaxed),
            refills_given_up: stats.refills_given_up.load(Ordering::Relaxed),
            ..RedisDiagnostics::default()
        });
        diagnostics
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Before closing: this instance's members leave now, not when their entries expire.
            if *self.inner.shared.phase.borrow() == Phase::Ready {
                self.inner.presence.close(self).await;
            }
            self.inner.closed.store(true, Ordering::Release);
            self.inner.shared.phase.send_replace(Phase::Closed);
            let (reply, done) = oneshot::channel();
            if self
                .inner
                .commands
                .send(Command::Shutdown { reply })
                .is_ok()
            {
                let wait = self.inner.shared.settings.command_timeout;
                let _ = tokio::time::timeout(wait + wait, done).await;
            }
            self.inner.shared.hub.clear();
        })
    }
}

/// The page a history read after `after` found: none of a stream that does not exist, which is
/// incomplete.
fn history_page(state: Option<envelope::StreamState>, after: EventId) -> HistoryPage {
    match state {
        None => HistoryPage::new(Vec::new(), false, false, EventId::default()),
        Some(state) => {
            let complete = state.covers(after);
            HistoryPage::new(state.events, complete, state.more, state.last)
        }
    }
}

/// The error of an operation refused with `kind` before it was sent.
fn refusal(kind: ErrorKind) -> BackplaneError {
    if kind == ErrorKind::NotConnected {
        not_connected()
    } else {
        BackplaneError::new(kind)
    }
}

/// The error of an operation before a lazily built transport first connected.
fn not_connected() -> BackplaneError {
    BackplaneError::with_source(
        ErrorKind::NotConnected,
        "the Redis backplane has not connected to Redis yet",
    )
}

/// Installs rustls's ring provider as the process default, unless the application installed one:
/// rustls needs one.
fn install_tls_provider() {
    #[cfg(feature = "redis-tls")]
    {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

impl fmt::Debug for RedisTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.inner.shared.settings;
        f.debug_struct("RedisTransport")
            .field("prefix", &self.inner.prefix)
            .field("history_len", &settings.history_len)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
impl Backplane {
    /// A backplane over Redis with `config`: the way to share events between server instances.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ChannelCollision`], before connecting, when two registered event types take
    /// the same name in one domain (the source names both: see
    /// [`registry::collisions`](crate::registry::collisions)); else as
    /// [`RedisTransport::connect`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use statelesse::{Backplane, RedisConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), statelesse::BackplaneError> {
    /// let bp = Backplane::redis(RedisConfig::new("redis://127.0.0.1:6379/")?.with_prefix("prod")).await?;
    /// println!("{:?}", bp.diagnostics().redis);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn redis(config: RedisConfig) -> Result<Self, BackplaneError> {
        refuse_collisions()?;
        Ok(Self::new(RedisTransport::connect(config).await?))
    }

    /// A backplane over Redis with `config` that returns at once and connects in the background,
    /// for a service that must start while Redis may be down: until the first connection,
    /// publishes fail with [`ErrorKind::NotConnected`] and new streams wait for it up to the
    /// connect timeout. See [`RedisTransport::connect_lazy`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ChannelCollision`] as [`Backplane::redis`]; else as
    /// [`RedisTransport::connect_lazy`]: only for an invalid configuration, or outside a Tokio
    /// runtime.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use statelesse::{Backplane, RedisConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), statelesse::BackplaneError> {
    /// let bp = Backplane::redis_lazy(RedisConfig::new("redis://redis.internal:6379/")?)?;
    /// // Serve at once; `bp.diagnostics().redis` says when Redis is connected.
    /// # drop(bp);
    /// # Ok(())
    /// # }
    /// ```
    pub fn redis_lazy(config: RedisConfig) -> Result<Self, BackplaneError> {
        refuse_collisions()?;
        Ok(Self::new(RedisTransport::connect_lazy(config)?))
    }

    /// A backplane over Redis through an existing `client`, with default settings (see
    /// [`RedisConfig::from_client`] to change them).
    ///
    /// # Errors
    ///
    /// As [`Backplane::redis`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use statelesse::Backplane;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1/")?;
    /// let bp = Backplane::redis_from_client(client).await?;
    /// # drop(bp);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn redis_from_client(client: ::redis::Client) -> Result<Self, BackplaneError> {
        Self::redis(RedisConfig::from_client(client)).await
    }
}

/// Refuses to start a Redis backplane while two registered event types share a channel: over
/// Redis the leak would reach other instances too, so it is an error at construction, not only
/// on each operation as in memory.
fn refuse_collisions() -> Result<(), BackplaneError> {
    crate::registry::check_unique_names()
        .map_err(|collision| BackplaneError::with_source(ErrorKind::ChannelCollision, collision))
}
