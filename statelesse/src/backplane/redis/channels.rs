//! The subscriber's per-channel state, as plain data: which channels are subscribed on Redis,
//! what each one last delivered, and its refill after a reconnect. No I/O: each method returns
//! the [`Action`]s the subscriber task must perform, so every rule here is unit-tested without
//! Redis.
//!
//! Interest (how many local subscribers a channel has) lives in the hub; every method that
//! decides on it takes `wanted`, the hub's answer, read when the decision is taken.
//!
//! Why it cannot race: at most one SUBSCRIBE or UNSUBSCRIBE per channel is in flight (`busy`),
//! and each reply reconciles again with what is wanted now. Every operation is tagged with the
//! generation of the connection it was sent on; losing or re-opening the connection starts a new
//! generation, and a reply of an older one is ignored.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::envelope::StreamState;
use crate::id::EventId;
use crate::message::Message;

/// What the subscriber task must do, in order.
#[derive(Debug)]
pub(super) enum Action<W> {
    /// SUBSCRIBE the channel, then read its stream's position as its baseline.
    Subscribe(Box<str>),
    /// UNSUBSCRIBE the channel.
    Unsubscribe(Box<str>),
    /// SUBSCRIBE these channels again on a new connection.
    Resubscribe(Vec<Box<str>>),
    /// Tell these waiters their channel is subscribed.
    Confirm(Vec<W>),
    /// Tell these waiters their channel cannot be subscribed.
    Fail(Vec<W>, Failure),
    /// Read the channel's stream after `from`; `retry` after a failed read, so after a pause.
    Refill {
        channel: Box<str>,
        from: EventId,
        retry: bool,
    },
    /// Hand these messages to the channel's local subscribers.
    Deliver {
        channel: Box<str>,
        messages: Vec<Arc<Message>>,
    },
    /// Tell the channel's local subscribers that events may have been lost here.
    Gap { channel: Box<str>, cause: GapCause },
    /// A channel's refill is over: count it.
    RefillDone,
}

/// Why waiters are failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The pub/sub connection is down.
    Down,
    /// The pub/sub connection was lost while they waited.
    Lost,
    /// The transport shut down.
    Closed,
}

/// Why a channel reports a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GapCause {
    /// Nothing is known of where the channel was when the connection dropped.
    UnknownPosition,
    /// The stream no longer holds every event after `after`.
    NotCovered { after: EventId },
}

/// The state of every channel this instance subscribes to, on one connection at a time.
#[derive(Debug)]
pub(super) struct Channels<W> {
    /// The current connection's generation; replies of older ones are ignored.
    generation: u64,
    /// Whether the pub/sub connection is up.
    connected: bool,
    /// How many live messages a refilling channel holds back before it drops them.
    hold_limit: usize,
    states: HashMap<Box<str>, ChannelState<W>>,
}

/// What is known of one channel.
#[derive(Debug)]
struct ChannelState<W> {
    /// Confirmed subscribed on the current connection.
    subscribed: bool,
    /// A SUBSCRIBE or UNSUBSCRIBE of this channel is in flight.
    busy: bool,
    /// Local subscribers waiting for the subscription to be confirmed.
    waiters: Vec<W>,
    /// The last event handed to the hub: live messages up to it are duplicates.
    last_delivered: Option<EventId>,
    /// The stream's last id when the channel was subscribed (`0-0` without a stream): where a
    /// refill starts when nothing was delivered yet. `None` when it could not be read.
    baseline: Option<EventId>,
    /// Set while the gap after a reconnect is read from the stream.
    refill: Option<Refill>,
}

// Not derived: a derive would require `W: Default`.
impl<W> Default for ChannelState<W> {
    fn default() -> Self {
        Self {
            subscribed: false,
            busy: false,
            waiters: Vec::new(),
            last_delivered: None,
            baseline: None,
            refill: None,
        }
    }
}

