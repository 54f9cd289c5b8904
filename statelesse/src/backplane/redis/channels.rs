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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const A: &str = "game:1:Started";
    const B: &str = "game:2:Started";

    fn id(millis: u64) -> EventId {
        EventId::new(millis, 0)
    }

    fn message(millis: u64) -> Arc<Message> {
        Arc::new(Message::new(id(millis), "Started", Bytes::new()))
    }

    /// A stream holding the entries from `first` to `last`, of which `events` were read.
    fn stream(first: u64, last: u64, events: &[u64]) -> StreamState {
        StreamState {
            last: id(last),
            first: Some(id(first)),
            events: events.iter().map(|&millis| message(millis)).collect(),
            ..StreamState::default()
        }
    }

    /// The actions, one line each, as a reader of this file would say them.
    fn said(actions: Vec<Action<u32>>) -> Vec<String> {
        let ids = |messages: &[Arc<Message>]| {
            messages
                .iter()
                .map(|m| m.id().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        actions
            .into_iter()
            .map(|action| match action {
                Action::Subscribe(channel) => format!("subscribe {channel}"),
                Action::Unsubscribe(channel) => format!("unsubscribe {channel}"),
                Action::Resubscribe(mut channels) => {
                    channels.sort();
                    format!("resubscribe {}", channels.join(" "))
                }
                Action::Confirm(waiters) => format!("confirm {waiters:?}"),
                Action::Fail(waiters, failure) => format!("fail {waiters:?} {failure:?}"),
                Action::Refill {
                    channel,
                    from,
                    retry,
                } => format!(
                    "{}refill {channel} after {from}",
                    if retry { "retry " } else { "" }
                ),
                Action::Deliver { channel, messages } => {
                    format!("deliver {channel} {}", ids(&messages))
                }
                Action::Gap {
                    channel,
                    cause: GapCause::NotCovered { after },
                } => format!("gap {channel} after {after}"),
                Action::Gap {
                    channel,
                    cause: GapCause::UnknownPosition,
                } => format!("gap {channel}, position unknown"),
                Action::RefillDone => "refill done".to_owned(),
            })
            .collect()
    }

    /// Channels where `A` is subscribed with `baseline` and confirmed to waiter 1.
    fn subscribed_to_a(hold_limit: usize, baseline: Option<EventId>) -> Channels<u32> {
        let mut channels = Channels::new(hold_limit);
        assert_eq!(
            said(channels.ensure(A, 1, true)),
            ["subscribe game:1:Started"]
        );
        let generation = channels.generation();
        assert_eq!(
            said(channels.subscribe_succeeded(generation, A, baseline, true)),
            ["confirm [1]"]
        );
        channels
    }

    /// Loses and re-opens the connection, then confirms the resubscription of `A`: returns
    /// what the resubscription asks for.
    fn reconnect_a(channels: &mut Channels<u32>) -> Vec<String> {
        channels.disconnected(|_| true);
        assert_eq!(
            said(channels.reconnected(|_| true)),
            ["resubscribe game:1:Started"]
        );
        let generation = channels.generation();
        said(channels.resubscribed(generation, vec![A.into()], |_| true))
    }

    #[test]
    fn the_first_waiter_subscribes_and_is_confirmed_once_redis_confirms() {
        let mut channels = Channels::new(8);
        assert_eq!(
            said(channels.ensure(A, 1, true)),
            ["subscribe game:1:Started"]
        );
        assert_eq!(channels.subscribed_count(), 0);
        let generation = channels.generation();
        assert_eq!(
            said(channels.subscribe_succeeded(generation, A, Some(id(0)), true)),
            ["confirm [1]"]
        );
        assert_eq!(channels.subscribed().collect::<Vec<_>>(), [A]);
    }

    #[test]
    fn waiters_during_a_subscribe_share_it_and_a_later_one_is_confirmed_at_once() {
        let mut channels = Channels::new(8);
        assert_eq!(
            said(channels.ensure(A, 1, true)),
            ["subscribe game:1:Started"]
        );
        assert!(said(channels.ensure(A, 2, true)).is_empty());
        let generation = channels.generation();
        assert_eq!(
            said(channels.subscribe_succeeded(generation, A, Some(id(0)), true)),
            ["confirm [1, 2]"]
        );
        assert_eq!(said(channels.ensure(A, 3, true)), ["confirm [3]"]);
    }

    #[test]
    fn leaving_before_the_subscribe_reply_unsubscribes_once_it_arrives() {
        let mut channels = Channels::new(8);
        channels.ensure(A, 1, true);
        assert!(said(channels.reconcile(A, false)).is_empty());
        let generation = channels.generation();
        assert_eq!(
            said(channels.subscribe_succeeded(generation, A, Some(id(0)), false)),
            ["unsubscribe game:1:Started"]
        );
        assert!(said(channels.unsubscribed(generation, A, false)).is_empty());
        assert_eq!(channels.subscribed_count(), 0);
        assert!(channels.message(A, message(1)).is_none());
    }

    #[test]
    fn coming_back_during_an_unsubscribe_subscribes_again_once_it_ends() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        assert_eq!(
            said(channels.reconcile(A, false)),
            ["unsubscribe game:1:Started"]
        );
        assert!(said(channels.ensure(A, 2, true)).is_empty());
        let generation = channels.generation();
        assert_eq!(
            said(channels.unsubscribed(generation, A, true)),
            ["subscribe game:1:Started"]
        );
        assert_eq!(
            said(channels.subscribe_succeeded(generation, A, Some(id(0)), true)),
            ["confirm [2]"]
        );
    }

    #[test]
    fn a_new_subscription_after_an_unsubscribe_starts_afresh() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        assert!(channels.message(A, message(5)).is_some());
        channels.reconcile(A, false);
        let generation = channels.generation();
        channels.unsubscribed(generation, A, false);
        channels.ensure(A, 2, true);
        channels.subscribe_succeeded(generation, A, Some(id(0)), true);
        assert!(channels.message(A, message(3)).is_some());
    }

    #[test]
    fn a_failed_subscribe_fails_its_waiters_and_is_not_retried() {
        let mut channels = Channels::new(8);
        channels.ensure(A, 1, true);
        channels.ensure(A, 2, true);
        let generation = channels.generation();
        assert_eq!(channels.subscribe_failed(generation, A), Some(vec![1, 2]));
        assert_eq!(channels.subscribed_count(), 0);
        assert_eq!(
            said(channels.ensure(A, 3, true)),
            ["subscribe game:1:Started"]
        );
    }

    #[test]
    fn waiting_while_the_connection_is_down_fails_at_once() {
        let mut channels = Channels::new(8);
        channels.disconnected(|_| true);
        assert_eq!(said(channels.ensure(A, 1, true)), ["fail [1] Down"]);
    }

    #[test]
    fn losing_the_connection_fails_the_waiters_and_forgets_channels_nobody_wants() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        channels.ensure(B, 2, true);
        assert_eq!(
            said(channels.disconnected(|channel| channel == A)),
            ["fail [2] Lost"]
        );
        assert_eq!(channels.subscribed_count(), 0);
        assert_eq!(
            said(channels.reconnected(|_| true)),
            ["resubscribe game:1:Started"]
        );
    }

    #[test]
    fn every_lost_or_new_connection_starts_a_generation() {
        let mut channels = Channels::<u32>::new(8);
        let first = channels.generation();
        assert!(channels.is_current(first));
        channels.disconnected(|_| true);
        let down = channels.generation();
        assert!(down > first && !channels.is_current(first));
        channels.reconnected(|_| true);
        assert!(channels.generation() > down && !channels.is_current(down));
    }

    #[test]
    fn replies_of_an_older_connection_change_nothing() {
        let mut channels = subscribed_to_a(8, Some(id(2)));
        let old = channels.generation();
        channels.disconnected(|_| true);
        channels.reconnected(|_| true);
        assert!(said(channels.subscribe_succeeded(old, A, Some(id(9)), true)).is_empty());
        assert_eq!(channels.subscribe_failed(old, A), None);
        assert!(said(channels.unsubscribed(old, A, true)).is_empty());
        assert!(said(channels.resubscribed(old, vec![A.into()], |_| true)).is_empty());
        assert!(said(channels.refilled(old, A.into(), id(2), None, true)).is_empty());
        assert!(channels.refill_failed(old, A.into(), true).is_none());
        assert_eq!(channels.subscribed_count(), 0);
        // The current connection's resubscription goes through, from the old baseline.
        let current = channels.generation();
        assert_eq!(
            said(channels.resubscribed(current, vec![A.into()], |_| true)),
            ["refill game:1:Started after 2-0"]
        );
    }

    #[test]
    fn live_messages_already_delivered_are_dropped() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        assert!(channels.message(A, message(2)).is_some());
        assert!(channels.message(A, message(2)).is_none());
        assert!(channels.message(A, message(1)).is_none());
        assert!(channels.message(A, message(3)).is_some());
        assert!(channels.message(B, message(4)).is_none());
    }

    #[test]
    fn a_refill_reads_from_the_last_delivered_id_or_else_the_baseline() {
        let mut channels = subscribed_to_a(8, Some(id(4)));
        assert_eq!(
            reconnect_a(&mut channels),
            ["refill game:1:Started after 4-0"]
        );
        let mut channels = subscribed_to_a(8, Some(id(4)));
        channels.message(A, message(6));
        assert_eq!(
            reconnect_a(&mut channels),
            ["refill game:1:Started after 6-0"]
        );
    }

    #[test]
    fn live_messages_wait_for_the_refill_and_those_it_read_are_not_delivered_twice() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        channels.message(A, message(2));
        channels.disconnected(|_| true);
        channels.reconnected(|_| true);
        // Pushed on the new connection before the resubscription's reply.
        assert!(channels.message(A, message(4)).is_none());
        let generation = channels.generation();
        channels.resubscribed(generation, vec![A.into()], |_| true);
        assert!(channels.message(A, message(5)).is_none());
        assert!(channels.message(A, message(6)).is_none());
        let read = Some(stream(1, 5, &[3, 4, 5]));
        assert_eq!(
            said(channels.refilled(generation, A.into(), id(2), read, true)),
            [
                "deliver game:1:Started 3-0 4-0 5-0",
                "deliver game:1:Started 6-0",
                "refill done"
            ]
        );
        assert!(channels.message(A, message(7)).is_some());
    }

    #[test]
    fn holding_back_more_than_the_limit_drops_them_and_reads_the_stream_again() {
        let mut channels = subscribed_to_a(2, Some(id(1)));
        reconnect_a(&mut channels);
        for millis in 3..=6 {
            assert!(channels.message(A, message(millis)).is_none());
        }
        let generation = channels.generation();
        let read = Some(stream(1, 2, &[2]));
        assert_eq!(
            said(channels.refilled(generation, A.into(), id(1), read, true)),
            [
                "deliver game:1:Started 2-0",
                "refill game:1:Started after 2-0"
            ]
        );
        // Still refilling: live messages are held again, in an empty buffer.
        assert!(channels.message(A, message(7)).is_none());
        assert_eq!(
            said(channels.refilled(
                generation,
                A.into(),
                id(2),
                Some(stream(1, 6, &[3, 4, 5, 6])),
                true
            )),
            [
                "deliver game:1:Started 3-0 4-0 5-0 6-0",
                "deliver game:1:Started 7-0",
                "refill done"
            ]
        );
    }

    #[test]
    fn a_gap_history_does_not_cover_comes_before_what_history_still_holds() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        channels.message(A, message(2));
        reconnect_a(&mut channels);
        let generation = channels.generation();
        let read = Some(stream(5, 6, &[5, 6]));
        assert_eq!(
            said(channels.refilled(generation, A.into(), id(2), read, true)),
            [
                "gap game:1:Started after 2-0",
                "deliver game:1:Started 5-0 6-0",
                "refill done"
            ]
        );
    }

    #[test]
    fn a_missing_stream_covers_only_a_channel_that_never_saw_an_event() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        reconnect_a(&mut channels);
        let generation = channels.generation();
        assert_eq!(
            said(channels.refilled(generation, A.into(), id(0), None, true)),
            ["refill done"]
        );
        channels.message(A, message(3));
        reconnect_a(&mut channels);
        let generation = channels.generation();
        assert_eq!(
            said(channels.refilled(generation, A.into(), id(3), None, true)),
            ["gap game:1:Started after 3-0", "refill done"]
        );
    }

    #[test]
    fn a_channel_whose_position_is_unknown_reports_a_gap_and_goes_live() {
        let mut channels = subscribed_to_a(8, None);
        channels.disconnected(|_| true);
        channels.reconnected(|_| true);
        channels.message(A, message(3));
        let generation = channels.generation();
        assert_eq!(
            said(channels.resubscribed(generation, vec![A.into()], |_| true)),
            [
                "gap game:1:Started, position unknown",
                "deliver game:1:Started 3-0",
                "refill done"
            ]
        );
        assert!(channels.message(A, message(4)).is_some());
    }

    #[test]
    fn a_failed_refill_is_retried_from_the_same_id() {
        let mut channels = subscribed_to_a(8, Some(id(2)));
        reconnect_a(&mut channels);
        let generation = channels.generation();
        assert_eq!(
            channels.refill_failed(generation, A.into(), true).map(said),
            Some(vec!["retry refill game:1:Started after 2-0".to_owned()])
        );
    }

    #[test]
    fn a_channel_left_during_its_refill_is_unsubscribed_at_once_and_the_refill_dropped() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        reconnect_a(&mut channels);
        assert_eq!(
            said(channels.reconcile(A, false)),
            ["unsubscribe game:1:Started"]
        );
        let generation = channels.generation();
        assert!(said(channels.unsubscribed(generation, A, false)).is_empty());
        assert!(said(channels.refilled(generation, A.into(), id(0), None, false)).is_empty());
    }

    #[test]
    fn closing_fails_every_waiter_and_forgets_every_channel() {
        let mut channels = subscribed_to_a(8, Some(id(0)));
        channels.ensure(B, 2, true);
        assert_eq!(said(channels.close()), ["fail [2] Closed"]);
        assert_eq!(channels.subscribed_count(), 0);
        assert_eq!(said(channels.ensure(A, 3, true)), ["fail [3] Down"]);
    }
}
