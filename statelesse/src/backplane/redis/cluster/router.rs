//! The router: one task that decides which node each wanted channel lives on, and moves it when
//! the slot map changes.
//!
//! It owns the assignment of channels to nodes (no lock: one input at a time) and the reading of
//! the slot map. A local subscriber's `Ensure` goes to the node that owns the channel's slot; a
//! node that finds a channel is not its own any more (a `MOVED` reply, or its connection was
//! lost and a fresher map names another owner) hands it back here, with whoever waits for it,
//! and the router has the new owner adopt it: subscribe it, and have its subscribers recover
//! the gap from history. A channel a node reports moved while the map still names that node
//! waits for the next map (read at most every 100 ms while anything waits).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ::redis::{AsyncConnectionConfig, Client, ConnectionAddr, Value};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::topology::SlotMap;
use super::{Inner, Node, lock};
use crate::backplane::error::{BackplaneError, ErrorKind};
use crate::backplane::redis::config::Settings;
use crate::backplane::redis::publisher::redis_error;
use crate::backplane::redis::shared::{Phase, ShardReport};
use crate::backplane::redis::slot::key_slot;
use crate::backplane::redis::subscriber::{Command, Reply};
use crate::backplane::transport::BoxFuture;

/// The shortest wait between two reads of the slot map.
const REFRESH_GAP: Duration = Duration::from_millis(100);

/// How often the slot map is read while a node's pub/sub connection is down: its slots get a
/// new owner when a replica is promoted, which this notices within that.
const DOWN_REFRESH: Duration = Duration::from_millis(250);

/// The router task's state.
pub(super) struct Router {
    inner: Arc<Inner>,
    commands: mpsc::UnboundedReceiver<Command>,
    reports: mpsc::UnboundedReceiver<ShardReport>,
    /// The node each channel with local interest was handed to.
    assigned: HashMap<Box<str>, Arc<str>>,
    /// Channels reported moved while the map still named their node, with their waiters.
    pending: Vec<(Box<str>, Vec<Reply>)>,
    /// A read of the slot map is wanted as soon as the gap allows.
    refresh_due: bool,
    refreshing: bool,
    last_refresh: Instant,
    reads: FuturesUnordered<BoxFuture<'static, Result<SlotMap, BackplaneError>>>,
}

impl Router {
    pub(super) fn new(
        inner: Arc<Inner>,
        commands: mpsc::UnboundedReceiver<Command>,
        reports: mpsc::UnboundedReceiver<ShardReport>,
    ) -> Self {
        Self {
            inner,
            commands,
            reports,
            assigned: HashMap::new(),
            pending: Vec::new(),
            refresh_due: false,
            refreshing: false,
            last_refresh: Instant::now(),
            reads: FuturesUnordered::new(),
        }
    }

    /// Runs until shut down, or until the transport and every subscription are dropped.
    pub(super) async fn run(mut self) {
        loop {
            let next_read = self.next_read();
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
                Some(report) = self.reports.recv() => self.on_report(report),
                Some(read) = self.reads.next(), if !self.reads.is_empty() => self.on_read(read),
                () = self.inner.refresh.notified() => self.refresh_due = true,
                () = sleep_until(next_read) => self.read_map(),
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Ensure { channel, reply } => self.ensure(channel, reply),
            Command::Release { channel } => self.release(&channel),
            Command::Adopt { .. } | Command::Evict { .. } | Command::Shutdown { .. } => {}
        }
    }

    /// Hands `channel` to the node that owns its slot, once that node first connected (or its
    /// first attempt timed out, when the node answers `Unavailable` at once).
    fn ensure(&mut self, channel: Box<str>, reply: Reply) {
        let node = match self.owner(&channel) {
            Ok((address, node)) => {
                self.assigned.insert(channel.clone(), address);
                node
            }
            Err(err) => {
                self.refresh_due = true;
                let _ = reply.send(Err(err));
                return;
            }
        };
        let mut phase = node.shared.phase.subscribe();
        let wait = self.inner.settings.connect_timeout;
        // Waits apart, so that a node still connecting holds up no other channel.
        tokio::spawn(async move {
            let _ = tokio::time::timeout(wait, phase.wait_for(|p| *p != Phase::Starting)).await;
            let _ = node.commands.send(Command::Ensure { channel, reply });
        });
    }

