//! SSE clients for tests: [`SseClient`] over reqwest, [`RawClient`] over a bare TCP socket (for a
//! client that stops reading), both parsing the stream into [`Frame`]s.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// How long a read waits before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One SSE frame: the text up to and including its blank line, and its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// The frame's exact text, ending with `\n\n`.
    pub raw: String,
    /// The `id` field.
    pub id: Option<String>,
    /// The `event` field.
    pub event: Option<String>,
    /// The `data` lines joined with `\n`, if any.
    pub data: Option<String>,
    /// The `retry` field.
    pub retry: Option<String>,
    /// Comment lines, without the leading `:` and one space.
    pub comments: Vec<String>,
}

impl Frame {
    /// Whether the frame carries data, so an `EventSource` would dispatch it.
    #[must_use]
    pub fn is_event(&self) -> bool {
        self.data.is_some()
    }

    /// The event name, `""` when absent.
    #[must_use]
    pub fn event(&self) -> &str {
        self.event.as_deref().unwrap_or_default()
    }

    /// The id, `""` when absent.
    #[must_use]
    pub fn id(&self) -> &str {
        self.id.as_deref().unwrap_or_default()
    }

    /// The data parsed as JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.data.as_deref().unwrap_or_default()).unwrap()
    }

    fn parse(raw: String) -> Self {
        let mut frame = Frame::default();
        for line in raw.lines() {
            if line.is_empty() {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "" => frame.comments.push(value),
                "id" => frame.id = Some(value),
                "event" => frame.event = Some(value),
                "retry" => frame.retry = Some(value),
                "data" => match &mut frame.data {
                    Some(data) => {
                        data.push('\n');
                        data.push_str(&value);
                    }
                    None => frame.data = Some(value),
                },
                other => panic!("unexpected field {other:?} in {raw:?}"),
            }
        }
        frame.raw = raw;
        frame
    }
}

/// Splits the first complete frame off `buffer`, whose first `scanned` bytes hold no frame end.
fn take_frame(buffer: &mut Vec<u8>, scanned: &mut usize) -> Option<Frame> {
    let start = scanned.saturating_sub(1);
    let Some(end) = buffer[start..]
        .windows(2)
        .position(|pair| pair == b"\n\n")
        .map(|at| start + at + 2)
    else {
        *scanned = buffer.len();
        return None;
    };
    let rest = buffer.split_off(end);
    let raw = std::mem::replace(buffer, rest);
    *scanned = 0;
    Some(Frame::parse(String::from_utf8(raw).unwrap()))
}

/// A request to an SSE route, built before sending.
#[derive(Debug)]
pub struct SseRequest {
    builder: reqwest::RequestBuilder,
}

impl SseRequest {
    /// Sends `Last-Event-ID: id`.
    #[must_use]
    pub fn last_event_id(self, id: &str) -> Self {
        self.header("last-event-id", id)
    }

    /// Sends a header.
    #[must_use]
    pub fn header(self, name: &str, value: &str) -> Self {
        Self {
            builder: self.builder.header(name, value),
        }
    }

    /// Sends the request; the client reads whatever status comes back.
    pub async fn send(self) -> SseClient {
        let response = tokio::time::timeout(READ_TIMEOUT, self.builder.send())
            .await
            .expect("no response within 5 s")
            .unwrap();
        SseClient {
            response,
            buffer: Vec::new(),
            scanned: 0,
        }
    }

    /// Sends the request and asserts that a stream opened (`200`, `text/event-stream`).
    pub async fn open(self) -> SseClient {
        let client = self.send().await;
        assert_eq!(client.status(), StatusCode::OK, "stream did not open");
        assert_eq!(client.headers()["content-type"], "text/event-stream");
        client
    }
}

/// An SSE connection over reqwest.
#[derive(Debug)]
pub struct SseClient {
    response: reqwest::Response,
    buffer: Vec<u8>,
    scanned: usize,
}

impl SseClient {
    /// A request to `url`.
    #[must_use]
    pub fn request(url: &str) -> SseRequest {
        SseRequest {
            builder: reqwest::Client::new().get(url),
        }
    }

