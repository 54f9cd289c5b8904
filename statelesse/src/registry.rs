//! The registry of every event type in the program, filled by `#[derive(SseEvent)]`.
//!
//! Diagnostics read it; users never list their events by hand. It is plain data and names no
//! integration: the TypeScript manifest keeps its own entries, which the derive registers beside
//! these.
//! Registration happens before `main` (through `inventory`), in every crate linked into the
//! program, so [`events`] sees event types defined in dependencies too.
//!
//! It also holds the rule that keeps channels apart: an event type's name (its SSE event name,
//! or an enum stream's name) is unique within its domain, whatever the types' shapes
//! ([`collisions`] finds the types that break it).

use std::any::type_name;
use std::sync::OnceLock;

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

/// Two registered event types that take the same name in one domain, so their channels could be
/// the same: a keyed event and an enum stream of one name share the channel of every key, and two
/// broadcast events of one name share their only channel.
///
/// A [`Backplane`](crate::Backplane) refuses them: `Backplane::redis` (feature `redis`)
/// fails with it, and on a backplane built otherwise every operation on either type fails with
/// it (as the source of an [`ErrorKind::ChannelCollision`](crate::ErrorKind::ChannelCollision)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event types `{first}` and `{second}` both take the name `{name}` in domain `{domain}`, so \
     their channels would collide; give one of them another name with #[sse(name = \"...\")] \
     (names must be unique within a domain, whatever the event's shape)"
)]
#[non_exhaustive]
pub struct ChannelCollision {
    /// The domain both types are in.
    pub domain: &'static str,
    /// The name both types take.
    pub name: &'static str,
    /// The Rust type of the first one (in the registry's order).
    pub first: &'static str,
    /// The Rust type of the other one.
    pub second: &'static str,
}

/// Every pair of registered event types that take the same name in one domain: empty in a
/// correct program. With more than two types of one name, each is paired with the first.
///
/// The registry is the whole program's: the doctests of a crate of edition 2024 are merged into
/// one program, so two of them that declare event types of one domain and name collide; give
/// the types their own names, or mark such an example `standalone_crate`.
///
/// # Examples
///
/// ```rust,standalone_crate
/// assert!(statelesse::registry::collisions().is_empty());
/// ```
#[must_use]
pub fn collisions() -> Vec<ChannelCollision> {
    collisions_among(&events())
}

/// The first of [`collisions`], as an error: what a program can check at start-up.
///
/// # Errors
///
/// The first [`ChannelCollision`] of the program.
pub fn check_unique_names() -> Result<(), ChannelCollision> {
    collisions().into_iter().next().map_or(Ok(()), Err)
}

/// The collisions among `events`, sorted by domain then name (as [`events`] returns them).
fn collisions_among(events: &[EventInfo]) -> Vec<ChannelCollision> {
    let mut found = Vec::new();
    let mut first = None::<&EventInfo>;
    for event in events {
        match first {
            Some(head) if (head.domain, head.name()) == (event.domain, event.name()) => {
                found.push(ChannelCollision {
                    domain: event.domain,
                    name: event.name(),
                    first: head.rust_type,
                    second: event.rust_type,
                });
            }
            _ => first = Some(event),
        }
    }
    found
}

/// The program's collisions, found once (the registry is fixed before `main`); `None` when there
/// are none, so that a backplane's check of a correct program is one branch on a `None`.
pub(crate) fn program_collisions() -> Option<&'static [ChannelCollision]> {
    static COLLISIONS: OnceLock<Box<[ChannelCollision]>> = OnceLock::new();
    let found = COLLISIONS.get_or_init(|| {
        let found = collisions();
        for collision in &found {
            tracing::error!(%collision, "operations on these event types will fail");
        }
        found.into()
    });
    (!found.is_empty()).then_some(&**found)
}

/// The collision `E` is part of, among `collisions`.
pub(crate) fn collision_of<E: SseEvent>(
    collisions: &[ChannelCollision],
) -> Option<&ChannelCollision> {
    let rust_type = type_name::<E>();
    collisions.iter().find(|c| {
        (c.domain, c.name) == (E::DOMAIN, E::KIND.name())
            && (c.first == rust_type || c.second == rust_type)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(domain: &'static str, kind: EventKind, rust_type: &'static str) -> EventInfo {
        EventInfo {
            domain,
            kind,
            key_field: None,
            key_type: "()",
            key_ts_type: "string",
            path: "/",
            rust_type,
        }
    }

    fn sorted(mut events: Vec<EventInfo>) -> Vec<EventInfo> {
        events.sort_by(|a, b| {
            (a.domain, a.name(), a.rust_type).cmp(&(b.domain, b.name(), b.rust_type))
        });
        events
    }

    #[test]
    fn a_keyed_event_and_a_stream_of_one_name_in_one_domain_collide() {
        let events = sorted(vec![
            info(
                "ops",
                EventKind::Keyed {
                    name: "Maintenance",
                },
                "a::Maintenance",
            ),
            info(
                "ops",
                EventKind::Stream {
                    name: "Maintenance",
                    variants: &[],
                },
                "b::Maintenance",
            ),
        ]);
        let collisions = collisions_among(&events);
        assert_eq!(collisions.len(), 1);
        let message = collisions[0].to_string();
        for part in [
            "`ops`",
            "`Maintenance`",
            "`a::Maintenance`",
            "`b::Maintenance`",
            "#[sse(name",
        ] {
            assert!(message.contains(part), "{message} lacks {part}");
        }
    }

    #[test]
    fn one_name_in_two_domains_or_two_names_in_one_domain_do_not_collide() {
        let events = sorted(vec![
            info(
                "ops",
                EventKind::Broadcast {
                    name: "Maintenance",
                },
                "a::Maintenance",
            ),
            info("ops", EventKind::Broadcast { name: "Outage" }, "a::Outage"),
            info(
                "game",
                EventKind::Broadcast {
                    name: "Maintenance",
                },
                "b::Maintenance",
            ),
        ]);
        assert!(collisions_among(&events).is_empty());
    }

    #[test]
    fn every_type_of_a_shared_name_is_reported() {
        let events = sorted(vec![
            info("ops", EventKind::Broadcast { name: "Up" }, "a::Up"),
            info("ops", EventKind::Broadcast { name: "Up" }, "b::Up"),
            info("ops", EventKind::Keyed { name: "Up" }, "c::Up"),
        ]);
        let pairs: Vec<_> = collisions_among(&events)
            .into_iter()
            .map(|c| (c.first, c.second))
            .collect();
        assert_eq!(pairs, [("a::Up", "b::Up"), ("a::Up", "c::Up")]);
    }
}
