use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    #[serde(skip)]
    Internal { game_id: u64 },
    Started { game_id: u64 },
}

fn main() {}
