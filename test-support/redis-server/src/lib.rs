//! [`RedisServer`]: a private `redis-server` for one test, one group of tests or one benchmark
//! run, the workspace's only one.
//!
//! ```no_run
//! use statelesse_test_redis::RedisServer;
//!
//! let mut server = RedisServer::start();      // a free port, no persistence, a temp dir
//! let url = server.url();                      // "redis://127.0.0.1:<port>/"
//! assert_eq!(server.cmd(&["SET", "k", "v"]), "OK");
//! server.kill();                               // SIGKILL: the data is gone
//! server.restart();                            // same port, answering PING again
//! # drop(url);
//! // dropped: killed, temp dir removed
//! ```
//!
//! Never the server on 6379: each guard starts its own process, so fault tests can stop, kill
//! and restart it without disturbing other tests. Tests call the panicking [`RedisServer::start`]
//! and [`RedisServer::cmd`]; tools that report errors instead call the `try_` forms.
//! [`RedisCluster`] starts six of them as a Redis Cluster.

mod cluster;

pub use cluster::RedisCluster;

use std::ffi::OsString;
use std::io::{self, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a starting server may take to answer `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one command may wait for its reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `redis-server` on `127.0.0.1`, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    args: Vec<OsString>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port, with persistence off, and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not installed or does not answer within 10 seconds
    /// (`./scripts/test.sh` installs it).
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server as [`start`](Self::start) does, with extra `redis-server` arguments
    /// (for instance `--tls-port …`); the plain port stays open for [`cmd`](Self::cmd).
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    #[must_use]
    pub fn start_with(args: &[&str]) -> Self {
        Self::try_start_with(args).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Starts a server as [`start_with`](Self::start_with) does, returning what went wrong
    /// instead of panicking.
    ///
    /// # Errors
    ///
    /// When the temp dir cannot be made, `redis-server` cannot be run (the message says how to
    /// install it), or it does not answer `PING` within 10 seconds (the message names its log).
    pub fn try_start_with(args: &[&str]) -> io::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "statelesse-redis-{}-{}-{port}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        // Built before spawning so that a failed start still removes the dir on drop.
        let mut server = Self {
            port,
            dir,
            args: args.iter().map(OsString::from).collect(),
            child: None,
        };
        server.spawn()?;
        Ok(server)
    }

    /// The server's URL: `redis://127.0.0.1:<port>/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id, for reading its CPU time or pinning it; `None` while killed.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Runs one command on a fresh connection and returns the reply as text (RESP2): simple
    /// strings and bulk strings as is, integers in decimal, arrays one element per line, nil
    /// and errors as `(nil)` and `(error) …`.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or its reply cannot be read.
    #[must_use]
    pub fn cmd(&self, args: &[&str]) -> String {
        match self.exchange(args) {
            Ok(Ok(text)) => text,
            Ok(Err(error)) => format!("(error) {error}"),
            Err(err) => panic!(
                "`{}` on redis-server port {}: {err}",
                args.join(" "),
                self.port
            ),
        }
    }

    /// Runs one command as [`cmd`](Self::cmd) does, returning what went wrong instead of
    /// panicking.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached, its reply cannot be read, or the reply is an error.
    pub fn try_cmd(&self, args: &[&str]) -> io::Result<String> {
        self.exchange(args)?
            .map_err(|error| io::Error::other(format!("`{}` replied {error}", args.join(" "))))
    }

    /// Stops the server gracefully (`SHUTDOWN NOSAVE`) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.write_all(&encode(&["SHUTDOWN", "NOSAVE"]));
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL (no goodbye to clients, all data lost) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (stopping it first if it runs), empty, and
    /// waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// As [`start`](Self::start).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn().unwrap_or_else(|err| panic!("{err}"));
    }

    fn spawn(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let mut child = Command::new("redis-server")
                .args(["--port", &self.port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--protected-mode", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .args(["--logfile", "redis.log"])
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|err| {
                    io::Error::new(
                        err.kind(),
                        format!("cannot run redis-server ({err}); ./scripts/test.sh installs it"),
                    )
                })?;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: the port may still be held by the previous process
                }
                if self.ping() {
                    self.child = Some(child);
                    return Ok(());
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on port {} did not start; see {}",
                        self.port,
                        self.dir.join("redis.log").display()
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Sends one command and reads its reply: the text, or the error the server replied with.
    fn exchange(&self, args: &[&str]) -> io::Result<Result<String, String>> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.write_all(&encode(args))?;
        let mut reader = Reader {
            stream,
            buf: Vec::new(),
        };
        let line = reader.line()?;
        match line.strip_prefix('-') {
            Some(error) => Ok(Err(error.to_owned())),
            None => reader.reply_to(&line).map(Ok),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port that was free a moment ago, on `127.0.0.1`.
///
/// # Panics
///
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_or_else(
            |err| panic!("no free port on 127.0.0.1: {err}"),
            |addr| addr.port(),
        )
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "redis-server closed the connection",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 2);
                return Ok(line);
            }
            self.fill()?;
        }
    }

    fn reply(&mut self) -> io::Result<String> {
        let line = self.line()?;
        self.reply_to(&line)
    }

    /// The rest of the reply whose first line is `line`, as text.
    fn reply_to(&mut self, line: &str) -> io::Result<String> {
        let (kind, rest) = line.split_at_checked(1).unwrap_or((line, ""));
        match kind {
            "+" | ":" => Ok(rest.to_owned()),
            "-" => Ok(format!("(error) {rest}")),
            "$" => {
                let Ok(len) = rest.parse::<usize>() else {
                    return Ok("(nil)".to_owned());
                };
                while self.buf.len() < len + 2 {
                    self.fill()?;
                }
                let text = String::from_utf8_lossy(&self.buf[..len]).into_owned();
                self.buf.drain(..len + 2);
                Ok(text)
            }
            "*" => {
                let Ok(len) = rest.parse::<usize>() else {
                    return Ok("(nil)".to_owned());
                };
                let items = (0..len)
                    .map(|_| self.reply())
                    .collect::<io::Result<Vec<_>>>()?;
                Ok(items.join("\n"))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected reply line `{line}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RedisServer;

    #[test]
    fn an_error_reply_is_text_for_cmd_and_an_error_for_try_cmd() {
        let server = RedisServer::start();
        assert_eq!(server.cmd(&["SET", "k", "v"]), "OK");
        assert!(server.cmd(&["INCR", "k"]).starts_with("(error) ERR"));
        let err = server.try_cmd(&["INCR", "k"]).unwrap_err();
        assert!(err.to_string().contains("`INCR k` replied ERR"), "{err}");
        assert_eq!(server.try_cmd(&["GET", "k"]).unwrap(), "v");
    }

    #[test]
    fn replies_of_every_kind_read_as_text() {
        let server = RedisServer::start();
        assert_eq!(server.cmd(&["RPUSH", "list", "a", "b"]), "2");
        assert_eq!(server.cmd(&["LRANGE", "list", "0", "-1"]), "a\nb");
        assert_eq!(server.cmd(&["GET", "missing"]), "(nil)");
    }

    #[test]
    fn a_killed_server_restarts_empty_on_the_same_port() {
        let mut server = RedisServer::start();
        let (port, pid) = (server.port(), server.pid());
        assert_eq!(server.cmd(&["SET", "k", "v"]), "OK");
        server.kill();
        assert_eq!(server.pid(), None);
        assert!(server.try_cmd(&["PING"]).is_err());
        server.restart();
        assert_eq!(server.port(), port);
        assert!(server.pid().is_some() && server.pid() != pid);
        assert_eq!(server.cmd(&["GET", "k"]), "(nil)");
    }

    #[test]
    fn extra_arguments_reach_the_server() {
        let server = RedisServer::start_with(&["--maxclients", "123"]);
        assert_eq!(
            server.cmd(&["CONFIG", "GET", "maxclients"]),
            "maxclients\n123"
        );
    }

    #[test]
    fn a_cluster_of_one_master_serves_every_slot() {
        let cluster = super::RedisCluster::try_start_masters(1).unwrap();
        assert_eq!(cluster.masters(), [(0, vec![(0, 16_383)])]);
        assert_eq!(cluster.master_of_slot(12_182), 0);
    }

    #[test]
    fn a_cluster_has_three_masters_serving_every_slot_and_survives_a_killed_one() {
        let mut cluster = super::RedisCluster::start();
        let masters = cluster.masters();
        assert_eq!(masters.len(), 3);
        let master = cluster.master_of_slot(0);
        cluster.kill(master);
        cluster.wait_until_healthy();
        assert_ne!(cluster.master_of_slot(0), master);
    }
}
