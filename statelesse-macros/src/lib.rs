//! The `#[derive(SseEvent)]` macro of [statelesse](https://docs.rs/statelesse).
//!
//! This crate is an implementation detail of `statelesse`: depend on `statelesse`, which
//! re-exports the derive as `statelesse::SseEvent` (and in `statelesse::prelude`). Its expansion
//! calls items that only `statelesse` provides, and may change in any release.

mod ast;
mod attr;
mod ctxt;
mod expand;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `SseEvent` for a struct or an enum, from its `#[sse(..)]` attribute.
///
/// The derive checks the attribute at compile time, implements `SseEvent` (domain, key type,
/// event name, route path) and registers the type for `statelesse::registry::events()`, which
/// routes and the TypeScript manifest read. The type must also implement `Serialize` and
/// `Deserialize`, and, when statelesse's `typescript` feature is on, ts-rs's `TS`.
///
/// The type must be a struct or an enum without generic parameters: each event type is
/// registered once, for its route and the TypeScript client, which needs one concrete type.
///
/// # Attribute reference
///
/// On the struct or enum, `#[sse(..)]` takes:
///
/// - **`domain = "..."`** (required): the first part of every channel name of the type, such
///   as `"game"` in `game:42:PlayerJoined`. ASCII letters, digits, `_` and `-` only: `:`
///   separates the parts of a channel name.
/// - **`key = "field"`**: the field whose value selects the channel; its type is the key type,
///   which must implement `ChannelKey` (`String`, the integers, `uuid::Uuid`, or your own type
///   through `statelesse::channel_key!`). Without `key`, a struct is a *broadcast* event with a
///   single channel `{domain}:{name}`. An enum needs a `key`, carried by every variant.
/// - **`name = "..."`**: the SSE event name of a struct (default: the type's name), or the
///   name of an enum stream. Same characters as `domain`. A name is unique within its domain,
///   across structs and enums: a backplane refuses two types of one domain and name, whose
///   channels could be the same (`statelesse::registry::collisions`). An event may not be named `gap`,
///   `snapshot`, `join`, `leave` or `presence`: a route sends frames of its own under those
///   names (`statelesse::protocol::RESERVED_EVENT_NAMES`).
/// - **`presence = Type`**: the type keeps presence, who is connected to each of its channels
///   across every instance, with `Type` (a type, not a string: `presence = Player`) as the
///   identity of a member, which must be `Serialize + DeserializeOwned + Clone + Send + Sync +
///   'static` (and `TS` with statelesse's `typescript` feature). The derive then implements
///   `statelesse::Presence` and sets `SseEvent::PRESENCE`; the type's routes take a `member`
///   hook naming each connection's member, its channels carry `join` and `leave` events and its
///   connections start with a `presence` frame (`docs/presence.md`).
/// - **`path = "..."`**: the route path template, starting with `/`. It must contain exactly
///   one placeholder, the key field (`{game_id}`), or none for a broadcast event. Defaults:
///   - keyed struct: `/sse/{domain}/{key}/{name in kebab-case}`, e.g.
///     `/sse/game/{game_id}/player-joined`;
///   - broadcast struct: `/sse/{domain}/{name in kebab-case}`, e.g. `/sse/news/headline`;
///   - enum: `/sse/{domain}/{key}`, e.g. `/sse/game/{game_id}`.
///
/// On an enum variant, `#[sse(..)]` takes:
///
/// - **`name = "..."`**: the SSE event name of the variant (default: the variant's name), which
///   may not be one of the reserved names either.
///
/// `#[sse]` is not accepted on fields.
///
/// # Channels
///
/// | item | channel name | `SseEvent::KIND` |
/// |---|---|---|
/// | struct with `key` | `{domain}:{key}:{name}` | `EventKind::Keyed` |
/// | struct without `key` | `{domain}:{name}` | `EventKind::Broadcast` |
/// | enum (with `key`) | `{domain}:{key}:{name}` | `EventKind::Stream` |
///
/// # Structs
///
/// ```
/// use statelesse::prelude::*;
///
/// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
/// # #[ts(crate = "statelesse::ts_rs")]
/// #[sse(domain = "game", key = "game_id")]
/// pub struct PlayerJoined {
///     pub game_id: u64,
///     pub player_name: String,
/// }
///
/// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
/// # #[ts(crate = "statelesse::ts_rs")]
/// #[sse(domain = "news", name = "headline", path = "/news/live")]
/// pub struct Headline {
///     pub text: String,
/// }
///
/// assert_eq!(PlayerJoined::channel(&42).name(), "game:42:PlayerJoined");
/// assert_eq!(PlayerJoined::PATH, "/sse/game/{game_id}/player-joined");
/// assert_eq!(Headline::channel(&()).name(), "news:headline");
/// assert_eq!(Headline::PATH, "/news/live");
/// ```
///
/// # Enums: one stream per key, one SSE event per variant
///
/// Each variant is a struct variant with the key field, or a newtype variant wrapping an event
/// with the same key type (the derive adds `From<Inner>` for the enum). The SSE `event` is the
/// variant's name and the `data` is the variant's content, not serde's `{"Variant": ..}`
/// wrapper; serde's attributes on fields and variants (`rename_all`, ...) apply as usual.
///
/// ```
/// use statelesse::prelude::*;
///
/// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
/// # #[ts(crate = "statelesse::ts_rs")]
/// #[sse(domain = "game", key = "game_id")]
/// pub struct PlayerJoined {
///     pub game_id: u64,
///     pub player_name: String,
/// }
///
/// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
/// # #[ts(crate = "statelesse::ts_rs")]
/// #[sse(domain = "game", key = "game_id")]
/// pub enum GameEvent {
///     Joined(PlayerJoined),
///     #[sse(name = "score")]
///     ScoreChanged { game_id: u64, score: i64 },
/// }
///
/// let event = GameEvent::from(PlayerJoined { game_id: 7, player_name: "ada".into() });
/// assert_eq!(event.event_name(), "Joined");
/// assert_eq!(event.to_data().unwrap(), br#"{"game_id":7,"player_name":"ada"}"#);
/// assert_eq!(GameEvent::channel(&7).name(), "game:7:GameEvent");
/// assert_eq!(GameEvent::PATH, "/sse/game/{game_id}");
/// ```
///
/// # Compile-time checks
///
/// Every mistake below is a compile error spanned at the token to fix, all reported at once:
/// a missing `#[sse]` or `domain`; an empty `domain` or `name`, or one with a character
/// outside `[A-Za-z0-9_-]`; a struct or variant whose event name is reserved for the route's
/// own frames (`gap`, `snapshot`, `join`, `leave`, `presence`); a `presence` without a type,
/// with a string for a type, or given twice; a member type that is not serializable; an unknown key (with a suggestion), a duplicate key, a value that
/// is not a string literal; a `key` naming no field; a `path` whose placeholders are not
/// exactly the key; an enum variant without the key field, a unit or tuple variant, a newtype
/// variant wrapping an event with another key type, two variants wrapping the same type or
/// sharing an event name; `#[serde(tag, content, untagged, into, from, try_from)]` on an enum,
/// `#[serde(skip, other, untagged)]` on a variant; a key type that is not `ChannelKey`; a
/// payload that is not `Serialize`; unions and generic types.
#[proc_macro_derive(SseEvent, attributes(sse))]
pub fn derive_sse_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
