//! The behaviour suite every backplane transport passes: ordering, isolation, resume, gaps,
//! diagnostics, unsubscribe, shutdown and lag, written once over [`Backplane`]s.
//!
//! A test file implements [`Fleet`] for its transport and calls each `async fn` here from a
//! `#[tokio::test]`, as `tests/backplane_memory.rs` and `tests/backplane_redis.rs` do.

use std::future::Future;
use std::time::Duration;

use std::num::NonZeroUsize;

use statelesse::SubscriptionError;
use statelesse::backplane::replay::ReplayConfig;
use statelesse::backplane::transport::Interest;
use statelesse::prelude::*;
use statelesse::{ErrorKind, Received};

/// How long any single expected item may take to arrive.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How a suite test wants its backplanes configured.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Events of history kept per channel (`0` = off).
    pub history_len: usize,
    /// Events a subscriber may fall behind before it lags.
    pub subscriber_buffer: usize,
    /// How history is replayed: page size, shared reads and read budget.
    pub replay: ReplayConfig,
    /// How long an instance's presence entries live without a refresh (on Redis; a third of it
    /// is the heartbeat that also reports connection counts).
    pub presence_ttl: Duration,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            history_len: 1000,
            subscriber_buffer: 1024,
            replay: ReplayConfig::default(),
            presence_ttl: Duration::from_millis(1500),
        }
    }
}

/// Makes backplanes for the suite.
pub trait Fleet {
    /// `n` backplanes configured with `setup` that share one store (in memory: one process's
    /// backplane; on Redis: one server and prefix, i.e. `n` server instances), isolated from the
    /// backplanes of every other call.
    fn backplanes(&self, n: usize, setup: Setup) -> impl Future<Output = Vec<Backplane>>;
}

/// The event every suite test publishes: `n` is its position in the publisher's sequence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "suite", key = "room")]
pub struct Tick {
    /// The channel's key.
    pub room: u32,
    /// The sequence number.
    pub n: u64,
}

/// Publishes `Tick { room, n }` for every `n` in `ns`; returns the ids.
///
/// # Panics
///
/// When a publish fails.
pub async fn publish_all(
    bp: &Backplane,
    room: u32,
    ns: impl IntoIterator<Item = u64>,
) -> Vec<EventId> {
    let mut ids = Vec::new();
    for n in ns {
        ids.push(bp.publish(&Tick { room, n }).await.unwrap());
    }
    ids
}

/// Waits until `condition` holds, checking every 20 ms for at most [`PATIENCE`].
///
/// # Panics
///
/// When it does not hold in time.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next item of `subscription`, waiting at most [`PATIENCE`].
///
/// # Panics
///
/// When nothing arrives in time or the stream ends.
pub async fn next_item(
    subscription: &mut Subscription<Tick>,
) -> Result<Received<Tick>, SubscriptionError> {
    let Ok(item) = tokio::time::timeout(PATIENCE, subscription.next()).await else {
        panic!("no event within {PATIENCE:?}");
    };
    let Some(item) = item else {
        panic!("the subscription ended");
    };
    item
}

/// The next event of `subscription`.
///
/// # Panics
///
/// As [`next_item`], or when the item is an error.
pub async fn next_event(subscription: &mut Subscription<Tick>) -> Received<Tick> {
    next_item(subscription).await.unwrap()
}

/// Reads events until `count` arrived, skipping gaps; returns them.
///
/// # Panics
///
/// As [`next_item`], or on a decode error.
pub async fn collect(subscription: &mut Subscription<Tick>, count: usize) -> Vec<Received<Tick>> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        match next_item(subscription).await {
            Ok(event) => events.push(event),
            Err(SubscriptionError::Gap(_)) => {}
            Err(err) => panic!("unexpected subscription error: {err}"),
        }
    }
    events
}

