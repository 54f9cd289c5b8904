use statelesse::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "camelCase", rename = "Joined")]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    pub game_id: u64,
    #[serde(rename = "who")]
    pub player_name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "snake_case")]
#[sse(domain = "game", key = "game_id")]
pub enum GameEvent {
    #[serde(rename = "joined")]
    Joined(PlayerJoined),
    #[serde(rename_all = "camelCase")]
    ScoreChanged {
        game_id: u64,
        #[serde(default)]
        new_score: i64,
    },
}

fn main() {
    let event = GameEvent::ScoreChanged { game_id: 1, new_score: 2 };
    assert_eq!(event.to_data().unwrap(), br#"{"gameId":1,"newScore":2}"#);
    assert_eq!(event.event_name(), "ScoreChanged");
}
