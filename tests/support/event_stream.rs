//! The event-stream parsing rules of the WHATWG HTML standard (§ 9.2.6, "Interpreting an event
//! stream"), implemented once, as a browser's `EventSource` applies them: the reference the
//! framing is checked against.
//!
//! Unlike [`sse`](crate::sse), which reads the frames this crate writes, this parser reads any
//! byte stream exactly as a browser would: lines end at CRLF, LF or a lone CR, a leading BOM is
//! dropped, unknown fields are ignored, and an event is dispatched only at a blank line and only
//! when it carries data.

/// One event an `EventSource` would dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    /// The event type: the `event` field, or `message` when absent or empty.
    pub event_type: String,
    /// The `data` lines joined with LF.
    pub data: String,
    /// The event's `lastEventId`: the last `id` field seen so far in the stream.
    pub last_event_id: String,
}

/// What parsing a whole stream leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The events dispatched, in order.
    pub events: Vec<Dispatched>,
    /// The `retry` values set, in order.
    pub retries: Vec<u64>,
    /// The source's last event id once the stream ends (what a reconnection would send).
    pub last_event_id: String,
}

/// Parses `stream` as an `EventSource` does; a last line without its terminator, and an event
/// without its blank line, are discarded as at the end of a stream.
#[must_use]
pub fn parse(stream: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(stream);
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
    let mut parser = Parser::default();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                parser.line(&line);
                line.clear();
            }
            c => line.push(c),
        }
    }
    parser.parsed
}

#[derive(Debug, Default)]
struct Parser {
    parsed: Parsed,
    data: String,
    event_type: String,
    last_event_id_buffer: String,
}

impl Parser {
    fn line(&mut self, line: &str) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event_type),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => value.clone_into(&mut self.last_event_id_buffer),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // A value too large for u64 is still "all digits"; saturating keeps it a retry.
                self.parsed.retries.push(value.parse().unwrap_or(u64::MAX));
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        self.parsed
            .last_event_id
            .clone_from(&self.last_event_id_buffer);
        let event_type = std::mem::take(&mut self.event_type);
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return;
        }
        if data.ends_with('\n') {
            data.pop();
        }
        self.parsed.events.push(Dispatched {
            event_type: if event_type.is_empty() {
                "message".to_owned()
            } else {
                event_type
            },
            data,
            last_event_id: self.parsed.last_event_id.clone(),
        });
    }
}
