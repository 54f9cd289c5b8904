//! The events of `example-ts-server` and of the TypeScript client tests.
//!
//! They live in a library crate of their own so that the server's build script can depend on
//! them, link them, and generate the typed client from the registry (see `../ts-server/build.rs`):
//! a build script runs before its own crate compiles, so it can only see events defined
//! elsewhere.
//!
//! Every event derives `TS` besides `SseEvent`, which the `typescript` feature of statelesse
//! requires.

use statelesse::prelude::*;
use ts_rs::TS;

/// A player joined a game.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    /// The game, the key of the event's channel.
    pub game_id: u64,
    /// Who joined.
    pub player_name: String,
}

/// Everything that happens in one game, on one stream: `GET /sse/game/{game_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    /// A player joined.
    PlayerJoined(PlayerJoined),
    /// A player's score changed.
    #[serde(rename_all = "camelCase")]
    ScoreChanged {
        /// The game.
        game_id: u64,
        /// Whose score changed.
        player_name: String,
        /// The new score.
        score: i64,
    },
}

/// A message in a chat room, keyed by the room's name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "chat", key = "room")]
pub struct ChatMessage {
    /// The room, any text (the client URL-encodes it).
    pub room: String,
    /// The message's number, which the tests check for order, gaps and duplicates.
    pub seq: u64,
    /// What was said.
    pub text: String,
}

/// Said to every client: a keyless (broadcast) event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "lobby")]
pub struct Announcement {
    /// What was announced.
    pub text: String,
}

/// The initial state of a game's stream: its players so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct GameSnapshot {
    /// The game.
    pub game_id: u64,
    /// The players who joined, in order.
    pub players: Vec<String>,
}