    /// Opens a stream at `url`, asserting it opened.
    pub async fn connect(url: &str) -> SseClient {
        Self::request(url).open().await
    }

    /// Opens a stream at `url`, asserting it opened, and reads its first frame, the `retry`
    /// hint: once it is read, the route has subscribed.
    pub async fn subscribe(url: &str) -> SseClient {
        let mut client = Self::connect(url).await;
        let first = client.next_frame().await.expect("stream ended");
        assert!(
            first.retry.is_some(),
            "first frame is not a retry hint: {first:?}"
        );
        client
    }

    /// The response status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The response headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The whole body as text (for error responses).
    pub async fn text(self) -> String {
        tokio::time::timeout(READ_TIMEOUT, self.response.text())
            .await
            .expect("no body within 5 s")
            .unwrap()
    }

    /// The next frame, `None` when the stream ended; fails the test after 5 s.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        tokio::time::timeout(READ_TIMEOUT, self.read_frame())
            .await
            .expect("no frame within 5 s")
    }

    /// The next frame, `None` if none arrives within `wait` or the stream ended.
    pub async fn try_next_frame(&mut self, wait: Duration) -> Option<Frame> {
        tokio::time::timeout(wait, self.read_frame())
            .await
            .ok()
            .flatten()
    }

    /// The next frame carrying data (skipping comments and the retry hint), `None` at the end.
    pub async fn next_event(&mut self) -> Option<Frame> {
        loop {
            let frame = self.next_frame().await?;
            if frame.is_event() {
                return Some(frame);
            }
        }
    }

    async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = take_frame(&mut self.buffer, &mut self.scanned) {
                return Some(frame);
            }
            // An error is a connection the server closed: the end of the stream, as is `None`.
            let Ok(Some(chunk)) = self.response.chunk().await else {
                assert!(
                    self.buffer.is_empty(),
                    "stream ended mid-frame: {:?}",
                    self.buffer
                );
                return None;
            };
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

/// An SSE connection over a bare socket with a small receive buffer, which reads nothing until
/// told to: a client that stalls.
#[derive(Debug)]
pub struct RawClient {
    reader: BufReader<TcpStream>,
    buffer: Vec<u8>,
    scanned: usize,
    headers_read: bool,
    ended: bool,
}

impl RawClient {
    /// Sends `GET path` to `addr` and reads nothing yet.
    pub async fn connect(addr: SocketAddr, path: &str) -> RawClient {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        RawClient {
            reader: BufReader::new(stream),
            buffer: Vec::new(),
            scanned: 0,
            headers_read: false,
            ended: false,
        }
    }

    /// Reads the status line and headers; returns the status line.
    pub async fn read_head(&mut self) -> String {
        let mut status = String::new();
        self.reader.read_line(&mut status).await.unwrap();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            assert!(
                !line.to_ascii_lowercase().starts_with("content-length"),
                "expected a chunked stream"
            );
        }
        self.headers_read = true;
        status.trim_end().to_owned()
    }

    /// The next frame, `None` when the stream ended; fails the test after 5 s.
    pub async fn next_frame(&mut self) -> Option<Frame> {
        if !self.headers_read {
            let status = self.read_head().await;
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        }
        tokio::time::timeout(READ_TIMEOUT, async {
            loop {
                if let Some(frame) = take_frame(&mut self.buffer, &mut self.scanned) {
                    return Some(frame);
                }
                if self.ended || !self.read_chunk().await {
                    self.ended = true;
                    return None;
                }
            }
        })
        .await
        .expect("no frame within 5 s")
    }

    /// Reads and discards whatever the socket still holds; `true` if the server closed the
    /// connection (end of file or reset) within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, async {
            let mut sink = vec![0; 64 * 1024];
            loop {
                match self.reader.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    /// Reads one chunk of the chunked body into the buffer; `false` at the end.
    async fn read_chunk(&mut self) -> bool {
        let mut size = String::new();
        if self.reader.read_line(&mut size).await.unwrap() == 0 {
            return false;
        }
        let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk).await.unwrap();
        assert_eq!(&chunk[size..], b"\r\n");
        chunk.truncate(size);
        self.buffer.extend_from_slice(&chunk);
        size > 0
    }
}
