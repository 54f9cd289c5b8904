//! Hand-written events for the manifest's unit tests: each shape the generator handles or refuses.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::event::{EventKind, SseEvent};

/// Implements `SseEvent` by hand (the derive's paths name `::statelesse`, not this crate).
macro_rules! event {
    ($ty:ty, presence: $member:ty, key: $key:ty = $value:expr, $field:expr, $kind:expr, $path:literal) => {
        event!(@impl $ty, true, $key, $value, $field, $kind, $path);
        impl crate::Presence for $ty {
            type Member = $member;
        }
    };
    ($ty:ty, key: $key:ty = $value:expr, $field:expr, $kind:expr, $path:literal) => {
        event!(@impl $ty, false, $key, $value, $field, $kind, $path);
    };
    (@impl $ty:ty, $presence:expr, $key:ty, $value:expr, $field:expr, $kind:expr, $path:literal) => {
        impl SseEvent for $ty {
            type Key = $key;
            const PRESENCE: bool = $presence;
            const DOMAIN: &'static str = "game";
            const KEY_FIELD: Option<&'static str> = $field;
            const KIND: EventKind = $kind;
            const PATH: &'static str = $path;

            // The manifest reads only the constants; values get a fixed key and the type's name.
            fn key(&self) -> &$key {
                const KEY: $key = $value;
                &KEY
            }

            fn event_name(&self) -> &'static str {
                Self::KIND.name()
            }
        }
    };
}

#[derive(Serialize, Deserialize, TS)]
pub(super) struct Joined {
    game_id: u64,
    name: String,
}
event!(Joined, key: u64 = 0, Some("game_id"), EventKind::Keyed { name: "Joined" }, "/sse/game/{game_id}/joined");

#[derive(Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub(super) enum Game {
    Joined(Joined),
    ScoreChanged { game_id: u64 },
}
event!(
    Game,
    key: u64 = 0,
    Some("game_id"),
    EventKind::Stream { name: "Game", variants: &["Joined", "ScoreChanged"] },
    "/sse/game/{game_id}"
);

#[derive(Serialize, Deserialize, TS)]
#[serde(tag = "type")]
pub(super) enum Tagged {
    A { game_id: u64 },
}
event!(Tagged, key: u64 = 0, Some("game_id"), EventKind::Stream { name: "Tagged", variants: &["A"] }, "/sse/game/{game_id}/t");

#[derive(Serialize, Deserialize, TS)]
pub(super) enum Clashing {
    Gap(Joined),
}
event!(Clashing, key: u64 = 0, Some("game_id"), EventKind::Stream { name: "Clashing", variants: &["Gap"] }, "/sse/game/{game_id}/c");

mod other {
    #[derive(serde::Serialize, serde::Deserialize, ts_rs::TS)]
    pub(super) struct Joined {
        pub(super) who: String,
    }
}

#[derive(Serialize, Deserialize, TS)]
pub(super) struct Lobby {
    joined: Option<other::Joined>,
}
event!(Lobby, key: () = (), None, EventKind::Broadcast { name: "Lobby" }, "/sse/lobby/{room}");

#[derive(Serialize, Deserialize, TS)]
#[ts(repr(enum))]
enum Color {
    Red,
}

#[derive(Serialize, Deserialize, TS)]
pub(super) struct Painted {
    game_id: u64,
    color: Color,
}
event!(Painted, key: u64 = 0, Some("game_id"), EventKind::Keyed { name: "Painted" }, "/sse/game/{game_id}/painted");

/// The member identity of the presence fixtures.
#[derive(Clone, Serialize, Deserialize, TS)]
pub(super) struct Seat {
    name: String,
}

/// A presence type: its handlers take the presence handlers.
#[derive(Serialize, Deserialize, TS)]
pub(super) struct Seated {
    game_id: u64,
}
event!(Seated, presence: Seat, key: u64 = 0, Some("game_id"), EventKind::Keyed { name: "Seated" }, "/sse/game/{game_id}/seated");

/// A presence stream with a variant whose handler would be `onJoin`.
#[derive(Serialize, Deserialize, TS)]
pub(super) enum Table {
    Join(Seated),
}
event!(Table, presence: Seat, key: u64 = 0, Some("game_id"), EventKind::Stream { name: "Table", variants: &["Join"] }, "/sse/game/{game_id}/table");
