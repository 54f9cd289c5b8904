//! The wire format on Redis: key and channel names, the pub/sub envelope, the stream entries,
//! and the two Lua scripts that write and read them.

use std::fmt;
use std::sync::Arc;

use std::io::Write as _;

use ::redis::{Cmd, RedisWrite as _, Script, Value};
use bytes::Bytes;

use crate::id::EventId;
use crate::message::Message;

/// The first line of every envelope, without its newline: the format and its version. The one
/// place it is spelled: [`MAGIC`] and the publish script are both built from it.
macro_rules! magic_line {
    () => {
        "statelesse/3"
    };
}

/// The first line of every envelope: the format and its version.
///
/// Version 3 carries every event one publish call sends to a channel in one envelope, with one
/// stream entry id (version 2 carried one event, with its own id, per envelope and per entry).
/// Version 2 came with the channel names of enum streams, `{domain}:{key}:{EnumName}` (version
/// 1 had `{domain}:{key}`, shared by every stream of a domain): instances of the two versions
/// would not even listen on the same channels, so each drops the other's envelopes as malformed
/// rather than half-working. Every instance of a deployment must run the same version.
pub(super) const MAGIC: &[u8] = concat!(magic_line!(), "\n").as_bytes();
/// The start of the magic line of every version: what tells "ours, another version" from garbage.
const FAMILY: &[u8] = b"statelesse/";
/// The versions before [`MAGIC`]'s, whose envelopes an older statelesse publishes.
const OLDER_VERSIONS: &[&[u8]] = &[b"1", b"2"];

/// How far ahead of this instance's clock a live envelope's id may be, in milliseconds: 5 minutes.
///
/// Redis makes every id from its own clock (`XADD *`), so a genuine id is ahead of ours only by
/// the clock skew between the Redis server and this instance, which NTP keeps far below a
/// second; 5 minutes leaves room for a badly drifting clock without letting a forged id matter.
/// An id further ahead was not made by a publish (any client allowed to `PUBLISH` could send
/// `18446744073709551615-0`): trusted, it would become the channel's position, and every real
/// event after it would be dropped as already delivered.
pub(crate) const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;

