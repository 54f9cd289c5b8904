use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    #[sse(name = "ended")]
    Won { game_id: u64 },
    #[sse(name = "ended")]
    Lost { game_id: u64 },
}

fn main() {}
