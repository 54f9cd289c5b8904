//! Regenerates the browser client (`web/events.js` + `web/events.d.ts`) from the event types of
//! `example-game-events` on every build that changes them; an unchanged client is not rewritten.

// Linking the events crate is what puts its events in the registry that the manifest reads.
use example_game_events::{GameEvent, GameSnapshot};

fn main() -> Result<(), statelesse::manifest::ManifestError> {
    println!("cargo::rerun-if-changed=build.rs");
    statelesse::manifest::Manifest::collect()
        .with_snapshot::<GameEvent, GameSnapshot>()
        .write("web/events.js")
}
