use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    ScoreChanged { game_id: u64, score: i64 },
    Ended { winner: String },
}

fn main() {}
