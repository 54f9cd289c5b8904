use statelesse::prelude::*;

#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
pub struct GameId(u64);

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: GameId,
}

fn main() {}
