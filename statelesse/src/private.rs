//! Only what the expansion of `#[derive(SseEvent)]` calls. Not public API.

pub use ::core;
pub use ::inventory;
pub use ::serde_json;

pub use crate::registry::Registration;

use crate::{ChannelKey, SseEvent};

/// Serializes the content of an enum stream's variant, see the `variant` module.
///
/// # Errors
///
/// When the payload's `Serialize` fails or the enum is not externally tagged.
pub fn encode_variant<E: serde::Serialize>(event: &E) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    crate::variant::encode(event, &mut out)?;
    Ok(out)
}

/// Rebuilds an enum stream's value from its SSE event name and data.
///
/// # Errors
///
/// When `event` is not one of `variants` or `data` is not that variant's content.
pub fn decode_variant<E: serde::de::DeserializeOwned>(
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

/// Asserts at compile time that a key field's type is a [`ChannelKey`]; the error names the
/// missing trait at the field.
pub const fn assert_channel_key<K: ChannelKey>() {}

/// Implemented by every event whose key type is `K`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not keyed by `{K}`, the key type of this enum stream",
    label = "this variant wraps an event with another key type",
    note = "every variant of an enum stream must carry the same key type; change the key of `{Self}` or wrap another event"
)]
pub trait KeyedBy<K> {}

impl<E: SseEvent> KeyedBy<E::Key> for E {}

/// Asserts at compile time that `E` is an event keyed by `K`.
pub const fn assert_keyed_by<E: KeyedBy<K>, K>() {}
