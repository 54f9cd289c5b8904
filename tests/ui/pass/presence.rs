use statelesse::prelude::*;

mod auth {
    use statelesse::prelude::*;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
    #[ts(crate = "statelesse::ts_rs")]
    pub struct Player {
        pub name: String,
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id", presence = crate::auth::Player)]
pub struct Moved {
    pub game_id: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id", presence = String)]
pub enum Lobby {
    Chat { game_id: u64, text: String },
}

fn members<E: statelesse::Presence>() -> bool {
    <E as SseEvent>::PRESENCE
}

fn main() {
    assert!(members::<Moved>() && members::<Lobby>());
    let _: Option<<Moved as statelesse::Presence>::Member> = None::<auth::Player>;
}
