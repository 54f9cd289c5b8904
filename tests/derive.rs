//! What `#[derive(SseEvent)]` generates, observed at run time: channel names, routes, kinds,
//! event names, the enum wire format, `From` impls and the registry.

use std::fmt;
use std::str::FromStr;

use statelesse::prelude::*;
use statelesse::{EventKind, registry};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
struct GameId(u64);

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for GameId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse().map(GameId)
    }
}

statelesse::channel_key!(GameId as number);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
struct PlayerJoined {
    game_id: u64,
    player_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
struct PlayerLeft {
    game_id: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id", name = "round-started")]
struct RoundStarted {
    game_id: GameId,
    round_number: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id", path = "/games/{game_id}/moves")]
struct PieceMoved {
    game_id: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "chat", key = "room")]
struct ChatMessage {
    room: String,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "kinds", key = "type")]
struct Typed {
    pub r#type: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "news")]
struct HeadlinePublished {
    text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "news", name = "breaking", path = "/breaking")]
struct Breaking;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
enum GameEvent {
    Joined(PlayerJoined),
    Left(PlayerLeft),
    #[serde(rename_all = "camelCase")]
    ScoreChanged {
        game_id: u64,
        new_score: i64,
    },
    #[sse(name = "game-over")]
    Ended {
        game_id: u64,
        winner: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(
    domain = "game",
    key = "game_id",
    name = "presence",
    path = "/presence/{game_id}"
)]
enum Presence {
    Joined(PlayerJoined),
    Left(PlayerLeft),
}

fn joined(game_id: u64) -> PlayerJoined {
    PlayerJoined {
        game_id,
        player_name: "ada".into(),
    }
}

#[test]
fn keyed_struct_channel_is_domain_key_name() {
    assert_eq!(PlayerJoined::channel(&42).name(), "game:42:PlayerJoined");
}

#[test]
fn custom_name_replaces_the_type_name_in_the_channel() {
    assert_eq!(
        RoundStarted::channel(&GameId(7)).name(),
        "game:7:round-started"
    );
}

#[test]
fn newtype_key_renders_through_display() {
    let event = RoundStarted {
        game_id: GameId(9),
        round_number: 1,
    };
    assert_eq!(event.key(), &GameId(9));
    assert_eq!(
        RoundStarted::channel(event.key()).name(),
        "game:9:round-started"
    );
}

#[test]
fn broadcast_struct_channel_is_domain_name() {
    assert_eq!(
        HeadlinePublished::channel(&()).name(),
        "news:HeadlinePublished"
    );
    assert_eq!(Breaking::channel(&()).name(), "news:breaking");
}

#[test]
fn enum_channel_is_domain_key_name() {
    assert_eq!(GameEvent::channel(&42).name(), "game:42:GameEvent");
    assert_eq!(Presence::channel(&42).name(), "game:42:presence");
}

#[test]
fn key_separators_are_escaped_in_channel_names() {
    assert_eq!(
        ChatMessage::channel(&"lobby:1".to_owned()).name(),
        "chat:lobby%3A1:ChatMessage"
    );
    assert_ne!(
        ChatMessage::channel(&"a:b".to_owned()).name(),
        ChatMessage::channel(&"a%3Ab".to_owned()).name()
    );
    assert_eq!(
        ChatMessage::channel(&"{tag}".to_owned()).name(),
        "chat:%7Btag%7D:ChatMessage"
    );
}

#[test]
fn default_path_of_keyed_struct_has_key_and_kebab_name() {
    assert_eq!(PlayerJoined::PATH, "/sse/game/{game_id}/player-joined");
    assert_eq!(RoundStarted::PATH, "/sse/game/{game_id}/round-started");
}

#[test]
fn default_path_of_broadcast_struct_has_kebab_name() {
    assert_eq!(HeadlinePublished::PATH, "/sse/news/headline-published");
}

#[test]
fn default_path_of_enum_has_key_only() {
    assert_eq!(GameEvent::PATH, "/sse/game/{game_id}");
}

#[test]
fn custom_path_is_kept_verbatim() {
    assert_eq!(PieceMoved::PATH, "/games/{game_id}/moves");
    assert_eq!(Breaking::PATH, "/breaking");
    assert_eq!(Presence::PATH, "/presence/{game_id}");
}

#[test]
fn domain_and_key_field_are_exposed() {
    assert_eq!(PlayerJoined::DOMAIN, "game");
    assert_eq!(PlayerJoined::KEY_FIELD, Some("game_id"));
    assert_eq!(HeadlinePublished::KEY_FIELD, None);
    assert_eq!(GameEvent::KEY_FIELD, Some("game_id"));
}

#[test]
fn raw_identifier_key_field_is_named_without_prefix() {
    assert_eq!(Typed::KEY_FIELD, Some("type"));
    assert_eq!(Typed::PATH, "/sse/kinds/{type}/typed");
    let event = Typed { r#type: "x".into() };
    assert_eq!(event.key(), "x");
}

#[test]
fn kind_of_keyed_struct_is_keyed() {
    assert_eq!(
        PlayerJoined::KIND,
        EventKind::Keyed {
            name: "PlayerJoined"
        }
    );
    assert_eq!(
        RoundStarted::KIND,
        EventKind::Keyed {
            name: "round-started"
        }
    );
}

#[test]
fn kind_of_keyless_struct_is_broadcast() {
    assert_eq!(
        HeadlinePublished::KIND,
        EventKind::Broadcast {
            name: "HeadlinePublished"
        }
    );
}

#[test]
fn kind_of_enum_is_stream_with_variants_in_order() {
    assert_eq!(
        GameEvent::KIND,
        EventKind::Stream {
            name: "GameEvent",
            variants: &["Joined", "Left", "ScoreChanged", "game-over"],
        }
    );
    assert_eq!(Presence::KIND.name(), "presence");
}

#[test]
fn struct_event_name_is_its_name() {
    assert_eq!(joined(1).event_name(), "PlayerJoined");
    assert_eq!(Breaking.event_name(), "breaking");
}

#[test]
fn enum_event_name_is_the_variant_name() {
    let events = [
        (GameEvent::Joined(joined(1)), "Joined"),
        (GameEvent::Left(PlayerLeft { game_id: 1 }), "Left"),
        (
            GameEvent::ScoreChanged {
                game_id: 1,
                new_score: 3,
            },
            "ScoreChanged",
        ),
        (
            GameEvent::Ended {
                game_id: 1,
                winner: None,
            },
            "game-over",
        ),
    ];
    for (event, name) in events {
        assert_eq!(event.event_name(), name);
    }
}

#[test]
fn enum_key_comes_from_struct_field_or_wrapped_event() {
    assert_eq!(GameEvent::Joined(joined(5)).key(), &5);
    assert_eq!(
        GameEvent::ScoreChanged {
            game_id: 6,
            new_score: 0
        }
        .key(),
        &6
    );
    assert_eq!(
        GameEvent::Ended {
            game_id: 8,
            winner: None
        }
        .key(),
        &8
    );
    assert_eq!(Presence::Left(PlayerLeft { game_id: 7 }).key(), &7);
}

#[test]
fn struct_data_is_its_json() {
    assert_eq!(
        joined(1).to_data().unwrap(),
        br#"{"game_id":1,"player_name":"ada"}"#
    );
}

#[test]
fn newtype_variant_data_is_the_wrapped_event() {
    assert_eq!(
        GameEvent::Joined(joined(1)).to_data().unwrap(),
        br#"{"game_id":1,"player_name":"ada"}"#
    );
}

#[test]
fn struct_variant_data_is_its_fields_with_serde_renames() {
    let event = GameEvent::ScoreChanged {
        game_id: 2,
        new_score: -4,
    };
    assert_eq!(event.to_data().unwrap(), br#"{"gameId":2,"newScore":-4}"#);
}

#[test]
fn enum_data_round_trips_through_event_name() {
    let events = [
        GameEvent::Joined(joined(1)),
        GameEvent::Left(PlayerLeft { game_id: 2 }),
        GameEvent::ScoreChanged {
            game_id: 3,
            new_score: 10,
        },
        GameEvent::Ended {
            game_id: 4,
            winner: Some("ada".into()),
        },
    ];
    for event in events {
        let data = event.to_data().unwrap();
        let back = GameEvent::from_data(event.event_name(), &data).unwrap();
        assert_eq!(back, event);
    }
}

#[test]
fn enum_from_data_rejects_an_unknown_event_name() {
    let err = GameEvent::from_data("Nope", br#"{"game_id":1}"#).unwrap_err();
    assert!(err.to_string().contains("unknown event `Nope`"), "{err}");
}

#[test]
fn struct_from_data_ignores_the_event_name() {
    let data = joined(3).to_data().unwrap();
    assert_eq!(
        PlayerJoined::from_data("anything", &data).unwrap(),
        joined(3)
    );
}

#[test]
fn newtype_variant_converts_from_the_wrapped_event() {
    assert_eq!(GameEvent::from(joined(1)), GameEvent::Joined(joined(1)));
    let left: Presence = PlayerLeft { game_id: 2 }.into();
    assert_eq!(left, Presence::Left(PlayerLeft { game_id: 2 }));
}

// The derive keeps its own copy of the reserved names (a proc-macro crate cannot depend on
// statelesse); `ui/fail/reserved-*.rs` prove it rejects each name listed here. When the protocol
// reserves another name, this fails until the derive's list and a UI test follow.
#[test]
fn the_derive_rejects_exactly_the_protocols_reserved_names() {
    assert_eq!(
        statelesse::protocol::RESERVED_EVENT_NAMES,
        ["gap", "snapshot", "join", "leave", "presence"]
    );
}

#[test]
fn registry_lists_every_derived_event() {
    let events = registry::events();
    let find = |rust_type: &str| {
        events
            .iter()
            .find(|info| info.rust_type.ends_with(rust_type))
            .unwrap_or_else(|| panic!("{rust_type} is not registered"))
    };
    let keyed = find("::PlayerJoined");
    assert_eq!(keyed.domain, "game");
    assert_eq!(keyed.key_field, Some("game_id"));
    assert_eq!(keyed.key_type, "u64");
    assert_eq!(keyed.key_ts_type, "number");
    assert_eq!(keyed.path, "/sse/game/{game_id}/player-joined");

    let broadcast = find("::HeadlinePublished");
    assert_eq!(broadcast.key_field, None);
    assert_eq!(broadcast.key_type, "()");

    let stream = find("::GameEvent");
    assert_eq!(stream.name(), "GameEvent");
    assert_eq!(stream.path, "/sse/game/{game_id}");

    let newtype_key = find("::RoundStarted");
    assert_eq!(newtype_key.key_ts_type, "number");
    assert!(newtype_key.key_type.ends_with("GameId"));

    for name in [
        "::PlayerLeft",
        "::PieceMoved",
        "::ChatMessage",
        "::Typed",
        "::Breaking",
        "::Presence",
    ] {
        find(name);
    }
}

#[tokio::test]
async fn enum_events_travel_with_their_variant() {
    let bp = Backplane::in_memory();
    let mut stream = GameEvent::stream(&bp, &11).await.unwrap();
    GameEvent::publish(&bp, joined(11).into()).await.unwrap();
    GameEvent::publish(
        &bp,
        GameEvent::ScoreChanged {
            game_id: 11,
            new_score: 1,
        },
    )
    .await
    .unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!(first.event, GameEvent::Joined(joined(11)));
    assert_eq!(
        second.event,
        GameEvent::ScoreChanged {
            game_id: 11,
            new_score: 1
        }
    );
}

#[test]
fn diagnostics_list_every_registered_event() {
    let diagnostics = Backplane::in_memory().diagnostics();
    assert_eq!(diagnostics.events, registry::events());
    let json = serde_json::to_value(&diagnostics).unwrap();
    let joined = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "/sse/game/{game_id}/player-joined")
        .unwrap();
    assert_eq!(joined["kind"]["kind"], "keyed");
    assert_eq!(joined["kind"]["name"], "PlayerJoined");
}
