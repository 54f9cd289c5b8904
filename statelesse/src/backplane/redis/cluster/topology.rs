//! Which node serves which hash slots, as `CLUSTER SLOTS` tells it: parsed with bounds (the
//! reply comes from the network), and looked up by slot.

use std::sync::Arc;

use ::redis::Value;

use crate::backplane::redis::slot::SLOTS;

/// The masters serving each slot range, sorted by range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct SlotMap {
    ranges: Vec<(u16, u16, Arc<str>)>,
}

impl SlotMap {
    /// The address (`host:port`) of the master serving `slot`, if any does.
    pub(super) fn owner(&self, slot: u16) -> Option<&Arc<str>> {
        let index = self.ranges.partition_point(|(_, end, _)| *end < slot);
        self.ranges
            .get(index)
            .filter(|(start, _, _)| *start <= slot)
            .map(|(_, _, address)| address)
    }

    /// Every master's address, once each.
    pub(super) fn masters(&self) -> Vec<Arc<str>> {
        let mut masters: Vec<Arc<str>> = self.ranges.iter().map(|(_, _, a)| a.clone()).collect();
        masters.sort();
        masters.dedup();
        masters
    }

    /// Whether every slot is served.
    pub(super) fn is_complete(&self) -> bool {
        let served: u32 = self
            .ranges
            .iter()
            .map(|(start, end, _)| u32::from(end - start) + 1)
            .sum();
        served == u32::from(SLOTS)
    }

    /// Parses a `CLUSTER SLOTS` reply; a master announced without a host (an empty one, or
    /// `?`) is at `default_host`, the host of the node that answered.
    pub(super) fn parse(value: Value, default_host: &str) -> Result<Self, &'static str> {
        const MALFORMED: &str = "malformed CLUSTER SLOTS reply";
        let Value::Array(entries) = value else {
            return Err(MALFORMED);
        };
        // At most one range per slot: anything longer is not a reply of Redis.
        if entries.len() > usize::from(SLOTS) {
            return Err(MALFORMED);
        }
        let mut ranges = Vec::with_capacity(entries.len());
        for entry in entries {
            let Value::Array(fields) = entry else {
                return Err(MALFORMED);
            };
            let (Some(start), Some(end), Some(Value::Array(master))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                return Err(MALFORMED);
            };
            let (Some(start), Some(end)) = (slot_of(start), slot_of(end)) else {
                return Err(MALFORMED);
            };
            if start > end {
                return Err(MALFORMED);
            }
            let host = match master.first() {
                Some(Value::BulkString(host)) => std::str::from_utf8(host).ok(),
                Some(Value::SimpleString(host)) => Some(host.as_str()),
                _ => None,
            }
            .filter(|host| host.len() <= 255)
            .ok_or(MALFORMED)?;
            let host = if host.is_empty() || host == "?" {
                default_host
            } else {
                host
            };
            let port = match master.get(1) {
                Some(Value::Int(port)) => u16::try_from(*port).ok(),
                _ => None,
            }
            .ok_or(MALFORMED)?;
            ranges.push((start, end, Arc::from(format!("{host}:{port}"))));
        }
        ranges.sort_by_key(|(start, _, _)| *start);
        if ranges.windows(2).any(|pair| pair[0].1 >= pair[1].0) {
            return Err(MALFORMED);
        }
        Ok(Self { ranges })
    }
}

fn slot_of(value: &Value) -> Option<u16> {
    match value {
        Value::Int(slot) => u16::try_from(*slot).ok().filter(|slot| *slot < SLOTS),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: i64, end: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![
                Value::BulkString(host.into()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ]),
        ])
    }

    #[test]
    fn each_slot_has_the_owner_the_reply_gives() {
        let reply = Value::Array(vec![
            range(5461, 10922, "10.0.0.2", 7001),
            range(0, 5460, "", 7000),
            range(10923, 16383, "10.0.0.3", 7002),
        ]);
        let map = SlotMap::parse(reply, "seed").unwrap();
        assert_eq!(map.owner(0).map(|a| &**a), Some("seed:7000"));
        assert_eq!(map.owner(5461).map(|a| &**a), Some("10.0.0.2:7001"));
        assert_eq!(map.owner(16383).map(|a| &**a), Some("10.0.0.3:7002"));
        assert!(map.is_complete());
        assert_eq!(map.masters().len(), 3);
    }

    #[test]
    fn an_unserved_slot_has_no_owner() {
        let map = SlotMap::parse(Value::Array(vec![range(0, 99, "h", 1)]), "seed").unwrap();
        assert!(map.owner(100).is_none());
        assert!(!map.is_complete());
    }

    #[test]
    fn a_malformed_reply_is_refused() {
        for reply in [
            Value::Nil,
            Value::Array(vec![range(10, 5, "h", 1)]),
            Value::Array(vec![range(0, 16384, "h", 1)]),
            Value::Array(vec![range(0, 10, "h", 70000)]),
            Value::Array(vec![range(0, 10, "h", 1), range(10, 20, "h", 2)]),
        ] {
            assert!(SlotMap::parse(reply, "seed").is_err());
        }
    }
}
