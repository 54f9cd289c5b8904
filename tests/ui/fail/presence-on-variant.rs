use statelesse::prelude::*;

#[derive(Clone, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
pub struct Player {
    pub name: String,
}

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    #[sse(presence = Player)]
    Moved { game_id: u64 },
}

fn main() {}