/// Asserts `events` are `Tick { room, n }` for exactly `ns`, in order, with strictly
/// increasing ids.
///
/// # Panics
///
/// When they are not.
pub fn assert_sequence(events: &[Received<Tick>], room: u32, ns: impl IntoIterator<Item = u64>) {
    let got: Vec<u64> = events.iter().map(|e| e.event.n).collect();
    let want: Vec<u64> = ns.into_iter().collect();
    assert_eq!(got, want, "events out of order, lost or duplicated");
    assert!(
        events.iter().all(|e| e.event.room == room),
        "event from another channel"
    );
    assert!(
        events.windows(2).all(|w| w[0].id < w[1].id),
        "ids do not increase"
    );
}

/// Events published on one instance reach subscribers on every instance once, in order, with
/// the ids the publishes returned.
pub async fn delivers_in_order_exactly_once(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut on_a = Tick::stream(a, &1).await.unwrap();
    let mut on_b = Tick::stream(b, &1).await.unwrap();
    let ids = publish_all(a, 1, 0..200).await;
    for subscription in [&mut on_a, &mut on_b] {
        let events = collect(subscription, 200).await;
        assert_sequence(&events, 1, 0..200);
        let got: Vec<EventId> = events.iter().map(|e| e.id).collect();
        assert_eq!(got, ids);
    }
}

/// A subscriber receives its channel's events and no other's.
pub async fn isolates_channels(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut one = Tick::stream(b, &1).await.unwrap();
    let mut two = Tick::stream(b, &2).await.unwrap();
    for n in 0..20 {
        a.publish(&Tick { room: 1, n }).await.unwrap();
        a.publish(&Tick {
            room: 2,
            n: 100 + n,
        })
        .await
        .unwrap();
    }
    assert_sequence(&collect(&mut one, 20).await, 1, 0..20);
    assert_sequence(&collect(&mut two, 20).await, 2, 100..120);
    // Nothing else is queued: the next event on each is a fresh one.
    a.publish(&Tick { room: 1, n: 999 }).await.unwrap();
    assert_eq!(next_event(&mut one).await.event.n, 999);
}

/// Resuming after an id replays the later events still in history, then goes on live, with
/// no gap and no duplicate at the seam; it works from any instance.
pub async fn resumes_after_id(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let ids = publish_all(a, 1, 0..10).await;
    let channel = Tick::channel(&1);
    let mut resumed = b.subscribe_after(&channel, Some(ids[4])).await.unwrap();
    publish_all(a, 1, 10..15).await;
    let events = collect(&mut resumed, 10).await;
    assert_sequence(&events, 1, 5..15);
    assert_eq!(events[0].id, ids[5]);

    // Resuming after the very last id yields only what comes next.
    let last = events.last().unwrap().id;
    let mut caught_up = a.subscribe_after(&channel, Some(last)).await.unwrap();
    publish_all(b, 1, [15]).await;
    assert_eq!(next_event(&mut caught_up).await.event.n, 15);
}

/// Resuming after an id older than history yields a gap first, then what history holds.
pub async fn reports_gap_when_history_trimmed(fleet: &impl Fleet) {
    let setup = Setup {
        history_len: 10,
        ..Setup::default()
    };
    let bps = fleet.backplanes(1, setup).await;
    let bp = &bps[0];
    // Enough to trim even approximately trimmed streams (Redis drops whole 100-entry nodes).
    let ids = publish_all(bp, 1, 0..400).await;
    let mut resumed = bp
        .subscribe_after(&Tick::channel(&1), Some(ids[0]))
        .await
        .unwrap();
    assert!(
        matches!(
            next_item(&mut resumed).await,
            Err(SubscriptionError::Gap(_))
        ),
        "no gap reported"
    );
    let first = next_event(&mut resumed).await;
    assert!(first.event.n > 1, "history was not trimmed");
    let rest = collect(&mut resumed, usize::try_from(399 - first.event.n).unwrap()).await;
    assert_sequence(&rest, 1, first.event.n + 1..400);

    // An id that is not in history yet (from the future) is a gap too.
    let future = EventId::new(ids[399].millis() + 60_000, 0);
    let mut unknown = bp
        .subscribe_after(&Tick::channel(&1), Some(future))
        .await
        .unwrap();
    assert!(matches!(
        next_item(&mut unknown).await,
        Err(SubscriptionError::Gap(_))
    ));
}

