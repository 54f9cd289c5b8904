use statelesse::prelude::*;

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
}

#[derive(Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct RoundStarted {
    pub game_id: u64,
}

fn announce(channel: Channel<PlayerJoined>) -> String {
    channel.name().to_owned()
}

fn main() {
    announce(RoundStarted::channel(&1));
}
