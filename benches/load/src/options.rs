//! The load generator's command line: its options and their `--help` text.

use crate::BoxError;
use crate::server::Impl;

pub(crate) const USAGE: &str = "\
usage: bench-load [options]

  --scenario LIST   scenarios to run, comma separated: s1,s2,s2r,s3,s4,s5,s6,s7,cluster or all
                    (default all, which is s1 to s5); s2r is S2's shape at a fixed rate both
                    servers sustain (--rate, default 3000/s), to compare CPU per delivery at the
                    same load; s6 is a resume storm with large events (statelesse only):
                    --s6-clients clients resume one channel from 0-0 and read its history of
                    1,000 events of about 100 KB each, so 1,000 clients read 100 GB; it is not in
                    all; s7 compares 1,000 connections of 10 channels each (the multiplexed route)
                    with 10,000 single-channel connections carrying the same events (statelesse
                    only, --rate, default 1000/s; not in all); cluster publishes --s5-events
                    events on a Redis Cluster of 1 shard, then of 3 (statelesse only, not in all)
  --impl LIST       servers to measure: baseline,statelesse (default both)
  --seconds N       how long each scenario publishes (default 10)
  --history N       history length of the statelesse server (default 1000, the library's default)
  --publishers N    concurrent HTTP publishers in S2 (default 32)
  --payload N       filler bytes in each event (default 64)
  --rounds N        run each scenario N times, alternating the servers, and report the median
  --s5-events N     events each S5 publisher sends (default 200000)
  --s6-clients N    clients of the S6 storm (default 1000)
  --rate N          publishes/s of S1, S3 and S4 instead of theirs (for profiling)
  --pin LIST        scenarios run with Redis and both instances on core 0 and the load generator
                    on core 1 (with taskset): a list, all or none (default s2,s2r,s5, as the issue
                    pins the throughput runs; the others let every process use both cores)
  --no-pin          the same as --pin none
  --markdown PATH   also write the summary table to PATH

Server settings (for S3's memory rows; every instance started gets them):
  --write-timeout MS       statelesse's write timeout in milliseconds (0: off, no watchdog;
                           default the library's, 30 s)
  --subscriber-buffer N    statelesse's subscriber buffer (default the library's, 1,024)
  --publish-linger MS      statelesse's publish linger (RedisConfig::with_publish_linger) in
                           the instances, and in S5 two more rows publishing with it
  --http1 LIST             serve with hyper's http1::Builder instead of axum::serve, with the
                           settings in LIST (comma separated, may be empty: hyper's defaults):
                           writev=BOOL, max_buf_size=N (at least 8192), half_close=BOOL;
                           or routes::serve: through statelesse::routes::serve
The allocator is glibc's unless the binary is built with --features mimalloc or jemalloc;
MALLOC_ARENA_MAX and other environment variables reach the instances unchanged.
";

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) scenarios: Vec<String>,
    pub(crate) impls: Vec<Impl>,
    pub(crate) seconds: f64,
    pub(crate) history: usize,
    pub(crate) publishers: usize,
    pub(crate) payload: usize,
    pub(crate) rounds: usize,
    pub(crate) s5_events: u64,
    /// Clients of the S6 resume storm.
    pub(crate) s6_clients: usize,
    pub(crate) rate: Option<f64>,
    /// The scenarios run pinned.
    pub(crate) pinned: Vec<String>,
    pub(crate) markdown: Option<String>,
    /// statelesse's write timeout, in milliseconds, instead of the library's default.
    pub(crate) write_timeout_ms: Option<u64>,
    /// statelesse's subscriber buffer instead of the library's default.
    pub(crate) subscriber_buffer: Option<usize>,
    /// Serve through `http1::Builder` with these settings instead of `axum::serve`.
    pub(crate) http1: Option<String>,
    /// statelesse's publish linger, in milliseconds, instead of none.
    pub(crate) publish_linger_ms: Option<f64>,
}

impl Options {
    /// The options in `args`, or `None` for `--help`.
    pub(crate) fn parse(args: &[String]) -> Result<Option<Self>, BoxError> {
        let mut options = Self {
            // Not S6: its 1,000 clients read 100 MB each, 100 GB in all, which takes minutes
            // on the two cores this runs on, not the ~30 s a scenario of the default run takes.
            scenarios: ["s1", "s2", "s2r", "s3", "s4", "s5"]
                .map(String::from)
                .to_vec(),
            impls: vec![Impl::Baseline, Impl::Statelesse],
            seconds: 10.0,
            history: 1000,
            publishers: 32,
            payload: 64,
            rounds: 1,
            s5_events: 200_000,
            s6_clients: 1000,
            rate: None,
            pinned: ["s2", "s2r", "s5"].map(String::from).to_vec(),
            markdown: None,
            write_timeout_ms: None,
            subscriber_buffer: None,
            http1: None,
            publish_linger_ms: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "-h" | "--help" => return Ok(None),
                "--scenario" => {
                    let list = value()?;
                    if list != "all" {
                        options.scenarios = list.split(',').map(str::to_lowercase).collect();
                    }
                }
                "--impl" => {
                    options.impls = value()?
                        .split(',')
                        .map(Impl::parse)
                        .collect::<Result<_, _>>()?;
                }
                "--seconds" => options.seconds = value()?.parse()?,
                "--history" => options.history = value()?.parse()?,
                "--publishers" => options.publishers = value()?.parse()?,
                "--payload" => options.payload = value()?.parse()?,
                "--rounds" => options.rounds = value()?.parse::<usize>()?.max(1),
                "--s5-events" => options.s5_events = value()?.parse()?,
                "--s6-clients" => options.s6_clients = value()?.parse()?,
                "--rate" => options.rate = Some(value()?.parse()?),
                "--no-pin" => options.pinned.clear(),
                "--pin" => {
                    options.pinned = match value()?.as_str() {
                        "all" => ["s1", "s2", "s2r", "s3", "s4", "s5", "s6", "s7"]
                            .map(String::from)
                            .to_vec(),
                        "none" => Vec::new(),
                        list => list.split(',').map(str::to_lowercase).collect(),
                    };
                }
                "--markdown" => options.markdown = Some(value()?.clone()),
                "--write-timeout" => options.write_timeout_ms = Some(value()?.parse()?),
                "--subscriber-buffer" => options.subscriber_buffer = Some(value()?.parse()?),
                "--http1" => options.http1 = Some(value()?.clone()),
                "--publish-linger" => options.publish_linger_ms = Some(value()?.parse()?),
                other => return Err(format!("unknown option `{other}`\n\n{USAGE}").into()),
            }
        }
        Ok(Some(options))
    }
}
