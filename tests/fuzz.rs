//! Fuzzing of every parser of hostile input, as properties: the Redis envelope decoder, event id
//! parsing, key escaping, the routes' path, query and header parsing (through the real router),
//! and SSE framing checked against the WHATWG parsing rules. Nothing panics, nothing answers a
//! 5xx, and no payload can start a new SSE field or event.
//!
//! Case counts keep the binary within seconds in a debug build; `PROPTEST_CASES=N` runs every
//! property N times instead (the long run: `PROPTEST_CASES=100000`, see the README).

// Helpers outside `#[test]` functions unwrap too, as tests do (STYLE §5).
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use bytes::Bytes;
use futures_util::StreamExt as _;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode, utf8_percent_encode};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use statelesse::__bench::{decode_envelope, encode_envelope, sse_frame};
use statelesse::prelude::*;
use statelesse::{Channel, EventId, Message, escape_key, unescape_key};
use statelesse_tests::event_stream::{Dispatched, parse};
use tower::ServiceExt as _;

// ---------------------------------------------------------------------------------------------
// Case counts and inputs
// ---------------------------------------------------------------------------------------------

/// `ci` cases per property, or `PROPTEST_CASES` when set (the long run). Failures are saved next
/// to this file, in `fuzz.proptest-regressions`, and replayed first on every later run.
fn config(ci: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(ci);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// Characters that mean something to SSE, URLs, channel names or ids, mixed into arbitrary text
/// so that they come up far more often than among all of Unicode.
const SPECIAL: &[char] = &[
    '\r', '\n', '\0', '\t', ':', ' ', '%', '{', '}', '-', '+', '/', '?', '#', '&', '=', '\u{7F}',
    '\u{85}', '\u{2028}', '\u{FEFF}', 'é', '0', '9',
];

fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![2 => any::<char>(), 1 => proptest::sample::select(SPECIAL)]
}

/// Any text, with separators, line breaks and NULs often.
fn hostile_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(hostile_char(), 0..40).prop_map(String::from_iter)
}

/// Any bytes: hostile UTF-8 text, or bytes that are mostly not UTF-8.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        hostile_text().prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

/// An event name SSE can carry: non-empty, no CR, LF or NUL, anything else allowed.
fn sse_event_name() -> impl Strategy<Value = String> {
    hostile_text().prop_map(|name| {
        let name: String = name
            .chars()
            .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
            .collect();
        if name.is_empty() {
            "E".to_owned()
        } else {
            name
        }
    })
}

/// One part of an id, with the edges of `u64` often.
fn id_part() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0..1_000_u64,
        Just(u64::MAX),
        Just(u64::MAX - 1),
    ]
}

fn any_event_id() -> impl Strategy<Value = EventId> {
    (id_part(), id_part()).prop_map(|(millis, seq)| EventId::new(millis, seq))
}

/// Texts near the id format: digits, dashes, signs, spaces and numbers past `u64`.
fn id_like_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9+ -]{0,30}",
        (id_part(), id_part()).prop_map(|(m, s)| format!("{m}-{s}")),
        (any::<u128>(), any::<u128>()).prop_map(|(m, s)| format!("{m}-{s}")),
        (0..4_usize, any_event_id()).prop_map(|(zeros, id)| format!("{}{id}", "0".repeat(zeros))),
        hostile_text(),
    ]
}

// ---------------------------------------------------------------------------------------------
// The Redis envelope decoder
// ---------------------------------------------------------------------------------------------

/// A valid envelope of one event and what it carries.
fn envelope() -> impl Strategy<Value = (Vec<u8>, EventId, String, Vec<u8>)> {
    (any_event_id(), sse_event_name(), hostile_bytes()).prop_map(|(id, event, data)| {
        (
            encode_envelope(id, &[(event.as_str(), data.as_slice())]),
            id,
            event,
            data,
        )
    })
}

