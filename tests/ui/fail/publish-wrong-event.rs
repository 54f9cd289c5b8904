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

async fn run(bp: Backplane) -> Result<(), BackplaneError> {
    let player_joined = PlayerJoined { game_id: 1 };
    RoundStarted::publish(&bp, player_joined).await?;
    Ok(())
}

fn main() {
    drop(run(Backplane::in_memory()));
}
