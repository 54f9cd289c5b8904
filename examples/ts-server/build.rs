//! Generates the typed TypeScript client of the events of `example-ts-events` on every build that
//! changes them: `web/events.js` + `web/events.d.ts` for the page, `client/events.ts` for the
//! Node tests. Writing nothing when the content is the same, so the files stay untouched.

use example_ts_events as events; // links the events crate, so that the registry sees its events

fn main() -> Result<(), statelesse::manifest::ManifestError> {
    println!("cargo::rerun-if-changed=build.rs");
    let manifest = statelesse::manifest::Manifest::collect().with_type::<events::GameSnapshot>();
    manifest.write("web/events.js")?;
    manifest.write("client/events.ts")
}
