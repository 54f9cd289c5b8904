use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
}

fn main() {}
