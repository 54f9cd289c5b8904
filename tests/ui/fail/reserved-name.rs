use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id", name = "gap")]
pub struct PlayersMissing {
    pub game_id: u64,
}

fn main() {}
