use statelesse::prelude::*;

#[derive(Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
}

fn main() {}
