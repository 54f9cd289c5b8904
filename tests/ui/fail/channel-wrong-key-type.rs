use statelesse::prelude::*;

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "chat", key = "room")]
pub struct PlayerJoined {
    pub room: String,
}

fn main() {
    let _channel = PlayerJoined::channel(&1u32);
}
