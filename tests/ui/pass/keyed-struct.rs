use statelesse::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
    pub player_name: String,
}

fn main() {
    let event = PlayerJoined { game_id: 1, player_name: "ada".into() };
    let channel: Channel<PlayerJoined> = PlayerJoined::channel(event.key());
    assert_eq!(channel.name(), "game:1:PlayerJoined");
}