/// A resume id ahead of the channel's last id is a gap, and the stream then goes on with every
/// live event: such an id never mutes a stream.
pub async fn a_resume_id_from_the_future_is_a_gap_then_live_events(fleet: &impl Fleet) {
    let bps = fleet.backplanes(1, Setup::default()).await;
    let bp = &bps[0];
    let ids = publish_all(bp, 1, 0..3).await;
    for future in [
        EventId::new(ids[2].millis() + 60_000, 0),
        EventId::new(u64::MAX, 0),
        EventId::new(u64::MAX, u64::MAX),
    ] {
        let mut resumed = bp
            .subscribe_after(&Tick::channel(&1), Some(future))
            .await
            .unwrap();
        assert!(matches!(
            next_item(&mut resumed).await,
            Err(SubscriptionError::Gap(_))
        ));
        let live = publish_all(bp, 1, [7]).await;
        let event = next_event(&mut resumed).await;
        assert_eq!((event.id, event.event.n), (live[0], 7));
    }
}

fn pages_of(events: usize) -> ReplayConfig {
    ReplayConfig::default().with_page_events(NonZeroUsize::new(events).unwrap())
}

/// History is replayed in pages: a resume across many pages, and one bounded by bytes rather
/// than events, yields every event once, in order, then live events.
pub async fn replays_history_in_pages(fleet: &impl Fleet) {
    for replay in [
        pages_of(3),
        // `{"room":1,"n":NN}` is 15 to 17 bytes: two events a page, or one.
        ReplayConfig::default().with_page_bytes(NonZeroUsize::new(34).unwrap()),
    ] {
        let setup = Setup {
            replay,
            ..Setup::default()
        };
        let bps = fleet.backplanes(2, setup).await;
        let (a, b) = (&bps[0], &bps[1]);
        let ids = publish_all(a, 1, 0..50).await;
        let mut resumed = b
            .subscribe_after(&Tick::channel(&1), Some(ids[0]))
            .await
            .unwrap();
        let replayed = collect(&mut resumed, 49).await;
        assert_sequence(&replayed, 1, 1..50);
        publish_all(a, 1, [50]).await;
        assert_eq!(next_event(&mut resumed).await.event.n, 50);
        assert_eq!(
            b.history(&Tick::channel(&1), Some(ids[9]))
                .await
                .unwrap()
                .events
                .len(),
            41
        );
    }
}

/// A subscriber that falls behind before it yielded a single event is refilled from history
/// like any other, instead of being told of a gap.
pub async fn a_subscriber_lagging_before_its_first_event_is_refilled(fleet: &impl Fleet) {
    let setup = Setup {
        subscriber_buffer: 4,
        replay: pages_of(8),
        ..Setup::default()
    };
    let bps = fleet.backplanes(2, setup).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut late = Tick::stream(b, &1).await.unwrap();
    publish_all(a, 1, 0..40).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = collect(&mut late, 40).await;
    assert_sequence(&events, 1, 0..40);
}

