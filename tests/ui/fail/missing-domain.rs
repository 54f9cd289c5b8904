use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
}

fn main() {}