/// Live messages held back while a channel's gap is read.
#[derive(Debug, Default)]
struct Refill {
    held: VecDeque<Arc<Message>>,
    /// The held messages overflowed and were dropped: read the stream once more afterwards.
    overflowed: bool,
}

impl<W> ChannelState<W> {
    /// Where a refill starts: after the last event delivered, or after the baseline.
    fn resume_from(&self) -> Option<EventId> {
        match (self.last_delivered, self.baseline) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// `message` if it is newer than everything delivered, which it then becomes.
    fn accept(&mut self, message: Arc<Message>) -> Option<Arc<Message>> {
        if self.last_delivered.is_some_and(|last| message.id() <= last) {
            return None;
        }
        self.last_delivered = Some(message.id());
        Some(message)
    }

    /// The messages of `messages` that are not duplicates, in order.
    fn accept_all(
        &mut self,
        messages: impl IntoIterator<Item = Arc<Message>>,
    ) -> Vec<Arc<Message>> {
        messages
            .into_iter()
            .filter_map(|message| self.accept(message))
            .collect()
    }
}

impl<W> Channels<W> {
    /// No channels, on a connection that is up; a refilling channel holds back at most
    /// `hold_limit` live messages.
    pub(super) fn new(hold_limit: usize) -> Self {
        Self {
            generation: 1,
            connected: true,
            hold_limit,
            states: HashMap::new(),
        }
    }

    /// The current connection's generation, to tag operations with.
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a reply tagged with `generation` belongs to the current connection.
    pub(super) fn is_current(&self, generation: u64) -> bool {
        generation == self.generation
    }

    /// How many channels are confirmed subscribed on the current connection.
    pub(super) fn subscribed_count(&self) -> usize {
        self.states.values().filter(|s| s.subscribed).count()
    }

    /// The channels confirmed subscribed on the current connection.
    pub(super) fn subscribed(&self) -> impl Iterator<Item = &str> {
        self.states
            .iter()
            .filter(|(_, state)| state.subscribed)
            .map(|(channel, _)| &**channel)
    }

    /// A local subscriber of `channel` waits for it to be subscribed.
    pub(super) fn ensure(&mut self, channel: &str, waiter: W, wanted: bool) -> Vec<Action<W>> {
        let mut actions = Vec::new();
        if self.connected {
            self.states
                .entry(channel.into())
                .or_default()
                .waiters
                .push(waiter);
        } else {
            actions.push(Action::Fail(vec![waiter], Failure::Down));
        }
        actions.extend(self.reconcile(channel, wanted));
        actions
    }

    /// Brings `channel`'s Redis subscription in line with `wanted`, unless an operation on it is
    /// in flight (its reply reconciles again).
    pub(super) fn reconcile(&mut self, channel: &str, wanted: bool) -> Vec<Action<W>> {
        let Some(state) = self.states.get_mut(channel) else {
            return Vec::new();
        };
        if !self.connected {
            if !wanted {
                self.states.remove(channel);
            }
            return Vec::new();
        }
        if state.busy {
            return Vec::new();
        }
        match (wanted, state.subscribed) {
            (true, true) if state.waiters.is_empty() => Vec::new(),
            (true, true) => vec![Action::Confirm(std::mem::take(&mut state.waiters))],
            (true, false) => {
                state.busy = true;
                vec![Action::Subscribe(channel.into())]
            }
            (false, true) => {
                state.busy = true;
                vec![Action::Unsubscribe(channel.into())]
            }
            (false, false) => {
                self.states.remove(channel);
                Vec::new()
            }
        }
    }

    /// A SUBSCRIBE of `channel` sent in `generation` succeeded; `baseline` is its stream's
    /// position read right after.
    pub(super) fn subscribe_succeeded(
        &mut self,
        generation: u64,
        channel: &str,
        baseline: Option<EventId>,
        wanted: bool,
    ) -> Vec<Action<W>> {
        if !self.is_current(generation) {
            return Vec::new();
        }
        let Some(state) = self.states.get_mut(channel) else {
            return Vec::new();
        };
        state.busy = false;
        state.subscribed = true;
        state.baseline = baseline;
        self.reconcile(channel, wanted)
    }

