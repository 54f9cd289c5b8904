use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id", path = "/games/{id}/joined")]
pub struct PlayerJoined {
    pub game_id: u64,
}

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "news", path = "/news/{topic}")]
pub struct Headline {
    pub topic: String,
}

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id", path = "games/{game_id}")]
pub struct RoundStarted {
    pub game_id: u64,
}

fn main() {}
