//! The local fan-out every transport shares: per channel, one bounded broadcast queue read by
//! every local subscriber, reference counted so the transport knows the first and the last.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::broadcast;

use super::transport::Delivery;

/// Per-channel local fan-out with transport state `S` kept beside each channel.
#[derive(Debug)]
pub(crate) struct Hub<S> {
    channels: Mutex<HashMap<Box<str>, Slot<S>>>,
    capacity: usize,
}

#[derive(Debug)]
pub(crate) struct Slot<S> {
    pub(crate) sender: broadcast::Sender<Delivery>,
    pub(crate) subscribers: usize,
    pub(crate) state: S,
}

impl<S> Slot<S> {
    /// Hands `delivery` to every local subscriber; returns how many there were.
    pub(crate) fn deliver(&self, delivery: Delivery) -> usize {
        self.sender.send(delivery).unwrap_or(0)
    }
}

impl<S> Hub<S> {
    /// A hub whose subscribers each buffer at most `capacity` events.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            channels: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Slot<S>>> {
        // A panic while holding the lock leaves plain counters and queues, still consistent.
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a subscriber to `channel`, creating its slot with `init`; returns its receiver and
    /// whether it is the channel's first local subscriber.
    pub(crate) fn subscribe(
        &self,
        channel: &str,
        init: impl FnOnce() -> S,
    ) -> (broadcast::Receiver<Delivery>, bool) {
        let mut channels = self.lock();
        let slot = self.slot(&mut channels, channel, init);
        slot.subscribers += 1;
        (slot.sender.subscribe(), slot.subscribers == 1)
    }

    /// The slot of `channel`, created with `init` if missing.
    pub(crate) fn slot<'a>(
        &self,
        channels: &'a mut HashMap<Box<str>, Slot<S>>,
        channel: &str,
        init: impl FnOnce() -> S,
    ) -> &'a mut Slot<S> {
        channels.entry(channel.into()).or_insert_with(|| Slot {
            sender: broadcast::channel(self.capacity).0,
            subscribers: 0,
            state: init(),
        })
    }

    /// Removes a subscriber of `channel`; returns whether it was the last. The slot is dropped
    /// when `keep` says its state is no longer needed.
    pub(crate) fn release(&self, channel: &str, keep: impl FnOnce(&S) -> bool) -> bool {
        let mut channels = self.lock();
        let Some(slot) = channels.get_mut(channel) else {
            return false;
        };
        slot.subscribers = slot.subscribers.saturating_sub(1);
        let last = slot.subscribers == 0;
        if last && !keep(&slot.state) {
            channels.remove(channel);
        }
        last
    }

    /// The number of local subscribers of `channel`.
    pub(crate) fn subscriber_count(&self, channel: &str) -> usize {
        self.lock().get(channel).map_or(0, |slot| slot.subscribers)
    }

    /// Every channel with local subscribers, with their counts.
    pub(crate) fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        self.lock()
            .iter()
            .filter(|(_, slot)| slot.subscribers > 0)
            .map(|(name, slot)| (name.to_string(), slot.subscribers))
            .collect()
    }

    /// Drops every slot, which ends every local feed.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}