    fn release(&mut self, channel: &str) {
        if let Some(node) = self
            .assigned
            .get(channel)
            .and_then(|address| lock(&self.inner.nodes).get(address).cloned())
        {
            let _ = node.commands.send(Command::Release {
                channel: channel.into(),
            });
        }
        if !self.wanted(channel) {
            self.assigned.remove(channel);
        }
    }

    fn wanted(&self, channel: &str) -> bool {
        self.inner.hub.subscriber_count(channel) > 0
    }

    /// The address and node of the master that owns `channel`'s slot, by the current map.
    fn owner(&self, channel: &str) -> Result<(Arc<str>, Arc<Node>), BackplaneError> {
        let slot = key_slot(channel.as_bytes());
        let map = self.inner.map();
        let address = map.owner(slot).cloned().ok_or_else(|| {
            BackplaneError::with_source(
                ErrorKind::Unavailable,
                format!("no node of the Redis Cluster serves slot {slot}"),
            )
        })?;
        let node = self.inner.node(&address)?;
        Ok((address, node))
    }

    fn on_report(&mut self, report: ShardReport) {
        match report {
            ShardReport::Moved {
                from,
                channel,
                waiters,
            } => self.moved(&from, channel, waiters),
            ShardReport::Down { from } => {
                tracing::debug!(
                    node = &*from,
                    "a cluster node's pub/sub connection was lost"
                );
                self.refresh_due = true;
            }
        }
    }

    /// The node at `from` gave `channel` up: its owner by the current map adopts it, unless
    /// that is still `from` (the map is stale), when it waits for the next map.
    fn moved(&mut self, from: &Arc<str>, channel: Box<str>, waiters: Vec<Reply>) {
        if waiters.is_empty() && !self.wanted(&channel) {
            if self.assigned.get(&channel) == Some(from) {
                self.assigned.remove(&channel);
            }
            return;
        }
        match self.owner(&channel) {
            Ok((address, node)) if address != *from => {
                self.assigned.insert(channel.clone(), address);
                let _ = node.commands.send(Command::Adopt { channel, waiters });
            }
            _ => {
                self.refresh_due = true;
                self.pending.push((channel, waiters));
            }
        }
    }

    /// When to read the slot map next: soon when asked to, often while a node with channels is
    /// unreachable, else every health check interval.
    fn next_read(&self) -> Option<Instant> {
        if self.refreshing {
            return None;
        }
        // Nodes are few (a cluster's masters, and those leaving): cheap to check each time.
        let node_down = lock(&self.inner.nodes).values().any(|node| {
            !node
                .shared
                .stats
                .connected
                .load(std::sync::atomic::Ordering::Relaxed)
        });
        let wait = if self.refresh_due || !self.pending.is_empty() {
            REFRESH_GAP
        } else if node_down {
            DOWN_REFRESH
        } else {
            self.inner.settings.health_check
        };
        Some(self.last_refresh + wait)
    }

    fn read_map(&mut self) {
        self.refreshing = true;
        self.refresh_due = false;
        self.last_refresh = Instant::now();
        let inner = Arc::clone(&self.inner);
        self.reads.push(Box::pin(async move {
            // Nodes whose pub/sub connection is up first: they are the likeliest to answer.
            let mut clients: Vec<(bool, Client)> = lock(&inner.nodes)
                .values()
                .map(|node| {
                    let up = node
                        .shared
                        .stats
                        .connected
                        .load(std::sync::atomic::Ordering::Relaxed);
                    (!up, node.shared.client.clone())
                })
                .collect();
            clients.sort_by_key(|(down, _)| *down);
            let candidates: Vec<Client> = clients
                .into_iter()
                .map(|(_, client)| client)
                .chain(std::iter::once(inner.client.clone()))
                .chain(inner.seeds.iter().cloned())
                .collect();
            fetch_map(&inner.settings, &candidates).await
        }));
    }