/// What `decode` promises for any payload it accepts: names SSE can carry, ids increasing to
/// the envelope's, and messages that encode to an envelope decoding to the same messages.
fn check_decoded(messages: &[Message]) -> Result<(), TestCaseError> {
    let Some(last) = messages.last() else {
        prop_assert!(false, "an envelope of no event");
        return Ok(());
    };
    for message in messages {
        let name = message.event();
        prop_assert!(
            !name.is_empty() && !name.contains(['\r', '\n', '\0']),
            "{name:?}"
        );
    }
    prop_assert!(messages.windows(2).all(|w| w[0].id() < w[1].id()));
    let events: Vec<(&str, &[u8])> = messages
        .iter()
        .map(|m| (m.event(), m.data().as_ref()))
        .collect();
    let again = encode_envelope(last.id(), &events);
    let again = decode_envelope(&Bytes::from(again)).expect("decoded messages re-encode");
    prop_assert_eq!(again.len(), messages.len());
    for (again, message) in again.iter().zip(messages) {
        prop_assert_eq!(again.id(), message.id());
        prop_assert_eq!(again.event(), message.event());
        prop_assert_eq!(again.data(), message.data());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn envelope_decoder_takes_any_bytes_without_panicking(payload in hostile_bytes()) {
        if let Some(message) = decode_envelope(&Bytes::from(payload)) {
            check_decoded(&message)?;
        }
    }

    #[test]
    fn envelope_decoder_takes_any_bytes_after_a_valid_header(
        (valid, _, _, _) in envelope(),
        cut in any::<prop::sample::Index>(),
        tail in hostile_bytes(),
    ) {
        let mut payload = valid[..cut.index(valid.len() + 1)].to_vec();
        payload.extend_from_slice(&tail);
        if let Some(message) = decode_envelope(&Bytes::from(payload)) {
            check_decoded(&message)?;
        }
    }

    #[test]
    fn envelope_round_trips_any_id_event_name_and_data((payload, id, event, data) in envelope()) {
        let messages = decode_envelope(&Bytes::from(payload)).expect("a valid envelope decodes");
        prop_assert_eq!(messages.len(), 1);
        let message = &messages[0];
        prop_assert_eq!(message.id(), id);
        prop_assert_eq!(message.event(), event);
        prop_assert_eq!(&message.data()[..], &data[..]);
    }

    #[test]
    fn truncated_envelope_is_refused_or_keeps_its_id_name_and_a_prefix_of_its_data(
        (payload, id, event, data) in envelope(),
        cut in any::<prop::sample::Index>(),
    ) {
        let truncated = Bytes::copy_from_slice(&payload[..cut.index(payload.len())]);
        if let Some(messages) = decode_envelope(&truncated) {
            prop_assert_eq!(messages.len(), 1);
            let message = &messages[0];
            prop_assert_eq!(message.id(), id);
            prop_assert_eq!(message.event(), event);
            prop_assert!(data.starts_with(message.data()));
        }
    }

    #[test]
    fn envelope_with_one_byte_changed_never_panics(
        (payload, _, _, _) in envelope(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut mutated = payload;
        let at = at.index(mutated.len());
        mutated[at] = byte;
        if let Some(message) = decode_envelope(&Bytes::from(mutated)) {
            check_decoded(&message)?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Event ids
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn event_id_parses_only_two_or_three_runs_of_digits_between_dashes(text in id_like_text()) {
        if let Ok(id) = text.parse::<EventId>() {
            let parts: Vec<&str> = text.split('-').collect();
            let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            prop_assert!(
                (parts.len() == 2 || parts.len() == 3) && parts.iter().all(|p| digits(p)),
                "{text:?} parsed as {id}"
            );
            prop_assert_eq!(parts[0].parse::<u64>().unwrap(), id.millis());
            prop_assert_eq!(parts[1].parse::<u64>().unwrap(), id.seq());
        }
    }

    #[test]
    fn event_id_parse_takes_any_text_and_its_error_quotes_at_most_64_characters(
        text in prop_oneof![hostile_text(), "[0-9-]{60,200}"],
    ) {
        if let Err(err) = text.parse::<EventId>() {
            let message = err.to_string();
            let quoted = message.split('`').nth(1).unwrap();
            prop_assert!(quoted.chars().count() <= 64, "{message}");
            prop_assert!(text.starts_with(quoted));
        }
    }

    #[test]
    fn event_id_parses_what_it_displays(id in any_event_id()) {
        prop_assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
    }

    #[test]
    fn event_id_order_is_the_order_of_millis_then_sequence(a in any_event_id(), b in any_event_id()) {
        prop_assert_eq!(a.cmp(&b), (a.millis(), a.seq()).cmp(&(b.millis(), b.seq())));
        let (pa, pb) = (a.to_string().parse::<EventId>().unwrap(), b.to_string().parse().unwrap());
        prop_assert_eq!(pa.cmp(&pb), a.cmp(&b));
    }
}

// ---------------------------------------------------------------------------------------------
// Keys (the unit tests of `key.rs` cover injectivity and the separators; these add the whole of
// Unicode, the public pair `escape_key`/`unescape_key`, and what unescaping accepts)
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn unescape_key_takes_any_text_without_panicking(text in hostile_text()) {
        if let Some(key) = unescape_key(&text) {
            // Whatever it accepts is a key whose escape unescapes to the same key.
            prop_assert_eq!(unescape_key(&escape_key(&key)), Some(key));
        }
    }

    #[test]
    fn unescape_key_takes_any_percent_sequence_without_panicking(
        parts in proptest::collection::vec(
            prop_oneof![Just("%".to_owned()), "%[0-9a-fA-FgG]{0,2}", hostile_text()],
            0..8,
        ),
    ) {
        let text = parts.concat();
        if let Some(key) = unescape_key(&text) {
            prop_assert_eq!(unescape_key(&escape_key(&key)), Some(key));
        }
    }

    #[test]
    fn escape_key_then_unescape_key_is_the_key(key in hostile_text()) {
        prop_assert_eq!(unescape_key(&escape_key(&key)), Some(key));
    }

    #[test]
    fn escaped_key_is_printable_ascii_without_separators(key in hostile_text()) {
        let escaped = escape_key(&key);
        for (at, c) in escaped.char_indices() {
            prop_assert!(c.is_ascii() && !c.is_ascii_control(), "{c:?} in {escaped:?}");
            prop_assert!(!matches!(c, ':' | '{' | '}'), "{c:?} in {escaped:?}");
            if c == '%' {
                let hex = escaped.get(at + 1..at + 3).unwrap_or_default();
                prop_assert!(
                    hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
                    "a lone % in {escaped:?}"
                );
            }
        }
    }

    #[test]
    fn a_string_key_is_exactly_one_segment_of_its_channel_name(key in hostile_text()) {
        let channel = Channel::<Notification>::new(&key);
        let parts: Vec<&str> = channel.name().split(':').collect();
        prop_assert_eq!(parts.len(), 3, "{}", channel.name());
        prop_assert_eq!(parts[0], "user");
        prop_assert_eq!(unescape_key(parts[1]), Some(key));
        prop_assert_eq!(parts[2], "Notification");
    }
}

// ---------------------------------------------------------------------------------------------
// SSE framing, checked with the WHATWG parsing rules
// ---------------------------------------------------------------------------------------------

/// The event a frame of `id`, `event` and `data` must parse as, and nothing else.
fn expected_event(id: EventId, event: &str, data: &[u8]) -> Dispatched {
    Dispatched {
        event_type: event.to_owned(),
        data: String::from_utf8_lossy(data).into_owned(),
        last_event_id: id.to_string(),
    }
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn a_frame_is_refused_or_parses_as_exactly_its_one_event(
        id in any_event_id(),
        event in hostile_text(),
        data in hostile_bytes(),
    ) {
        let message = Message::new(id, event.clone(), Bytes::from(data.clone()));
        if let Some(frame) = sse_frame(&message) {
            prop_assert!(std::str::from_utf8(&data).is_ok(), "framed data that is not UTF-8");
            let parsed = parse(&frame);
            prop_assert_eq!(parsed.events, vec![expected_event(id, &event, &data)], "{:?}", frame);
            prop_assert_eq!(parsed.retries, Vec::<u64>::new());
        }
    }

    #[test]
    fn a_frame_leaves_nothing_behind_for_the_next_one(
        first in (any_event_id(), hostile_text(), hostile_bytes()),
        second in (any_event_id(), sse_event_name(), "[ -~]{1,20}"),
    ) {
        let (id, event, data) = first;
        let Some(first_frame) = sse_frame(&Message::new(id, event.clone(), Bytes::from(data.clone())))
        else {
            return Ok(());
        };
        let (id2, event2, data2) = second;
        let second_frame =
            sse_frame(&Message::new(id2, event2.clone(), Bytes::from(data2.clone()))).unwrap();
        let stream = [first_frame, second_frame].concat();
        prop_assert_eq!(
            parse(&stream).events,
            vec![expected_event(id, &event, &data), expected_event(id2, &event2, data2.as_bytes())]
        );
    }

    #[test]
    fn every_event_name_and_json_like_data_without_cr_is_framed(
        id in any_event_id(),
        event in sse_event_name(),
        data in hostile_text(),
    ) {
        // JSON never holds a raw CR (serde escapes it in strings), and is never empty.
        let data = format!("[{}]", data.replace('\r', ""));
        let message = Message::new(id, event.clone(), Bytes::from(data.clone()));
        let frame = sse_frame(&message);
        prop_assert!(frame.is_some(), "{event:?} {data:?} refused");
    }
}

// ---------------------------------------------------------------------------------------------
// The WHATWG parser itself, on the examples of the standard (§ 9.2.6)
// ---------------------------------------------------------------------------------------------

fn event(event_type: &str, data: &str, last_event_id: &str) -> Dispatched {
    Dispatched {
        event_type: event_type.to_owned(),
        data: data.to_owned(),
        last_event_id: last_event_id.to_owned(),
    }
}

#[test]
fn whatwg_parser_joins_data_lines_with_lf() {
    let parsed = parse(b"data: YHOO\ndata: +2\ndata: 10\n\n");
    assert_eq!(parsed.events, [event("message", "YHOO\n+2\n10", "")]);
}

#[test]
fn whatwg_parser_keeps_ids_and_drops_an_unterminated_event() {
    let stream = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n";
    let parsed = parse(stream);
    assert_eq!(
        parsed.events,
        [
            event("message", "first event", "1"),
            event("message", "second event", "")
        ]
    );
}

#[test]
fn whatwg_parser_dispatches_empty_data_lines_but_not_a_block_without_data() {
    let parsed = parse(b"data\n\ndata\ndata\n\ndata:");
    assert_eq!(
        parsed.events,
        [event("message", "", ""), event("message", "\n", "")]
    );
    assert!(parse(b"event: E\nid: 5\n\n").events.is_empty());
    assert_eq!(parse(b"id: 5\n\n").last_event_id, "5");
}

#[test]
fn whatwg_parser_ends_lines_at_cr_lf_and_crlf() {
    let parsed = parse(b"event: a\rdata: 1\r\ndata: 2\n\r\n");
    assert_eq!(parsed.events, [event("a", "1\n2", "")]);
    assert_eq!(parse(b"data: x\r\rdata: y\n\n").events.len(), 2);
}

#[test]
fn whatwg_parser_ignores_a_nul_id_unknown_fields_and_a_leading_bom() {
    let parsed = parse("\u{FEFF}id: 1\nid: a\0b\nfoo: bar\ndata: d\n\n".as_bytes());
    assert_eq!(parsed.events, [event("message", "d", "1")]);
    assert_eq!(parse(b"retry: 10\n\nretry: x\n\n").retries, [10]);
}

// ---------------------------------------------------------------------------------------------
// The routes: path, query and header parsing through the real router
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "game", key = "game_id")]
struct PlayerJoined {
    game_id: u64,
    player_name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "user", key = "user_id")]
