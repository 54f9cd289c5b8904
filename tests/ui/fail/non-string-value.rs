use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = game, key = 1)]
pub struct PlayerJoined {
    pub game_id: u64,
}

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain)]
pub struct RoundStarted {
    pub round: u32,
}

fn main() {}
