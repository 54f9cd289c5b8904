use statelesse::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
    pub player_name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    Joined(PlayerJoined),
    ScoreChanged { game_id: u64, score: i64 },
    #[sse(name = "over")]
    Ended { game_id: u64, winner: Option<String> },
}

fn main() {
    let event: GameEvent = PlayerJoined { game_id: 3, player_name: "ada".into() }.into();
    assert_eq!(event.key(), &3);
    assert_eq!(GameEvent::channel(&3).name(), "game:3:GameEvent");
}
