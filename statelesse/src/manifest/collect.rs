//! What the manifest collects: the entry `#[derive(SseEvent)]` registers for each event, and the
//! walk of the ts-rs types that entry points at.
//!
//! The manifest keeps its own `inventory` of events rather than a field in the registry's, so the
//! registry stays plain data that names no manifest type; the derive registers an event in both
//! through `__private::register_event!`.

use std::any::{TypeId, type_name};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use ts_rs::{Config, TS, TypeVisitor};

use super::error::ManifestError;
use super::model::{EventTypes, Payload, TypeDecl};
use super::syntax::string;
use crate::event::{EventKind, SseEvent};
use crate::registry::EventInfo;

/// Implemented by every type with a TypeScript type; [`ManifestRegistration::of`] requires it of
/// every event, so with the `typescript` feature on a missing `#[derive(TS)]` is this error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no TypeScript type: add `#[derive(TS)]` to it",
    label = "`{Self}` does not implement `ts_rs::TS`",
    note = "the `typescript` feature of statelesse is on, so every event is part of the TypeScript manifest and needs `#[derive(TS)]` (from `ts-rs`, or with `#[ts(crate = \"statelesse::ts_rs\")]`)"
)]
pub trait TypeScriptEvent: TS + 'static {}

impl<T: TS + 'static> TypeScriptEvent for T {}

/// One event type in the manifest; built only by `#[derive(SseEvent)]`.
#[doc(hidden)]
#[derive(Debug)]
pub struct ManifestRegistration {
    info: fn() -> EventInfo,
    describe: Describe,
    /// The member type of a presence type.
    presence: Option<SnapshotType>,
}

impl ManifestRegistration {
    /// The registration of `E`, which must have a TypeScript type: with the `typescript` feature
    /// on, every event is part of the manifest.
    #[must_use]
    pub const fn of<E: SseEvent + TypeScriptEvent>() -> Self {
        Self {
            info: EventInfo::of::<E>,
            describe: describe::<E>,
            presence: None,
        }
    }

    /// The registration of `E`, a presence type, whose member type must have a TypeScript type
    /// too.
    #[must_use]
    pub const fn of_presence<E>() -> Self
    where
        E: crate::Presence + TypeScriptEvent,
    {
        Self {
            info: EventInfo::of::<E>,
            describe: describe::<E>,
            presence: Some(snapshot_type::<E::Member>),
        }
    }

    pub(super) fn source(&self) -> Source {
        Source {
            info: (self.info)(),
            describe: self.describe,
            presence: self.presence,
        }
    }
}

inventory::collect!(ManifestRegistration);

/// Every event registered in this program, unsorted.
pub(super) fn registrations() -> impl Iterator<Item = &'static ManifestRegistration> {
    inventory::iter::<ManifestRegistration>.into_iter()
}

/// One event of a manifest: what the registry knows of it, and how to walk its types.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub(super) info: EventInfo,
    pub(super) describe: Describe,
    /// Walks the member type of a presence type and returns its TypeScript name.
    pub(super) presence: Option<SnapshotType>,
}

/// The manifest hook of a registration: walks the event's types into `collector`.
pub(super) type Describe = fn(&mut Collector<'_>) -> Result<EventTypes, ManifestError>;

/// Walks one extra type into a collector.
pub(super) type VisitType = fn(&mut Collector<'_>);

/// The [`VisitType`] of `T`.
pub(super) fn visit_type<T: TS + 'static>(collector: &mut Collector<'_>) {
    collector.visit::<T>();
}

/// Walks a snapshot (or presence member) type into a collector and returns its TypeScript name.
pub(super) type SnapshotType = fn(&mut Collector<'_>) -> String;

/// The [`SnapshotType`] of `T`.
pub(super) fn snapshot_type<T: TS + 'static>(collector: &mut Collector<'_>) -> String {
    collector.visit::<T>();
    T::name(collector.config)
}

/// The [`Describe`] of `E`, stored in its registration by [`ManifestRegistration::of`].
fn describe<E: SseEvent + TS>(collector: &mut Collector<'_>) -> Result<EventTypes, ManifestError> {
    collector.visit::<E>();
    let ts_type = E::name(collector.config);
    let payloads = match E::KIND {
        EventKind::Keyed { name } | EventKind::Broadcast { name } => vec![Payload {
            event: name,
            serde_name: None,
            ts_type: ts_type.clone(),
        }],
        EventKind::Stream { variants, .. } => {
            let unsupported = |reason: String| ManifestError::UnsupportedEnum {
                event: type_name::<E>(),
                reason,
            };
            let serde_names = serde_variants::<E>().map_err(unsupported)?;
            if serde_names.len() != variants.len() {
                return Err(unsupported(format!(
                    "serde knows {} variants ({serde_names:?}) but the stream has {} events ({variants:?}); \
                     a `#[serde(skip)]` variant cannot be part of a stream",
                    serde_names.len(),
                    variants.len()
                )));
            }
            variants
                .iter()
                .zip(serde_names)
                .map(|(event, serde_name)| {
                    let key = string(serde_name);
                    Payload {
                        event,
                        serde_name: Some(serde_name),
                        ts_type: format!("Extract<{ts_type}, {{ {key}: unknown }}>[{key}]"),
                    }
                })
                .collect()
        }
    };
    Ok(EventTypes {
        ts_type,
        payloads,
        snapshot: None,
        presence: None,
    })
}

/// Walks ts-rs types transitively, keeping one declaration per TypeScript name.
pub(super) struct Collector<'a> {
    config: &'a Config,
    seen: HashSet<TypeId>,
    decls: BTreeMap<String, TypeDecl>,
    /// Names declared twice with different content, with the two Rust types.
    clashes: BTreeSet<(String, &'static str, &'static str)>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(config: &'a Config) -> Self {
        Self {
            config,
            seen: HashSet::new(),
            decls: BTreeMap::new(),
            clashes: BTreeSet::new(),
        }
    }

    pub(super) fn finish(self) -> Result<Vec<TypeDecl>, ManifestError> {
        if let Some((name, first, second)) = self.clashes.into_iter().next() {
            return Err(ManifestError::NameClash {
                name,
                first: format!("the Rust type `{first}`"),
                second: format!("the Rust type `{second}`"),
            });
        }
        Ok(self.decls.into_values().collect())
    }
}

