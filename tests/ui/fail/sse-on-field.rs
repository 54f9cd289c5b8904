use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game")]
pub struct PlayerJoined {
    #[sse(key)]
    pub game_id: u64,
}

fn main() {}
