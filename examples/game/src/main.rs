//! The game example: a multiplayer lobby whose every change is a typed server-sent event.
//!
//! Run with: `cargo run -p example-game`, then open <http://127.0.0.1:3000>.
//!
//! Log in, create a game and open its link in another browser (or a private window) as another
//! player: each page's lobby lists who is connected to the game, and updates as pages open and
//! close.
//!
//! Two instances on one Redis, each with its own browser, see each other's events and players:
//!
//! ```sh
//! cargo run -p example-game -- --redis redis://127.0.0.1:6379 --port 3000
//! cargo run -p example-game -- --redis redis://127.0.0.1:6379 --port 3001
//! ```
//!
//! Each process signs its login cookies with a random key unless `--cookie-key` (or
//! `GAME_COOKIE_KEY`) gives one: instances behind one load balancer must share it, as a browser's
//! requests may reach any of them (`openssl rand -base64 48` makes a key of the 64 bytes needed).
//!
//! `--port 0` picks a free port. The first line on standard output is
//! `listening on http://127.0.0.1:{port} ({transport})`, for scripts and tests that start the
//! binary (`npm test` does); the logs go to standard error.
use std::io::IsTerminal as _;
use std::net::{Ipv4Addr, SocketAddr};

use clap::Parser;
use example_game::{Game, Options};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let options = Options::parse();
    let game = Game::start(&options).await?;
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))
            .await?;
    println!(
        "listening on http://{} ({})",
        listener.local_addr()?,
        game.backplane().diagnostics().transport
    );
    game.serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await?;
    Ok(())
}
