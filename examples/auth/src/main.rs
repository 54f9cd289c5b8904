//! Per-user channels: a user's notification stream opens only for that user. The route's
//! `authorize` hook checks who is asking before anything is subscribed, by a bearer token (for
//! programs, and pages using the generated client's `headers` option) or a cookie (what a
//! browser's `EventSource` sends, as it cannot set headers).
//!
//! Run with: `cargo run -p example-auth`, then, in another terminal:
//!
//! ```sh
//! curl -N -H 'Authorization: Bearer ada-token' http://127.0.0.1:3000/sse/user/ada/notification
//! curl -N -b 'token=ada-token' http://127.0.0.1:3000/sse/user/ada/notification    # same, by cookie
//! curl -d 'your turn' http://127.0.0.1:3000/notify/ada                              # both streams get it
//! curl -i http://127.0.0.1:3000/sse/user/ada/notification                           # 401 Unauthorized
//! curl -i -H 'Authorization: Bearer grace-token' http://127.0.0.1:3000/sse/user/ada/notification  # 403
//! ```
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use statelesse::prelude::*;
use statelesse::routes::{DEFAULT_WRITE_TIMEOUT, Denied, WriteDeadline};
use ts_rs::TS;

/// A message for one user, on the channel `user:{user_id}:Notification`.
#[derive(Clone, Debug, Serialize, Deserialize, TS, SseEvent)]
#[sse(domain = "user", key = "user_id")]
pub struct Notification {
    /// The user it is for, and the channel's key.
    pub user_id: String,
    /// The message.
    pub text: String,
}

/// Each token's user: a stand-in for your session store.
const TOKENS: [(&str, &str); 2] = [("ada-token", "ada"), ("grace-token", "grace")];

/// Who is asking: the `Authorization: Bearer` token's user, else the `token` cookie's.
fn user(headers: &HeaderMap) -> Option<&'static str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok()?.strip_prefix("Bearer "));
    let cookie = || {
        let cookies = headers.get_all(header::COOKIE).iter();
        cookies
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|cookie| cookie.trim().strip_prefix("token="))
    };
    let token = bearer.or_else(cookie)?;
    TOKENS
        .iter()
        .find(|(t, _)| *t == token)
        .map(|(_, user)| *user)
}

fn app(backplane: Backplane) -> Router {
    // GET /sse/user/{user_id}/notification: 401 without a known token, 403 for another user.
    let notifications =
        Notification::sse_routes().authorize(|parts, user_id: String, _: Backplane| async move {
            match user(&parts.headers) {
                None => Err(Denied::Unauthorized),
                Some(user) if user == user_id => Ok(()),
                Some(_) => Err(Denied::Forbidden),
            }
        });
    Router::new()
        .merge(notifications)
        .route("/notify/{user_id}", post(notify))
        .with_state(backplane)
}

/// `POST /notify/{user_id}` with the text as body: anyone may send, only the user may read.
async fn notify(
    State(bp): State<Backplane>,
    Path(user_id): Path<String>,
    text: String,
) -> Result<String, (StatusCode, String)> {
    match Notification::publish(&bp, Notification { user_id, text }).await {
        Ok(id) => Ok(format!("published {id}\n")),
        Err(err) => Err((StatusCode::SERVICE_UNAVAILABLE, err.to_string())),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("listening on {url}; try:");
    println!("  curl -N -H 'Authorization: Bearer ada-token' {url}/sse/user/ada/notification");
    println!("  curl -d 'your turn' {url}/notify/ada");
    // Close the socket of a client that takes no bytes for the routes' write timeout.
    let listener = WriteDeadline::new(listener, DEFAULT_WRITE_TIMEOUT);
    axum::serve(listener, app(Backplane::in_memory())).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use statelesse_tests::app::spawn_app;
    use statelesse_tests::sse::SseClient;

    use super::*;

    const ADA: &str = "/sse/user/ada/notification";

    #[tokio::test]
    async fn a_request_without_a_known_token_is_401() {
        let app = spawn_app(app(Backplane::in_memory())).await;
        for token in [None, Some("Bearer nobody")] {
            let mut request = SseClient::request(&app.url(ADA));
            if let Some(token) = token {
                request = request.header("authorization", token);
            }
            assert_eq!(request.send().await.status(), StatusCode::UNAUTHORIZED);
        }
    }

    #[tokio::test]
    async fn another_users_token_is_403() {
        let app = spawn_app(app(Backplane::in_memory())).await;
        let request = SseClient::request(&app.url(ADA)).header("cookie", "token=grace-token");
        assert_eq!(request.send().await.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn the_owner_reads_their_notifications_by_token_or_cookie() {
        let bp = Backplane::in_memory();
        let app = spawn_app(app(bp.clone())).await;
        let mut streams = Vec::new();
        for (name, value) in [
            ("authorization", "Bearer ada-token"),
            ("cookie", "theme=dark; token=ada-token"),
        ] {
            let mut stream = SseClient::request(&app.url(ADA))
                .header(name, value)
                .open()
                .await;
            stream.next_frame().await.unwrap(); // the retry hint: subscribed
            streams.push(stream);
        }
        let notification = Notification {
            user_id: "ada".into(),
            text: "your turn".into(),
        };
        Notification::publish(&bp, notification).await.unwrap();
        for stream in &mut streams {
            let frame = stream.next_event().await.unwrap();
            assert_eq!(frame.event(), "Notification");
            assert_eq!(frame.json()["text"], "your turn");
        }
    }
}
