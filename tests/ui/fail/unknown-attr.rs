use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", kye = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
}

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", colour = "red")]
pub struct RoundStarted {
    pub round: u32,
}

fn main() {}