struct Notification {
    user_id: String,
    text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, TS, SseEvent)]
#[ts(crate = "statelesse::ts_rs")]
#[sse(domain = "room", key = "room_id")]
enum RoomEvent {
    Opened { room_id: u32 },
    Closed { room_id: u32 },
}

/// Whether a route's key type parses a (percent-decoded) key segment.
type KeyParses = fn(&str) -> bool;

/// The keyed routes: their path with `{}` for the key segment, and what their key type parses.
const KEYED_ROUTES: [(&str, KeyParses); 3] = [
    ("/sse/game/{}/player-joined", |key| {
        key.parse::<u64>().is_ok()
    }),
    ("/sse/user/{}/notification", |_| true),
    ("/sse/room/{}", |key| key.parse::<u32>().is_ok()),
];

fn app(backplane: &Backplane) -> Router {
    Router::new()
        .merge(PlayerJoined::sse_route())
        .merge(Notification::sse_route())
        .merge(RoomEvent::sse_route())
        .with_state(backplane.clone())
}

/// Runs `test` on a runtime of its own, with a fresh in-memory backplane.
fn run<F: Future<Output = Result<(), TestCaseError>>>(
    test: impl FnOnce(Backplane) -> F,
) -> Result<(), TestCaseError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let backplane = Backplane::in_memory();
            let result = test(backplane.clone()).await;
            backplane.shutdown().await;
            result
        })
}

