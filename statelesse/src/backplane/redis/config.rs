//! [`RedisConfig`]: where the Redis backplane connects and how it behaves, and the [`Settings`]
//! the running transport keeps from it.

use crate::backplane::replay::config::ReplayConfig;
use std::fmt;
use std::time::Duration;

use ::redis::{Client, ConnectionAddr, IntoConnectionInfo, ProtocolVersion};

use crate::backplane::error::{BackplaneError, ErrorKind};

/// Settings of the Redis backplane: the server, the channel prefix, history and timeouts.
///
/// Built from a URL with [`new`](Self::new) or from an existing client with
/// [`from_client`](Self::from_client), then adjusted with the `with_*` methods. The connection
/// always uses RESP3 (push-based pub/sub needs it), whatever the URL's `protocol` says. With
/// the `redis-tls` feature, TLS goes through rustls with its ring provider, installed as the
/// process default unless the application installed one first.
///
/// | setting | default |
/// |---|---|
/// | [prefix](Self::with_prefix) | `statelesse` |
/// | [history length](Self::with_history_len) per channel | 1,000 events (`0` = off) |
/// | [history time-to-live](Self::with_history_ttl) after a channel's last publish | 1 hour |
/// | [connect timeout](Self::with_connect_timeout) | 2 s |
/// | [command timeout](Self::with_command_timeout) | 2 s |
/// | [reconnect backoff](Self::with_reconnect_backoff) | 100 ms doubling to 5 s, with jitter |
/// | [health check](Self::with_health_check_interval) of the pub/sub connection | every 5 s |
/// | [subscriber buffer](Self::with_subscriber_buffer) | 1,024 events |
/// | [replica acknowledgements](Self::with_replica_acks) awaited by each publish | 0 (none) |
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use statelesse::{Backplane, RedisConfig};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), statelesse::BackplaneError> {
/// let config = RedisConfig::new("redis://:secret@127.0.0.1:6379/2")?
///     .with_prefix("dev")
///     .with_history_len(500)
///     .with_command_timeout(Duration::from_secs(1));
/// let bp = Backplane::redis(config).await?;
/// # drop(bp);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisConfig {
    pub(super) client: Client,
    pub(super) prefix: String,
    pub(super) history_len: usize,
    pub(super) history_ttl: Option<Duration>,
    pub(super) connect_timeout: Duration,
    pub(super) command_timeout: Duration,
    pub(super) reconnect_min: Duration,
    pub(super) reconnect_max: Duration,
    pub(super) health_check: Duration,
    pub(super) subscriber_buffer: usize,
    pub(super) replica_acks: u32,
    pub(super) replay: ReplayConfig,
    pub(super) presence_ttl: Duration,
    /// Further nodes to ask for a cluster's layout when the first one (`client`) cannot answer.
    pub(super) seeds: Vec<Client>,
}

/// The default time-to-live of an instance's presence entries: 15 seconds.
pub(super) const DEFAULT_PRESENCE_TTL: Duration = Duration::from_secs(15);

/// The shortest presence TTL accepted: the heartbeat runs every third of it.
const SHORTEST_PRESENCE_TTL: Duration = Duration::from_millis(300);

/// The longest timeout, backoff or interval accepted: a day.
const LONGEST_WAIT: Duration = Duration::from_hours(24);

/// The longest history TTL accepted: about a hundred years.
const LONGEST_TTL: Duration = Duration::from_hours(100 * 365 * 24);

impl RedisConfig {
    /// The default channel prefix.
    pub const DEFAULT_PREFIX: &'static str = "statelesse";

    /// Settings for the server at `url`, with every other setting at its default.
    ///
    /// `url` is `redis://[<user>][:<password>@]<host>[:<port>][/<db>]`, `rediss://…` for TLS
    /// (feature `redis-tls`), or `redis+unix:///path/to/socket[?db=<db>]`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `url` is not a Redis URL, or asks for TLS without the
    /// `redis-tls` feature.
    ///
    /// # Examples
    ///
    /// ```
    /// use statelesse::RedisConfig;
    ///
    /// assert!(RedisConfig::new("redis://127.0.0.1:6379/0").is_ok());
    /// assert!(RedisConfig::new("http://127.0.0.1").is_err());
    /// ```
    pub fn new(url: &str) -> Result<Self, BackplaneError> {
        let info = url
            .into_connection_info()
            .map_err(|err| BackplaneError::with_source(ErrorKind::Config, err))?;
        let client = Client::open(info)
            .map_err(|err| BackplaneError::with_source(ErrorKind::Config, err))?;
        let config = Self::from_client(client);
        config.check_tls()?;
        Ok(config)
    }

