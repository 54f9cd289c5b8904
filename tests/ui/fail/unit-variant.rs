use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Started { game_id: u64 },
    Paused,
    Moved(u64, u32),
}

fn main() {}
