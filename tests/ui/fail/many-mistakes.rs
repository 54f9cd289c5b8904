use statelesse::prelude::*;

// Every mistake is reported at once, each at its own token.
#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game:v2", key = "id", name = "", colour = "red")]
pub struct PlayerJoined {
    pub game_id: u64,
}

fn main() {}
