use statelesse::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "news")]
pub struct Headline {
    pub text: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "clock")]
pub struct Tick;

fn main() {
    assert_eq!(Headline::channel(&()).name(), "news:Headline");
    assert_eq!(Tick::channel(&()).name(), "clock:Tick");
}
