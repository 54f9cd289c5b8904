use statelesse::prelude::*;

#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub struct Changed<T> {
    pub game_id: u64,
    pub value: T,
}

fn main() {}