    /// A SUBSCRIBE of `channel` sent in `generation` failed: the waiters to fail, or `None` when
    /// the reply is stale.
    ///
    /// No reconcile: the waiters' subscribers release the channel as they see the error, and
    /// retrying for them would only fail again.
    pub(super) fn subscribe_failed(&mut self, generation: u64, channel: &str) -> Option<Vec<W>> {
        if !self.is_current(generation) {
            return None;
        }
        let state = self.states.get_mut(channel)?;
        state.busy = false;
        Some(std::mem::take(&mut state.waiters))
    }

    /// An UNSUBSCRIBE of `channel` sent in `generation` is done.
    pub(super) fn unsubscribed(
        &mut self,
        generation: u64,
        channel: &str,
        wanted: bool,
    ) -> Vec<Action<W>> {
        if !self.is_current(generation) {
            return Vec::new();
        }
        if let Some(state) = self.states.get_mut(channel) {
            // Continuity is broken: a later subscription starts afresh.
            *state = ChannelState {
                waiters: std::mem::take(&mut state.waiters),
                ..ChannelState::default()
            };
        }
        self.reconcile(channel, wanted)
    }

    /// A live message arrived on `channel`: the message to hand to its local subscribers, if it
    /// is neither a duplicate nor held back by a refill.
    pub(super) fn message(&mut self, channel: &str, message: Arc<Message>) -> Option<Arc<Message>> {
        let state = self.states.get_mut(channel)?;
        let Some(refill) = &mut state.refill else {
            return state.accept(message);
        };
        if refill.overflowed {
            return None;
        }
        if refill.held.len() >= self.hold_limit {
            // Everything dropped here is in the stream: the refill reads it again.
            refill.overflowed = true;
            refill.held.clear();
            return None;
        }
        refill.held.push_back(message);
        None
    }

    /// The pub/sub connection was lost: fail the waiters, forget the channels nobody wants, and
    /// start a new generation.
    pub(super) fn disconnected(&mut self, wanted: impl Fn(&str) -> bool) -> Vec<Action<W>> {
        self.generation += 1;
        self.connected = false;
        let mut waiters = Vec::new();
        for state in self.states.values_mut() {
            state.subscribed = false;
            state.busy = false;
            state.refill = None;
            waiters.append(&mut state.waiters);
        }
        self.states.retain(|channel, _| wanted(channel));
        if waiters.is_empty() {
            Vec::new()
        } else {
            vec![Action::Fail(waiters, Failure::Lost)]
        }
    }

    /// A new pub/sub connection is up: start a new generation and subscribe again every channel
    /// still wanted, holding their live messages back until their gaps are read.
    pub(super) fn reconnected(&mut self, wanted: impl Fn(&str) -> bool) -> Vec<Action<W>> {
        self.generation += 1;
        self.connected = true;
        self.states.retain(|channel, _| wanted(channel));
        if self.states.is_empty() {
            return Vec::new();
        }
        for state in self.states.values_mut() {
            state.busy = true;
            state.refill = Some(Refill::default());
        }
        vec![Action::Resubscribe(self.states.keys().cloned().collect())]
    }

