//! The registry of every event type in the program, filled by `#[derive(SseEvent)]`.
//!
//! Diagnostics read it; users never list their events by hand. It is plain data and names no
//! integration: the TypeScript manifest keeps its own entries, which the derive registers beside
//! these.
//! Registration happens before `main` (through `inventory`), in every crate linked into the
//! program, so [`events`] sees event types defined in dependencies too.

use std::any::type_name;

use crate::event::{EventKind, SseEvent};
use crate::key::ChannelKey;

/// What the registry knows of one event type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct EventInfo {
    /// The domain, first segment of its channel names.
    pub domain: &'static str,
    /// Keyed, broadcast or enum stream, with the SSE event name(s).
    pub kind: EventKind,
    /// The name of the key field, `None` for broadcast events.
    pub key_field: Option<&'static str>,
    /// The Rust type of the key (`()` for broadcast events).
    pub key_type: &'static str,
    /// How the key is typed in TypeScript: `"string"` or `"number"`.
    pub key_ts_type: &'static str,
    /// The route path template, e.g. `/sse/game/{game_id}/player-joined`.
    pub path: &'static str,
    /// The Rust type of the event.
    pub rust_type: &'static str,
}

impl EventInfo {
    /// The registry entry of `E`.
    #[must_use]
    pub fn of<E: SseEvent>() -> Self {
        Self {
            domain: E::DOMAIN,
            kind: E::KIND,
            key_field: E::KEY_FIELD,
            key_type: type_name::<E::Key>(),
            key_ts_type: <E::Key as ChannelKey>::TS_TYPE,
            path: E::PATH,
            rust_type: type_name::<E>(),
        }
    }

    /// The type's name: its SSE event name, or the enum's name for a domain stream.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// One registered event type; built only by `#[derive(SseEvent)]`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Registration {
    info: fn() -> EventInfo,
}

impl Registration {
    /// The registration of `E`.
    #[must_use]
    pub const fn of<E: SseEvent>() -> Self {
        Self {
            info: EventInfo::of::<E>,
        }
    }
}

inventory::collect!(Registration);

/// Every event type registered in this program, sorted by domain, then name, then Rust type.
///
/// # Examples
///
/// ```
/// use statelesse::prelude::*;
/// # use ts_rs::TS;
///
/// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
/// #[sse(domain = "docs", key = "id")]
/// pub struct Edited {
///     pub id: u32,
/// }
///
/// assert!(statelesse::registry::events().iter().any(|e| e.name() == "Edited"));
/// ```
#[must_use]
pub fn events() -> Vec<EventInfo> {
    let mut events: Vec<EventInfo> = inventory::iter::<Registration>
        .into_iter()
        .map(|registration| (registration.info)())
        .collect();
    events
        .sort_by(|a, b| (a.domain, a.name(), a.rust_type).cmp(&(b.domain, b.name(), b.rust_type)));
    events
}
