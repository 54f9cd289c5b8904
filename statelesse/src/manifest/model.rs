//! The model every output form renders: the events with their client names, key parameters and
//! route paths, and the payload types, resolved and checked so that no two generated names clash.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::error::ManifestError;
use super::syntax::{
    COMMON_HANDLERS, PRESENCE_HANDLERS, RUNTIME_NAMES, key_param_name, pascal_case,
};
use crate::event::EventKind;
use crate::registry::EventInfo;

/// The resolved content of a manifest, which every output form renders.
#[derive(Debug)]
pub(super) struct Model {
    pub(super) types: Vec<TypeDecl>,
    pub(super) events: Vec<EventModel>,
    pub(super) base_url: String,
    pub(super) large_int: String,
}

impl Model {
    /// Names every event's client and checks that each exported name has one owner: a payload
    /// type, the client runtime, or one event's client.
    pub(super) fn new<'a>(
        types: Vec<TypeDecl>,
        events: impl IntoIterator<Item = (&'a EventInfo, EventTypes)>,
        base_url: String,
        large_int: String,
    ) -> Result<Self, ManifestError> {
        let mut names = Names::default();
        for decl in &types {
            names.claim(&decl.name, || format!("the Rust type `{}`", decl.rust_type))?;
        }
        for name in RUNTIME_NAMES {
            names.claim(name, || "a name of the client runtime".to_owned())?;
        }

        let described: Vec<_> = events.into_iter().collect();
        let client_names = client_names(described.iter().map(|(info, _)| *info));
        let mut models = Vec::with_capacity(described.len());
        for ((info, types), client) in described.into_iter().zip(client_names) {
            let event = EventModel::new(info, types, client)?;
            event.check_handlers()?;
            for name in event.exported_names() {
                names.claim(&name, || format!("the client of `{}`", info.rust_type))?;
            }
            models.push(event);
        }
        Ok(Self {
            types,
            events: models,
            base_url,
            large_int,
        })
    }
}

/// One exported TypeScript declaration of a payload type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TypeDecl {
    pub(super) name: String,
    pub(super) rust_type: &'static str,
    pub(super) docs: Option<String>,
    /// `type X = ..;` as ts-rs writes it, without `export`.
    pub(super) decl: String,
}

impl TypeDecl {
    pub(super) fn is_enum(&self) -> bool {
        self.decl.starts_with("enum ") || self.decl.starts_with("const enum ")
    }
}

#[derive(Debug)]
pub(super) struct EventModel {
    pub(super) info: EventInfo,
    /// The TypeScript type of the event (the enum itself for a stream).
    pub(super) ts_type: String,
    /// The base of the client's names: `subscribe{client}`, `{client}Handlers`.
    pub(super) client: String,
    /// The client's key parameter, `None` for a broadcast event.
    pub(super) key_param: Option<String>,
    pub(super) path: Vec<PathPart>,
    pub(super) payloads: Vec<Payload>,
    /// The TypeScript type of `onSnapshot`'s argument; `None` leaves it to the caller.
    pub(super) snapshot: Option<String>,
    /// The TypeScript type of a member of a presence type; `None` when it keeps no presence.
    pub(super) presence: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum PathPart {
    Literal(String),
    Key,
}

/// The SSE event of one struct event or of one variant of an enum stream.
#[derive(Debug, Clone)]
pub(super) struct Payload {
    /// The SSE event name.
    pub(super) event: &'static str,
    /// serde's name of the variant, for an enum stream.
    pub(super) serde_name: Option<&'static str>,
    /// The TypeScript type of the event's data.
    pub(super) ts_type: String,
}

/// What an event's registration tells the manifest: its TypeScript type and its payloads.
#[derive(Debug)]
pub(super) struct EventTypes {
    pub(super) ts_type: String,
    pub(super) payloads: Vec<Payload>,
    /// The TypeScript type of the route's initial state ([`Manifest::with_snapshot`](super::Manifest::with_snapshot)).
    pub(super) snapshot: Option<String>,
    /// The TypeScript type of a member, for a presence type (`#[sse(presence = ..)]`).
    pub(super) presence: Option<String>,
}

impl EventModel {
    fn new(info: &EventInfo, types: EventTypes, client: String) -> Result<Self, ManifestError> {
        let key_param = info.key_field.map(key_param_name);
        let path = parse_path(info)?;
        Ok(Self {
            info: info.clone(),
            ts_type: types.ts_type,
            client,
            key_param,
            path,
            payloads: types.payloads,
            snapshot: types.snapshot,
            presence: types.presence,
        })
    }

    pub(super) fn is_stream(&self) -> bool {
        matches!(self.info.kind, EventKind::Stream { .. })
    }

    /// The handler name of each payload of an enum stream: `on` + the variant's name.
    pub(super) fn variant_handlers(&self) -> Vec<(String, &Payload)> {
        self.payloads
            .iter()
            .map(|payload| (format!("on{}", pascal_case(payload.event)), payload))
            .collect()
    }

    /// The names this event's client exports.
    fn exported_names(&self) -> Vec<String> {
        let client = &self.client;
        let mut names = vec![
            format!("subscribe{client}"),
            format!("mux{client}"),
            format!("{client}Handlers"),
        ];
        if self.is_stream() {
            names.push(format!("{client}Message"));
        }
        names
    }

