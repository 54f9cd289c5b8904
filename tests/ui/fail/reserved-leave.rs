use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Joined { game_id: u64 },
    #[sse(name = "leave")]
    PlayerGone { game_id: u64 },
}

fn main() {}