/// Bytes as one path segment: each byte raw where a path allows it and `raw` says so, else
/// percent-encoded, in upper or lower case hex.
fn path_segment(bytes: &[(u8, bool, bool)]) -> String {
    let mut segment = String::new();
    for &(byte, raw, upper) in bytes {
        if raw && (byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)) {
            segment.push(char::from(byte));
        } else if upper {
            write!(segment, "%{byte:02X}").unwrap();
        } else {
            write!(segment, "%{byte:02x}").unwrap();
        }
    }
    segment
}

/// What a request got: its status, and for a 200 whether it is an SSE stream whose first frame
/// is the retry hint.
async fn send(router: Router, request: Request<Body>) -> Result<StatusCode, TestCaseError> {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    if status == StatusCode::OK {
        prop_assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static("text/event-stream"))
        );
        let mut body = response.into_body().into_data_stream();
        let first = tokio::time::timeout(Duration::from_secs(2), body.next()).await;
        let first = first.ok().flatten().map(Result::unwrap);
        prop_assert_eq!(first, Some(Bytes::from_static(b"retry: 3000\n\n")));
    } else {
        prop_assert!(status.is_client_error(), "{status}");
    }
    Ok(status)
}

fn get(uri: &str) -> axum::http::request::Builder {
    Request::builder().uri(uri)
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_key_segment_answers_a_stream_or_a_4xx(
        route in 0..KEYED_ROUTES.len(),
        segment in proptest::collection::vec((any::<u8>(), any::<bool>(), any::<bool>()), 0..24),
    ) {
        let (template, parses) = KEYED_ROUTES[route];
        let text = path_segment(&segment);
        let uri = template.replace("{}", &text);
        let decoded: Vec<u8> = percent_decode(text.as_bytes()).collect();
        let expected = match std::str::from_utf8(&decoded) {
            // An empty last segment is a trailing slash: no route. An empty middle one is a key.
            _ if uri.ends_with('/') => StatusCode::NOT_FOUND,
            Ok(key) if parses(key) => StatusCode::OK,
            _ => StatusCode::BAD_REQUEST,
        };
        run(|bp| async move {
            let status = send(app(&bp), get(&uri).body(Body::empty()).unwrap()).await?;
            prop_assert_eq!(status, expected, "{}", uri);
            Ok(())
        })?;
    }

    #[test]
    fn any_last_event_id_query_answers_a_stream_or_a_400(value in id_like_text()) {
        let uri = format!(
            "/sse/game/7/player-joined?lastEventId={}",
            utf8_percent_encode(&value, NON_ALPHANUMERIC)
        );
        let expected = if value.is_empty() || value.parse::<EventId>().is_ok() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        run(|bp| async move {
            publish_some(&bp).await;
            let status = send(app(&bp), get(&uri).body(Body::empty()).unwrap()).await?;
            prop_assert_eq!(status, expected, "{}", uri);
            Ok(())
        })?;
    }

    #[test]
    fn any_query_string_answers_a_stream_or_a_400(
        query in proptest::collection::vec(
            prop_oneof![
                Just("lastEventId=".to_owned()),
                "[A-Za-z0-9&=+%;/?:@!$'()*,._~-]{0,12}",
                any_event_id().prop_map(|id| id.to_string()),
            ],
            0..6,
        ),
    ) {
        let uri = format!("/sse/game/7/player-joined?{}", query.concat());
        let Ok(request) = get(&uri).body(Body::empty()) else {
            return Ok(()); // not a URI a server could receive
        };
        run(|bp| async move {
            publish_some(&bp).await;
            send(app(&bp), request).await?;
            Ok(())
        })?;
    }

    #[test]
    fn any_last_event_id_header_answers_a_stream_or_a_400(
        value in prop_oneof![
            id_like_text().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..32),
        ],
        query in prop_oneof![Just(""), Just("?lastEventId=1-0"), Just("?lastEventId=x")],
    ) {
        let Ok(header_value) = HeaderValue::from_bytes(&value) else {
            return Ok(()); // not a header value a server could receive
        };
        let from_query = match query {
            "" | "?lastEventId=1-0" => StatusCode::OK,
            _ => StatusCode::BAD_REQUEST,
        };
        let expected = match header_value.to_str() {
            Ok("") => from_query,
            Ok(text) if text.parse::<EventId>().is_ok() => StatusCode::OK,
            _ => StatusCode::BAD_REQUEST,
        };
        let uri = format!("/sse/game/7/player-joined{query}");
        run(|bp| async move {
            publish_some(&bp).await;
            let request = get(&uri)
                .header("last-event-id", header_value)
                .body(Body::empty())
                .unwrap();
            let status = send(app(&bp), request).await?;
            prop_assert_eq!(status, expected, "{:?}", value);
            Ok(())
        })?;
    }
}