    fn on_read(&mut self, read: Result<SlotMap, BackplaneError>) {
        self.refreshing = false;
        let map = match read {
            Ok(map) => map,
            Err(err) => {
                tracing::warn!(error = %err, "reading the Redis Cluster's slot map failed");
                self.refresh_due = true;
                return;
            }
        };
        let changed = *self.inner.map() != map;
        *lock(&self.inner.map) = Arc::new(map);
        self.inner.version.send_modify(|version| *version += 1);
        if changed {
            tracing::info!("the Redis Cluster's slot map changed");
            self.rehome();
        }
        for (channel, waiters) in std::mem::take(&mut self.pending) {
            // Even when the map still names the node that gave it up: it takes it back, and a
            // MOVED brings it here again, one map read later.
            match self.owner(&channel) {
                Ok((address, _)) => self.adopt_at(channel, waiters, &address),
                Err(err) => {
                    for waiter in waiters {
                        let _ = waiter.send(Err(BackplaneError::with_source(
                            err.kind(),
                            err.to_string(),
                        )));
                    }
                    if self.wanted(&channel) {
                        self.pending.push((channel, Vec::new()));
                    }
                }
            }
        }
        self.forget_idle_nodes();
    }

    /// Moves every channel whose slot has another owner now: its node evicts it and reports it
    /// moved, and its new owner adopts it.
    fn rehome(&mut self) {
        let map = self.inner.map();
        let nodes = lock(&self.inner.nodes).clone();
        for (channel, address) in &self.assigned {
            let owner = map.owner(key_slot(channel.as_bytes()));
            if owner != Some(address)
                && let Some(node) = nodes.get(address)
            {
                let _ = node.commands.send(Command::Evict {
                    channel: channel.clone(),
                });
            }
        }
    }

    fn adopt_at(&mut self, channel: Box<str>, waiters: Vec<Reply>, address: &Arc<str>) {
        match self.inner.node(address) {
            Ok(node) => {
                self.assigned.insert(channel.clone(), Arc::clone(address));
                let _ = node.commands.send(Command::Adopt { channel, waiters });
            }
            Err(err) => {
                for waiter in waiters {
                    let _ = waiter.send(Err(BackplaneError::new(err.kind())));
                }
            }
        }
    }

    /// Stops the nodes that are no masters any more and hold no channel: dropping a node ends
    /// its subscriber task.
    fn forget_idle_nodes(&self) {
        let masters = self.inner.map().masters();
        let mut nodes = lock(&self.inner.nodes);
        nodes.retain(|address, _| {
            masters.contains(address) || self.assigned.values().any(|a| a == address)
        });
    }

    async fn shutdown(&mut self) {
        let nodes: Vec<Arc<Node>> = lock(&self.inner.nodes).drain().map(|(_, n)| n).collect();
        let wait = self.inner.settings.command_timeout;
        let stops = nodes.iter().map(|node| {
            let (reply, done) = oneshot::channel();
            let sent = node.commands.send(Command::Shutdown { reply }).is_ok();
            async move {
                if sent {
                    let _ = tokio::time::timeout(wait + wait, done).await;
                }
            }
        });
        futures_util::future::join_all(stops).await;
        // The transport is closed: its connection gauge says 0, as one Redis's does.
        self.inner.stats.set_connected(false);
        for (_, waiters) in self.pending.drain(..) {
            for waiter in waiters {
                let _ = waiter.send(Err(BackplaneError::new(ErrorKind::Closed)));
            }
        }
        self.assigned.clear();
    }
}

/// Reads the slot map from the first of `clients` that answers `CLUSTER SLOTS` with one, each
/// on a connection of its own bounded by the connect and command timeouts.
pub(super) async fn fetch_map<'a>(
    settings: &Settings,
    clients: impl IntoIterator<Item = &'a Client>,
) -> Result<SlotMap, BackplaneError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(settings.connect_timeout))
        .set_response_timeout(Some(settings.command_timeout));
    let mut last = BackplaneError::with_source(ErrorKind::Config, "no seed node given");
    for client in clients {
        let read = async {
            let mut con = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            ::redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async::<Value>(&mut con)
                .await
        };
        let value = match tokio::time::timeout(settings.call_timeout(), read).await {
            Ok(Ok(value)) => value,
            Ok(Err(err)) => {
                last = redis_error(err);
                continue;
            }
            Err(_) => {
                last = BackplaneError::new(ErrorKind::Timeout);
                continue;
            }
        };
        match SlotMap::parse(value, host_of(client)) {
            Ok(map) if map.masters().is_empty() => {
                last = BackplaneError::with_source(
                    ErrorKind::Unavailable,
                    "a node answered CLUSTER SLOTS with no slots",
                );
            }
            Ok(map) => return Ok(map),
            Err(reason) => last = BackplaneError::with_source(ErrorKind::Protocol, reason),
        }
    }
    Err(last)
}

/// The host `client` connects to.
fn host_of(client: &Client) -> &str {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host,
        _ => "",
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
