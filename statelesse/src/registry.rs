//! The registry of every event type in the program, filled by `#[derive(SseEvent)]`.
//!
//! The TypeScript manifest and diagnostics read it; users never list their events by hand.
//! Registration happens before `main` (through `inventory`), in every crate linked into the
//! program, so [`events`] sees event types defined in dependencies too.

use std::any::type_name;

use crate::{ChannelKey, EventKind, SseEvent};

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
    pub(crate) info: fn() -> EventInfo,
    /// Walks the event's payload types for the TypeScript manifest.
    #[cfg(feature = "typescript")]
    pub(crate) typescript: crate::manifest::Describe,
}

impl Registration {
    /// The registration of `E`.
    #[cfg(not(feature = "typescript"))]
    #[must_use]
    pub const fn of<E: SseEvent>() -> Self {
        Self {
            info: EventInfo::of::<E>,
        }
    }

    /// The registration of `E`, which must have a TypeScript type: with the `typescript` feature
    /// on, every event is part of the manifest.
    #[cfg(feature = "typescript")]
    #[must_use]
    pub const fn of<E: SseEvent + crate::__private::TypeScriptEvent>() -> Self {
        Self {
            info: EventInfo::of::<E>,
            typescript: crate::manifest::describe::<E>,
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
