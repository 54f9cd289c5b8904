use statelesse::prelude::*;

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
}

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "chat", key = "room")]
pub struct MessagePosted {
    pub room: String,
}

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Joined(PlayerJoined),
    Posted(MessagePosted),
}

fn main() {}
