//! Presence on Redis: this instance's members, counted per connection locally, written to Redis
//! in batches by one task per transport, refreshed at a heartbeat, and read back without the
//! entries that expired.
//!
//! Per channel, three keys in the channel's hash slot (the channel is their hash tag):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:p:{<channel>}` | sorted set | one entry per member and instance, `<instance>\n<identity>`, scored by its expiry (Redis's clock, Unix ms) |
//! | `{prefix}:pc:{<channel>}` | hash | per entry, `<connections>:<since>` |
//! | `{prefix}:pm:{<channel>}` | hash | per identity, how many instances hold an entry of it |
//!
//! A member joins when the count of instances holding it goes from 0 to 1, and leaves when it
//! goes back to 0, both decided inside one script call, so two instances never both announce
//! the same change. The scripts sweep expired entries of other instances first (at most
//! [`SWEEP_MAX`] a call), which announces the `leave` of a dead instance's members.

use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ::redis::{Script, Value};
use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use crate::backplane::error::{BackplaneError, ErrorKind};
use crate::backplane::transport::{BoxFuture, Interest, OutgoingEvent};
use crate::id::EventId;
use crate::presence::{self as model, MAX_PRESENCE_MEMBERS, PresenceEntry};
use crate::protocol::{JOIN_EVENT, LEAVE_EVENT};

/// The most expired entries one script call sweeps: bounds its work.
const SWEEP_MAX: usize = 256;

/// The most live entries a read takes (entries are per member and instance, so a member on
/// several instances takes several): bounds its reply, at about 1 KiB an entry.
const READ_MAX: usize = 2 * MAX_PRESENCE_MEMBERS;

/// What the scripts share: Redis's clock, and the sweep of other instances' expired entries,
/// whose members it lists in `left` when they were their last.
const SWEEP_LUA: &str = r"
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local instance = ARGV[2]
local left = {}
local function drop(entry)
  redis.call('HDEL', KEYS[2], entry)
  local cut = string.find(entry, '\n', 1, true)
  if not cut then return end
  local member = string.sub(entry, cut + 1)
  if redis.call('HINCRBY', KEYS[3], member, -1) <= 0 then
    redis.call('HDEL', KEYS[3], member)
    left[#left + 1] = member
  end
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, SWEEP_MAX)
for _, entry in ipairs(expired) do
  if string.sub(entry, 1, #instance + 1) ~= instance .. '\n' then
    redis.call('ZREM', KEYS[1], entry)
    drop(entry)
  end
end
";

/// ARGV: TTL in ms, instance, then per change `j` (entry upserted) or `l` (entry removed),
/// identity, connections, since. Returns `{joined, left}`: `joined` alternates identity and
/// since.
const UPDATE_LUA: &str = r"
local ttl = tonumber(ARGV[1])
local joined = {}
for i = 3, #ARGV, 4 do
  local member = ARGV[i + 1]
  local entry = instance .. '\n' .. member
  if ARGV[i] == 'j' then
    if redis.call('ZADD', KEYS[1], now + ttl, entry) == 1 then
      if redis.call('HINCRBY', KEYS[3], member, 1) == 1 then
        joined[#joined + 1] = member
        joined[#joined + 1] = ARGV[i + 3]
      end
    end
    redis.call('HSET', KEYS[2], entry, ARGV[i + 2] .. ':' .. ARGV[i + 3])
  elseif redis.call('ZREM', KEYS[1], entry) == 1 then
    drop(entry)
  end
end
for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ttl * 3) end
return {joined, left}
";

/// ARGV: the most entries to list (`0`: count only), instance. Returns
/// `{left, entries, values, members}`.
const READ_LUA: &str = r"
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'LIMIT', 0, tonumber(ARGV[1]))
local values = {}
if #live > 0 then values = redis.call('HMGET', KEYS[2], unpack(live)) end
return {left, live, values, redis.call('HLEN', KEYS[3])}
";

/// [`SWEEP_LUA`] with its bound.
fn sweep_lua() -> String {
    SWEEP_LUA.replace("SWEEP_MAX", &SWEEP_MAX.to_string())
}

/// What the presence task needs of its transport: a script call on the node of a channel, the
/// publish path, the key names, and the malformed counter.
pub(super) trait Store: Send + Sync + 'static {
    /// Runs `script` on the node that owns `channel`'s slot, with `keys` and `args`.
    fn run<'a>(
        &'a self,
        channel: &'a str,
        script: &'a Script,
        keys: [String; 3],
        args: Vec<Vec<u8>>,
    ) -> BoxFuture<'a, Result<Value, BackplaneError>>;

    /// Publishes `events` through the transport's normal path.
    fn publish(
        &self,
        events: Vec<OutgoingEvent>,
    ) -> BoxFuture<'_, Vec<Result<EventId, BackplaneError>>>;

    /// The transport's key prefix.
    fn prefix(&self) -> &str;

    /// Counts a malformed entry read from Redis.
    fn count_malformed(&self);
}

