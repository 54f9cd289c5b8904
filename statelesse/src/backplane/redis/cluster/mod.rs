//! [`RedisClusterTransport`]: the Redis backplane on a Redis Cluster, each channel's traffic on
//! the shard that owns its slot (sharded pub/sub).
//!
//! Each node is driven by the one-Redis pieces, unchanged in what they promise: its own
//! publisher and reader connections with the batching queue, and its own subscriber task (in
//! sharded mode) with its own wanted-channel list; all of them share one hub. The
//! [`router`] task decides which node each wanted channel lives on, and moves channels when the
//! slot map changes.

mod router;
mod topology;

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error as _;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ::redis::{Client, ConnectionAddr, RedisError};
use bytes::Bytes;
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::config::{RedisConfig, Settings};
use super::envelope::{Names, Scripts};
use super::presence::{Presence, Store};
use super::publisher::{self, Batcher};
use super::shared::{Phase, Shard, ShardReport, Shared, Stats};
use super::slot::key_slot;
use super::subscriber::{self, Command, Subscriber};
use super::{history_page, install_tls_provider, refuse_collisions, run_script, subscribe_through};
use crate::backplane::Backplane;
use crate::backplane::error::{BackplaneError, ErrorKind};
use crate::backplane::hub::Hub;
use crate::backplane::replay::config::ReplayConfig;
use crate::backplane::transport::{
    BoxFuture, HistoryPage, Interest, LiveFeed, OutgoingEvent, PageLimits, Transport,
};
use crate::diagnostics::{Diagnostics, RedisDiagnostics, ShardDiagnostics};
use crate::health::{CLOSED, Health, HealthStatus};
use crate::id::EventId;
use router::Router;
use topology::SlotMap;

/// How many times an operation refused because its slot moved (`MOVED`, `ASK`, `TRYAGAIN`,
/// `CLUSTERDOWN`) or its node refused the connection is tried again, each after the slot map
/// was read again.
const MAX_REDIRECTS: usize = 3;

/// The Redis transport on a Redis Cluster (feature `redis-cluster`); build a [`Backplane`]
/// over it with [`Backplane::redis_cluster`].
///
/// It keeps every promise of [`RedisTransport`](crate::RedisTransport), with the same names
/// and formats on Redis, and spreads the channels over the cluster's shards by hash slot: a
/// channel's stream and pub/sub channel share a slot (the channel is their hash tag), so each
/// channel lives on one shard, and adding shards adds capacity.
///
/// # Publishing
///
/// The publish script runs on the master that owns the channel's slot, appending to the stream
/// and `SPUBLISH`ing the envelope, so the message reaches only that shard (classic `PUBLISH`
/// would be broadcast to every node of the cluster). Publishes are batched per node as on one
/// Redis; since a script's keys must share a slot, a batch becomes one script call per slot,
/// all sent at once. A publish refused because the slot moved, or whose node refuses
/// connections (it died), is sent again after the slot map is read again, up to 3 times: it was
/// not run, so it cannot be appended twice. Any other failure (a timeout, a connection lost
/// mid-call) is returned, as on one Redis: every publish is either delivered or reported failed.
///
/// # Subscribing
///
/// Each node that serves a channel with local subscribers has one pub/sub connection of this
/// instance, which `SSUBSCRIBE`s the channel on its first local subscriber and `SUNSUBSCRIBE`s it
/// on its last, one channel per command. Each of these connections keeps its own list of wanted
/// channels, and does not rely on the client library to subscribe again:
///
/// - after a reconnect, every wanted channel is subscribed again, one at a time; one the node
///   refuses with `MOVED` is subscribed on the node that owns its slot now;
/// - when a slot moves away (a reshard), the node unsubscribes its channels itself with an
///   unsolicited `SUNSUBSCRIBE`: the connection is dropped and opened again, and each channel
///   subscribed on its slot's owner;
/// - when a node dies, its connection is lost: the slot map is read again (every 250 ms until
///   the node is back or its slots have a new owner), and each channel moves to the replica
///   promoted in its place.
///
/// Once subscribed again, a channel's subscribers recover what they missed from the stream,
/// exactly as after a reconnect on one Redis: no loss, no duplicate, or a [`Gap`](crate::Gap).
/// The slot map is also read every [health check interval](RedisConfig::with_health_check_interval),
/// so a moved slot is noticed even on an idle channel.
///
/// # Diagnostics
///
/// [`RedisDiagnostics`] sums the nodes' counters, and lists each node in
/// [`shards`](RedisDiagnostics::shards): whether its pub/sub connection is up, its subscribed
/// channels, reconnects, recoveries (refills from history) and the slot moves it saw.
///
/// # Examples
///
/// ```no_run
/// use statelesse::{Backplane, RedisClusterTransport, RedisConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), statelesse::BackplaneError> {
/// let config = RedisConfig::cluster(["redis://10.0.0.1:7000/", "redis://10.0.0.2:7000/"])?;
/// let bp = Backplane::new(RedisClusterTransport::connect(config).await?);
/// # drop(bp);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisClusterTransport {
    inner: Arc<Inner>,
}

