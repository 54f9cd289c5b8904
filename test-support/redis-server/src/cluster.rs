//! [`RedisCluster`]: a private Redis Cluster of three masters with one replica each, on free
//! ports, for the cluster tests and benchmarks.
//!
//! ```no_run
//! use statelesse_test_redis::RedisCluster;
//!
//! let mut cluster = RedisCluster::start();        // 3 masters + 3 replicas, cluster_state:ok
//! let seeds = cluster.urls();                      // every node's "redis://127.0.0.1:<port>/"
//! let master = cluster.master_of_slot(0);          // the node index serving slot 0
//! cluster.kill(master);                            // SIGKILL: its replica takes over
//! cluster.wait_until_healthy();                    // every slot served again
//! cluster.restart(master);                         // back, as the new master's replica
//! # drop(seeds);
//! ```

use std::io;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::RedisServer;

/// How long creating the cluster, or its recovery after a fault, may take (generous: on a
/// loaded machine, nodes may suspect each other for a while).
const CLUSTER_TIMEOUT: Duration = Duration::from_mins(1);

/// A running Redis Cluster on `127.0.0.1`: three masters and three replicas, each a
/// [`RedisServer`] killed when dropped.
///
/// Nodes time out after 1 s (`cluster-node-timeout`), so a killed master's replica is promoted
/// within about two seconds.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts six nodes on free ports, joins them with `redis-cli --cluster create …
    /// --cluster-replicas 1`, and waits until every node says `cluster_state:ok`.
    ///
    /// # Panics
    ///
    /// When a node cannot start, or the cluster is not ready within 60 seconds.
    #[must_use]
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|err| panic!("{err}"))
    }

    /// Starts the cluster as [`start`](Self::start) does, returning what went wrong instead.
    ///
    /// # Errors
    ///
    /// When a node cannot start, `redis-cli` fails, or the cluster is not ready in time.
    pub fn try_start() -> io::Result<Self> {
        let nodes = start_nodes(6)?;
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .map_err(|err| io::Error::new(err.kind(), format!("cannot run redis-cli ({err})")))?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&output.stdout)
            )));
        }
        let cluster = Self { nodes };
        cluster.try_wait_until_healthy()?;
        Ok(cluster)
    }

    /// Starts `masters` nodes on free ports without replicas, each serving an equal share of
    /// the slots (`CLUSTER MEET`, `CLUSTER ADDSLOTSRANGE`), and waits until the cluster is
    /// healthy: one master is a cluster of one shard, for comparing shard counts.
    ///
    /// # Errors
    ///
    /// When `masters` is 0, a node cannot start or refuses a step, or the cluster is not ready
    /// within 60 seconds.
    pub fn try_start_masters(masters: usize) -> io::Result<Self> {
        let count = u16::try_from(masters)
            .ok()
            .filter(|count| (1..=SLOTS).contains(count))
            .ok_or_else(|| io::Error::other("a cluster needs 1 to 16,384 masters"))?;
        let nodes = start_nodes(masters)?;
        for node in &nodes[1..] {
            // The bus port is given: it is not the data port + 10,000 (see `start_nodes`).
            let config = node.try_cmd(&["CONFIG", "GET", "cluster-port"])?;
            let bus = config.lines().last().unwrap_or_default();
            let port = node.port().to_string();
            nodes[0].try_cmd(&["CLUSTER", "MEET", "127.0.0.1", &port, bus])?;
        }
        for (index, node) in (0..count).zip(&nodes) {
            let start = (SLOTS / count) * index;
            let end = if index + 1 == count {
                SLOTS - 1
            } else {
                start + SLOTS / count - 1
            };
            node.try_cmd(&[
                "CLUSTER",
                "ADDSLOTSRANGE",
                &start.to_string(),
                &end.to_string(),
            ])?;
        }
        let cluster = Self { nodes };
        cluster.try_wait_until_healthy()?;
        Ok(cluster)
    }

    /// Every node's URL, `redis://127.0.0.1:<port>/`: seed nodes for a client.
    #[must_use]
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes, masters and replicas, in the order they were started.
    #[must_use]
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The index (in [`nodes`](Self::nodes)) of the running master that serves `slot`.
    ///
    /// # Panics
    ///
    /// When no running master claims it.
    #[must_use]
    pub fn master_of_slot(&self, slot: u16) -> usize {
        self.masters()
            .into_iter()
            .find(|(_, slots)| slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .map_or_else(
                || panic!("no master serves slot {slot}"),
                |(index, _)| index,
            )
    }

    /// The running masters: each one's index and the slot ranges it serves.
    #[must_use]
    pub fn masters(&self) -> Vec<(usize, Vec<(u16, u16)>)> {
        let Some(view) = self
            .live()
            .find_map(|(_, node)| node.try_cmd(&["CLUSTER", "NODES"]).ok())
        else {
            return Vec::new();
        };
        view.lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                let flags = *fields.get(2)?;
                if !flags.contains("master") || flags.contains("fail") {
                    return None;
                }
                let port: u16 = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                // A killed node may still be listed as a master until the others notice.
                let index = self
                    .nodes
                    .iter()
                    .position(|node| node.port() == port && node.pid().is_some())?;
                let slots = fields[8..]
                    .iter()
                    .filter(|range| !range.starts_with('['))
                    .filter_map(|range| match range.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => range.parse().ok().map(|slot| (slot, slot)),
                    })
                    .collect();
                Some((index, slots))
            })
            .collect()
    }

    /// The node id (`CLUSTER MYID`) of node `index`.
    ///
    /// # Panics
    ///
    /// When the node does not answer.
    #[must_use]
    pub fn node_id(&self, index: usize) -> String {
        self.nodes[index].cmd(&["CLUSTER", "MYID"])
    }

    /// Moves `slot` to the master at `to`, keys and all, as `redis-cli --cluster reshard` does
    /// for each slot: `SETSLOT … IMPORTING` on the target, `MIGRATING` on the source, `MIGRATE`
    /// of every key, then `SETSLOT … NODE` on the target, the source and the other masters.
    ///
    /// # Panics
    ///
    /// When a node refuses a step.
    pub fn move_slot(&self, slot: u16, to: usize) {
        let from = self.master_of_slot(slot);
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        let slot = slot.to_string();
        let step = |index: usize, args: &[&str]| {
            self.nodes[index]
                .try_cmd(args)
                .unwrap_or_else(|err| panic!("moving slot {slot}: {err}"))
        };
        step(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]);
        step(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
        let port = self.nodes[to].port().to_string();
        loop {
            let keys = step(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"]);
            let keys: Vec<&str> = keys.lines().filter(|key| !key.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            migrate.extend(keys);
            step(from, &migrate);
        }
        step(to, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        step(from, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        for (index, _) in self.masters() {
            if index != from && index != to {
                // Gossip would tell it too; this is faster.
                let _ = self.nodes[index].try_cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
            }
        }
    }

    /// Kills node `index` with SIGKILL; a master's replica takes over after the node timeout.
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Starts node `index` again after [`kill`](Self::kill), empty, on the same port with its
    /// cluster configuration: a master that was failed over rejoins as its successor's replica.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::restart`].
    pub fn restart(&mut self, index: usize) {
        self.nodes[index].restart();
    }

    /// Waits until every running node says `cluster_state:ok`, every running replica is in
    /// sync with its master, and every slot is served by a running master.
    ///
    /// # Panics
    ///
    /// When that does not happen within 60 seconds.
    pub fn wait_until_healthy(&self) {
        self.try_wait_until_healthy()
            .unwrap_or_else(|err| panic!("{err}"));
    }

    fn try_wait_until_healthy(&self) -> io::Result<()> {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let all_ok = self.live().all(|(_, node)| {
                node.try_cmd(&["CLUSTER", "INFO"])
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
                    && node.try_cmd(&["INFO", "replication"]).is_ok_and(|info| {
                        // A replica counts once it is in sync with its master.
                        info.contains("role:master") || info.contains("master_link_status:up")
                    })
            });
            let served: u32 = self
                .masters()
                .iter()
                .flat_map(|(_, slots)| slots)
                .map(|(a, b)| u32::from(b - a) + 1)
                .sum();
            if all_ok && served == 16_384 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the Redis Cluster did not become healthy within 60 seconds",
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process ids of the running nodes, for reading their CPU time.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(RedisServer::pid).collect()
    }

    fn live(&self) -> impl Iterator<Item = (usize, &RedisServer)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, node)| node.pid().is_some())
    }
}

/// How many hash slots a Redis Cluster has.
const SLOTS: u16 = 16_384;

/// Starts `count` cluster-enabled nodes, not yet joined.
fn start_nodes(count: usize) -> io::Result<Vec<RedisServer>> {
    (0..count)
        .map(|_| {
            // The cluster bus port is the data port + 10,000 unless given: free ports go up to
            // 60,999, which would put it past 65,535, or on another server's port.
            let bus = crate::free_port().to_string();
            let mut args = NODE_ARGS.to_vec();
            args.extend(["--cluster-port", &bus]);
            RedisServer::try_start_with(&args)
        })
        .collect()
}

/// The settings of every node.
const NODE_ARGS: [&str; 10] = [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    "nodes.conf",
    "--cluster-node-timeout",
    "1000",
    // A replica promoted after its master was killed may have missed nothing: there is no
    // persistence, so any age of its data is fine for the election.
    "--cluster-replica-validity-factor",
    "0",
    // A replica syncs at once, rather than waiting 5 s for others to share the transfer.
    "--repl-diskless-sync-delay",
    "0",
];
