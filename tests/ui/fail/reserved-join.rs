use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id", name = "join")]
pub struct PlayerArrived {
    pub game_id: u64,
}

fn main() {}
