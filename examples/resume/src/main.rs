//! Resuming a stream after the last event seen, as a browser's `EventSource` does with
//! `Last-Event-ID`: the events published while it was away come from the channel's history, none
//! missed or repeated. When history is too short to cover the absence, the stream says so with a
//! gap first, never a silent skip. The SSE routes (`E::sse_route()`) do the same for the
//! `Last-Event-ID` header.
//!
//! Run with: `cargo run -p example-resume`
use std::ops::RangeInclusive;

use statelesse::prelude::*;
use statelesse::{MemoryConfig, SubscriptionError};
use ts_rs::TS;

/// A game's score changed; published on the game's own channel.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub struct ScoreChanged {
    /// The game, and the channel's key.
    pub game_id: u64,
    /// The new score.
    pub score: u32,
}

/// Reads scores 1 to 3, goes away while 4 to 6 are published, then resumes after the last id it
/// read. Returns what the resumed stream yields: scores, and `None` for a gap.
async fn away_and_back(history_len: usize) -> Result<Vec<Option<u32>>, Box<dyn std::error::Error>> {
    let bp = Backplane::in_memory_with(MemoryConfig::default().with_history_len(history_len));
    let channel = ScoreChanged::channel(&1);
    let mut scores = bp.subscribe(&channel).await?;
    publish(&bp, 1..=3).await?;
    for _ in 1..=3 {
        let received = scores.next().await.ok_or("stream ended")??;
        println!("  read {} score {}", received.id, received.event.score);
    }
    let last_id = scores.last_id().ok_or("nothing read")?;
    drop(scores); // the connection drops
    publish(&bp, 4..=6).await?;

    println!("  resume after {last_id}");
    let mut resumed = bp.subscribe_after(&channel, Some(last_id)).await?;
    let mut read = Vec::new();
    while read.last() != Some(&Some(6)) {
        match resumed.next().await.ok_or("stream ended")? {
            Ok(received) => {
                println!("  read {} score {}", received.id, received.event.score);
                read.push(Some(received.event.score));
            }
            Err(SubscriptionError::Gap(gap)) => {
                println!("  gap: {gap}");
                read.push(None);
            }
            Err(err) => return Err(err.into()),
        }
    }
    bp.shutdown().await;
    Ok(read)
}

async fn publish(bp: &Backplane, scores: RangeInclusive<u32>) -> Result<(), BackplaneError> {
    for score in scores {
        ScoreChanged::publish(bp, ScoreChanged { game_id: 1, score }).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("history of 100 events per channel:");
    let read = away_and_back(100).await?;
    let complete = read == [Some(4), Some(5), Some(6)];
    println!("nothing missed: {complete}\n");

    println!("history of 2 events per channel:");
    let read = away_and_back(2).await?;
    let reported = read == [None, Some(5), Some(6)];
    println!("score 4 was trimmed from history, and a gap said so: {reported}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::away_and_back;

    #[tokio::test]
    async fn a_long_enough_history_replays_everything_missed() {
        let read = away_and_back(100).await.unwrap();
        assert_eq!(read, [Some(4), Some(5), Some(6)]);
    }

    #[tokio::test]
    async fn a_short_history_yields_a_gap_then_what_it_still_has() {
        let read = away_and_back(2).await.unwrap();
        assert_eq!(read, [None, Some(5), Some(6)]);
    }
}