/// Publishes a batch of channel batches, in order: for each channel, appends one stream entry
/// holding all its events (trimmed, or emptied when history is off, which keeps the stream's last
/// id so ids stay increasing), refreshes the stream's time-to-live when asked to, and publishes
/// one envelope carrying the same events; returns every entry's stream id (the id of its last
/// event), or, for a channel whose append failed (a key of another type, say), that channel's
/// error, in the batches' order. Each entry is appended and published in the same script run, so
/// nothing runs between the two.
///
/// A channel batch's events arrive already framed by the publisher (its `body`: see
/// [`write_body`]), so the script handles one argument per channel, whatever the number of
/// events: the append and the publish, about 3 µs of Redis CPU with the script's own overhead,
/// are paid once per channel per call instead of once per event.
///
/// Every argument that could make a later command fail is checked before the first write, so a
/// malformed batch writes nothing: an argument error never follows an append.
///
/// The time-to-live: the publisher refreshes a stream (`PEXPIRE`) at most once per half TTL,
/// marking the channels to refresh with a `1` in `ARGV[3]`. The other channels append with
/// `NOMKSTREAM`, which appends nothing when the stream does not exist (it expired, or the server
/// lost or flushed it): then the script creates it and sets its TTL there and then, so a stream
/// never exists without a TTL for longer than the script run.
///
/// KEYS: the stream of each channel, explicitly, so that a Redis Cluster client can later split a
/// batch by hash slot (each key's hash tag is its channel; the pub/sub channels in ARGV share it).
/// ARGV: history length (decimal digits), ttl in ms (0 = none), one `0`/`1` per channel (refresh
/// its TTL), then per channel: pub/sub channel, body.
pub(crate) const PUBLISH_LUA: &str = concat!(
    r"
local n = #KEYS
local len = ARGV[1]
if not string.find(len, '^%d+$') then
  return redis.error_reply('ERR statelesse: invalid history length ' .. len)
end
local ttl = tonumber(ARGV[2])
if not ttl or ttl < 0 or ttl > 9007199254740991 then
  return redis.error_reply('ERR statelesse: invalid history TTL ' .. ARGV[2])
end
local refresh = ARGV[3]
if n == 0 or #ARGV ~= 3 + 2 * n or #refresh ~= n or string.find(refresh, '[^01]') then
  return redis.error_reply('ERR statelesse: malformed publish batch')
end
local off = tonumber(len) == 0
local function append(key, make, b)
  if off then
    if make then return redis.pcall('XADD', key, 'MAXLEN', '0', '*', 'b', '') end
    return redis.pcall('XADD', key, 'NOMKSTREAM', 'MAXLEN', '0', '*', 'b', '')
  end
  if make then return redis.pcall('XADD', key, 'MAXLEN', '~', len, '*', 'b', b) end
  return redis.pcall('XADD', key, 'NOMKSTREAM', 'MAXLEN', '~', len, '*', 'b', b)
end
local ids = {}
for i = 1, n do
  local key, a = KEYS[i], 2 * i + 2
  local b = ARGV[a + 1]
  local expire = ttl > 0 and string.byte(refresh, i) == 49
  local id = append(key, ttl == 0 or expire, b)
  if id == false then
    expire = true
    id = append(key, true, b)
  end
  if type(id) ~= 'table' then
    if expire then redis.call('PEXPIRE', key, ttl) end
    redis.call('PUBLISH', ARGV[a], '",
    magic_line!(),
    r"\n' .. id .. '\n' .. b)
  end
  ids[i] = id
end
return ids
"
);

/// Reads a stream's state and, when `ARGV[1]` is an entry id, one page of its entries from that
/// entry on (`ARGV[4]` = `1`: the entry itself included, for a reader that stopped inside it) or
/// after it, in one consistent snapshot. The page holds at most `ARGV[2]` events (but whole
/// entries) and at most `ARGV[3]` bytes of field values, but always one entry if there is one.
/// Entries are fetched in small chunks sized from the largest entry seen so far, so the script
/// never holds much more than the page: a reply is never a whole stream of large events. Returns
/// nil when the stream does not exist, else `{last id, first id or nil, max deleted id or nil,
/// entries added or nil, length, entries, more, events in the first entry}` where `more` is 1
/// when entries follow the page (the optional fields are missing before Redis 7). An id the
/// stream cannot range from (ahead of its last id) reads no entries.
const HISTORY_LUA: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local function count(fields)
  for j = 1, #fields, 2 do
    if fields[j] == 'b' then return tonumber(string.match(fields[j + 1], '^(%d+)\n')) or 1 end
  end
  return 1
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local s = {}
for i = 1, #info, 2 do s[info[i]] = info[i + 1] end
local first, first_count = false, 1
if s['first-entry'] then
  first = s['first-entry'][1]
  first_count = count(s['first-entry'][2])
end
local last_entry = false
if s['last-entry'] then last_entry = s['last-entry'][1] end
local entries = {}
local more = 0
if ARGV[1] ~= '' then
  local max_n = tonumber(ARGV[2])
  local budget = tonumber(ARGV[3])
  local start = '(' .. ARGV[1]
  if ARGV[4] == '1' then start = ARGV[1] end
  local used, biggest, events, read_last, full = 0, 0, 0, false, false
  while events < max_n and not full do
    local want = 1
    if biggest > 0 then
      want = math.max(1, math.min(max_n - events, 16, math.floor((budget - used) / biggest)))
    end
    local chunk = redis.pcall('XRANGE', KEYS[1], start, '+', 'COUNT', want)
    if chunk['err'] or #chunk == 0 then break end
    for _, e in ipairs(chunk) do
      local size = 0
      for _, v in ipairs(e[2]) do size = size + #v end
      if #entries > 0 and used + size > budget then full = true break end
      entries[#entries + 1] = e
      used = used + size
      events = events + count(e[2])
      if size > biggest then biggest = size end
      start = '(' .. e[1]
      read_last = e[1]
    end
    if #chunk < want then break end
  end
  if read_last and read_last ~= last_entry then more = 1 end
end
return {s['last-generated-id'], first, s['max-deleted-entry-id'] or false, s['entries-added'] or false, s['length'], entries, more, first_count}
";

/// The two scripts, hashed once.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) publish: Script,
    pub(super) history: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            publish: Script::new(PUBLISH_LUA),
            history: Script::new(HISTORY_LUA),
        }
    }

    /// The scripts for a Redis Cluster: the publish script `SPUBLISH`es instead of
    /// `PUBLISH`ing, so that a message reaches only the shard that owns its channel's slot
    /// (a classic `PUBLISH` in a cluster is broadcast to every node).
    #[cfg(feature = "redis-cluster")]
    pub(super) fn sharded() -> Self {
        Self {
            publish: Script::new(&sharded(PUBLISH_LUA)),
            history: Script::new(HISTORY_LUA),
        }
    }

    /// The `EVALSHA` of [`PUBLISH_LUA`] for a batch of channel batches, in order.
    ///
    /// Built directly rather than through `Script::key(..).arg(..)`, which stores every argument
    /// in its own `Vec` and copies them all again into a command: here each argument, the names
    /// and bodies included, is written once into one buffer sized up front (the publish path's
    /// allocations were a third of its instructions).
    pub(super) fn publish_command(
        &self,
        names: &Names,
        (history_len, ttl_ms): (usize, u64),
        channels: &[Outgoing<'_>],
    ) -> Cmd {
        let hash = self.publish.get_hash();
        let size = hash.len()
            + 32
            + channels
                .iter()
                .map(|c| {
                    2 * (c.channel.len() + names.stream_start.len())
                        + c.events
                            .iter()
                            .map(|(event, data)| event.len() + data.len() + 24)
                            .sum::<usize>()
                        + 32
                })
                .sum::<usize>();
        let mut cmd = Cmd::with_capacity(6 + 3 * channels.len(), size);
        cmd.arg("EVALSHA").arg(hash).arg(channels.len());
        for outgoing in channels {
            names.write_stream(&mut cmd, outgoing.channel);
        }
        cmd.arg(history_len).arg(ttl_ms);
        {
            let mut flags = cmd.writer_for_next_arg();
            for outgoing in channels {
                // Writing into the command's `Vec` cannot fail.
                let _ = flags.write_all(if outgoing.refresh { b"1" } else { b"0" });
            }
        }
        for outgoing in channels {
            names.write_pubsub(&mut cmd, outgoing.channel);
            write_body(&mut cmd.writer_for_next_arg(), &outgoing.events);
        }
        cmd
    }
}

