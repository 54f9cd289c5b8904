//! Typed server-sent events that scale across server instances.
//!
//! Derive [`SseEvent`] on an event struct and get, checked by the compiler, its channel name,
//! typed `publish` and `stream` functions, an axum SSE route and a TypeScript client:
//!
//! ```rust,standalone_crate
//! # // Alone: merged with the other examples, its `PlayerJoined` would collide with theirs.
//! use statelesse::prelude::*;
//! use ts_rs::TS;
//!
//! #[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
//! #[sse(domain = "game", key = "game_id")]
//! pub struct PlayerJoined {
//!     pub game_id: u64,
//!     pub player_name: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bp = Backplane::in_memory();
//! let mut joined = PlayerJoined::stream(&bp, &42).await?;
//!
//! PlayerJoined::publish(&bp, PlayerJoined { game_id: 42, player_name: "ada".into() }).await?;
//!
//! let received = joined.next().await.unwrap()?;
//! assert_eq!(received.event.player_name, "ada");
//! # Ok(())
//! # }
//! ```
//!
//! # Events and channels
//!
//! `#[derive(SseEvent)]` (see its documentation for the `#[sse(..)]` attribute) gives each event
//! type a domain, an SSE event name and a key type. A [`Channel<E>`] is one key's channel:
//!
//! | event | channel name |
//! |---|---|
//! | struct with `key` | `{domain}:{key}:{EventName}` |
//! | struct without `key` (broadcast) | `{domain}:{EventName}` |
//! | enum (a stream, one SSE event name per variant) | `{domain}:{key}:{EnumName}` |
//!
//! Keys are escaped so that no key can forge another channel (see [`ChannelKey`]), and a name
//! (an event's, or an enum stream's) must be unique within its domain, whatever the shapes: two
//! types that break this rule are refused ([`registry::collisions`]). Handing a
//! `Channel<A>` where a `Channel<B>` is wanted, a key of the wrong type, or an event of the wrong
//! type is a compile error.
//!
//! # Backplanes
//!
//! A [`Backplane`] is a cheap-to-clone handle over a [`Transport`](backplane::transport::Transport):
//! [`Backplane::in_memory`] for one process, or the Redis transport (feature `redis`) for many
//! instances. Every channel keeps a bounded history, so a subscriber can resume after the last
//! id it saw ([`Backplane::subscribe_after`]); see [`backplane::subscription`] for ordering and
//! lag. The typed `channel`, `publish` and `stream` functions of an event type come from
//! [`SseEventExt`], which the prelude brings into scope.
//!
//! # TypeScript
//!
//! With the `typescript` feature, `statelesse::manifest::Manifest` generates a typed
//! client (over `fetch`, no dependency) of every event in the program, from the registry (nothing listed by hand)
//! and the payloads' ts-rs types: one `.ts` module, or an ES module `.js` with its `.d.ts`, and a
//! JSON manifest for other generators. Every event then needs `#[derive(TS)]`. A build script of a
//! crate that depends on the events' crate regenerates it on every build; see the `manifest`
//! module.
//!
//! # Cargo features
//!
//! | Name | Description | Default? |
//! |---|---|---|
//! | `macros` | `#[derive(SseEvent)]` | yes |
//! | `axum` | SSE routes for axum | no |
//! | `redis` | the Redis transport | no |
//! | `redis-cluster` | the Redis transport on a Redis Cluster, with sharded pub/sub | no |
//! | `redis-tls` | `rediss://` (TLS) for the Redis transport, with rustls | no |
//! | `typescript` | the TypeScript manifest and client | no |
//! | `uuid` | [`ChannelKey`] for `uuid::Uuid` | no |
//! | `metrics` | metrics through the `metrics` facade (series in `docs/observability.md`) | no |
//!
//! Whatever the features, [`Backplane::health`] says whether an instance can serve (the `axum`
//! feature adds `routes::readiness`, a probe route), and connections and publishes run in
//! `tracing` spans.
//!
//! The `examples/` directory of the repository holds runnable examples, one concept each.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod backplane;
mod channel;
mod diagnostics;
mod event;
mod health;
mod id;
mod key;
#[cfg(feature = "typescript")]
#[cfg_attr(docsrs, doc(cfg(feature = "typescript")))]
pub mod manifest;
mod message;
pub mod presence;
pub mod protocol;
pub mod registry;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod routes;
mod telemetry;
mod variant;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

#[doc(hidden)]
#[path = "bench.rs"]
pub mod __bench;

pub use backplane::error::{BackplaneError, ErrorKind};
pub use backplane::memory::{MemoryConfig, MemoryTransport};
#[cfg(feature = "redis-cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis-cluster")))]
pub use backplane::redis::RedisClusterTransport;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use backplane::redis::{RedisConfig, RedisTransport};
pub use backplane::subscription::{Received, Subscription, SubscriptionError};
pub use backplane::transport::Gap;
pub use backplane::{Backplane, DEFAULT_MAX_PAYLOAD, Replay, SseEventExt};
pub use channel::Channel;
pub use diagnostics::{Diagnostics, RedisDiagnostics, ShardDiagnostics};
pub use event::{EventKind, SseEvent};
pub use health::{Health, HealthStatus};
pub use id::{EventId, ParseEventIdError};
pub use key::{ChannelKey, KeyParseError, escape_key, unescape_key};
pub use message::Message;
pub use presence::{Member, Presence, PresenceEntry, PresenceExt};

/// The ts-rs crate, for `#[derive(TS)]` with `#[ts(crate = "statelesse::ts_rs")]` (feature
/// `typescript`).
#[cfg(feature = "typescript")]
#[cfg_attr(docsrs, doc(cfg(feature = "typescript")))]
pub use ts_rs;

/// Derives [`SseEvent`]; see the `statelesse-macros` crate for the `#[sse(..)]` reference.
#[cfg(feature = "macros")]
pub use statelesse_macros::SseEvent;

/// Everything an application needs to declare, publish and stream events.
///
/// ```
/// use statelesse::prelude::*;
///
/// let bp = Backplane::in_memory();
/// # drop(bp);
/// ```
pub mod prelude {
    pub use crate::backplane::SseEventExt as _;
    pub use crate::presence::PresenceExt as _;
    pub use crate::{
        Backplane, BackplaneError, Channel, ChannelKey, EventId, SseEvent, Subscription,
    };
    pub use futures_util::StreamExt as _;
    pub use serde::{Deserialize, Serialize};
    #[cfg(feature = "typescript")]
    #[cfg_attr(docsrs, doc(cfg(feature = "typescript")))]
    pub use ts_rs::TS;

    #[cfg(feature = "axum")]
    #[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
    pub use crate::routes::SseRouteExt as _;
}
