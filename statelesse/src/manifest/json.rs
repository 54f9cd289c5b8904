//! The JSON form of a [`Model`], for generators other than the TypeScript one.
//!
//! Its structs mirror the document field for field; their `Json` prefix keeps them apart from the
//! crate's own `SseEvent` and from the model they are built from.

use serde::Serialize;

use super::model::{EventModel, Model, TypeDecl};
use super::typescript;
use crate::event::EventKind;
use crate::protocol::{
    GAP_EVENT, JOIN_EVENT, LAST_EVENT_ID_QUERY, LEAVE_EVENT, PRESENCE_EVENT, SNAPSHOT_EVENT,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonDocument<'a> {
    generator: &'static str,
    format: u32,
    large_int: &'a str,
    base_url: &'a str,
    protocol: JsonProtocol,
    events: Vec<JsonEvent<'a>>,
    types: Vec<JsonType<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonProtocol {
    gap_event: &'static str,
    snapshot_event: &'static str,
    last_event_id_param: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonEvent<'a> {
    name: &'static str,
    domain: &'static str,
    kind: &'static str,
    rust_type: &'static str,
    ts_type: &'a str,
    key: Option<JsonKey>,
    path: &'static str,
    client: String,
    sse_events: Vec<JsonSseEvent<'a>>,
    /// The TypeScript type of the route's initial state, when the manifest was told it.
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot_ts_type: Option<&'a str>,
    /// For a presence type, the TypeScript type of a member's identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    presence: Option<JsonPresence<'a>>,
}

/// What a presence type's stream carries besides its events.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonPresence<'a> {
    /// The TypeScript type of a member's identity.
    member_ts_type: &'a str,
    /// The SSE event names of the presence frames: `join`, `leave`, `presence`.
    join_event: &'static str,
    leave_event: &'static str,
    presence_event: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonKey {
    field: &'static str,
    rust_type: &'static str,
    ts_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSseEvent<'a> {
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    serde_variant: Option<&'static str>,
    ts_type: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonType<'a> {
    name: &'a str,
    rust_type: &'static str,
    declaration: String,
}

pub(super) fn render(model: &Model) -> String {
    let document = JsonDocument {
        generator: "statelesse",
        format: 1,
        large_int: &model.large_int,
        base_url: &model.base_url,
        protocol: JsonProtocol {
            gap_event: GAP_EVENT,
            snapshot_event: SNAPSHOT_EVENT,
            last_event_id_param: LAST_EVENT_ID_QUERY,
        },
        events: model.events.iter().map(event).collect(),
        types: model.types.iter().map(ty).collect(),
    };
    // Serializing these plain structs cannot fail.
    let mut out = serde_json::to_string_pretty(&document).unwrap_or_default();
    out.push('\n');
    out
}

fn event(event: &EventModel) -> JsonEvent<'_> {
    let info = &event.info;
    JsonEvent {
        name: info.name(),
        domain: info.domain,
        kind: match info.kind {
            EventKind::Keyed { .. } => "keyed",
            EventKind::Broadcast { .. } => "broadcast",
            EventKind::Stream { .. } => "stream",
        },
        rust_type: info.rust_type,
        ts_type: &event.ts_type,
        key: info.key_field.map(|field| JsonKey {
            field,
            rust_type: info.key_type,
            ts_type: info.key_ts_type,
        }),
        path: info.path,
        client: format!("subscribe{}", event.client),
        sse_events: event
            .payloads
            .iter()
            .map(|payload| JsonSseEvent {
                name: payload.event,
                serde_variant: payload.serde_name,
                ts_type: &payload.ts_type,
            })
            .collect(),
        snapshot_ts_type: event.snapshot.as_deref(),
        presence: event
            .presence
            .as_deref()
            .map(|member_ts_type| JsonPresence {
                member_ts_type,
                join_event: JOIN_EVENT,
                leave_event: LEAVE_EVENT,
                presence_event: PRESENCE_EVENT,
            }),
    }
}

fn ty(decl: &TypeDecl) -> JsonType<'_> {
    JsonType {
        name: &decl.name,
        rust_type: decl.rust_type,
        declaration: typescript::declaration(decl),
    }
}