impl fmt::Debug for Collector<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("decls", &self.decls.keys())
            .finish_non_exhaustive()
    }
}

impl TypeVisitor for Collector<'_> {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        // ts-rs reports direct dependencies only, and one type can be reached through several
        // `TypeId`s (`serde_json::Value` and its shadow), hence the walk and both dedupes.
        if !self.seen.insert(TypeId::of::<T>()) {
            return;
        }
        // Only types with an output path have a declaration; the others (primitives, `Vec`,
        // `Option`, maps) are written inline and only lead to their parameters.
        if T::output_path().is_some() {
            let decl = TypeDecl {
                name: T::ident(self.config),
                // The generic-free type, so that `Page<A>` and `Page<B>` record the same name.
                rust_type: type_name::<T::WithoutGenerics>(),
                docs: T::docs(),
                decl: T::decl(self.config),
            };
            match self.decls.entry(decl.name.clone()) {
                Entry::Vacant(entry) => {
                    entry.insert(decl);
                }
                Entry::Occupied(entry) if entry.get().decl != decl.decl => {
                    let (a, b) = (entry.get().rust_type, decl.rust_type);
                    self.clashes.insert((decl.name, a.min(b), a.max(b)));
                }
                Entry::Occupied(_) => {}
            }
        }
        T::visit_generics(self);
        T::visit_dependencies(self);
    }
}

/// Serde's variant names of the externally tagged enum `E`, in declaration order: what its
/// derived `Deserialize` passes to `deserialize_enum`.
fn serde_variants<E: de::DeserializeOwned>() -> Result<&'static [&'static str], String> {
    let mut found = None;
    let outcome = E::deserialize(Probe { found: &mut found });
    match (found, outcome) {
        (Some(variants), _) => Ok(variants),
        (None, Ok(_)) => Err("it deserializes from nothing".to_owned()),
        (None, Err(error)) => Err(error.to_string()),
    }
}

/// A deserializer that records the variant names an enum asks for, then fails.
struct Probe<'a> {
    found: &'a mut Option<&'static [&'static str]>,
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom(
            "its `Deserialize` does not ask for an enum (internally tagged, adjacently tagged and \
             untagged enums, and hand-written implementations, do not)",
        ))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.found = Some(variants);
        Err(de::Error::custom("variant names recorded"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;
    use crate::manifest::fixtures::{Game, Joined, Tagged};

    #[test]
    fn serde_variant_names_come_from_the_enum() {
        assert_eq!(
            serde_variants::<Game>().unwrap(),
            ["joined", "scoreChanged"]
        );
        assert!(
            serde_variants::<Tagged>()
                .unwrap_err()
                .contains("does not ask for an enum")
        );
        assert!(serde_variants::<Joined>().is_err());
    }

    #[test]
    fn stream_payloads_index_the_enum_by_serde_name() {
        let ts = Manifest::from_registrations(&[ManifestRegistration::of::<Game>()])
            .render_typescript()
            .unwrap();
        assert!(ts.contains(
            r#"  | { event: "ScoreChanged"; data: Extract<Game, { "scoreChanged": unknown }>["scoreChanged"] };"#
        ));
        assert!(ts.contains("case \"Joined\":\n          if (handlers.onJoined) handlers.onJoined(message.data, id);"));
    }

    #[test]
    fn a_stream_that_is_not_externally_tagged_is_an_error() {
        let error = Manifest::from_registrations(&[ManifestRegistration::of::<Tagged>()])
            .render_typescript()
            .unwrap_err();
        assert!(
            matches!(error, ManifestError::UnsupportedEnum { .. }),
            "{error}"
        );
    }
}
