use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[serde(tag = "type", rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Started { game_id: u64 },
}

#[derive(Serialize, Deserialize, SseEvent)]
#[serde(untagged)]
#[sse(domain = "game", key = "game_id")]
pub enum RoundEvent {
    Started { game_id: u64 },
}

fn main() {}
