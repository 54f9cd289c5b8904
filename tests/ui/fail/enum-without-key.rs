use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game")]
pub enum GameEvent {
    Started { game_id: u64 },
}

fn main() {}
