//! The TypeScript manifest of a fixed set of events, compared byte for byte with the committed
//! snapshots in `tests/manifest/`, which `npm test` then type-checks with `tsc --strict`.
//!
//! The events cover nested types, an enum stream with newtype and struct variants, `Option`,
//! serde renames and skips, tagged payload enums, generics, `serde_json::Value`, keyless events,
//! string and number keys, and 64-bit integers. This file is its own test binary because the
//! registry holds every event linked into the program.
//!
//! After an intended change of the output, re-bless the snapshots and review the diff:
//!
//! ```sh
//! STATELESSE_BLESS=1 cargo test -p statelesse-tests --test manifest
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use statelesse::manifest::{Manifest, ManifestError};
use statelesse::prelude::*;

/// A square of the board.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "camelCase")]
struct Position {
    x_pos: i32,
    y_pos: i32,
}

/// What a player is in a game: an adjacently tagged enum.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(tag = "kind", content = "data", rename_all = "lowercase")]
enum Role {
    Host,
    Guest { invited_by: String },
    Spectator(u32),
}

/// A reward: an internally tagged enum.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(tag = "type")]
enum Reward {
    Points { amount: u64 },
    Badge { name: String },
}

/// A page of items, generic.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

/// How loud an announcement is: a unit-only enum.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Level {
    Info,
    Warning,
}

/// A player joined a game.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[serde(rename_all = "camelCase")]
#[sse(domain = "game", key = "game_id")]
struct PlayerJoined {
    game_id: u64,
    player_name: String,
    position: Position,
    role: Role,
    nickname: Option<String>,
    #[serde(rename = "joinedAtMs")]
    joined_at: u64,
    #[serde(skip)]
    #[allow(
        dead_code,
        reason = "skipped by serde, so absent from the TypeScript type"
    )]
    session_secret: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[ts(optional = nullable)]
    team: Option<String>,
}

/// A player left a game.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
struct PlayerLeft {
    game_id: u64,
    reason: Option<String>,
}

/// Everything that happens in one game, on one stream.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
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
        reward: Option<Reward>,
    },
    #[sse(name = "game-over")]
    Ended {
        game_id: u64,
        winner: Option<String>,
    },
}

/// Who is in a chat room: the member identity of its presence.
#[derive(Clone, Debug, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
struct Chatter {
    id: u64,
    nick: String,
}

/// A message in a chat room, keyed by a string; the room keeps presence.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "chat", key = "room", name = "message-posted", presence = Chatter)]
struct ChatMessage {
    room: String,
    text: String,
    mentions: Page<Position>,
    meta: BTreeMap<String, serde_json::Value>,
}

/// Said to every lobby: a keyless (broadcast) event.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "lobby")]
struct Announcement {
    text: String,
    level: Level,
    sent_at: i64,
}

fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifest")
}

