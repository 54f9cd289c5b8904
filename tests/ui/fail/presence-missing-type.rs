use statelesse::prelude::*;

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id", presence)]
pub struct Moved {
    pub game_id: u64,
}

fn main() {}
