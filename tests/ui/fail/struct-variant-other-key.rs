use statelesse::prelude::*;

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Started { game_id: u64 },
    Ended { game_id: String },
}

fn main() {}
