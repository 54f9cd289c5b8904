use statelesse::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id", path = "/api/games/{game_id}/joins")]
pub struct PlayerJoined {
    pub game_id: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "news", path = "/api/news")]
pub struct Headline {
    pub text: String,
}

fn main() {
    assert_eq!(PlayerJoined::PATH, "/api/games/{game_id}/joins");
    assert_eq!(Headline::PATH, "/api/news");
}
