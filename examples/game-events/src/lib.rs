//! The events of the game example, in a library of their own so that the game's build script can
//! link them and generate the TypeScript client (a build script cannot see the types of the crate
//! it builds).

use std::fmt;
use std::str::FromStr;

use statelesse::prelude::*;
use ts_rs::TS;

/// A game's id: the key of every per-game channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
pub struct GameId(pub u32);

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for GameId {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(GameId)
    }
}

statelesse::channel_key!(GameId as number);

/// A player joined a game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    /// The game.
    pub game_id: GameId,
    /// Who joined.
    pub player: String,
}

/// A player left a game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerLeft {
    /// The game.
    pub game_id: GameId,
    /// Who left.
    pub player: String,
}

/// A new round started; scores carry over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
pub struct RoundStarted {
    /// The game.
    pub game_id: GameId,
    /// The round's number, from 1.
    pub round: u32,
}

/// A player's score changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
pub struct ScoreChanged {
    /// The game.
    pub game_id: GameId,
    /// Whose score.
    pub player: String,
    /// The new score (absolute, so applying it twice changes nothing).
    pub score: i64,
}

/// Someone connected to a game's stream, as its lobby lists them: the logged-in user the page's
/// stream request speaks for (its login cookie), never a name the page sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Player {
    /// The user's login name.
    pub name: String,
}

/// Everything that happens in one game, on one stream (`GET /sse/game/{game_id}`): a browser needs
/// one connection per game, not one per event type.
///
/// The game keeps presence: its stream also tells who is connected to the game ([`Player`]),
/// live, for the lobby.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "game", key = "game_id", presence = Player)]
pub enum GameEvent {
    /// See [`PlayerJoined`].
    PlayerJoined(PlayerJoined),
    /// See [`PlayerLeft`].
    PlayerLeft(PlayerLeft),
    /// See [`RoundStarted`].
    RoundStarted(RoundStarted),
    /// See [`ScoreChanged`].
    ScoreChanged(ScoreChanged),
}

/// Said to everyone: a keyless, broadcast event (`GET /sse/system/system-announcement`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "system")]
pub struct SystemAnnouncement {
    /// What was announced.
    pub text: String,
}

/// A message for one user only; its route lets only that user open it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[serde(rename_all = "camelCase")]
#[sse(domain = "user", key = "user_id")]
pub struct Notification {
    /// The user it is for.
    pub user_id: String,
    /// The message.
    pub text: String,
}

/// A game's state: the initial `snapshot` of its stream, and the answer of `GET /api/games/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct GameSnapshot {
    /// The game.
    pub game_id: GameId,
    /// The current round; 0 before the first.
    pub round: u32,
    /// The players in the game, in joining order, with their scores.
    pub players: Vec<PlayerScore>,
}

/// One player of a [`GameSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct PlayerScore {
    /// The player.
    pub player: String,
    /// Their score.
    pub score: i64,
}

impl GameSnapshot {
    /// The empty state of `game_id`.
    #[must_use]
    pub fn new(game_id: GameId) -> Self {
        Self {
            game_id,
            ..Self::default()
        }
    }

    /// Applies one event. Every event is idempotent, so applying one twice changes nothing.
    pub fn apply(&mut self, event: &GameEvent) {
        match event {
            GameEvent::PlayerJoined(joined) => {
                if !self.has(&joined.player) {
                    self.players.push(PlayerScore {
                        player: joined.player.clone(),
                        score: 0,
                    });
                }
            }
            GameEvent::PlayerLeft(left) => self.players.retain(|p| p.player != left.player),
            GameEvent::RoundStarted(started) => self.round = self.round.max(started.round),
            GameEvent::ScoreChanged(changed) => {
                if let Some(p) = self.players.iter_mut().find(|p| p.player == changed.player) {
                    p.score = changed.score;
                }
            }
        }
    }

    /// Whether `player` is in the game.
    #[must_use]
    pub fn has(&self, player: &str) -> bool {
        self.players.iter().any(|p| p.player == player)
    }

    /// The score of `player`, if in the game.
    #[must_use]
    pub fn score(&self, player: &str) -> Option<i64> {
        self.players
            .iter()
            .find(|p| p.player == player)
            .map(|p| p.score)
    }
}