/// `script` with its `PUBLISH` calls made `SPUBLISH`: the same script, on sharded pub/sub.
#[cfg(any(feature = "redis-cluster", test))]
fn sharded(script: &str) -> String {
    script.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'")
}

/// The events of one channel in a publish batch, as [`Scripts::publish_command`] writes them.
#[derive(Debug, Clone)]
pub(super) struct Outgoing<'a> {
    /// The channel (not yet a Redis name).
    pub(super) channel: &'a str,
    /// The SSE event name and JSON data of each event, oldest first.
    pub(super) events: Vec<(&'a str, &'a [u8])>,
    /// Whether the script refreshes the stream's time-to-live.
    pub(super) refresh: bool,
}

/// The indexes of a batch's events grouped by channel: for each channel, in the order of its
/// first event, its events in the order they were queued (the order they get their ids in).
pub(super) fn by_channel<'a>(channels: impl ExactSizeIterator<Item = &'a str>) -> Vec<Vec<usize>> {
    let mut index: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(channels.len());
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, channel) in channels.enumerate() {
        let slot = *index.entry(channel).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[slot].push(i);
    }
    groups
}

/// Writes the body of a channel batch, what both its stream entry (field `b`) and its envelope
/// carry: the number of events on a line, then per event its name on a line, the length of its
/// data on a line, and the data. Lengths rather than separators, because data may hold anything.
pub(crate) fn write_body(out: &mut impl std::io::Write, events: &[(&str, &[u8])]) {
    // Writing into a `Vec` cannot fail.
    let _ = write_line(out, events.len());
    for (event, data) in events {
        let _ = out.write_all(event.as_bytes());
        let _ = out.write_all(b"\n");
        let _ = write_line(out, data.len());
        let _ = out.write_all(data);
    }
}

