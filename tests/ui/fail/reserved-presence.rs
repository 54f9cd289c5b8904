use statelesse::prelude::*;

#[allow(non_camel_case_types)]
#[derive(Serialize, Deserialize, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub struct presence {
    pub game_id: u64,
}

fn main() {}
