//! A private `redis-server` on a free port, killed on drop (the same logic as the tests'
//! `RedisServer` guard, which this binary does not depend on).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::BoxError;
use crate::procfs::Pinning;

/// A running `redis-server` on `127.0.0.1` with persistence off.
#[derive(Debug)]
pub(crate) struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl RedisServer {
    /// Starts a server on a free port (on the server core when pinning) and waits for `PING`.
    pub(crate) fn start(pinning: Pinning) -> Result<Self, BoxError> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir =
            std::env::temp_dir().join(format!("statelesse-load-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = pinning
            .command(Pinning::SERVER_CORE, "redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--maxclients", "20000"])
            .arg("--dir")
            .arg(&dir)
            .args(["--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot run redis-server: {err}"))?;
        let server = Self { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.cmd(&["PING"]).ok().as_deref() != Some("PONG") {
            if Instant::now() > deadline {
                return Err("redis-server did not answer PING within 10 s".into());
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs one command on a fresh connection; the reply's first line, without its type byte.
    pub(crate) fn cmd(&self, args: &[&str]) -> Result<String, BoxError> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        stream.write_all(&request)?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        match line.split_at_checked(1) {
            Some(("-", error)) => Err(error.to_owned().into()),
            Some(("$", len)) => {
                let len: usize = len.parse()?;
                let mut bulk = vec![0; len + 2];
                reader.read_exact(&mut bulk)?;
                bulk.truncate(len);
                Ok(String::from_utf8(bulk)?)
            }
            Some((_, rest)) => Ok(rest.to_owned()),
            None => Err("empty reply".into()),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