/// Diagnostics count channels, local subscribers and publishes of this instance.
pub async fn counts_in_diagnostics(fleet: &impl Fleet, transport: &str) {
    let bps = fleet.backplanes(1, Setup::default()).await;
    let bp = &bps[0];
    let before = bp.diagnostics();
    assert_eq!(before.transport, transport);
    assert_eq!(before.total_channels, 0);
    let first = Tick::stream(bp, &1).await.unwrap();
    let second = Tick::stream(bp, &1).await.unwrap();
    let third = Tick::stream(bp, &2).await.unwrap();
    publish_all(bp, 3, 0..3).await;
    let diagnostics = bp.diagnostics();
    assert_eq!(diagnostics.total_channels, 2);
    assert_eq!(diagnostics.total_local_subscribers, 3);
    assert_eq!(diagnostics.published, before.published + 3);
    assert_eq!(diagnostics.channels.get(Tick::channel(&1).name()), Some(&2));
    assert_eq!(bp.local_subscriber_count(&Tick::channel(&1)), 2);
    assert_eq!(bp.local_subscriber_count(&Tick::channel(&3)), 0);
    assert_eq!(
        bp.local_channels(),
        [Tick::channel(&1).name(), Tick::channel(&2).name()]
    );
    drop((first, second, third));
}

/// Dropping a subscription unsubscribes it.
pub async fn unsubscribes_on_drop(fleet: &impl Fleet) {
    let bps = fleet.backplanes(1, Setup::default()).await;
    let bp = &bps[0];
    let channel = Tick::channel(&1);
    let first = Tick::stream(bp, &1).await.unwrap();
    let mut second = Tick::stream(bp, &1).await.unwrap();
    drop(first);
    assert_eq!(bp.local_subscriber_count(&channel), 1);
    publish_all(bp, 1, [1]).await;
    assert_eq!(next_event(&mut second).await.event.n, 1);
    drop(second);
    assert_eq!(bp.local_subscriber_count(&channel), 0);
    assert!(bp.local_channels().is_empty());
    // Subscribing again works.
    let mut third = Tick::stream(bp, &1).await.unwrap();
    publish_all(bp, 1, [2]).await;
    assert_eq!(next_event(&mut third).await.event.n, 2);
}

/// Shutdown ends every local stream; later publishes and subscribes fail with `Closed`.
pub async fn shutdown_closes(fleet: &impl Fleet) {
    let bps = fleet.backplanes(1, Setup::default()).await;
    let bp = &bps[0];
    let mut subscription = Tick::stream(bp, &1).await.unwrap();
    bp.shutdown().await;
    let end = tokio::time::timeout(PATIENCE, subscription.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream did not end at shutdown"
    );
    let err = bp.publish(&Tick { room: 1, n: 0 }).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Closed);
    let err = Tick::stream(bp, &1).await.unwrap_err();
    assert!(err.is_closed());
}

/// A subscriber that stops reading lags alone: the others get every event at once, and the
/// slow one is refilled from history when it reads again, missing nothing.
pub async fn slow_subscriber_lags_alone(fleet: &impl Fleet) {
    let setup = Setup {
        subscriber_buffer: 8,
        ..Setup::default()
    };
    let bps = fleet.backplanes(2, setup).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut slow = Tick::stream(b, &1).await.unwrap();
    let mut fast = Tick::stream(b, &1).await.unwrap();
    publish_all(a, 1, [0]).await;
    assert_eq!(next_event(&mut slow).await.event.n, 0);
    assert_eq!(next_event(&mut fast).await.event.n, 0);
    let reader = tokio::spawn(async move { collect(&mut fast, 199).await });
    publish_all(a, 1, 1..200).await;
    let fast_events = tokio::time::timeout(PATIENCE, reader)
        .await
        .unwrap()
        .unwrap();
    assert_sequence(&fast_events, 1, 1..200);
    // The slow one fell far behind its buffer of 8, and still sees everything, once, in order.
    let slow_events = collect(&mut slow, 199).await;
    assert_sequence(&slow_events, 1, 1..200);
}

/// `publish_to` puts one event on every channel given, each subscriber gets it once, and each
/// channel's result is its own id.
pub async fn publish_to_reaches_every_channel_once(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut subscriptions = Vec::new();
    for room in 0..3 {
        subscriptions.push(Tick::stream(b, &room).await.unwrap());
    }
    let channels: Vec<_> = (0..3).map(|room| Tick::channel(&room)).collect();
    let results = a
        .publish_to(&channels, &Tick { room: 0, n: 9 })
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    for (subscription, result) in subscriptions.iter_mut().zip(results) {
        let received = next_event(subscription).await;
        assert_eq!((received.id, received.event.n), (result.unwrap(), 9));
    }
    assert!(
        a.publish_to(&[], &Tick { room: 0, n: 0 })
            .await
            .unwrap()
            .is_empty()
    );
}