/// Writes `n` in decimal and a newline, without going through `fmt` (twice per event framed).
fn write_line(out: &mut impl std::io::Write, mut n: usize) -> std::io::Result<()> {
    let mut digits = [0u8; 21];
    let mut at = digits.len() - 1;
    digits[at] = b'\n';
    loop {
        at -= 1;
        // `n % 10` is a digit: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n % 10) as u8;
        digits[at] = b'0' + digit;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.write_all(&digits[at..])
}

/// [`Scripts::publish_command`] for the benches, under the prefix `bench`, with a TTL refresh on
/// the first channel: the encoded command's size. Events of one channel go in one entry.
pub(crate) fn bench_publish_command(events: &[(&str, &str, &[u8])]) -> usize {
    thread_local! {
        static SCRIPTS: (Scripts, Names) = (Scripts::new(), Names::new("bench"));
    }
    let channels: Vec<Outgoing<'_>> = by_channel(events.iter().map(|&(channel, ..)| channel))
        .iter()
        .enumerate()
        .map(|(c, members)| Outgoing {
            channel: events[members[0]].0,
            events: members
                .iter()
                .map(|&i| (events[i].1, events[i].2))
                .collect(),
            refresh: c == 0,
        })
        .collect();
    SCRIPTS.with(|(scripts, names)| {
        scripts
            .publish_command(names, (1000, 3_600_000), &channels)
            .get_packed_command()
            .len()
    })
}

/// Builds the Redis names of channels under one prefix.
#[derive(Debug, Clone)]
pub(super) struct Names {
    /// `{prefix}:{`, the start of every pub/sub channel name.
    channel_start: Box<str>,
    /// `{prefix}:h:{`, the start of every stream key.
    stream_start: Box<str>,
}

impl Names {
    pub(super) fn new(prefix: &str) -> Self {
        Self {
            channel_start: format!("{prefix}:{{").into(),
            stream_start: format!("{prefix}:h:{{").into(),
        }
    }

    /// The pub/sub channel of `channel`: `{prefix}:{<channel>}`.
    pub(super) fn pubsub(&self, channel: &str) -> String {
        format!("{}{channel}}}", self.channel_start)
    }

    /// The stream key of `channel`: `{prefix}:h:{<channel>}`.
    pub(super) fn stream(&self, channel: &str) -> String {
        format!("{}{channel}}}", self.stream_start)
    }

    /// Writes [`stream`](Self::stream) of `channel` into `cmd` as its next argument.
    fn write_stream(&self, cmd: &mut Cmd, channel: &str) {
        write_name(cmd, &self.stream_start, channel);
    }

    /// Writes [`pubsub`](Self::pubsub) of `channel` into `cmd` as its next argument.
    fn write_pubsub(&self, cmd: &mut Cmd, channel: &str) {
        write_name(cmd, &self.channel_start, channel);
    }

    /// The channel whose pub/sub channel is `name`, if `name` is one of ours.
    pub(super) fn channel_of<'a>(&self, name: &'a [u8]) -> Option<&'a str> {
        let inner = name
            .strip_prefix(self.channel_start.as_bytes())?
            .strip_suffix(b"}")?;
        std::str::from_utf8(inner).ok()
    }
}

/// Writes `{start}{channel}}` into `cmd` as one argument, without an intermediate `String`.
fn write_name(cmd: &mut Cmd, start: &str, channel: &str) {
    let mut arg = cmd.writer_for_next_arg();
    // Writing into the command's `Vec` cannot fail.
    let _ = arg.write_all(start.as_bytes());
    let _ = arg.write_all(channel.as_bytes());
    let _ = arg.write_all(b"}");
}

/// Why a payload on one of our channels is not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Malformed {
    /// It does not start with the envelope's magic line.
    NotAnEnvelope,
    /// It is an envelope of an older version, published by an older statelesse.
    OlderVersion,
    /// It is an envelope of a version this build does not know (a newer statelesse).
    UnknownVersion,
    /// The id line is missing or not an id.
    BadId,
    /// The event name line is missing, empty or not a valid SSE event name.
    BadEventName,
    /// A stream entry lacks its `b` field (or, written by version 2, its `e` or `d` field).
    BadEntry,
    /// The events of an envelope or entry are not framed as the publisher frames them.
    BadBatch,
    /// The id is further ahead of this instance's clock than [`MAX_CLOCK_SKEW_MS`]: not made by
    /// Redis for a publish.
    FutureId,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnEnvelope => "not a statelesse envelope",
            Self::OlderVersion => {
                "an envelope of an older statelesse (wire version 1 or 2); every instance of a \
                 deployment must be upgraded together"
            }
            Self::UnknownVersion => "unknown envelope version (a newer statelesse?)",
            Self::BadId => "invalid event id",
            Self::BadEventName => "invalid event name",
            Self::BadEntry => "stream entry without events",
            Self::BadBatch => "malformed event batch",
            Self::FutureId => "event id too far ahead of this instance's clock",
        })
    }
}

/// Frames events as the publisher and the publish script do together, for a stream entry `id`:
/// `statelesse/3\n<id>\n` and the body of [`write_body`].
pub(crate) fn encode(id: EventId, events: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(format!("{id}\n").as_bytes());
    write_body(&mut out, events);
    out
}

/// The most events one envelope or entry may claim to hold, before any is parsed: a count is
/// hostile input, and the parser reserves room for what it claims.
const MAX_CLAIMED_EVENTS: usize = 4096;

/// Parses an envelope into its events, oldest first; the data are zero-copy slices of `payload`.
pub(crate) fn decode(payload: &Bytes) -> Result<Vec<Message>, Malformed> {
    let Some(rest) = payload.strip_prefix(MAGIC) else {
        return Err(match payload.strip_prefix(FAMILY) {
            None => Malformed::NotAnEnvelope,
            Some(rest) => {
                let version = rest.split(|&b| b == b'\n').next().unwrap_or_default();
                if OLDER_VERSIONS.contains(&version) {
                    Malformed::OlderVersion
                } else {
                    Malformed::UnknownVersion
                }
            }
        });
    };
    let (id, rest) = split_line(rest).ok_or(Malformed::BadId)?;
    let id = parse_id(id).ok_or(Malformed::BadId)?;
    if id.before() > 0 {
        return Err(Malformed::BadId);
    }
    decode_body(id, &payload.slice(payload.len() - rest.len()..))
}

