use statelesse::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "kinds", key = "type")]
pub struct r#Match {
    pub r#type: String,
}

fn main() {
    assert_eq!(r#Match::KEY_FIELD, Some("type"));
    assert_eq!(r#Match::PATH, "/sse/kinds/{type}/match");
    assert_eq!(r#Match::channel(&"a".to_owned()).name(), "kinds:a:Match");
}