/// `publish_many` publishes every event in the order given, each on its key's channel:
/// subscribers get them in that order, and each result is that event's own id. 300 events are
/// more than one Redis batch holds (256), so the order holds across batches too.
pub async fn publish_many_delivers_in_order_with_each_events_id(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let (a, b) = (&bps[0], &bps[1]);
    let mut rooms = [
        Tick::stream(b, &1).await.unwrap(),
        Tick::stream(b, &2).await.unwrap(),
    ];
    let events: Vec<Tick> = (0..300)
        .map(|n| Tick {
            room: if n % 3 == 0 { 2 } else { 1 },
            n,
        })
        .collect();
    let results = a.publish_many(&events).await.unwrap();
    let ids: Vec<EventId> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids.len(), events.len());
    for (subscription, room) in rooms.iter_mut().zip([1, 2]) {
        let sent: Vec<(u64, EventId)> = events
            .iter()
            .zip(&ids)
            .filter(|(event, _)| event.room == room)
            .map(|(event, id)| (event.n, *id))
            .collect();
        let received = collect(subscription, sent.len()).await;
        assert_sequence(&received, room, sent.iter().map(|(n, _)| *n));
        let received: Vec<EventId> = received.iter().map(|r| r.id).collect();
        let sent: Vec<EventId> = sent.iter().map(|(_, id)| *id).collect();
        assert_eq!(received, sent, "each result is its own event's id");
    }
    assert!(a.publish_many::<Tick>(&[]).await.unwrap().is_empty());
}

/// Who a presence suite test's connections are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(crate = "statelesse::ts_rs")]
pub struct Visitor {
    /// The visitor's name.
    pub name: String,
}

/// The presence type of the suite: its channels keep who is there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "suite", key = "room", presence = Visitor)]
pub struct Seen {
    /// The channel's key.
    pub room: u32,
}

/// The identity of `name`, as a presence route hands it to the transport.
fn identity(name: &str) -> bytes::Bytes {
    bytes::Bytes::from(
        serde_json::to_vec(&Visitor {
            name: name.to_owned(),
        })
        .unwrap(),
    )
}

/// Counts one connection of `name` in `room` on `bp`, until the returned interest is dropped.
///
/// # Panics
///
/// When the transport refuses it.
pub async fn enter(bp: &Backplane, room: u32, name: &str) -> Interest {
    bp.transport()
        .presence_enter(Seen::channel(&room).name(), identity(name))
        .await
        .unwrap()
}

/// The names of the members of `room`, as `bp` lists them.
///
/// # Panics
///
/// When the read fails.
pub async fn names(bp: &Backplane, room: u32) -> Vec<String> {
    let mut names: Vec<String> = Seen::presence(bp, &room)
        .await
        .unwrap()
        .into_iter()
        .map(|member| member.member.name)
        .collect();
    names.sort();
    names
}

/// Waits until `bp` lists exactly `expected` (sorted) in `room`.
///
/// # Panics
///
/// When it does not in time.
pub async fn eventually_names(bp: &Backplane, room: u32, expected: &[&str]) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let names = names(bp, room).await;
        if names == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "room {room} lists {names:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The members of every instance are listed, and counted, by every instance.
pub async fn presence_lists_the_members_of_every_instance(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let room = 1;
    assert!(names(&bps[0], room).await.is_empty());
    let _ada = enter(&bps[0], room, "ada").await;
    let _bob = enter(&bps[1], room, "bob").await;
    for bp in &bps {
        // Entering completes once the member is listed everywhere.
        assert_eq!(names(bp, room).await, ["ada", "bob"]);
        assert_eq!(Seen::presence_count(bp, &room).await.unwrap(), 2);
    }
    assert!(names(&bps[0], room + 1).await.is_empty());
}

