use statelesse::prelude::*;

#[derive(Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
pub struct Note {
    pub game_id: u64,
}

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Started { game_id: u64 },
    Noted(Note),
}

fn main() {}