    /// Settings for the server of an existing `client` (its address, credentials, database and
    /// TLS settings are kept; its protocol is switched to RESP3).
    ///
    /// # Examples
    ///
    /// ```
    /// use statelesse::RedisConfig;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1/").unwrap();
    /// let config = RedisConfig::from_client(client).with_prefix("prod");
    /// # drop(config);
    /// ```
    #[must_use]
    pub fn from_client(client: Client) -> Self {
        let info = client.get_connection_info().clone();
        let redis = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(redis);
        // Re-opening a parsed `ConnectionInfo` cannot fail: it was valid for `client`.
        let client = Client::open(info).unwrap_or(client);
        Self {
            client,
            prefix: Self::DEFAULT_PREFIX.to_owned(),
            history_len: 1000,
            history_ttl: Some(Duration::from_hours(1)),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            health_check: Duration::from_secs(5),
            subscriber_buffer: 1024,
            replica_acks: 0,
            replay: ReplayConfig::default(),
            presence_ttl: DEFAULT_PRESENCE_TTL,
            seeds: Vec::new(),
        }
    }

    /// Settings for a Redis Cluster reached through `urls`, its seed nodes: any of them
    /// answering is enough to learn which node serves which slots (the others are tried in
    /// turn). Every node is reached with the first URL's credentials and TLS settings, at the
    /// address the cluster gives for it. Build the backplane with
    /// [`Backplane::redis_cluster`](crate::Backplane::redis_cluster) (feature `redis-cluster`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when `urls` is empty, or as [`new`](Self::new) for any URL.
    ///
    /// # Examples
    ///
    /// ```
    /// use statelesse::RedisConfig;
    ///
    /// let config = RedisConfig::cluster(["redis://10.0.0.1:7000/", "redis://10.0.0.2:7000/"])?;
    /// assert!(RedisConfig::cluster(Vec::<&str>::new()).is_err());
    /// # drop(config);
    /// # Ok::<(), statelesse::BackplaneError>(())
    /// ```
    pub fn cluster<'a>(urls: impl IntoIterator<Item = &'a str>) -> Result<Self, BackplaneError> {
        let mut urls = urls.into_iter();
        let first = urls.next().ok_or_else(|| {
            BackplaneError::with_source(ErrorKind::Config, "a cluster needs a seed node URL")
        })?;
        let mut config = Self::new(first)?;
        for url in urls {
            config.seeds.push(Self::new(url)?.client);
        }
        Ok(config)
    }

    /// Sets the prefix of every Redis key and channel name, isolating environments (`dev`,
    /// `prod`) that share one server. It must be non-empty and contain no `{`, `}` or whitespace.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets how many events each channel keeps in its Redis Stream for resume; `0` turns
    /// history off.
    ///
    /// Trimming is approximate (`XADD … MAXLEN ~ len`): a stream holds at least `len` events
    /// and usually up to one stream node (100 entries by default) more.
    #[must_use]
    pub fn with_history_len(mut self, len: usize) -> Self {
        self.history_len = len;
        self
    }

    /// Sets how long a channel's stream is kept after its last publish; `None` keeps it until
    /// it is deleted by hand. With history off, the stream still exists (empty) to keep the
    /// channel's last id, and expires the same way.
    #[must_use]
    pub fn with_history_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.history_ttl = ttl;
        self
    }

    /// Sets how long connecting to Redis may take before the attempt fails.
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long a command (a publish, a history read, a subscription) may wait for its
    /// answer before it fails with [`ErrorKind::Timeout`].
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets the delays between attempts to re-establish the pub/sub connection: the first is
    /// about `min`, each next one doubles, up to `max`; each is jittered down by up to half.
    /// While Redis refuses connections outright, attempts are at most 200 ms apart whatever
    /// `max` is, so a restarted Redis is noticed at once.
    #[must_use]
    pub fn with_reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = min;
        self.reconnect_max = max.max(min);
        self
    }

    /// Sets how often the pub/sub connection is checked with a `PING`, to notice a connection
    /// that died without being closed.
    #[must_use]
    pub fn with_health_check_interval(mut self, interval: Duration) -> Self {
        self.health_check = interval.max(Duration::from_millis(10));
        self
    }

    /// Sets how long this instance's presence entries live on Redis without a refresh; default
    /// 15 seconds, at least 300 ms.
    ///
    /// The instance refreshes its entries every third of it, so a live instance's members never
    /// expire, while the members of an instance that died without closing its connections
    /// (`kill -9`, a lost host) disappear, with their `leave` events, within the TTL plus one
    /// heartbeat (a third of the TTL) of its last refresh: see `docs/presence.md`. A shorter TTL
    /// notices crashes sooner for more refreshes: one script call per channel with local
    /// members, every third of the TTL.
    #[must_use]
    pub fn with_presence_ttl(mut self, ttl: Duration) -> Self {
        self.presence_ttl = ttl;
        self
    }

    /// Sets how many replicas must have received each publish before it succeeds: after each
    /// script call, the publisher sends `WAIT <replicas> <half the command timeout>`, and when
    /// fewer replicas acknowledged in time, the call's publishes fail with [`ErrorKind::Timeout`]
    /// (they were published, and may or may not survive a failover). `0`, the default, waits
    /// for none, as Redis does.
    ///
    /// Redis replicates asynchronously: when a master dies, a publish it acknowledged may not
    /// have reached the replica promoted in its place, and is lost without anyone knowing. With
    /// `1` on a cluster whose masters each have a replica, a publish that succeeded survives the
    /// failover of its master (unless that replica fails too), at the cost of one more round
    /// trip per script call. Right after a replica's full sync, Redis forwards nothing to it
    /// until the replica first acknowledges (once a second), so publishes in that second can
    /// time out although the replica is up.
    #[must_use]
    pub fn with_replica_acks(mut self, replicas: u32) -> Self {
        self.replica_acks = replicas;
        self
    }

    /// Sets how history is replayed: page size, shared reads and the read budget of this instance
    /// (see [`replay`](crate::backplane::replay)). History reads use a connection of their own,
    /// so they never wait behind publishes, nor publishes behind them.
    #[must_use]
    pub fn with_replay(mut self, replay: ReplayConfig) -> Self {
        self.replay = replay;
        self
    }

    /// Sets how many events a local subscriber may fall behind before it lags (at least 1).
    #[must_use]
    pub fn with_subscriber_buffer(mut self, len: usize) -> Self {
        self.subscriber_buffer = len.max(1);
        self
    }

    /// The client the backplane connects with (RESP3).
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The prefix of every key and channel name.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Checks what the builder methods cannot.
    pub(super) fn validate(&self) -> Result<(), BackplaneError> {
        let bad_prefix = self.prefix.is_empty()
            || self
                .prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control());
        if bad_prefix {
            return Err(BackplaneError::with_source(
                ErrorKind::Config,
                format!(
                    "invalid prefix `{}`: it must be non-empty, without braces or whitespace",
                    self.prefix.escape_debug()
                ),
            ));
        }
        if self.command_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(BackplaneError::with_source(
                ErrorKind::Config,
                "timeouts must be greater than zero",
            ));
        }
        // Durations are added to clocks (`Instant`, and Redis's own for the history's TTL):
        // refuse any that could overflow there rather than fail or panic later.
        for (what, duration, longest) in [
            ("connect timeout", self.connect_timeout, LONGEST_WAIT),
            ("command timeout", self.command_timeout, LONGEST_WAIT),
            ("reconnect backoff", self.reconnect_max, LONGEST_WAIT),
            ("health check interval", self.health_check, LONGEST_WAIT),
            ("presence TTL", self.presence_ttl, LONGEST_WAIT),
            (
                "history TTL",
                self.history_ttl.unwrap_or_default(),
                LONGEST_TTL,
            ),
        ] {
            if duration > longest {
                return Err(BackplaneError::with_source(
                    ErrorKind::Config,
                    format!(
                        "the {what} is {duration:?}, longer than the most allowed, {longest:?}"
                    ),
                ));
            }
        }
        if self.presence_ttl < SHORTEST_PRESENCE_TTL {
            return Err(BackplaneError::with_source(
                ErrorKind::Config,
                format!(
                    "the presence TTL is {:?}, shorter than the least allowed, {SHORTEST_PRESENCE_TTL:?}",
                    self.presence_ttl
                ),
            ));
        }
        self.check_tls()
    }

    /// The settings the running transport keeps from this config.
    pub(super) fn settings(&self) -> Settings {
        Settings {
            history_len: self.history_len,
            history_ttl_ms: self.history_ttl.map_or(0, |ttl| {
                u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
            }),
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            reconnect_min: self.reconnect_min,
            reconnect_max: self.reconnect_max,
            health_check: self.health_check,
            buffer: self.subscriber_buffer,
            replica_acks: self.replica_acks,
            presence_ttl: self.presence_ttl,
        }
    }

    fn check_tls(&self) -> Result<(), BackplaneError> {
        let tls = matches!(
            self.client.get_connection_info().addr(),
            ConnectionAddr::TcpTls { .. }
        );
        if tls && !cfg!(feature = "redis-tls") {
            return Err(BackplaneError::with_source(
                ErrorKind::Config,
                "a `rediss://` URL needs the `redis-tls` feature of statelesse",
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection info holds the password: show the address only.
        f.debug_struct("RedisConfig")
            .field(
                "addr",
                &self.client.get_connection_info().addr().to_string(),
            )
            .field(
                "db",
                &self.client.get_connection_info().redis_settings().db(),
            )
            .field("prefix", &self.prefix)
            .field("history_len", &self.history_len)
            .field("history_ttl", &self.history_ttl)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field(
                "reconnect_backoff",
                &(self.reconnect_min, self.reconnect_max),
            )
            .field("health_check", &self.health_check)
            .field("subscriber_buffer", &self.subscriber_buffer)
            .field("replica_acks", &self.replica_acks)
            .field("replay", &self.replay)
            .field("presence_ttl", &self.presence_ttl)
            .field(
                "seeds",
                &self
                    .seeds
                    .iter()
                    .map(|seed| seed.get_connection_info().addr().to_string())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The settings the running transport needs, taken from the config.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) history_len: usize,
    /// The history's time-to-live in milliseconds, `0` for none.
    pub(super) history_ttl_ms: u64,
    pub(super) connect_timeout: Duration,
    pub(super) command_timeout: Duration,
    pub(super) reconnect_min: Duration,
    pub(super) reconnect_max: Duration,
    pub(super) health_check: Duration,
    pub(super) buffer: usize,
    pub(super) replica_acks: u32,
    /// How long an instance's presence entries live without a refresh.
    pub(super) presence_ttl: Duration,
}

impl Settings {
    /// The longest a caller waits for one operation: a reconnect of the command connection
    /// plus the command itself.
    pub(super) fn call_timeout(&self) -> Duration {
        self.connect_timeout + self.command_timeout
    }

    /// The longest opening a connection may take at start-up: the connection's own timeout,
    /// then one command on it.
    pub(super) fn open_timeout(&self) -> Duration {
        self.call_timeout() + self.connect_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forces_resp3() {
        let config = RedisConfig::new("redis://127.0.0.1:1/3?protocol=resp2").unwrap();
        let settings = config.client().get_connection_info().redis_settings();
        assert_eq!(settings.protocol(), ProtocolVersion::RESP3);
        assert_eq!(settings.db(), 3);
    }

    #[test]
    fn keeps_credentials() {
        let config = RedisConfig::new("redis://ada:secret@127.0.0.1:1/").unwrap();
        let settings = config.client().get_connection_info().redis_settings();
        assert_eq!(settings.username(), Some("ada"));
        assert_eq!(settings.password(), Some("secret"));
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn rejects_bad_prefixes() {
        for prefix in ["", "a{b", "a}", "a b"] {
            let config = RedisConfig::new("redis://127.0.0.1/")
                .unwrap()
                .with_prefix(prefix);
            assert_eq!(
                config.validate().unwrap_err().kind(),
                ErrorKind::Config,
                "{prefix:?}"
            );
        }
        let config = RedisConfig::new("redis://127.0.0.1/")
            .unwrap()
            .with_prefix("prod:eu");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn rediss_needs_the_tls_feature() {
        let result = RedisConfig::new("rediss://127.0.0.1/");
        assert_eq!(result.is_ok(), cfg!(feature = "redis-tls"));
    }
}
