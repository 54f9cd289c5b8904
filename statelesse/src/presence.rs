//! Presence: who is connected to a channel, across every instance. Owns the [`Presence`] trait
//! that `#[sse(presence = Member)]` implements, the member records, and the frames' JSON.
//!
//! A connection of a presence route whose `member` hook named an identity is one connection of
//! that member; the members of a channel are the identities with at least one connection on any
//! instance. A member's first connection publishes a `join` event on the channel, its last one
//! closing (or expiring, when its instance died) a `leave` event: a member with two tabs joins
//! once and leaves once. See `docs/presence.md` for the model, its bounds and its costs.

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backplane::{Backplane, SseEventExt};
use crate::event::SseEvent;
use crate::{BackplaneError, ErrorKind};

/// The most members a presence list holds: a channel with more lists its oldest
/// `MAX_PRESENCE_MEMBERS` (by `since`), while [`Backplane::presence_count`] still counts them
/// all. It bounds the memory and the bytes of a read, and the `presence` frame of a route.
pub const MAX_PRESENCE_MEMBERS: usize = 1000;

/// The largest serialized identity of a member, in bytes: 1 KiB. A `member` hook answering a
/// larger one refuses the connection (`500`), and a larger entry read from a transport is
/// skipped as malformed.
pub const MAX_MEMBER_BYTES: usize = 1024;

/// An event type whose channels keep presence: implemented by `#[sse(presence = Member)]`.
///
/// Do not implement it by hand: the derive also sets [`SseEvent::PRESENCE`], which routes and
/// subscriptions read. Its typed reads ([`PresenceExt::presence`],
/// [`PresenceExt::presence_count`]) come from [`PresenceExt`], in the prelude.
///
/// ```
/// use statelesse::prelude::*;
/// # use ts_rs::TS;
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
/// pub struct Player {
///     pub name: String,
/// }
///
/// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
/// #[sse(domain = "lobby", key = "game_id", presence = Player)]
/// pub struct Chat {
///     pub game_id: u64,
///     pub text: String,
/// }
///
/// assert!(<Chat as SseEvent>::PRESENCE);
/// fn member_of<E: statelesse::Presence<Member = Player>>() {}
/// member_of::<Chat>();
/// ```
pub trait Presence: SseEvent {
    /// The identity of a member, as the route's `member` hook returns it.
    type Member: PresenceMember;
}

/// What a member identity type must be: serializable both ways, cloneable, sendable (and, with
/// the `typescript` feature, a ts-rs type, so that the generated client types it).
#[cfg(not(feature = "typescript"))]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the member identity of a presence type",
    label = "a member identity must be `Serialize + DeserializeOwned + Clone + Send + Sync + 'static`",
    note = "derive `Clone, Serialize, Deserialize` for `{Self}`"
)]
pub trait PresenceMember: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

#[cfg(not(feature = "typescript"))]
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> PresenceMember for T {}

/// What a member identity type must be: serializable both ways, cloneable, sendable (and, with
/// the `typescript` feature, a ts-rs type, so that the generated client types it).
#[cfg(feature = "typescript")]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the member identity of a presence type",
    label = "a member identity must be `Serialize + DeserializeOwned + Clone + Send + Sync + TS + 'static`",
    note = "derive `Clone, Serialize, Deserialize, TS` for `{Self}`"
)]
pub trait PresenceMember:
    Serialize + DeserializeOwned + Clone + Send + Sync + ts_rs::TS + 'static
{
}

#[cfg(feature = "typescript")]
impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + ts_rs::TS + 'static> PresenceMember
    for T
{
}

/// One member of a channel, typed: what [`PresenceExt::presence`] returns and each item of a
/// `presence` frame's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Member<M> {
    /// The member's identity, as its route's `member` hook returned it.
    pub member: M,
    /// Its open connections to the channel, on every instance. Each instance reports its own
    /// count at its heartbeat, so on Redis a change shows within a third of the presence TTL.
    pub connections: u64,
    /// When its earliest connection still open began, in Unix milliseconds.
    pub since: u64,
}

/// One member of a channel as a transport stores it: the identity as JSON bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceEntry {
    /// The member's identity, compact JSON.
    pub member: Bytes,
    /// Its open connections to the channel, on every instance.
    pub connections: u64,
    /// When its earliest connection still open began, in Unix milliseconds.
    pub since: u64,
}

impl PresenceEntry {
    /// An entry of `member` (compact JSON) with `connections` connections since `since`.
    #[must_use]
    pub fn new(member: Bytes, connections: u64, since: u64) -> Self {
        Self {
            member,
            connections,
            since,
        }
    }
}

/// The typed presence reads of every [`Presence`] type: `E::presence(&bp, &key)` and
/// `E::presence_count(&bp, &key)`. In the prelude.
///
/// ```
/// use statelesse::prelude::*;
/// # use ts_rs::TS;
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS)]
/// pub struct Editor {
///     pub id: u32,
/// }
///
/// #[derive(Clone, Serialize, Deserialize, TS, SseEvent)]
/// #[sse(domain = "doc", key = "doc_id", presence = Editor)]
/// pub struct Edited {
///     pub doc_id: u64,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BackplaneError> {
/// let bp = Backplane::in_memory();
/// assert!(Edited::presence(&bp, &1).await?.is_empty());
/// assert_eq!(Edited::presence_count(&bp, &1).await?, 0);
/// # Ok(())
/// # }
/// ```
pub trait PresenceExt: Presence {
    /// The members of the channel of `key`, on every instance, oldest first, at most
    /// [`MAX_PRESENCE_MEMBERS`]. An entry whose identity does not decode as
    /// [`Presence::Member`] (written by another version) is skipped and counted in
    /// [`Diagnostics::malformed_events`](crate::Diagnostics::malformed_events).
    ///
    /// # Errors
    ///
    /// See [`Backplane::presence`].
    fn presence<'a>(
        backplane: &'a Backplane,
        key: &Self::Key,
    ) -> impl Future<Output = Result<Vec<Member<Self::Member>>, BackplaneError>> + Send + 'a {
        let channel = Self::channel(key);
        async move {
            let entries = backplane.presence(&channel).await?;
            Ok(backplane.decode_members::<Self::Member>(channel.name(), &entries))
        }
    }

    /// How many members the channel of `key` has, on every instance.
    ///
    /// # Errors
    ///
    /// See [`Backplane::presence_count`].
    fn presence_count<'a>(
        backplane: &'a Backplane,
        key: &Self::Key,
    ) -> impl Future<Output = Result<usize, BackplaneError>> + Send + 'a {
        let channel = Self::channel(key);
        async move { backplane.presence_count(&channel).await }
    }
}

