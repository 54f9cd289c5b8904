//! [`ReplayConfig`]: the settings of the shared paged reader, kept apart from it so that a
//! transport can name its settings without depending on the reader.

use std::num::NonZeroUsize;
use std::time::Duration;

/// How history is replayed: page size, shared-read cache and read budget per instance.
///
/// The defaults suit payloads up to the default maximum of 1 MiB: a page is at most 256 events
/// or 1 MiB, 4 reads run at once, 16 MiB of full pages are cached, and a new stream waits at
/// most 2 seconds for a read.
///
/// The counts are [`NonZeroUsize`]: a page of no events or a budget of no reads cannot be
/// configured, so there is nothing left to check at run time.
///
/// ```
/// use std::num::NonZeroUsize;
/// use std::time::Duration;
/// use statelesse::MemoryConfig;
/// use statelesse::backplane::replay::ReplayConfig;
///
/// let replay = ReplayConfig::default()
///     .with_page_events(NonZeroUsize::new(100).unwrap())
///     .with_page_bytes(NonZeroUsize::new(256 * 1024).unwrap())
///     .with_concurrent_reads(NonZeroUsize::new(8).unwrap())
///     .with_read_wait(Duration::from_secs(1));
/// let bp = statelesse::Backplane::in_memory_with(MemoryConfig::default().with_replay(replay));
/// # drop(bp);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    page_events: NonZeroUsize,
    page_bytes: NonZeroUsize,
    concurrent_reads: NonZeroUsize,
    read_wait: Duration,
    cache_bytes: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            page_events: NonZeroUsize::new(256).unwrap_or(NonZeroUsize::MIN),
            page_bytes: NonZeroUsize::new(1 << 20).unwrap_or(NonZeroUsize::MIN),
            concurrent_reads: NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN),
            read_wait: Duration::from_secs(2),
            cache_bytes: 16 << 20,
        }
    }
}

impl ReplayConfig {
    /// The most events one page holds.
    #[must_use]
    pub fn with_page_events(mut self, events: NonZeroUsize) -> Self {
        self.page_events = events;
        self
    }

    /// The most payload bytes one page holds; an event larger than this is a page of its own.
    #[must_use]
    pub fn with_page_bytes(mut self, bytes: NonZeroUsize) -> Self {
        self.page_bytes = bytes;
        self
    }

    /// The most history reads in flight at once on this instance.
    #[must_use]
    pub fn with_concurrent_reads(mut self, reads: NonZeroUsize) -> Self {
        self.concurrent_reads = reads;
        self
    }

    /// How long a new stream waits for a read before failing with [`ErrorKind::Busy`](crate::ErrorKind::Busy).
    #[must_use]
    pub fn with_read_wait(mut self, wait: Duration) -> Self {
        self.read_wait = wait;
        self
    }

    /// The bytes of full pages kept for later readers of the same position; `0` turns the cache
    /// off (reads in flight are still shared).
    #[must_use]
    pub fn with_cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// The most events one page holds.
    #[must_use]
    pub fn page_events(&self) -> usize {
        self.page_events.get()
    }

    /// The most payload bytes one page holds.
    #[must_use]
    pub fn page_bytes(&self) -> usize {
        self.page_bytes.get()
    }

    /// The most history reads in flight at once on this instance.
    #[must_use]
    pub fn concurrent_reads(&self) -> usize {
        self.concurrent_reads.get()
    }

    /// How long a new stream waits for a read.
    #[must_use]
    pub fn read_wait(&self) -> Duration {
        self.read_wait
    }

    /// The bytes of full pages kept for later readers.
    #[must_use]
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }
}