/// What the transport handle and the router share.
struct Inner {
    hub: Arc<Hub<()>>,
    names: Names,
    settings: Settings,
    /// Every node is reached as this client is (credentials, TLS), at its own address.
    client: Client,
    /// Further nodes to ask for the slot map.
    seeds: Vec<Client>,
    map: Mutex<Arc<SlotMap>>,
    /// Counts the slot maps read: a caller waiting for a fresher map waits for it to grow.
    version: watch::Sender<u64>,
    /// Wakes the router to read the slot map again.
    refresh: Notify,
    nodes: Mutex<HashMap<Arc<str>, Arc<Node>>>,
    reports: mpsc::UnboundedSender<ShardReport>,
    /// The router's requests: `Ensure`, `Release`, `Shutdown`.
    commands: mpsc::UnboundedSender<Command>,
    closed: AtomicBool,
    prefix: String,
    replay: ReplayConfig,
    /// The cluster's own counters (refills given up), whose `connected` gauge every shard's
    /// connection shares.
    stats: Stats,
    /// This instance's members, and the task that writes them.
    presence: Arc<Presence>,
}

/// One node (a master) of the cluster, driven by the one-Redis pieces.
struct Node {
    shared: Arc<Shared>,
    batcher: Arc<Batcher>,
    /// Its subscriber task's requests; the task ends when this is dropped.
    commands: mpsc::UnboundedSender<Command>,
}

impl RedisClusterTransport {
    /// Connects to the cluster of `config`'s seed nodes: reads the slot map from the first that
    /// answers, opens a pub/sub connection to every master, and starts the router.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] for an invalid configuration; [`ErrorKind::Unavailable`] when no
    /// seed node answers `CLUSTER SLOTS` or a master cannot be reached, or not every slot is
    /// served; [`ErrorKind::Timeout`] when that takes longer than the connect and command
    /// timeouts.
    pub async fn connect(config: RedisConfig) -> Result<Self, BackplaneError> {
        config.validate()?;
        install_tls_provider();
        let settings = config.settings();
        let map = router::fetch_map(
            &settings,
            std::iter::once(&config.client).chain(&config.seeds),
        )
        .await?;
        if !map.is_complete() {
            return Err(BackplaneError::with_source(
                ErrorKind::Unavailable,
                "the Redis Cluster does not serve every slot",
            ));
        }
        let (reports, reports_receiver) = mpsc::unbounded_channel();
        let (commands, commands_receiver) = mpsc::unbounded_channel();
        let settings_presence_ttl = settings.presence_ttl;
        let inner = Arc::new(Inner {
            hub: Arc::new(Hub::new(settings.buffer)),
            names: Names::new(&config.prefix),
            settings,
            client: config.client,
            seeds: config.seeds,
            map: Mutex::new(Arc::new(map)),
            version: watch::Sender::new(0),
            refresh: Notify::new(),
            nodes: Mutex::new(HashMap::new()),
            reports,
            commands,
            closed: AtomicBool::new(false),
            prefix: config.prefix,
            replay: config.replay,
            stats: Stats::default(),
            presence: Presence::new(settings_presence_ttl),
        });
        let masters = inner.map().masters();
        let mut phases = Vec::with_capacity(masters.len());
        for address in &masters {
            phases.push(inner.node(address)?.shared.phase.subscribe());
        }
        tokio::spawn(Router::new(Arc::clone(&inner), commands_receiver, reports_receiver).run());
        let weak = Arc::downgrade(&inner);
        inner
            .presence
            .spawn(move || weak.upgrade().map(|inner| Self { inner }));
        let transport = Self { inner };
        let connected = async {
            for phase in &mut phases {
                let _ = phase.wait_for(|p| *p != Phase::Starting).await;
            }
        };
        if tokio::time::timeout(transport.inner.settings.open_timeout(), connected)
            .await
            .is_err()
        {
            transport.shutdown().await;
            return Err(BackplaneError::with_source(
                ErrorKind::Unavailable,
                "a master of the Redis Cluster could not be reached",
            ));
        }
        Ok(transport)
    }