/// Publishes a few events on game 7, so that resumes have history to read.
async fn publish_some(bp: &Backplane) {
    for n in 0..3 {
        let event = PlayerJoined {
            game_id: 7,
            player_name: format!("p{n}"),
        };
        PlayerJoined::publish(bp, event).await.unwrap();
    }
}

/// Reads `body` until the stream's last event id is `until`, and parses all of it.
async fn read_until(
    body: &mut (impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin),
    until: EventId,
) -> statelesse_tests::event_stream::Parsed {
    let mut received = Vec::new();
    let read = async {
        loop {
            let parsed = parse(&received);
            if parsed.last_event_id == until.to_string() {
                return parsed;
            }
            received.extend_from_slice(&body.next().await.unwrap().unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no event {until} in {:?}",
                String::from_utf8_lossy(&received)
            )
        })
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_string_key_streams_the_channel_of_its_decoded_text(key in hostile_text()) {
        let uri = format!("/sse/user/{}/notification", utf8_percent_encode(&key, NON_ALPHANUMERIC));
        run(|bp| async move {
            let response = app(&bp).oneshot(get(&uri).body(Body::empty()).unwrap()).await.unwrap();
            prop_assert_eq!(response.status(), StatusCode::OK);
            let mut body = response.into_body().into_data_stream();
            let sent = Notification { user_id: key.clone(), text: "hi".to_owned() };
            let id = Notification::publish(&bp, sent.clone()).await.unwrap();
            let parsed = read_until(&mut body, id).await;
            let data = serde_json::to_string(&sent).unwrap();
            prop_assert_eq!(parsed.events, vec![expected_event(id, "Notification", data.as_bytes())]);
            Ok(())
        })?;
    }

    #[test]
    fn a_hostile_message_on_a_channel_reaches_the_browser_whole_as_a_gap_or_not_at_all(
        // The route forwards only its own event names: its name often, to reach the framing.
        event in prop_oneof![Just("PlayerJoined".to_owned()), hostile_text()],
        data in hostile_bytes(),
    ) {
        run(|bp| async move {
            let uri = "/sse/game/7/player-joined";
            let response = app(&bp).oneshot(get(uri).body(Body::empty()).unwrap()).await.unwrap();
            let mut body = response.into_body().into_data_stream();
            let channel = Channel::<PlayerJoined>::new(&7);
            let hostile = bp
                .transport()
                .publish(channel.name(), event.clone().into(), Bytes::from(data.clone()))
                .await
                .unwrap();
            let after = PlayerJoined { game_id: 7, player_name: "after".to_owned() };
            let id = PlayerJoined::publish(&bp, after.clone()).await.unwrap();
            let parsed = read_until(&mut body, id).await;
            let after = serde_json::to_vec(&after).unwrap();
            let last = expected_event(id, "PlayerJoined", &after);
            // Another type's name is dropped; data SSE cannot carry whole is a gap of one.
            let carried = std::str::from_utf8(&data).is_ok_and(|d| !d.is_empty() && !d.contains('\r'));
            let expected = match (event == "PlayerJoined", carried) {
                (false, _) => vec![last],
                (true, true) => vec![expected_event(hostile, &event, &data), last],
                (true, false) => vec![expected_event(hostile, "gap", br#"{"missed":1}"#), last],
            };
            prop_assert_eq!(parsed.events, expected);
            prop_assert_eq!(parsed.retries, vec![3000]);
            Ok(())
        })?;
    }
}
