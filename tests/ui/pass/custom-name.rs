use statelesse::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id", name = "player-joined")]
pub struct PlayerJoined {
    pub game_id: u64,
}

fn main() {
    assert_eq!(PlayerJoined::channel(&1).name(), "game:1:player-joined");
}
