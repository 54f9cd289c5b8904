use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    #[sse(domain = "lobby")]
    Started { game_id: u64 },
    #[sse(nmae = "ended")]
    Ended { game_id: u64 },
}

fn main() {}