impl<E: Presence> PresenceExt for E {}

/// The data of a `join` event: `{"member":<identity>,"since":<ms>}`.
pub(crate) fn join_data(member: &[u8], since: u64) -> Bytes {
    let mut out = Vec::with_capacity(member.len() + 40);
    out.extend_from_slice(b"{\"member\":");
    out.extend_from_slice(member);
    out.extend_from_slice(b",\"since\":");
    out.extend_from_slice(since.to_string().as_bytes());
    out.push(b'}');
    Bytes::from(out)
}

/// The data of a `leave` event: `{"member":<identity>}`.
pub(crate) fn leave_data(member: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(member.len() + 12);
    out.extend_from_slice(b"{\"member\":");
    out.extend_from_slice(member);
    out.push(b'}');
    Bytes::from(out)
}

/// The data of a `presence` frame: `[{"member":..,"connections":n,"since":ms},..]`.
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) fn list_data(entries: &[PresenceEntry]) -> String {
    let mut out = String::with_capacity(2 + entries.len() * 64);
    out.push('[');
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"member\":");
        // Identities are JSON this crate serialized, or checked as JSON when read back.
        out.push_str(&String::from_utf8_lossy(&entry.member));
        out.push_str(",\"connections\":");
        out.push_str(&entry.connections.to_string());
        out.push_str(",\"since\":");
        out.push_str(&entry.since.to_string());
        out.push('}');
    }
    out.push(']');
    out
}

/// Serializes a member identity, within [`MAX_MEMBER_BYTES`].
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
pub(crate) fn encode_member<M: Serialize>(member: &M) -> Result<Bytes, BackplaneError> {
    let json = serde_json::to_vec(member)
        .map_err(|err| BackplaneError::with_source(ErrorKind::Encode, err))?;
    if json.len() > MAX_MEMBER_BYTES {
        return Err(BackplaneError::with_source(
            ErrorKind::PayloadTooLarge,
            format!(
                "a member identity of {} bytes, the maximum is {MAX_MEMBER_BYTES}",
                json.len()
            ),
        ));
    }
    Ok(Bytes::from(json))
}

/// Whether `member` is an identity a transport may hand out: bounded, and one JSON value.
pub(crate) fn is_valid_member(member: &[u8]) -> bool {
    member.len() <= MAX_MEMBER_BYTES
        && serde_json::from_slice::<serde::de::IgnoredAny>(member).is_ok()
}

/// Refuses an identity that is not one bounded JSON value: what a transport checks of
/// `presence_enter`'s member.
pub(crate) fn check_member(channel: &str, member: &[u8]) -> Result<(), BackplaneError> {
    if is_valid_member(member) {
        Ok(())
    } else {
        Err(BackplaneError::with_source(
            ErrorKind::Encode,
            format!("a member identity must be one JSON value of at most {MAX_MEMBER_BYTES} bytes"),
        )
        .on_channel(channel))
    }
}

/// Sorts `entries` oldest first (then by identity, for a stable order) and keeps the first
/// [`MAX_PRESENCE_MEMBERS`].
pub(crate) fn sort_and_cap(entries: &mut Vec<PresenceEntry>) {
    entries.sort_by(|a, b| (a.since, &a.member).cmp(&(b.since, &b.member)));
    entries.truncate(MAX_PRESENCE_MEMBERS);
}

/// The clock, in Unix milliseconds.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_identity_as_json() {
        assert_eq!(
            &join_data(br#"{"name":"ada"}"#, 7)[..],
            br#"{"member":{"name":"ada"},"since":7}"#
        );
        assert_eq!(&leave_data(b"\"ada\"")[..], br#"{"member":"ada"}"#);
        let list = list_data(&[PresenceEntry::new(Bytes::from_static(b"1"), 2, 3)]);
        assert_eq!(list, r#"[{"member":1,"connections":2,"since":3}]"#);
        assert_eq!(list_data(&[]), "[]");
    }

    #[test]
    fn a_member_must_be_one_bounded_json_value() {
        assert!(is_valid_member(br#"{"a":1}"#));
        assert!(!is_valid_member(b"{\"a\":1"));
        assert!(!is_valid_member(b"1 2"));
        assert!(!is_valid_member(&vec![b'1'; MAX_MEMBER_BYTES + 1]));
    }

    #[test]
    fn lists_are_oldest_first_and_capped() {
        let mut entries: Vec<_> = (0..MAX_PRESENCE_MEMBERS as u64 + 5)
            .rev()
            .map(|i| PresenceEntry::new(Bytes::from(i.to_string()), 1, i))
            .collect();
        sort_and_cap(&mut entries);
        assert_eq!(entries.len(), MAX_PRESENCE_MEMBERS);
        assert_eq!(entries[0].since, 0);
    }
}