/// Parses the body of [`write_body`] of the entry `id`: the last event takes `id`, each earlier
/// one the id `before` events ahead of it.
fn decode_body(id: EventId, body: &Bytes) -> Result<Vec<Message>, Malformed> {
    let (count, mut rest) = split_line(body).ok_or(Malformed::BadBatch)?;
    let count = digits(count)
        .filter(|&count| (1..=MAX_CLAIMED_EVENTS).contains(&count))
        .ok_or(Malformed::BadBatch)?;
    // Each event takes at least 4 bytes (`E\n0\n`): no room reserved for events that cannot fit.
    let mut messages = Vec::with_capacity(count.min(rest.len() / 4));
    for index in 0..count {
        let (event, after) = split_line(rest).ok_or(Malformed::BadEventName)?;
        let event = event_name(event).ok_or(Malformed::BadEventName)?;
        let (len, after) = split_line(after).ok_or(Malformed::BadBatch)?;
        let len = digits(len)
            .filter(|&len| len <= after.len())
            .ok_or(Malformed::BadBatch)?;
        let start = body.len() - after.len();
        let before = u32::try_from(count - 1 - index).map_err(|_| Malformed::BadBatch)?;
        messages.push(Message::new(
            EventId::in_entry(id, before),
            event,
            body.slice(start..start + len),
        ));
        rest = &after[len..];
    }
    if rest.is_empty() {
        Ok(messages)
    } else {
        Err(Malformed::BadBatch)
    }
}

/// A decimal number without sign or spaces.
fn digits(bytes: &[u8]) -> Option<usize> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Refuses `message` if its id is further ahead of `now` (this instance's clock, in milliseconds
/// since the Unix epoch) than [`MAX_CLOCK_SKEW_MS`].
pub(crate) fn check_not_ahead(message: &Message, now_ms: u64) -> Result<(), Malformed> {
    // Saturating: a clock near the end of time must not wrap the bound round to the past.
    let bound = now_ms.saturating_add(MAX_CLOCK_SKEW_MS);
    if message.id().millis() > bound {
        Err(Malformed::FutureId)
    } else {
        Ok(())
    }
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

pub(super) fn parse_id(bytes: &[u8]) -> Option<EventId> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// An SSE event name: non-empty UTF-8 without CR, LF or NUL (axum panics on those).
fn event_name(bytes: &[u8]) -> Option<String> {
    let name = std::str::from_utf8(bytes).ok()?;
    is_event_name(name).then(|| name.to_owned())
}

/// Whether `name` can be an SSE event name, and a line of an envelope's body.
pub(super) fn is_event_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['\r', '\n', '\0'])
}

/// A stream's state and the entries read after an id, as [`HISTORY_LUA`] returns them.
#[derive(Debug, Default)]
pub(super) struct StreamState {
    /// The stream's last generated id.
    pub(super) last: EventId,
    /// The oldest event still held (the first of the oldest entry).
    pub(super) first: Option<EventId>,
    /// The largest id deleted with `XDEL` (Redis 7+).
    pub(super) max_deleted: Option<EventId>,
    /// Whether nothing was ever trimmed or deleted (Redis 7+; `false` when unknown).
    pub(super) never_trimmed: bool,
    /// The events after the requested id, oldest first: one page.
    pub(super) events: Vec<Arc<Message>>,
    /// Whether entries follow the page.
    pub(super) more: bool,
    /// Entries that were skipped because they are not ours.
    pub(super) malformed: u64,
}

impl StreamState {
    /// Whether history holds every event after `after`.
    ///
    /// The rule: `after` must not be newer than the stream's last id (an unknown id), nothing
    /// newer than `after` may have been deleted, and either `after` is the last id, or `after`
    /// is at or after the oldest entry still held (trimming removes the oldest entries, so
    /// everything after such an id is still there), or `after` is `0-0` (the very beginning)
    /// and nothing was ever trimmed. An older id is not covered even by an untrimmed stream:
    /// that stream may have been created anew (expired, or lost by a server restart).
    pub(super) fn covers(&self, after: EventId) -> bool {
        if after > self.last {
            return false;
        }
        if self.max_deleted.is_some_and(|deleted| deleted > after) {
            return false;
        }
        after == self.last
            || self.first.is_some_and(|first| after >= first)
            || (self.never_trimmed && after == EventId::default())
    }
}

