use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
pub struct PlayerJoined {
    pub game_id: u64,
}

fn main() {}
