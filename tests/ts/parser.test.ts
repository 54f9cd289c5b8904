// The generated client's event-stream parser (`sseParser`) against the examples and rules of the
// WHATWG HTML standard, "Server-sent events", section "Event stream interpretation".
import assert from "node:assert/strict";
import { test } from "node:test";

import { sseParser, type SseParsedEvent } from "#game/events.js";

/** What the parser dispatches for `chunks` fed one after another: events and `retry` values. */
function parse(chunks: string[], lastEventId?: string): { events: SseParsedEvent[]; retries: number[] } {
  const events: SseParsedEvent[] = [];
  const retries: number[] = [];
  const feed = sseParser((event) => events.push(event), (ms) => retries.push(ms), lastEventId);
  for (const chunk of chunks) feed(chunk);
  return { events, retries };
}

/** `stream` fed whole, then one character at a time: both must dispatch the same. */
function parseBothWays(stream: string): SseParsedEvent[] {
  const whole = parse([stream]).events;
  assert.deepEqual(parse(Array.from(stream)).events, whole, "one character at a time");
  return whole;
}

const message = (data: string, id = ""): SseParsedEvent => ({ event: "message", data, id });

test("spec: data lines join with LF into one message", () => {
  assert.deepEqual(parseBothWays("data: YHOO\ndata: +2\ndata: 10\n\n"), [message("YHOO\n+2\n10")]);
});

test("spec: comments are skipped, an empty id resets the id, one leading space is removed", () => {
  const stream = ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n";
  assert.deepEqual(parseBothWays(stream), [message("first event", "1"), message("second event"), message(" third event")]);
});

test("spec: a field name alone is an empty value; an event without a blank line is not dispatched", () => {
  assert.deepEqual(parseBothWays("data\n\ndata\ndata\n\ndata:"), [message(""), message("\n")]);
});

test("spec: the space after the colon is optional", () => {
  assert.deepEqual(parseBothWays("data:test\n\ndata: test\n\n"), [message("test"), message("test")]);
});

test("lines end with CR, LF or CRLF, mixed, and a CRLF split across chunks is one line end", () => {
  const expected = [message("a\nb\nc", "1"), message("d", "1")];
  assert.deepEqual(parseBothWays("id: 1\rdata: a\r\ndata: b\ndata: c\r\n\r\ndata: d\r\r"), expected);
  assert.deepEqual(parse(["data: a\r", "\ndata: b\r", "\n", "data: c\r\n", "id: 1\r", "\n\r", "\ndata: d\n\n"]).events, expected);
  // A CR then a chunk without LF: the CR ended the line; the next line starts there.
  assert.deepEqual(parse(["data: x\r", "data: y\n\n"]).events, [message("x\ny")]);
});

test("a leading byte order mark is skipped, only at the start of the stream", () => {
  assert.deepEqual(parse(["\uFEFFdata: a\n\n"]).events, [message("a")]);
  assert.deepEqual(parse(["", "\uFEFF", "data: a\n\n"]).events, [message("a")]);
  // A second BOM is part of the next line: a field named "\uFEFFdata", which is ignored.
  assert.deepEqual(parse(["\uFEFF\uFEFFdata: a\n\ndata: b\n\n"]).events, [message("b")]);
});

test("the event field names the event, for one event only", () => {
  assert.deepEqual(parseBothWays("event: joined\ndata: {}\n\ndata: x\n\n"), [
    { event: "joined", data: "{}", id: "" },
    message("x"),
  ]);
});

test("an id containing NUL is ignored; the last id stays until another replaces it", () => {
  assert.deepEqual(parseBothWays("id: 7\ndata: a\n\nid: 8\0\ndata: b\n\ndata: c\n\n"), [
    message("a", "7"),
    message("b", "7"),
    message("c", "7"),
  ]);
  // The parser starts from the client's last id, so events without one keep it.
  assert.deepEqual(parse(["data: d\n\n"], "41-0").events, [message("d", "41-0")]);
});

test("retry takes digits only, and dispatches no event", () => {
  const { events, retries } = parse(["retry: 500\n\nretry: 1.5\nretry: 5x\nretry:\nretry: 2000\n\n"]);
  assert.deepEqual(retries, [500, 2000]);
  assert.deepEqual(events, []);
});

test("unknown fields are ignored, and a line with only a colon is a comment", () => {
  assert.deepEqual(parseBothWays("foo: bar\n:\ndata: a\nDATA: b\n\n"), [message("a")]);
});

test("a line longer than the bound is an error, not unbounded memory", () => {
  const feed = sseParser(() => {}, undefined, "", 16);
  assert.throws(() => feed("data: 0123456789abcdef"), RangeError);
  const data = sseParser(() => {}, undefined, "", 16);
  assert.throws(() => data("data: 0123456789\ndata: 0123456789\n"), RangeError);
});