    /// The SUBSCRIBE of `channels` after a reconnect, sent in `generation`, succeeded: read
    /// each one's gap.
    pub(super) fn resubscribed(
        &mut self,
        generation: u64,
        channels: Vec<Box<str>>,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<Action<W>> {
        if !self.is_current(generation) {
            return Vec::new();
        }
        for channel in &channels {
            if let Some(state) = self.states.get_mut(channel) {
                state.busy = false;
                state.subscribed = true;
            }
        }
        let mut actions = Vec::new();
        for channel in channels {
            let wanted = wanted(&channel);
            actions.extend(self.start_refill(channel, false, wanted));
        }
        actions
    }

    /// Reads `channel`'s gap from its stream, or reports a gap when its position is unknown.
    fn start_refill(&mut self, channel: Box<str>, retry: bool, wanted: bool) -> Vec<Action<W>> {
        let Some(state) = self.states.get_mut(&channel) else {
            return Vec::new();
        };
        if state.refill.is_none() || !state.subscribed {
            return Vec::new();
        }
        let Some(from) = state.resume_from() else {
            let mut actions = vec![Action::Gap {
                channel: channel.clone(),
                cause: GapCause::UnknownPosition,
            }];
            actions.extend(self.finish_refill(&channel, wanted));
            return actions;
        };
        vec![Action::Refill {
            channel,
            from,
            retry,
        }]
    }

    /// Reading `channel`'s gap after `from`, in `generation`, failed: the actions that retry it,
    /// or `None` when the reply is stale.
    pub(super) fn refill_failed(
        &mut self,
        generation: u64,
        channel: Box<str>,
        wanted: bool,
    ) -> Option<Vec<Action<W>>> {
        if !self.is_current(generation) || self.states.get(&channel)?.refill.is_none() {
            return None;
        }
        Some(self.start_refill(channel, true, wanted))
    }

    /// `channel`'s gap after `from` was read, in `generation`: `stream` is `None` when the stream
    /// does not exist.
    ///
    /// Reports a gap unless history covers it, delivers what was not delivered yet, then either
    /// reads once more (live messages overflowed meanwhile) or hands the held messages over.
    pub(super) fn refilled(
        &mut self,
        generation: u64,
        channel: Box<str>,
        from: EventId,
        stream: Option<StreamState>,
        wanted: bool,
    ) -> Vec<Action<W>> {
        if !self.is_current(generation) {
            return Vec::new();
        }
        let Some(state) = self.states.get_mut(&channel) else {
            return Vec::new();
        };
        if state.refill.is_none() {
            return Vec::new();
        }
        let complete = match &stream {
            // No stream: nothing was ever published, unless it expired or was deleted.
            None => from == EventId::default(),
            Some(stream) => stream.covers(from),
        };
        let mut actions = Vec::new();
        if !complete {
            actions.push(Action::Gap {
                channel: channel.clone(),
                cause: GapCause::NotCovered { after: from },
            });
        }
        let messages = state.accept_all(stream.map(|s| s.events).unwrap_or_default());
        if !messages.is_empty() {
            actions.push(Action::Deliver {
                channel: channel.clone(),
                messages,
            });
        }
        if let Some(refill) = &mut state.refill
            && refill.overflowed
        {
            *refill = Refill::default();
            actions.extend(self.start_refill(channel, false, wanted));
        } else {
            actions.extend(self.finish_refill(&channel, wanted));
        }
        actions
    }

    /// Hands the held-back live messages over and goes back to live delivery.
    fn finish_refill(&mut self, channel: &str, wanted: bool) -> Vec<Action<W>> {
        let Some(state) = self.states.get_mut(channel) else {
            return Vec::new();
        };
        let Some(refill) = state.refill.take() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let messages = state.accept_all(refill.held);
        if !messages.is_empty() {
            actions.push(Action::Deliver {
                channel: channel.into(),
                messages,
            });
        }
        actions.push(Action::RefillDone);
        actions.extend(self.reconcile(channel, wanted));
        actions
    }

    /// The transport shuts down: fail every waiter and forget every channel.
    pub(super) fn close(&mut self) -> Vec<Action<W>> {
        self.connected = false;
        let waiters: Vec<W> = self
            .states
            .drain()
            .flat_map(|(_, state)| state.waiters)
            .collect();
        if waiters.is_empty() {
            Vec::new()
        } else {
            vec![Action::Fail(waiters, Failure::Closed)]
        }
    }
}
