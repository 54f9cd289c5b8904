use statelesse::prelude::*;

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
}

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Joined(PlayerJoined),
    Rejoined(PlayerJoined),
}

fn main() {}