/// Parses the reply of [`HISTORY_LUA`], keeping the events after `after` (the first entry read
/// may hold some up to it); `None` when the stream does not exist.
pub(super) fn parse_history(
    value: Value,
    after: EventId,
) -> Result<Option<StreamState>, &'static str> {
    let fields = match value {
        Value::Nil => return Ok(None),
        Value::Array(fields) => fields,
        _ => return Err("history reply is not an array"),
    };
    let [
        last,
        first,
        max_deleted,
        added,
        length,
        entries,
        more,
        first_count,
    ]: [Value; 8] = fields
        .try_into()
        .map_err(|_| "history reply has the wrong length")?;
    let last = id_value(&last).ok_or("history reply without a last id")?;
    let first_before = int_value(&first_count)
        .and_then(|count| u32::try_from(count.saturating_sub(1)).ok())
        .unwrap_or(0);
    let first = id_value(&first).map(|first| EventId::in_entry(first, first_before));
    let max_deleted = id_value(&max_deleted);
    let never_trimmed = match (int_value(&added), int_value(&length)) {
        (Some(added), Some(length)) => added == length,
        _ => false,
    };
    let Value::Array(entries) = entries else {
        return Err("history entries are not an array");
    };
    let mut state = StreamState {
        last,
        first,
        max_deleted,
        never_trimmed,
        events: Vec::with_capacity(entries.len()),
        more: int_value(&more) == Some(1),
        malformed: 0,
    };
    for entry in entries {
        match parse_entry(entry) {
            Ok(messages) => state.events.extend(
                messages
                    .into_iter()
                    .filter(|message| message.id() > after)
                    .map(Arc::new),
            ),
            Err(reason) => {
                state.malformed += 1;
                tracing::warn!(%reason, "skipping a stream entry that is not a statelesse event");
            }
        }
    }
    Ok(Some(state))
}

/// Parses one `[id, [field, value, …]]` stream entry written by [`PUBLISH_LUA`] (`b`: a body of
/// [`write_body`]), or by version 2's script (`e`, `d`: one event), which a stream may still hold
/// after an upgrade.
fn parse_entry(entry: Value) -> Result<Vec<Message>, Malformed> {
    let Value::Array(parts) = entry else {
        return Err(Malformed::BadEntry);
    };
    let [id, fields]: [Value; 2] = parts.try_into().map_err(|_| Malformed::BadEntry)?;
    let id = id_value(&id).ok_or(Malformed::BadId)?;
    let fields = match fields {
        Value::Array(fields) => fields,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return Err(Malformed::BadEntry),
    };
    if id.before() > 0 {
        return Err(Malformed::BadId);
    }
    let (mut body, mut event, mut data) = (None, None, None);
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match (bytes_value(&name), value) {
            (Some(b"b"), value) => body = bytes_owned(value),
            (Some(b"e"), value) => event = bytes_owned(value),
            (Some(b"d"), value) => data = bytes_owned(value),
            _ => {}
        }
    }
    match (body, event, data) {
        (Some(body), _, _) => decode_body(id, &Bytes::from(body)),
        (None, Some(event), Some(data)) => {
            let event = event_name(&event).ok_or(Malformed::BadEventName)?;
            Ok(vec![Message::new(id, event, Bytes::from(data))])
        }
        _ => Err(Malformed::BadEntry),
    }
}

