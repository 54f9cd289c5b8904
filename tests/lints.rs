//! Every accepted form of `#[derive(SseEvent)]` expands to code that is clean under strict lints.
//!
//! CI compiles this file with `cargo clippy --all-targets -- -D warnings`, so a lint that fires on
//! the expansion (in the user's crate, where we cannot allow it) fails the build.
#![deny(
    clippy::pedantic,
    unused_qualifications,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![forbid(unsafe_code)]

use std::fmt;
use std::str::FromStr;

use statelesse::prelude::*;

/// A key newtype, made a channel key by `channel_key!`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
pub struct GameId(u64);

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for GameId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(GameId)
    }
}

statelesse::channel_key!(GameId as number);

/// A keyed struct.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    /// The key.
    pub game_id: GameId,
    /// A payload field.
    pub player_name: String,
}

/// A keyed struct with a custom name and path, and serde renames.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "camelCase")]
#[sse(
    domain = "game",
    key = "game_id",
    name = "round-started",
    path = "/games/{game_id}/rounds"
)]
pub struct RoundStarted {
    /// The key.
    pub game_id: GameId,
    /// A payload field.
    pub round_number: u32,
}

/// A keyed struct whose key field is a raw identifier.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "kinds", key = "type")]
pub struct Typed {
    /// The key.
    pub r#type: String,
}

/// A broadcast struct.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "news")]
pub struct Headline {
    /// A payload field.
    pub text: String,
}

/// A broadcast unit struct.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "clock", name = "tick", path = "/clock")]
pub struct Tick;

/// A broadcast tuple struct.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "metrics")]
pub struct Load(pub f64, pub f64);

/// A second keyed struct, to be wrapped.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerLeft {
    /// The key.
    pub game_id: GameId,
}

/// An enum stream with newtype and struct variants.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    /// A wrapped event.
    Joined(PlayerJoined),
    /// Another wrapped event.
    Left(PlayerLeft),
    /// A struct variant.
    #[serde(rename_all = "camelCase")]
    ScoreChanged {
        /// The key.
        game_id: GameId,
        /// A payload field.
        new_score: i64,
    },
    /// Another struct variant, whose key arm is like the previous one.
    #[sse(name = "ended")]
    Ended {
        /// The key.
        game_id: GameId,
    },
}

/// An enum stream of newtype variants only.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(
    domain = "game",
    key = "game_id",
    name = "presence",
    path = "/presence/{game_id}"
)]
pub enum Presence {
    /// A wrapped event.
    Joined(PlayerJoined),
    /// Another wrapped event.
    Left(PlayerLeft),
}

/// An enum stream of one variant.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "chat", key = "room")]
pub enum Chat {
    /// The only variant.
    Message {
        /// The key.
        room: String,
        /// A payload field.
        text: String,
    },
}

#[test]
fn every_form_derives() {
    assert_eq!(PlayerJoined::PATH, "/sse/game/{game_id}/player-joined");
    assert_eq!(RoundStarted::PATH, "/games/{game_id}/rounds");
    assert_eq!(Typed::KEY_FIELD, Some("type"));
    assert_eq!(Headline::PATH, "/sse/news/headline");
    assert_eq!(Tick::PATH, "/clock");
    assert_eq!(Load::PATH, "/sse/metrics/load");
    assert_eq!(GameEvent::PATH, "/sse/game/{game_id}");
    assert_eq!(Presence::PATH, "/presence/{game_id}");
    assert_eq!(Chat::PATH, "/sse/chat/{room}");
}