/// This instance's presence: its members per channel, and what the task must still write.
pub(super) struct Presence {
    /// A random id, unique per transport: what this instance's entries start with.
    instance: Box<str>,
    ttl: Duration,
    state: Mutex<State>,
    wake: Notify,
    update: Script,
    read: Script,
}

#[derive(Default)]
struct State {
    /// Each channel's local members: connections and since when.
    members: HashMap<Box<str>, HashMap<Bytes, Seat>>,
    /// The members whose local count went from 0 to 1 or from 1 to 0 since the last flush.
    dirty: HashMap<Box<str>, HashSet<Bytes>>,
    /// Callers of `enter` waiting for their member's flush.
    waiters: Vec<Waiter>,
    closed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Seat {
    connections: u64,
    since: u64,
}

/// One change to write: the member's entry, upserted with its seat or removed.
type Change = (Bytes, Option<Seat>);

/// A channel's changes to write in one script call.
type ChannelChanges = (Box<str>, Vec<Change>);

/// A caller of `enter` waiting for the flush of its channel.
type Waiter = (Box<str>, oneshot::Sender<Result<(), BackplaneError>>);

impl Presence {
    pub(super) fn new(ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            instance: instance_id().into(),
            ttl,
            state: Mutex::default(),
            wake: Notify::new(),
            update: Script::new(&format!("{}{UPDATE_LUA}", sweep_lua())),
            read: Script::new(&format!("{}{READ_LUA}", sweep_lua())),
        })
    }

    /// Starts the task that writes this instance's presence, for as long as `store` gives a
    /// transport (it holds none itself, so a dropped transport ends it).
    pub(super) fn spawn<T: Store>(
        self: &Arc<Self>,
        store: impl Fn() -> Option<T> + Send + 'static,
    ) {
        let presence = Arc::clone(self);
        tokio::spawn(async move {
            let period = presence.ttl / 3;
            let mut beat = tokio::time::Instant::now() + period;
            loop {
                let heartbeat = tokio::select! {
                    () = presence.wake.notified() => false,
                    () = tokio::time::sleep_until(beat) => true,
                };
                if heartbeat {
                    beat = tokio::time::Instant::now() + period;
                }
                let Some(store) = store() else { return };
                if presence.lock().closed {
                    return;
                }
                presence.flush(&store, heartbeat).await;
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain maps, consistent whatever panicked while holding them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one connection of `member` on `channel`; completes once its entry is on Redis
    /// (at once when this instance already had it there).
    pub(super) async fn enter(
        self: &Arc<Self>,
        channel: &str,
        member: Bytes,
    ) -> Result<Interest, BackplaneError> {
        let waiting = {
            let mut state = self.lock();
            if state.closed {
                return Err(BackplaneError::new(ErrorKind::Closed).on_channel(channel));
            }
            let seats = state.members.entry(channel.into()).or_default();
            let seat = seats.entry(member.clone()).or_insert(Seat {
                connections: 0,
                since: model::now_millis(),
            });
            seat.connections += 1;
            let first = seat.connections == 1;
            let pending = first
                || state
                    .dirty
                    .get(channel)
                    .is_some_and(|dirty| dirty.contains(&member));
            if first {
                state
                    .dirty
                    .entry(channel.into())
                    .or_default()
                    .insert(member.clone());
            }
            pending.then(|| {
                let (reply, waiting) = oneshot::channel();
                state.waiters.push((channel.into(), reply));
                waiting
            })
        };
        let interest = {
            let presence = Arc::clone(self);
            let channel: Box<str> = channel.into();
            let member = member.clone();
            Interest::new(move || presence.leave(channel, member))
        };
        if let Some(waiting) = waiting {
            self.wake.notify_one();
            match waiting.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(err),
                Err(_) => return Err(BackplaneError::new(ErrorKind::Closed).on_channel(channel)),
            }
        }
        Ok(interest)
    }

    /// Releases one connection of `member` on `channel`; the task removes the entry when it was
    /// the last.
    fn leave(&self, channel: Box<str>, member: Bytes) {
        let mut state = self.lock();
        let Some(seats) = state.members.get_mut(&channel) else {
            return;
        };
        let Entry::Occupied(mut seat) = seats.entry(member) else {
            return;
        };
        seat.get_mut().connections -= 1;
        if seat.get().connections > 0 {
            return;
        }
        let (member, _) = seat.remove_entry();
        if seats.is_empty() {
            state.members.remove(&channel);
        }
        if !state.closed {
            state.dirty.entry(channel).or_default().insert(member);
            drop(state);
            self.wake.notify_one();
        }
    }

    /// Writes what changed (and, at a heartbeat, refreshes every local member), one script call
    /// per channel, all sent at once; answers the waiters and publishes the joins and leaves.
    async fn flush<T: Store>(&self, store: &T, heartbeat: bool) {
        let (changes, waiters) = self.take(heartbeat);
        let calls = changes
            .iter()
            .map(|(channel, changes)| self.write(store, channel, changes));
        let results = futures_util::future::join_all(calls).await;
        let mut events = Vec::new();
        let mut failed: HashMap<&str, ErrorKind> = HashMap::new();
        for ((channel, changes), result) in changes.iter().zip(results) {
            match result {
                Ok((joined, left)) => {
                    events.extend(joined.into_iter().map(|(member, since)| {
                        OutgoingEvent::new(
                            &**channel,
                            JOIN_EVENT.into(),
                            model::join_data(&member, since),
                        )
                    }));
                    events.extend(left.into_iter().map(|member| {
                        OutgoingEvent::new(
                            &**channel,
                            LEAVE_EVENT.into(),
                            model::leave_data(&member),
                        )
                    }));
                }
                Err(err) => {
                    tracing::warn!(channel = &**channel, error = %err, "could not write presence to Redis; retrying");
                    failed.insert(channel, err.kind());
                    // Written again at the next flush or heartbeat.
                    let mut state = self.lock();
                    let dirty = state.dirty.entry(channel.clone()).or_default();
                    dirty.extend(changes.iter().map(|(member, _)| member.clone()));
                }
            }
        }
        // Published before the waiters hear back: a route subscribes once its member entered,
        // so a connection never receives its own member's `join`, on Redis as in memory.
        publish(store, events).await;
        for (channel, reply) in waiters {
            let result = match failed.get(&*channel) {
                None => Ok(()),
                Some(kind) => Err(BackplaneError::new(*kind).on_channel(&channel)),
            };
            let _ = reply.send(result);
        }
    }

    /// Takes the changes to write, by channel, and the waiters they answer.
    fn take(&self, heartbeat: bool) -> (Vec<ChannelChanges>, Vec<Waiter>) {
        let mut state = self.lock();
        let dirty = std::mem::take(&mut state.dirty);
        let waiters = std::mem::take(&mut state.waiters);
        let mut changes: HashMap<Box<str>, Vec<Change>> = HashMap::new();
        for (channel, members) in dirty {
            let seats = state.members.get(&channel);
            let list = changes.entry(channel).or_default();
            for member in members {
                let seat = seats.and_then(|seats| seats.get(&member)).copied();
                list.push((member, seat));
            }
        }
        if heartbeat {
            for (channel, seats) in &state.members {
                let list = changes.entry(channel.clone()).or_default();
                let written: HashSet<Bytes> = list.iter().map(|(m, _)| m.clone()).collect();
                list.extend(
                    seats
                        .iter()
                        .filter(|(member, _)| !written.contains(*member))
                        .map(|(member, seat)| (member.clone(), Some(*seat))),
                );
            }
        }
        (changes.into_iter().collect(), waiters)
    }

    /// One channel's script call: its changes, and the sweep. Returns who joined (with since
    /// when) and who left.
    async fn write<T: Store>(
        &self,
        store: &T,
        channel: &str,
        changes: &[Change],
    ) -> Result<(Vec<(Bytes, u64)>, Vec<Bytes>), BackplaneError> {
        let mut args = Vec::with_capacity(2 + 4 * changes.len());
        args.push(millis(self.ttl).to_string().into_bytes());
        args.push(self.instance.as_bytes().to_vec());
        for (member, seat) in changes {
            let (op, seat) = match seat {
                Some(seat) => (b"j", *seat),
                None => (
                    b"l",
                    Seat {
                        connections: 0,
                        since: 0,
                    },
                ),
            };
            args.push(op.to_vec());
            args.push(member.to_vec());
            args.push(seat.connections.to_string().into_bytes());
            args.push(seat.since.to_string().into_bytes());
        }
        let reply = store
            .run(channel, &self.update, keys(store.prefix(), channel), args)
            .await?;
        let Value::Array(parts) = reply else {
            return Err(protocol(channel, "the presence script answered no array"));
        };
        let mut parts = parts.into_iter();
        let joined = bulks(parts.next());
        let left = bulks(parts.next());
        let mut pairs = Vec::with_capacity(joined.len() / 2);
        for pair in joined.chunks_exact(2) {
            let since = std::str::from_utf8(&pair[1])
                .ok()
                .and_then(|s| s.parse().ok());
            match since {
                Some(since) if model::is_valid_member(&pair[0]) => {
                    pairs.push((pair[0].clone(), since));
                }
                _ => store.count_malformed(),
            }
        }
        Ok((pairs, checked(store, left)))
    }

    /// The members of `channel` on every instance, oldest first, at most
    /// [`MAX_PRESENCE_MEMBERS`]; or only their number, with `count_only`. Sweeps first, and
    /// publishes the leaves the sweep found.
    pub(super) async fn read<T: Store>(
        &self,
        store: &T,
        channel: &str,
        count_only: bool,
    ) -> Result<(Vec<PresenceEntry>, usize), BackplaneError> {
        let limit = if count_only { 0 } else { READ_MAX };
        let args = vec![
            limit.to_string().into_bytes(),
            self.instance.as_bytes().to_vec(),
        ];
        let reply = store
            .run(channel, &self.read, keys(store.prefix(), channel), args)
            .await?;
        let Value::Array(parts) = reply else {
            return Err(protocol(channel, "the presence script answered no array"));
        };
        let mut parts = parts.into_iter();
        let left = checked(store, bulks(parts.next()));
        let entries = bulks(parts.next());
        let values = match parts.next() {
            Some(Value::Array(values)) => values,
            _ => Vec::new(),
        };
        let count = match parts.next() {
            Some(Value::Int(count)) => usize::try_from(count).unwrap_or(0),
            _ => return Err(protocol(channel, "the presence script answered no count")),
        };
        let events = left
            .into_iter()
            .map(|member| {
                OutgoingEvent::new(channel, LEAVE_EVENT.into(), model::leave_data(&member))
            })
            .collect();
        publish(store, events).await;
        let mut members: HashMap<Bytes, (u64, u64)> = HashMap::new();
        for (entry, value) in entries.iter().zip(values) {
            match parse_entry(entry, &value) {
                Some((member, connections, since)) => {
                    let slot = members.entry(member).or_insert((0, u64::MAX));
                    slot.0 = slot.0.saturating_add(connections);
                    slot.1 = slot.1.min(since);
                }
                None => store.count_malformed(),
            }
        }
        let mut list: Vec<PresenceEntry> = members
            .into_iter()
            .map(|(member, (connections, since))| PresenceEntry::new(member, connections, since))
            .collect();
        model::sort_and_cap(&mut list);
        Ok((list, count))
    }

    /// Removes every entry of this instance (its members leave), once, at shutdown; later
    /// enters fail with `Closed`.
    pub(super) async fn close<T: Store>(&self, store: &T) {
        {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            let members = std::mem::take(&mut state.members);
            for (channel, seats) in members {
                state
                    .dirty
                    .entry(channel)
                    .or_default()
                    .extend(seats.into_keys());
            }
        }
        self.flush(store, false).await;
        let mut state = self.lock();
        state.closed = true;
        state.dirty.clear();
        for (channel, reply) in state.waiters.drain(..) {
            let _ = reply.send(Err(
                BackplaneError::new(ErrorKind::Closed).on_channel(&channel)
            ));
        }
        drop(state);
        // Ends the task at its next turn.
        self.wake.notify_one();
    }
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("instance", &self.instance)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Publishes joins and leaves; a failure is logged: the members are still right on Redis, and
/// a client's next `presence` frame shows them.
async fn publish<T: Store>(store: &T, events: Vec<OutgoingEvent>) {
    if events.is_empty() {
        return;
    }
    for result in store.publish(events).await {
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not publish a presence event");
        }
    }
}

/// The presence keys of `channel`, in its hash slot.
fn keys(prefix: &str, channel: &str) -> [String; 3] {
    [
        format!("{prefix}:p:{{{channel}}}"),
        format!("{prefix}:pc:{{{channel}}}"),
        format!("{prefix}:pm:{{{channel}}}"),
    ]
}

/// The bulk strings of an array reply; anything else in it is left out.
fn bulks(value: Option<Value>) -> Vec<Bytes> {
    match value {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::BulkString(bytes) => Some(Bytes::from(bytes)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The identities among `members` that are valid ones; the others are counted.
fn checked<T: Store>(store: &T, members: Vec<Bytes>) -> Vec<Bytes> {
    members
        .into_iter()
        .filter(|member| {
            let valid = model::is_valid_member(member);
            if !valid {
                store.count_malformed();
            }
            valid
        })
        .collect()
}

/// An entry (`<instance>\n<identity>`) and its value (`<connections>:<since>`), checked.
fn parse_entry(entry: &Bytes, value: &Value) -> Option<(Bytes, u64, u64)> {
    let cut = entry.iter().position(|&b| b == b'\n')?;
    let member = entry.slice(cut + 1..);
    if !model::is_valid_member(&member) {
        return None;
    }
    let Value::BulkString(value) = value else {
        return None;
    };
    let (connections, since) = std::str::from_utf8(value).ok()?.split_once(':')?;
    Some((member, connections.parse().ok()?, since.parse().ok()?))
}

fn protocol(channel: &str, what: &'static str) -> BackplaneError {
    BackplaneError::with_source(ErrorKind::Protocol, what).on_channel(channel)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A random id for this instance's entries: 64 random bits (the standard library's per-process
/// random hash keys, mixed with the clock and the process id), in hex.
fn instance_id() -> String {
    let mut hasher: DefaultHasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(model::now_millis());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_checked_before_use() {
        let value = Value::BulkString(b"2:7".to_vec());
        let entry = Bytes::from_static(b"abc\n{\"n\":1}");
        assert_eq!(
            parse_entry(&entry, &value),
            Some((Bytes::from_static(b"{\"n\":1}"), 2, 7))
        );
        assert_eq!(
            parse_entry(&Bytes::from_static(b"no-newline"), &value),
            None
        );
        assert_eq!(parse_entry(&Bytes::from_static(b"a\n{bad"), &value), None);
        assert_eq!(parse_entry(&entry, &Value::Nil), None);
        let bad = Value::BulkString(b"x:7".to_vec());
        assert_eq!(parse_entry(&entry, &bad), None);
    }

    #[test]
    fn keys_share_the_channels_hash_tag() {
        let [a, b, c] = keys("s", "game:1:E");
        assert_eq!(a, "s:p:{game:1:E}");
        assert!(b.ends_with(":{game:1:E}") && c.ends_with(":{game:1:E}"));
    }

    #[test]
    fn the_sweep_is_bounded() {
        assert!(sweep_lua().contains(&format!("'LIMIT', 0, {SWEEP_MAX})")));
    }

    #[test]
    fn instance_ids_differ() {
        assert_ne!(instance_id(), instance_id());
    }
}
