use statelesse::prelude::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
pub struct GameId(u64);

impl std::fmt::Display for GameId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for GameId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(GameId)
    }
}

statelesse::channel_key!(GameId as number);

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: GameId,
}

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Joined(PlayerJoined),
}

fn main() {
    assert_eq!(PlayerJoined::channel(&GameId(5)).name(), "game:5:PlayerJoined");
    assert_eq!(GameEvent::channel(&GameId(5)).name(), "game:5:GameEvent");
}
