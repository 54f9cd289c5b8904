//! [`Health`]: whether a backplane can serve, for readiness probes and load balancers.

use std::borrow::Cow;

use serde::Serialize;

/// The reason a shut-down backplane gives.
pub(crate) const CLOSED: &str = "the backplane is shut down";

/// Whether a backplane can serve, from [`Backplane::health`](crate::Backplane::health).
///
/// # Examples
///
/// ```
/// use statelesse::{Backplane, HealthStatus};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let bp = Backplane::in_memory();
/// assert_eq!(bp.health().status, HealthStatus::Ready);
/// bp.shutdown().await;
/// assert_eq!(bp.health().status, HealthStatus::Down);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Ready, degraded or down.
    pub status: HealthStatus,
    /// Why it is not ready, one line each; empty when ready.
    pub reasons: Vec<Cow<'static, str>>,
}

/// The state in a [`Health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HealthStatus {
    /// Everything works.
    Ready,
    /// Open streams go on, but something they rely on is down: on Redis, the pub/sub
    /// connection is lost and being re-established, so publishes and new subscriptions fail and
    /// open streams receive nothing until it is back (then they are refilled from history).
    Degraded,
    /// Nothing works: the backplane was shut down, or has not reached its server yet.
    Down,
}

impl Health {
    /// Everything works.
    #[must_use]
    pub fn ready() -> Self {
        Self {
            status: HealthStatus::Ready,
            reasons: Vec::new(),
        }
    }

    /// Degraded, because of `reason`.
    #[must_use]
    pub fn degraded(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: HealthStatus::Degraded,
            reasons: vec![reason.into()],
        }
    }

    /// Down, because of `reason`.
    #[must_use]
    pub fn down(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: HealthStatus::Down,
            reasons: vec![reason.into()],
        }
    }

    /// Whether the status is [`HealthStatus::Ready`].
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.status == HealthStatus::Ready
    }
}
