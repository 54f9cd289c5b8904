//! CPU time and resident memory of a process, from `/proc`, and CPU pinning with `taskset`.

use std::ffi::OsStr;
use std::process::Command;
use std::sync::OnceLock;

use crate::BoxError;

/// User plus system CPU time of `pid` (all its threads), in seconds.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64, BoxError> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may contain spaces: the fields start after its closing parenthesis.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of proc(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11).ok_or("no utime")?.parse()?;
    let stime: u64 = fields.get(12).ok_or("no stime")?.parse()?;
    Ok((utime + stime) as f64 / clock_ticks())
}

/// Write system calls made so far by `pid` (`syscw` of `/proc/<pid>/io`): with the deliveries,
/// how many events one `writev` carries.
pub(crate) fn write_calls(pid: u32) -> Result<u64, BoxError> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io"))?;
    let line = io
        .lines()
        .find_map(|line| line.strip_prefix("syscw:"))
        .ok_or("no syscw")?;
    Ok(line.trim().parse()?)
}

/// Resident memory of `pid` (`VmRSS`), in KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64, BoxError> {
    status_kib(pid, "VmRSS:")
}

/// The peak resident memory of `pid` since it started (`VmHWM`), in KiB: a peak between two
/// samples is not missed, which matters when a burst allocates and frees within milliseconds.
pub(crate) fn peak_rss_kib(pid: u32) -> Result<u64, BoxError> {
    status_kib(pid, "VmHWM:")
}

/// The KiB figure of the line starting with `field` in `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| format!("malformed {field}"))?
        .parse()?)
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), to tell a quiet machine from a busy one.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, almost always 100).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Where processes run: in a pinned scenario, Redis and the server instances on core 0 and the
/// load generator on core 1; otherwise anywhere.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pinning {
    /// `taskset` exists and there are at least two cores.
    available: bool,
    /// This scenario is pinned.
    enabled: bool,
}

impl Pinning {
    /// The server core.
    pub(crate) const SERVER_CORE: &str = "0";
    /// The load generator's core.
    pub(crate) const LOAD_CORE: &str = "1";
    /// Every core this benchmark uses.
    const ALL_CORES: &str = "0,1";

    /// Whether pinning is possible here: `taskset` exists and there are at least two cores.
    pub(crate) fn detect() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let taskset = Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success());
        Self {
            available: taskset && cores >= 2,
            enabled: false,
        }
    }

    /// This pinning, on for a scenario when `pinned` (and possible).
    pub(crate) fn scenario(self, pinned: bool) -> Self {
        Self {
            enabled: self.available && pinned,
            ..self
        }
    }

    /// Whether processes are pinned.
    pub(crate) fn enabled(self) -> bool {
        self.enabled
    }

    /// Moves every thread of the running process `pid` to `core` when pinned, else lets it run
    /// anywhere again.
    pub(crate) fn place(self, pid: u32, core: &str) -> Result<(), BoxError> {
        if !self.available {
            return Ok(());
        }
        let cores = if self.enabled { core } else { Self::ALL_CORES };
        let status = Command::new("taskset")
            .args(["-a", "-p", "-c", cores, &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            return Err(format!("taskset -a -p -c {cores} {pid} failed").into());
        }
        Ok(())
    }

    /// A command running `program` on `core` when pinned (through `taskset`, which execs it:
    /// the child's pid is the program's).
    pub(crate) fn command(self, core: &str, program: impl AsRef<OsStr>) -> Command {
        if self.enabled {
            let mut command = Command::new("taskset");
            command.args(["-c", core]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}