    /// Checks that no two handlers of an enum stream share a name, nor take a common one (or, for
    /// a presence type, a presence handler's).
    fn check_handlers(&self) -> Result<(), ManifestError> {
        if !self.is_stream() {
            return Ok(());
        }
        let mut handlers = Names::default();
        for name in COMMON_HANDLERS {
            handlers.claim(name, || "a handler of every stream".to_owned())?;
        }
        if self.presence.is_some() {
            for name in PRESENCE_HANDLERS {
                handlers.claim(name, || "a handler of every presence stream".to_owned())?;
            }
        }
        for (handler, payload) in self.variant_handlers() {
            handlers.claim(&handler, || {
                format!(
                    "the handler of `{}` in `{}`",
                    payload.event, self.info.rust_type
                )
            })?;
        }
        Ok(())
    }
}

/// Which definition claimed each exported name.
#[derive(Default)]
struct Names {
    owners: BTreeMap<String, String>,
}

impl Names {
    fn claim(&mut self, name: &str, owner: impl FnOnce() -> String) -> Result<(), ManifestError> {
        match self.owners.entry(name.to_owned()) {
            Entry::Vacant(entry) => {
                entry.insert(owner());
                Ok(())
            }
            Entry::Occupied(entry) => Err(ManifestError::NameClash {
                name: name.to_owned(),
                first: entry.get().clone(),
                second: owner(),
            }),
        }
    }
}

/// The base of each event's client names: its name in `PascalCase`, prefixed with its domain when
/// two events of different domains share a name.
fn client_names<'a>(events: impl Iterator<Item = &'a EventInfo> + Clone) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for info in events.clone() {
        *counts.entry(pascal_case(info.name())).or_default() += 1;
    }
    events
        .map(|info| {
            let base = pascal_case(info.name());
            if counts.get(&base).copied().unwrap_or_default() > 1 {
                format!("{}{base}", pascal_case(info.domain))
            } else {
                base
            }
        })
        .collect()
}

/// Splits a route template into literal text and the key placeholder.
fn parse_path(info: &EventInfo) -> Result<Vec<PathPart>, ManifestError> {
    let mut parts = Vec::new();
    let mut rest = info.path;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|close| open + close) else {
            break;
        };
        let placeholder = &rest[open + 1..close];
        if Some(placeholder) != info.key_field {
            return Err(ManifestError::UnsupportedPath {
                event: info.rust_type,
                path: info.path,
                placeholder: placeholder.to_owned(),
            });
        }
        if open > 0 {
            parts.push(PathPart::Literal(rest[..open].to_owned()));
        }
        parts.push(PathPart::Key);
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(PathPart::Literal(rest.to_owned()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::manifest::collect::ManifestRegistration;
    use crate::manifest::fixtures::{Clashing, Game, Joined, Lobby, Table};

    #[test]
    fn a_variant_handler_cannot_take_a_common_handler_name() {
        let error = Manifest::from_registrations(&[ManifestRegistration::of::<Clashing>()])
            .render_typescript()
            .unwrap_err();
        assert!(
            matches!(&error, ManifestError::NameClash { name, .. } if name == "onGap"),
            "{error}"
        );
    }

    #[test]
    fn a_variant_handler_of_a_presence_stream_cannot_take_a_presence_handler_name() {
        let error = Manifest::from_registrations(&[ManifestRegistration::of_presence::<Table>()])
            .render_typescript()
            .unwrap_err();
        assert!(
            matches!(&error, ManifestError::NameClash { name, .. } if name == "onJoin"),
            "{error}"
        );
    }

    #[test]
    fn a_variant_handler_may_take_a_presence_handler_name_without_presence() {
        Manifest::from_registrations(&[ManifestRegistration::of::<Table>()])
            .render_typescript()
            .unwrap();
    }

    #[test]
    fn two_types_with_one_name_are_an_error() {
        let error = Manifest::from_registrations(&[
            ManifestRegistration::of::<Joined>(),
            ManifestRegistration::of::<Lobby>(),
        ])
        .render_typescript()
        .unwrap_err();
        let ManifestError::NameClash {
            name,
            first,
            second,
        } = &error
        else {
            panic!("{error}");
        };
        assert_eq!(name, "Joined");
        assert!(
            first.contains("Joined") && second.contains("Joined") && first != second,
            "{error}"
        );
    }

    #[test]
    fn a_path_placeholder_must_be_the_key() {
        let error = Manifest::from_registrations(&[ManifestRegistration::of::<Lobby>()])
            .render_typescript()
            .unwrap_err();
        assert!(
            matches!(&error, ManifestError::UnsupportedPath { placeholder, .. } if placeholder == "room"),
            "{error}"
        );
    }

    #[test]
    fn paths_split_into_literals_and_the_key() {
        let info = EventInfo::of::<Joined>();
        assert_eq!(
            parse_path(&info).unwrap(),
            [
                PathPart::Literal("/sse/game/".to_owned()),
                PathPart::Key,
                PathPart::Literal("/joined".to_owned()),
            ]
        );
    }

    #[test]
    fn clients_of_same_named_events_get_their_domain() {
        let mut a = EventInfo::of::<Joined>();
        let mut b = EventInfo::of::<Joined>();
        a.domain = "game";
        b.domain = "lobby";
        let c = EventInfo::of::<Game>();
        assert_eq!(
            client_names([&a, &b, &c].into_iter()),
            ["GameJoined", "LobbyJoined", "Game"]
        );
    }
}