fn bytes_value(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

fn bytes_owned(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

fn id_value(value: &Value) -> Option<EventId> {
    bytes_value(value).and_then(parse_id)
}

fn int_value(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn names_wrap_the_channel_in_a_hash_tag() {
        let names = Names::new("dev");
        assert_eq!(
            names.pubsub("game:42:PlayerJoined"),
            "dev:{game:42:PlayerJoined}"
        );
        assert_eq!(
            names.stream("game:42:PlayerJoined"),
            "dev:h:{game:42:PlayerJoined}"
        );
        assert_eq!(
            names.channel_of(b"dev:{game:42:PlayerJoined}"),
            Some("game:42:PlayerJoined")
        );
        assert_eq!(names.channel_of(b"prod:{game:42:PlayerJoined}"), None);
        assert_eq!(names.channel_of(b"dev:{unterminated"), None);
    }

    #[test]
    fn publish_command_is_the_evalsha_of_the_batch_script_with_one_body_per_channel() {
        let scripts = Scripts::new();
        let names = Names::new("dev");
        let channels = [
            Outgoing {
                channel: "game:42:PlayerJoined",
                events: vec![
                    ("PlayerJoined", &b"{\"a\":1}"[..]),
                    ("PlayerJoined", &b"{}"[..]),
                ],
                refresh: true,
            },
            Outgoing {
                channel: "game:7:Scored",
                events: vec![("Scored", &b"{}"[..])],
                refresh: false,
            },
        ];
        let command = scripts.publish_command(&names, (1000, 3_600_000), &channels);
        let expected = ::redis::cmd("EVALSHA")
            .arg(scripts.publish.get_hash())
            .arg(2)
            .arg("dev:h:{game:42:PlayerJoined}")
            .arg("dev:h:{game:7:Scored}")
            .arg(1000)
            .arg(3_600_000)
            .arg("10")
            .arg("dev:{game:42:PlayerJoined}")
            .arg("2\nPlayerJoined\n7\n{\"a\":1}PlayerJoined\n2\n{}")
            .arg("dev:{game:7:Scored}")
            .arg("1\nScored\n2\n{}")
            .get_packed_command();
        assert_eq!(command.get_packed_command(), expected);
    }

    #[test]
    fn a_batch_groups_by_channel_in_order_of_first_event_keeping_each_channels_order() {
        let groups = by_channel(["a", "b", "a", "c", "b", "a"].into_iter());
        assert_eq!(groups, [vec![0, 2, 5], vec![1, 4], vec![3]]);
    }

    #[test]
    fn the_sharded_publish_script_spublishes_and_never_publishes() {
        let script = sharded(PUBLISH_LUA);
        assert!(script.contains("redis.call('SPUBLISH'"));
        assert!(!script.contains("'PUBLISH'"));
        assert_eq!(script.replace("SPUBLISH", "PUBLISH"), PUBLISH_LUA);
    }

    #[test]
    fn decodes_what_the_script_encodes() {
        let payload = encode(
            EventId::new(5, 1),
            &[("PlayerJoined", b"{\"a\":\"x\ny\"}\n")],
        );
        let messages = decode(&Bytes::from(payload)).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].id(), EventId::new(5, 1));
        assert_eq!(messages[0].event(), "PlayerJoined");
        assert_eq!(&messages[0].data()[..], b"{\"a\":\"x\ny\"}\n");
    }

    #[test]
    fn the_events_of_one_envelope_end_at_its_entry_id_in_publish_order() {
        let entry = EventId::new(5, 1);
        let payload = encode(entry, &[("A", b"1\n2"), ("B", b""), ("C", b"{}")]);
        let messages = decode(&Bytes::from(payload)).unwrap();
        let got: Vec<_> = messages
            .iter()
            .map(|m| (m.id().to_string(), m.event().to_owned(), m.data().clone()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "5-1-2".to_owned(),
                    "A".to_owned(),
                    Bytes::from_static(b"1\n2")
                ),
                ("5-1-1".to_owned(), "B".to_owned(), Bytes::new()),
                ("5-1".to_owned(), "C".to_owned(), Bytes::from_static(b"{}")),
            ]
        );
    }

    #[test]
    fn the_script_writes_the_magic_line() {
        let magic = std::str::from_utf8(MAGIC).unwrap().replace('\n', "\\n");
        assert!(PUBLISH_LUA.contains(&format!("'{magic}' .. id")));
    }

    #[test]
    fn rejects_garbage() {
        let cases: [(&[u8], Malformed); 14] = [
            (b"hello", Malformed::NotAnEnvelope),
            (b"", Malformed::NotAnEnvelope),
            (b"statelesse/4\n1-0\n1\nE\n2\n{}", Malformed::UnknownVersion),
            (b"statelesse/\n1-0\nE\n{}", Malformed::UnknownVersion),
            (b"statelesse/3\n", Malformed::BadId),
            (b"statelesse/3\nx-1\n1\nE\n2\n{}", Malformed::BadId),
            (b"statelesse/3\n1-0-1\n1\nE\n2\n{}", Malformed::BadId),
            (b"statelesse/3\n1-0\n1\n\n2\n{}", Malformed::BadEventName),
            (b"statelesse/3\n1-0\n1\nE\r\n2\n{}", Malformed::BadEventName),
            (b"statelesse/3\n1-0\n0\n", Malformed::BadBatch),
            (b"statelesse/3\n1-0\n1\nE\n3\n{}", Malformed::BadBatch),
            (b"statelesse/3\n1-0\n1\nE\n1\n{}", Malformed::BadBatch),
            (b"statelesse/3\n1-0\n2\nE\n2\n{}", Malformed::BadEventName),
            (
                b"statelesse/3\n1-0\n99999999999\nE\n2\n{}",
                Malformed::BadBatch,
            ),
        ];
        for (payload, expected) in cases {
            let result = decode(&Bytes::from_static(payload)).map(|m| m.len());
            assert_eq!(
                result,
                Err(expected),
                "{:?}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn envelopes_of_versions_1_and_2_are_refused_as_ones_of_an_older_statelesse() {
        for payload in ["statelesse/1\n1-0\nE\n{}", "statelesse/2\n1-0\nE\n{}"] {
            let reason = decode(&Bytes::from(payload)).map(|m| m.len()).unwrap_err();
            assert_eq!(reason, Malformed::OlderVersion);
            assert!(reason.to_string().contains("older statelesse"), "{reason}");
        }
    }

    #[test]
    fn an_id_within_the_clock_skew_is_accepted_and_one_beyond_it_refused() {
        let now = 1_700_000_000_000;
        let skew = MAX_CLOCK_SKEW_MS;
        let at = |millis| Message::new(EventId::new(millis, 0), "E", Bytes::new());
        assert_eq!(check_not_ahead(&at(now + skew), now), Ok(()));
        assert_eq!(check_not_ahead(&at(0), now), Ok(()));
        assert_eq!(
            check_not_ahead(&at(now + skew + 1), now),
            Err(Malformed::FutureId)
        );
        assert_eq!(
            check_not_ahead(&at(u64::MAX), u64::MAX - 1),
            Ok(()),
            "the bound saturates instead of wrapping"
        );
        assert_eq!(
            check_not_ahead(&at(u64::MAX), now),
            Err(Malformed::FutureId)
        );
    }

    fn entry(id: &str, fields: &[&str]) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(fields.iter().map(|f| bulk(f)).collect()),
        ])
    }

    fn reply(first_count: i64, entries: Vec<Value>) -> Value {
        Value::Array(vec![
            bulk("9-0"),
            bulk("5-0"),
            bulk("0-0"),
            Value::Int(9),
            Value::Int(5),
            Value::Array(entries),
            Value::Int(1),
            Value::Int(first_count),
        ])
    }

    #[test]
    fn parses_a_history_reply() {
        let reply = reply(
            1,
            vec![
                entry("8-0", &["b", "1\nE\n2\n{}"]),
                entry("9-0", &[]),
                entry("9-1", &["b", "1\nE\n3\n{}"]),
            ],
        );
        let state = parse_history(reply, EventId::default()).unwrap().unwrap();
        assert!(state.more);
        assert_eq!(state.last, EventId::new(9, 0));
        assert_eq!(state.first, Some(EventId::new(5, 0)));
        assert!(!state.never_trimmed);
        assert_eq!(state.events.len(), 1);
        assert_eq!(state.malformed, 2);
        assert!(
            parse_history(Value::Nil, EventId::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_history_reply_starts_after_the_id_read_from_even_inside_an_entry() {
        let body = "3\nA\n1\n1B\n1\n2C\n1\n3";
        let reply = reply(
            3,
            vec![entry("6-0", &["b", body]), entry("7-0", &["b", body])],
        );
        let after = EventId::in_entry(EventId::new(6, 0), 1);
        let state = parse_history(reply, after).unwrap().unwrap();
        let ids: Vec<String> = state.events.iter().map(|m| m.id().to_string()).collect();
        assert_eq!(ids, ["6-0", "7-0-2", "7-0-1", "7-0"]);
        assert_eq!(state.first, Some(EventId::in_entry(EventId::new(5, 0), 2)));
    }

    #[test]
    fn a_version_2_stream_entry_is_read_as_one_event() {
        let reply = reply(1, vec![entry("8-0", &["e", "E", "d", "{}"])]);
        let state = parse_history(reply, EventId::default()).unwrap().unwrap();
        assert_eq!(state.events.len(), 1);
        assert_eq!(state.events[0].id(), EventId::new(8, 0));
        assert_eq!(&state.events[0].data()[..], b"{}");
    }

    #[test]
    fn coverage_rule() {
        let state = StreamState {
            last: EventId::new(9, 0),
            first: Some(EventId::new(5, 0)),
            max_deleted: Some(EventId::new(0, 0)),
            ..StreamState::default()
        };
        assert!(state.covers(EventId::new(5, 0)));
        assert!(state.covers(EventId::new(9, 0)));
        assert!(!state.covers(EventId::new(4, 0)), "older than history");
        assert!(!state.covers(EventId::new(9, 1)), "unknown future id");
        let untrimmed = StreamState {
            never_trimmed: true,
            ..state
        };
        assert!(untrimmed.covers(EventId::new(0, 0)));
        assert!(
            !untrimmed.covers(EventId::new(4, 0)),
            "the stream may be a new one"
        );
        let emptied = StreamState {
            last: EventId::new(9, 0),
            ..StreamState::default()
        };
        assert!(emptied.covers(EventId::new(9, 0)));
        assert!(!emptied.covers(EventId::new(8, 0)));
    }
}
