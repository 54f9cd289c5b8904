//! Redis Cluster hash slots: which of the 16,384 slots a key or channel name belongs to, by the
//! cluster's own rule (CRC16 of the hash tag, or of the whole name without one).
//!
//! Every name the transport uses wraps its channel in a hash tag, so a channel's stream and its
//! pub/sub channel share a slot: the one its batches and subscriptions are routed by.

/// How many hash slots a Redis Cluster has.
pub(super) const SLOTS: u16 = 16_384;

/// The hash slot of `name`: CRC16 (the XMODEM variant) of the part between the first `{` and the next `}`
/// when that part is not empty, else of the whole name, modulo [`SLOTS`].
pub(super) fn key_slot(name: &[u8]) -> u16 {
    let hashed = name
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &name[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(name);
    crc16(hashed) % SLOTS
}

/// CRC16-CCITT, the XMODEM variant: polynomial `0x1021`, initial value 0, as Redis Cluster uses.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_ones_redis_gives() {
        // `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn a_hash_tag_decides_the_slot() {
        let slot = key_slot(b"game:1:Started");
        assert_eq!(key_slot(b"statelesse:{game:1:Started}"), slot);
        assert_eq!(key_slot(b"statelesse:h:{game:1:Started}"), slot);
        // An empty tag is no tag: the whole name is hashed.
        assert_eq!(key_slot(b"a{}b"), crc16(b"a{}b") % SLOTS);
        // Only the first tag counts.
        assert_eq!(key_slot(b"{x}{y}"), key_slot(b"x"));
    }
}
