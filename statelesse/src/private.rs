//! Only what the expansion of `#[derive(SseEvent)]` calls. Not public API.

pub use ::core;
pub use ::inventory;
pub use ::serde;
pub use ::serde_json;

#[cfg(feature = "typescript")]
pub use crate::manifest::collect::{ManifestRegistration, TypeScriptEvent};
pub use crate::registry::Registration;

use crate::event::SseEvent;

// Registers an event type: in the registry and, with the `typescript` feature, in the manifest,
// which requires a TypeScript type of every event. A macro because registering is a static
// item, and its body follows statelesse's own features, which the derive cannot see.
#[cfg(not(feature = "typescript"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __register_event {
    ($event:ident) => {
        $crate::__private::inventory::submit! {
            $crate::__private::Registration::of::<$event>()
        }
    };
    ($event:ident, $member:ty) => {
        $crate::__private::inventory::submit! {
            $crate::__private::Registration::of::<$event>()
        }
    };
}

#[cfg(feature = "typescript")]
#[doc(hidden)]
#[macro_export]
macro_rules! __register_event {
    ($event:ident) => {
        $crate::__private::inventory::submit! {
            $crate::__private::Registration::of::<$event>()
        }
        $crate::__private::inventory::submit! {
            $crate::__private::ManifestRegistration::of::<$event>()
        }
    };
    ($event:ident, $member:ty) => {
        $crate::__private::inventory::submit! {
            $crate::__private::Registration::of::<$event>()
        }
        $crate::__private::inventory::submit! {
            $crate::__private::ManifestRegistration::of_presence::<$event>()
        }
    };
}

pub use crate::__register_event as register_event;

/// Serializes the content of an enum stream's variant, see the `variant` module.
///
/// # Errors
///
/// When the payload's `Serialize` fails or the enum is not externally tagged.
pub fn encode_variant<E: SseEvent>(event: &E) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    crate::variant::encode(event, &mut out)?;
    Ok(out)
}

/// Rebuilds an enum stream's value from its SSE event name and data.
///
/// # Errors
///
/// When `event` is not one of `variants` or `data` is not that variant's content.
pub fn decode_variant<E: SseEvent>(
    variants: &[&str],
    event: &str,
    data: &[u8],
) -> serde_json::Result<E> {
    let index = variants
        .iter()
        .position(|name| *name == event)
        .and_then(|index| u32::try_from(index).ok())
        .ok_or_else(|| {
            <serde_json::Error as serde::de::Error>::custom(format_args!(
                "unknown event `{event}`, expected one of {variants:?}"
            ))
        })?;
    crate::variant::decode(index, data)
}

/// Implemented by every event whose key type is `K`; a key of another type is `SameKey`'s error,
/// so this trait's own error is for a wrapped type that is not an event at all.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an SSE event, so a variant of an enum stream cannot wrap it",
    label = "this variant must wrap a type that derives `SseEvent`",
    note = "derive `SseEvent` for `{Self}` with a key of type `{K}`, or make this a struct variant with the key field"
)]
pub trait KeyedBy<K> {
    /// The key of this event, typed as the enum stream's key: what a newtype variant's `key()`
    /// returns, so that a wrong key type is one `SameKey` error rather than a type mismatch.
    fn keyed_key(&self) -> &K;
}

impl<E: SseEvent, K> KeyedBy<K> for E
where
    E::Key: SameKey<K>,
{
    fn keyed_key(&self) -> &K {
        self.key().same_key()
    }
}

/// Implemented by `K` alone: a variant of an enum stream is keyed by the stream's key type `K`.
/// Its error names both types, where a blanket impl over `E::Key` would report a projection
/// mismatch.
#[diagnostic::on_unimplemented(
    message = "this variant is keyed by `{Self}`, but the enum stream is keyed by `{K}`",
    label = "expected a key of type `{K}`",
    note = "every variant of an enum stream carries the same key type: that of the key field of its first struct variant, or else that of the event its first variant wraps"
)]
pub trait SameKey<K> {
    /// The key field, typed as the stream's key.
    fn same_key(&self) -> &K;
}

impl<K> SameKey<K> for K {
    fn same_key(&self) -> &K {
        self
    }
}
