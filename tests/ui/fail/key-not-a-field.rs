use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "gameid")]
pub struct PlayerJoined {
    pub game_id: u64,
    pub player_name: String,
}

fn main() {}
