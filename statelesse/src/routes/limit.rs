//! [`ConnectionLimit`]: the most SSE connections an instance keeps open at once.

use std::fmt;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The most SSE connections open at once on this instance, over every route that shares it.
///
/// A request past the limit is answered `503 Service Unavailable` with a `Retry-After` header,
/// before anything is subscribed. A connection counts from the moment it is accepted until its
/// stream ends or its client goes away. Cloning is cheap; clones share the count. Give one limit
/// to several routes with [`SseRoutes::connection_limit`](super::SseRoutes::connection_limit), or
/// a route its own with [`SseRoutes::max_connections`](super::SseRoutes::max_connections).
///
/// # Examples
///
/// ```
/// use statelesse::routes::ConnectionLimit;
///
/// let limit = ConnectionLimit::new(10_000);
/// assert_eq!((limit.max(), limit.active()), (10_000, 0));
/// ```
#[derive(Clone)]
pub struct ConnectionLimit {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl ConnectionLimit {
    /// A limit of `max` open connections, at most [`Semaphore::MAX_PERMITS`].
    #[must_use]
    pub fn new(max: usize) -> Self {
        let max = max.min(Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// The most connections open at once.
    #[must_use]
    pub fn max(&self) -> usize {
        self.max
    }

    /// The connections open now.
    #[must_use]
    pub fn active(&self) -> usize {
        self.max.saturating_sub(self.semaphore.available_permits())
    }

    /// A slot for one more connection, released on drop; `None` when all are taken.
    pub(crate) fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.semaphore).try_acquire_owned().ok()
    }
}

impl fmt::Debug for ConnectionLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionLimit")
            .field("max", &self.max)
            .field("active", &self.active())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_releases_slots() {
        let limit = ConnectionLimit::new(2);
        let a = limit.try_acquire().unwrap();
        let _b = limit.clone().try_acquire().unwrap();
        assert_eq!(limit.active(), 2);
        assert!(limit.try_acquire().is_none());
        drop(a);
        assert_eq!(limit.active(), 1);
        assert!(limit.try_acquire().is_some());
    }

    #[test]
    fn zero_admits_nobody() {
        assert!(ConnectionLimit::new(0).try_acquire().is_none());
    }
}