/// A member with several connections, on one instance or more, is one member, whose count of
/// connections is the sum.
pub async fn presence_counts_a_member_with_many_connections_once(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let room = 2;
    let _tabs = [
        enter(&bps[0], room, "ada").await,
        enter(&bps[0], room, "ada").await,
        enter(&bps[1], room, "ada").await,
    ];
    assert_eq!(names(&bps[1], room).await, ["ada"]);
    assert_eq!(Seen::presence_count(&bps[1], &room).await.unwrap(), 1);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let members = Seen::presence(&bps[1], &room).await.unwrap();
        if members.len() == 1 && members[0].connections == 3 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ada is listed as {members:?}, not with 3 connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Closing one of a member's two connections keeps it; closing the other removes it.
pub async fn presence_keeps_a_member_until_its_last_connection_closes(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let room = 3;
    let first = enter(&bps[0], room, "ada").await;
    let second = enter(&bps[0], room, "ada").await;
    drop(first);
    // The instance still counts a connection of ada's: nothing left it anywhere.
    assert_eq!(names(&bps[1], room).await, ["ada"]);
    drop(second);
    eventually_names(&bps[1], room, &[]).await;
    assert_eq!(Seen::presence_count(&bps[1], &room).await.unwrap(), 0);
}

/// The next presence event (`join` or `leave`) on `raw`, as `(event, member's name)`.
///
/// # Panics
///
/// When none arrives in time, or it is malformed.
pub async fn next_presence_change(
    raw: &mut statelesse::backplane::subscription::RawSubscription,
) -> (String, String) {
    loop {
        let Ok(Some(item)) = tokio::time::timeout(PATIENCE, raw.next()).await else {
            panic!("no presence event within {PATIENCE:?}");
        };
        let Ok(message) = item else { continue };
        if !statelesse::protocol::is_presence_change(message.event()) {
            continue;
        }
        let data: serde_json::Value = serde_json::from_slice(message.data()).unwrap();
        let name = data["member"]["name"].as_str().unwrap().to_owned();
        if message.event() == "join" {
            assert!(data["since"].as_u64().is_some(), "a join says since when");
        }
        return (message.event().to_owned(), name);
    }
}

/// A member's first connection anywhere publishes one `join`, its last one closing one
/// `leave`, which subscribers of every instance receive; typed subscriptions pass over them.
pub async fn presence_join_and_leave_reach_every_instance(fleet: &impl Fleet) {
    let bps = fleet.backplanes(2, Setup::default()).await;
    let room = 4;
    let mut raw = bps[1]
        .subscribe(&Seen::channel(&room))
        .await
        .unwrap()
        .into_raw();
    let first = enter(&bps[0], room, "ada").await;
    let second = enter(&bps[1], room, "ada").await;
    assert_eq!(
        next_presence_change(&mut raw).await,
        ("join".into(), "ada".into())
    );
    drop(first);
    drop(second);
    assert_eq!(
        next_presence_change(&mut raw).await,
        ("leave".into(), "ada".into())
    );
    let _bob = enter(&bps[0], room, "bob").await;
    // Had ada joined or left twice, the second would come before bob's join.
    assert_eq!(
        next_presence_change(&mut raw).await,
        ("join".into(), "bob".into())
    );

    let mut typed = bps[1].subscribe(&Seen::channel(&room)).await.unwrap();
    let _cid = enter(&bps[0], room, "cid").await;
    let id = bps[0].publish(&Seen { room }).await.unwrap();
    let Ok(Some(Ok(received))) = tokio::time::timeout(PATIENCE, typed.next()).await else {
        panic!("no event within {PATIENCE:?}");
    };
    assert_eq!(
        received.id, id,
        "the typed subscription yields the type's events only"
    );
}