/// Compares the output of `manifest` for `file` with the committed snapshot, or rewrites the
/// snapshot when `STATELESSE_BLESS` is set.
fn assert_snapshot(manifest: &Manifest, file: &str) {
    let path = snapshots().join(file);
    if std::env::var_os("STATELESSE_BLESS").is_some() {
        if let Err(error) = manifest.write(&path) {
            panic!("{error}");
        }
        return;
    }
    match manifest.check(&path) {
        Ok(()) => {}
        Err(error @ ManifestError::Stale { .. }) => panic!(
            "{error}\nre-bless with `STATELESSE_BLESS=1 cargo test -p statelesse-tests --test manifest` \
             and review the diff"
        ),
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn typescript_module_matches_snapshot() {
    assert_snapshot(&Manifest::collect(), "expected.ts");
}

#[test]
fn javascript_and_declarations_match_snapshot() {
    assert_snapshot(&Manifest::collect(), "js/expected.js");
}

#[test]
fn json_manifest_matches_snapshot() {
    assert_snapshot(&Manifest::collect(), "expected.json");
}

#[test]
fn output_is_deterministic() {
    // ts-rs lists a type's dependencies from a `HashSet`, in a different order each time.
    let first = Manifest::collect().render_typescript().unwrap();
    for _ in 0..5 {
        assert_eq!(Manifest::collect().render_typescript().unwrap(), first);
    }
}

#[test]
fn every_output_starts_with_the_generated_line() {
    let manifest = Manifest::collect();
    for output in [
        manifest.render_typescript().unwrap(),
        manifest.render_javascript().unwrap(),
        manifest.render_declarations().unwrap(),
    ] {
        assert!(output.starts_with("// generated by statelesse, do not edit\n"));
    }
}

#[test]
fn registry_gives_every_event_sorted() {
    let names: Vec<(&str, &str)> = Manifest::collect()
        .events()
        .map(|event| (event.domain, event.name()))
        .collect();
    assert_eq!(
        names,
        [
            ("chat", "message-posted"),
            ("game", "GameEvent"),
            ("game", "PlayerJoined"),
            ("game", "PlayerLeft"),
            ("lobby", "Announcement"),
        ]
    );
}

#[test]
fn large_integers_are_numbers_unless_configured() {
    let default = Manifest::collect().render_typescript().unwrap();
    assert!(default.contains("joinedAtMs: number,"));

    let bigint = Manifest::collect()
        .with_large_int("bigint")
        .render_typescript()
        .unwrap();
    assert!(bigint.contains("joinedAtMs: bigint,"));
    assert!(bigint.contains("sent_at: bigint,"));
}

#[test]
fn base_url_is_the_default_of_every_client() {
    let ts = Manifest::collect()
        .with_base_url("https://api.example.com/")
        .render_typescript()
        .unwrap();
    assert!(ts.contains("export const DEFAULT_BASE_URL: string = \"https://api.example.com\";"));
}

#[test]
fn retain_filters_events_and_their_types() {
    let ts = Manifest::collect()
        .retain(|event| event.domain == "lobby")
        .render_typescript()
        .unwrap();
    assert!(ts.contains(
        "export function subscribeAnnouncement<S = unknown>(handlers: AnnouncementHandlers<S>"
    ));
    assert!(!ts.contains("PlayerJoined"));
    assert!(ts.contains("export type Level = \"INFO\" | \"WARNING\";"));
}

#[test]
fn with_type_adds_a_type_and_its_dependencies() {
    #[derive(Serialize, TS)]
    #[ts(crate = "statelesse::ts_rs")]
    struct Scoreboard {
        leader: Option<Position>,
    }
    let ts = Manifest::collect()
        .retain(|event| event.domain == "lobby")
        .with_type::<Scoreboard>()
        .render_typescript()
        .unwrap();
    assert!(ts.contains("export type Scoreboard = { leader: Position | null, };"));
    assert!(ts.contains("export type Position = { xPos: number, yPos: number, };"));
}

#[test]
fn no_events_is_an_error_that_names_the_fix() {
    let error = Manifest::collect()
        .retain(|_| false)
        .render_typescript()
        .unwrap_err();
    assert!(matches!(error, ManifestError::NoEvents));
    assert!(error.to_string().contains("use my_events as _;"));
}

#[test]
fn check_reports_a_stale_or_missing_file() {
    let dir = std::env::temp_dir().join(format!("statelesse-manifest-{}", std::process::id()));
    let path = dir.join("client").join("events.ts");
    let manifest = Manifest::collect();

    let missing = manifest.check(&path).unwrap_err();
    assert!(
        matches!(missing, ManifestError::Stale { line: None, .. }),
        "{missing}"
    );

    manifest.write(&path).unwrap();
    manifest.check(&path).unwrap();

    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replacen("number", "string", 1);
    std::fs::write(&path, edited).unwrap();
    let stale = manifest.check(&path).unwrap_err();
    assert!(stale.is_stale());
    assert!(stale.to_string().contains("is stale"), "{stale}");

    manifest.write(&path).unwrap();
    manifest.check(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn write_js_writes_the_declarations_beside_it() {
    let dir = std::env::temp_dir().join(format!("statelesse-manifest-js-{}", std::process::id()));
    let manifest = Manifest::collect();
    manifest.write_js_and_dts(dir.join("events.js")).unwrap();
    let dts = std::fs::read_to_string(dir.join("events.d.ts")).unwrap();
    assert_eq!(dts, manifest.render_declarations().unwrap());
    manifest.check(dir.join("events.js")).unwrap();

    std::fs::remove_file(dir.join("events.d.ts")).unwrap();
    assert!(
        manifest
            .check(dir.join("events.js"))
            .unwrap_err()
            .is_stale()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_extension_is_an_error() {
    let error = Manifest::collect().write("events.txt").unwrap_err();
    assert!(
        matches!(error, ManifestError::UnknownExtension { .. }),
        "{error}"
    );
}
