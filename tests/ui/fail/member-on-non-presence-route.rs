use statelesse::prelude::*;

#[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
pub struct Moved {
    pub game_id: u64,
}

fn main() {
    let _ = Moved::sse_routes::<Backplane>()
        .member(|_parts, _key: u64, _: Backplane| async move { Ok::<_, std::convert::Infallible>(1) });
}
