use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game:v2", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
}

fn main() {}