    /// The prefix of every key and channel name this transport uses.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The sharded pub/sub channel carrying `channel`: `{prefix}:{<channel>}`, as on one Redis.
    #[must_use]
    pub fn pubsub_channel(&self, channel: &str) -> String {
        self.inner.names.pubsub(channel)
    }

    /// The key of `channel`'s history stream: `{prefix}:h:{<channel>}`, as on one Redis.
    #[must_use]
    pub fn stream_key(&self, channel: &str) -> String {
        self.inner.names.stream(channel)
    }

    fn check_open(&self, channel: &str) -> Result<(), BackplaneError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(BackplaneError::new(ErrorKind::Closed).on_channel(channel))
        } else {
            Ok(())
        }
    }

    /// Publishes `events`, each on the node that owns its channel's slot; what was refused
    /// because a slot moved or a node died goes again after the slot map was read again.
    async fn publish_events(
        &self,
        events: &[(Box<str>, Cow<'static, str>, Bytes)],
    ) -> Vec<Result<EventId, BackplaneError>> {
        let mut results: Vec<Option<Result<EventId, BackplaneError>>> =
            events.iter().map(|_| None).collect();
        let mut todo: Vec<usize> = (0..events.len()).collect();
        for attempt in 0..=MAX_REDIRECTS {
            let version = *self.inner.version.borrow();
            let mut groups: Vec<(Arc<Node>, Vec<usize>)> = Vec::new();
            let mut unrouted = Vec::new();
            for index in todo.drain(..) {
                match self.inner.route(&events[index].0) {
                    Ok(node) => match groups.iter_mut().find(|(n, _)| Arc::ptr_eq(n, &node)) {
                        Some((_, group)) => group.push(index),
                        None => groups.push((node, vec![index])),
                    },
                    Err(err) => unrouted.push((index, err)),
                }
            }
            let sends = groups.iter().map(|(node, group)| {
                publisher::publish(
                    &node.shared,
                    &node.batcher,
                    group.iter().map(|&index| events[index].clone()),
                )
            });
            let answers = futures_util::future::join_all(sends).await;
            let last = attempt == MAX_REDIRECTS;
            for ((_, group), answer) in groups.iter().zip(answers) {
                for (&index, result) in group.iter().zip(answer) {
                    match result {
                        Err(err) if !last && is_retryable(&err) => todo.push(index),
                        result => results[index] = Some(result),
                    }
                }
            }
            for (index, err) in unrouted {
                if last {
                    results[index] = Some(Err(err));
                } else {
                    todo.push(index);
                }
            }
            if todo.is_empty() {
                break;
            }
            todo.sort_unstable();
            self.inner.fresher_map(version).await;
        }
        results
            .into_iter()
            .zip(events)
            .map(|(result, (channel, _, _))| {
                result.unwrap_or_else(|| Err(publisher::no_result().on_channel(channel)))
            })
            .collect()
    }
}

impl Inner {
    fn map(&self) -> Arc<SlotMap> {
        Arc::clone(&lock(&self.map))
    }

    /// The node that owns `channel`'s slot, by the current map.
    fn route(&self, channel: &str) -> Result<Arc<Node>, BackplaneError> {
        let slot = key_slot(channel.as_bytes());
        let map = self.map();
        let address = map.owner(slot).ok_or_else(|| {
            BackplaneError::with_source(
                ErrorKind::Unavailable,
                format!("no node of the Redis Cluster serves slot {slot}"),
            )
            .on_channel(channel)
        })?;
        self.node(address)
    }

    /// The node at `address`, started (its connections opened in the background) if new.
    fn node(&self, address: &Arc<str>) -> Result<Arc<Node>, BackplaneError> {
        let mut nodes = lock(&self.nodes);
        if let Some(node) = nodes.get(address) {
            return Ok(Arc::clone(node));
        }
        let client = node_client(&self.client, address)?;
        let publisher = publisher::connect_lazy(&client, &self.settings)?;
        let reader = publisher::connect_lazy(&client, &self.settings)?;
        let shared = Arc::new(Shared {
            hub: Arc::clone(&self.hub),
            names: self.names.clone(),
            scripts: Scripts::sharded(),
            publisher,
            reader,
            client,
            settings: self.settings.clone(),
            stats: self.stats.sibling(),
            phase: watch::Sender::new(Phase::Starting),
            shard: Some(Shard {
                address: Arc::clone(address),
                reports: self.reports.clone(),
            }),
        });
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(Subscriber::starting(Arc::clone(&shared), receiver).run());
        let node = Arc::new(Node {
            shared,
            batcher: Arc::default(),
            commands,
        });
        nodes.insert(Arc::clone(address), Arc::clone(&node));
        Ok(node)
    }

    /// Asks the router to read the slot map again, and waits (at most a call timeout) until a
    /// map newer than `version` was read.
    async fn fresher_map(&self, version: u64) {
        let mut versions = self.version.subscribe();
        self.refresh.notify_one();
        let _ = tokio::time::timeout(
            self.settings.call_timeout(),
            versions.wait_for(|v| *v > version),
        )
        .await;
    }
}

/// The client for the node at `address` (`host:port`): `seed`'s settings, with that address.
fn node_client(seed: &Client, address: &str) -> Result<Client, BackplaneError> {
    let bad = || {
        BackplaneError::with_source(
            ErrorKind::Protocol,
            format!(
                "the cluster named a node at `{}`, not host:port",
                address.escape_debug()
            ),
        )
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let info = seed.get_connection_info().clone();
    let addr = match info.addr().clone() {
        ConnectionAddr::TcpTls {
            insecure,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure,
            tls_params,
        },
        _ => ConnectionAddr::Tcp(host.to_owned(), port),
    };
    Client::open(info.set_addr(addr))
        .map_err(|err| BackplaneError::with_source(ErrorKind::Config, err))
}

/// Whether `err` refused an operation before it ran, because its slot has another owner now or
/// its node is gone: worth sending again once the slot map was read again.
fn is_retryable(err: &BackplaneError) -> bool {
    err.source()
        .and_then(|source| source.downcast_ref::<RedisError>())
        .is_some_and(|err| subscriber::is_redirect(err) || err.is_connection_refusal())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps, consistent whatever panicked while holding them.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Transport for RedisClusterTransport {
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        event: Cow<'static, str>,
        data: Bytes,
    ) -> BoxFuture<'a, Result<EventId, BackplaneError>> {
        Box::pin(async move {
            self.check_open(channel)?;
            let results = self.publish_events(&[(channel.into(), event, data)]).await;
            publisher::lone_result(results, channel)
        })
    }

    fn publish_many(
        &self,
        events: Vec<OutgoingEvent>,
    ) -> BoxFuture<'_, Vec<Result<EventId, BackplaneError>>> {
        Box::pin(async move {
            if self.inner.closed.load(Ordering::Acquire) {
                return events
                    .iter()
                    .map(|event| {
                        Err(BackplaneError::new(ErrorKind::Closed).on_channel(&event.channel))
                    })
                    .collect();
            }
            let events: Vec<_> = events
                .into_iter()
                .map(|event| (event.channel.into_boxed_str(), event.event, event.data))
                .collect();
            self.publish_events(&events).await
        })
    }

    fn subscribe<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<LiveFeed, BackplaneError>> {
        Box::pin(async move {
            self.check_open(channel)?;
            let settings = &self.inner.settings;
            subscribe_through(
                &self.inner.hub,
                &self.inner.commands,
                settings.call_timeout() + settings.connect_timeout,
                channel,
            )
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
            self.check_open(channel)?;
            let page = (limits.events > 0).then_some((after, limits));
            let mut attempt = 0;
            loop {
                let version = *self.inner.version.borrow();
                let read = match self.inner.route(channel) {
                    Ok(node) => publisher::read_stream(&node.shared, channel, page).await,
                    Err(err) => Err(err),
                };
                match read {
                    Ok(state) => return Ok(history_page(state, after)),
                    Err(err) if attempt < MAX_REDIRECTS && is_retryable(&err) => {
                        attempt += 1;
                        self.inner.fresher_map(version).await;
                    }
                    Err(err) => return Err(err.on_channel(channel)),
                }
            }
        })
    }

    fn replay_config(&self) -> ReplayConfig {
        self.inner.replay.clone()
    }

    fn refill_given_up(&self, _channel: &str) {
        self.inner.stats.count_refill_given_up();
    }

    fn local_subscriber_count(&self, channel: &str) -> usize {
        self.inner.hub.subscriber_count(channel)
    }

    fn presence_enter<'a>(
        &'a self,
        channel: &'a str,
        member: Bytes,
    ) -> BoxFuture<'a, Result<Interest, BackplaneError>> {
        Box::pin(async move {
            self.check_open(channel)?;
            crate::presence::check_member(channel, &member)?;
            self.inner.presence.enter(channel, member).await
        })
    }

    fn presence<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::presence::PresenceEntry>, BackplaneError>> {
        Box::pin(async move {
            self.check_open(channel)?;
            let (members, _) = self.inner.presence.read(self, channel, false).await?;
            Ok(members)
        })
    }

    fn presence_count<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<usize, BackplaneError>> {
        Box::pin(async move {
            self.check_open(channel)?;
            let (_, count) = self.inner.presence.read(self, channel, true).await?;
            Ok(count)
        })
    }

    /// Ready while every master's pub/sub connection is up, as [`RedisDiagnostics::connected`]
    /// says; degraded, with a reason per shard down, while some are reconnecting.
    fn health(&self) -> Health {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Health::down(CLOSED);
        }
        let masters = inner.map().masters();
        if masters.is_empty() {
            return Health::down("no Redis Cluster master is known");
        }
        let mut health = Health::ready();
        for (address, node) in lock(&inner.nodes).iter() {
            if masters.contains(address) && !node.shared.stats.connected.load(Ordering::Relaxed) {
                health.status = HealthStatus::Degraded;
                health.reasons.push(Cow::Owned(format!(
                    "the Redis pub/sub connection to shard {address} is down; reconnecting"
                )));
            }
        }
        health.reasons.sort();
        health
    }

    fn diagnostics(&self) -> Diagnostics {
        let inner = &self.inner;
        let masters = inner.map().masters();
        let mut nodes: Vec<(Arc<str>, Arc<Node>)> = lock(&inner.nodes)
            .iter()
            .map(|(address, node)| (Arc::clone(address), Arc::clone(node)))
            .collect();
        nodes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut redis = RedisDiagnostics {
            connected: !masters.is_empty(),
            refills_given_up: inner.stats.refills_given_up.load(Ordering::Relaxed),
            ..RedisDiagnostics::default()
        };
        let mut published = 0;
        for (address, node) in &nodes {
            let stats = &node.shared.stats;
            let shard = ShardDiagnostics::new(
                address.to_string(),
                stats.connected.load(Ordering::Relaxed),
                stats.subscribed.load(Ordering::Relaxed),
                stats.reconnects.load(Ordering::Relaxed),
                stats.recoveries.load(Ordering::Relaxed),
                stats.migrations.load(Ordering::Relaxed),
            );
            if masters.contains(address) {
                redis.connected &= shard.connected;
            }
            redis.reconnects += shard.reconnects;
            redis.subscribed_channels += shard.subscribed_channels;
            redis.recoveries += shard.recoveries;
            redis.migrations += shard.migrations;
            redis.malformed_messages += stats.malformed.load(Ordering::Relaxed);
            published += stats.published.load(Ordering::Relaxed);
            redis.shards.push(shard);
        }
        let mut diagnostics =
            Diagnostics::from_counts("redis-cluster", inner.hub.counts(), published);
        diagnostics.redis = Some(redis);
        diagnostics
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Before closing: this instance's members leave now, not when their entries expire.
            self.inner.presence.close(self).await;
            self.inner.closed.store(true, Ordering::Release);
            let (reply, done) = oneshot::channel();
            if self
                .inner
                .commands
                .send(Command::Shutdown { reply })
                .is_ok()
            {
                let wait = self.inner.settings.command_timeout;
                let _ = tokio::time::timeout(wait + wait, done).await;
            }
            self.inner.hub.clear();
        })
    }
}

