//! The smallest statelesse program: declare an event, subscribe to a channel, publish, receive.
//!
//! Run with: `cargo run -p example-minimal`
use statelesse::prelude::*;
use ts_rs::TS;

/// A player joined a game; published on the game's own channel.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "game", key = "game_id")]
pub struct PlayerJoined {
    /// The game, and the channel's key.
    pub game_id: u64,
    /// Who joined.
    pub player_name: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bp = Backplane::in_memory();
    let mut joined = PlayerJoined::stream(&bp, &42).await?;

    for player_name in ["ada", "grace", "linus"] {
        let event = PlayerJoined {
            game_id: 42,
            player_name: player_name.into(),
        };
        PlayerJoined::publish(&bp, event).await?;
    }

    for _ in 0..3 {
        if let Some(received) = joined.next().await {
            let received = received?;
            println!(
                "{} on {}: {:?}",
                received.id,
                PlayerJoined::channel(&42),
                received.event
            );
        }
    }
    bp.shutdown().await;
    Ok(())
}
