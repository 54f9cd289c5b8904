//! The backplane behaviour suite on the in-memory transport.

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use statelesse::{Backplane, MemoryConfig};
use statelesse_tests::suite::{self, Fleet, Setup};

/// One process: every "instance" is the same backplane.
struct Memory;

impl Fleet for Memory {
    async fn backplanes(&self, n: usize, setup: Setup) -> Vec<Backplane> {
        let bp = Backplane::in_memory_with(
            MemoryConfig::default()
                .with_history_len(setup.history_len)
                .with_subscriber_buffer(setup.subscriber_buffer)
                .with_replay(setup.replay),
        );
        vec![bp; n]
    }
}

#[tokio::test]
async fn delivers_in_order_exactly_once() {
    suite::delivers_in_order_exactly_once(&Memory).await;
}

#[tokio::test]
async fn isolates_channels() {
    suite::isolates_channels(&Memory).await;
}

#[tokio::test]
async fn resumes_after_id() {
    suite::resumes_after_id(&Memory).await;
}

#[tokio::test]
async fn reports_gap_when_history_trimmed() {
    suite::reports_gap_when_history_trimmed(&Memory).await;
}

#[tokio::test]
async fn counts_in_diagnostics() {
    suite::counts_in_diagnostics(&Memory, "memory").await;
}

#[tokio::test]
async fn unsubscribes_on_drop() {
    suite::unsubscribes_on_drop(&Memory).await;
}

#[tokio::test]
async fn shutdown_closes() {
    suite::shutdown_closes(&Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_subscriber_lags_alone() {
    suite::slow_subscriber_lags_alone(&Memory).await;
}

#[tokio::test]
async fn a_resume_id_from_the_future_is_a_gap_then_live_events() {
    suite::a_resume_id_from_the_future_is_a_gap_then_live_events(&Memory).await;
}

#[tokio::test]
async fn replays_history_in_pages() {
    suite::replays_history_in_pages(&Memory).await;
}

#[tokio::test]
async fn a_subscriber_lagging_before_its_first_event_is_refilled() {
    suite::a_subscriber_lagging_before_its_first_event_is_refilled(&Memory).await;
}

#[tokio::test]
async fn publish_to_reaches_every_channel_once() {
    suite::publish_to_reaches_every_channel_once(&Memory).await;
}

#[tokio::test]
async fn publish_many_delivers_in_order_with_each_events_id() {
    suite::publish_many_delivers_in_order_with_each_events_id(&Memory).await;
}

#[tokio::test]
async fn presence_lists_the_members_of_every_instance() {
    suite::presence_lists_the_members_of_every_instance(&Memory).await;
}

#[tokio::test]
async fn presence_counts_a_member_with_many_connections_once() {
    suite::presence_counts_a_member_with_many_connections_once(&Memory).await;
}

#[tokio::test]
async fn presence_keeps_a_member_until_its_last_connection_closes() {
    suite::presence_keeps_a_member_until_its_last_connection_closes(&Memory).await;
}

#[tokio::test]
async fn presence_join_and_leave_reach_every_instance() {
    suite::presence_join_and_leave_reach_every_instance(&Memory).await;
}