impl Store for RedisClusterTransport {
    /// On the master of `channel`'s slot, read again from the cluster when the slot moved.
    fn run<'a>(
        &'a self,
        channel: &'a str,
        script: &'a ::redis::Script,
        keys: [String; 3],
        args: Vec<Vec<u8>>,
    ) -> BoxFuture<'a, Result<::redis::Value, BackplaneError>> {
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                let version = *self.inner.version.borrow();
                let result = match self.inner.route(channel) {
                    Ok(node) => {
                        run_script(&node.shared, channel, script, keys.clone(), args.clone()).await
                    }
                    Err(err) => Err(err),
                };
                match result {
                    Err(err) if attempt < MAX_REDIRECTS && is_retryable(&err) => {
                        attempt += 1;
                        self.inner.fresher_map(version).await;
                    }
                    result => return result,
                }
            }
        })
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
        self.inner.stats.count_malformed();
    }
}

impl fmt::Debug for RedisClusterTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterTransport")
            .field("prefix", &self.inner.prefix)
            .field("history_len", &self.inner.settings.history_len)
            .field("masters", &self.inner.map().masters())
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
impl Backplane {
    /// A backplane over a Redis Cluster with `config` (see [`RedisConfig::cluster`]): channels
    /// spread over the cluster's shards by hash slot, with sharded pub/sub. See
    /// [`RedisClusterTransport`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ChannelCollision`] as [`Backplane::redis`]; else as
    /// [`RedisClusterTransport::connect`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use statelesse::{Backplane, RedisConfig};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), statelesse::BackplaneError> {
    /// let config = RedisConfig::cluster(["redis://10.0.0.1:7000/", "redis://10.0.0.2:7000/"])?;
    /// let bp = Backplane::redis_cluster(config.with_prefix("prod")).await?;
    /// println!("{:?}", bp.diagnostics().redis.map(|redis| redis.shards));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn redis_cluster(config: RedisConfig) -> Result<Self, BackplaneError> {
        refuse_collisions()?;
        Ok(Self::new(RedisClusterTransport::connect(config).await?))
    }
}
