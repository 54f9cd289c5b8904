use statelesse::prelude::*;

#[allow(non_camel_case_types)]
#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Joined { game_id: u64 },
    snapshot { game_id: u64, players: Vec<String> },
}

fn main() {}
