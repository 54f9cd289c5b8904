// The generated client of the game example (examples/game/web/events.js + events.d.ts, written
// by the example's build.rs) in Node, with the `eventsource` package, against the running game.
import assert from "node:assert/strict";
import { test } from "node:test";

import { EventSource, type EventSourceInit } from "eventsource";

import {
  muxGameEvent,
  muxNotification,
  muxSystemAnnouncement,
  subscribeGameEvent,
  subscribeMux,
  subscribeNotification,
  subscribeScoreChanged,
  subscribeSystemAnnouncement,
  type GameEventMessage,
  type GameSnapshot,
  type SseError,
  type SseEventSourceConstructor,
  type SseOptions,
} from "#game/events.js";
import { startProxy } from "./proxy.js";
import { startGame, until, type Game } from "./server.js";

type After = { after(fn: () => Promise<void> | void): void };

async function game(t: After): Promise<Game> {
  const started = await startGame();
  t.after(() => started.stop());
  return started;
}

function options(baseUrl: string, EventSourceImpl: SseEventSourceConstructor = EventSource): SseOptions {
  return { baseUrl, EventSource: EventSourceImpl, reconnectDelayMs: 100 };
}

/** The `eventsource` class, sending `cookie` with every request (as a browser would). */
function withCookie(cookie: string): SseEventSourceConstructor {
  return class extends EventSource {
    constructor(url: string | URL, init?: EventSourceInit) {
      super(url, {
        ...init,
        fetch: (input, request) => fetch(input, { ...request, headers: { ...request.headers, cookie } }),
      });
    }
  };
}

/** Event ids are `{millis}-{seq}`: compares them as numbers. */
function increasing(ids: string[]): boolean {
  const parsed = ids.map((id) => id.split("-").map(BigInt) as [bigint, bigint]);
  return parsed.every(
    ([ms, seq], i) => i === 0 || ms > parsed[i - 1]![0] || (ms === parsed[i - 1]![0] && seq > parsed[i - 1]![1]),
  );
}

/** What a handler of the game stream saw, as one line. */
function describe(message: GameEventMessage): string {
  switch (message.event) {
    case "PlayerJoined":
      return `${message.data.player} joined`;
    case "PlayerLeft":
      return `${message.data.player} left`;
    case "RoundStarted":
      return `round ${message.data.round}`;
    case "ScoreChanged":
      return `${message.data.player} has ${message.data.score}`;
  }
}

test("the game stream: the snapshot, then every API call's event, typed, in order", async (t) => {
  const app = await game(t);
  const gameId = await app.createGame();
  const other = await app.createGame();
  await app.join(gameId, "ada");

  const snapshots: GameSnapshot[] = [];
  const log: string[] = [];
  const messages: GameEventMessage[] = [];
  const ids: string[] = [];
  const close = subscribeGameEvent<GameSnapshot>(
    gameId,
    {
      onSnapshot: (snapshot) => snapshots.push(snapshot),
      // Each handler gets its variant's payload type.
      onPlayerJoined: (joined) => log.push(`joined ${joined.player.toUpperCase()}`),
      onPlayerLeft: (left) => log.push(`left ${left.player}`),
      onRoundStarted: (started) => log.push(`round ${started.round.toFixed()}`),
      onScoreChanged: (changed) => log.push(`score ${changed.player} ${changed.score.toFixed()}`),
      onEvent(message, id) {
        messages.push(message);
        ids.push(id);
      },
    },
    options(app.url),
  );
  t.after(close);
  await until(() => snapshots.length === 1, "the snapshot");
  assert.deepEqual(snapshots, [{ gameId, round: 0, players: [{ player: "ada", score: 0 }] }]);

  const published = [
    await app.join(gameId, "bob"),
    await app.score(gameId, "bob", 5),
    await app.join(other, "eve"), // another game: not on this stream
    await app.startRound(gameId),
    await app.score(gameId, "ada", 2),
    await app.score(gameId, "bob", -1),
    await app.leave(gameId, "bob"),
  ];
  published.splice(2, 1);
  await until(() => messages.length >= published.length, `${published.length} events`);
  await new Promise((resolve) => setTimeout(resolve, 100)); // and no more

  assert.deepEqual(log, ["joined BOB", "score bob 5", "round 1", "score ada 2", "score bob 4", "left bob"]);
  assert.deepEqual(messages.map(describe), [
    "bob joined",
    "bob has 5",
    "round 1",
    "ada has 2",
    "bob has 4",
    "bob left",
  ]);
  assert.ok(messages.every((message) => message.data.gameId === gameId));
  assert.deepEqual(ids, published, "each event's id is the one the API answered");
  assert.ok(increasing(ids), `ids increase: ${ids.join(" ")}`);
  assert.equal(snapshots.length, 1);
  assert.deepEqual(await app.game(gameId), { gameId, round: 1, players: [{ player: "ada", score: 2 }] });
});

test("a per-event stream carries only its event", async (t) => {
  const app = await game(t);
  const gameId = await app.createGame();
  const scores: string[] = [];
  let opened = 0;
  const close = subscribeScoreChanged(
    gameId,
    {
      onOpen: () => (opened += 1),
      onEvent: (changed, id) => scores.push(`${id} ${changed.player} ${changed.score}`),
    },
    options(app.url),
  );
  t.after(close);
  await until(() => opened === 1, "the stream to open");

  await app.join(gameId, "ada");
  await app.score(gameId, "ada", 3);
  await app.startRound(gameId);
  await app.score(gameId, "ada", 4);
  await until(() => scores.length === 2, "two scores");
  assert.match(scores[0] ?? "", /^\d+-\d+ ada 3$/);
  assert.match(scores[1] ?? "", /^\d+-\d+ ada 7$/);
});

test("a per-user stream opens with that user's cookie only", async (t) => {
  const app = await game(t);
  const gameId = await app.createGame();
  await app.join(gameId, "ada");
  await app.join(gameId, "bob");

  const texts: string[] = [];
  let opened = 0;
  const close = subscribeNotification(
    "ada",
    { onOpen: () => (opened += 1), onEvent: (notification) => texts.push(notification.text) },
    options(app.url, withCookie(await app.login("ada"))),
  );
  t.after(close);

  const denied: SseError[] = [];
  let bobOpened = false;
  const closeBob = subscribeNotification(
    "bob",
    { onOpen: () => (bobOpened = true), onError: (error) => denied.push(error) },
    { ...options(app.url, withCookie(await app.login("ada"))), reconnect: false },
  );
  t.after(closeBob);

  await until(() => opened === 1 && denied.length === 1, "ada's stream to open and bob's to fail");
  await app.score(gameId, "bob", 1);
  await app.score(gameId, "ada", 2);
  await until(() => texts.length === 1, "ada's notification");
  assert.deepEqual(texts, [`you have 2 points in game ${gameId}`]);
  assert.equal(bobOpened, false);
  const [error] = denied;
  assert.ok(error !== undefined && error.kind === "connection" && !error.willRetry);
});

test("a keyless stream takes no key, and close stops it", async (t) => {
  const app = await game(t);
  const texts: string[] = [];
  let opened = 0;
  const close = subscribeSystemAnnouncement(
    { onOpen: () => (opened += 1), onEvent: (announcement) => texts.push(announcement.text) },
    options(app.url),
  );
  await until(() => opened === 1, "the stream to open");
  await app.announce("hello");
  const gameId = await app.createGame(); // announces the game
  await until(() => texts.length === 2, "two announcements");

  close();
  await app.announce("after close");
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(texts, ["hello", `game ${gameId} is open`]);
});

test("after the connection drops, the client resumes after the last id: every event once", async (t) => {
  const app = await game(t);
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  const gameId = await app.createGame();

  const ids: string[] = [];
  const seen: string[] = [];
  const errors: SseError[] = [];
  let opened = 0;
  let snapshots = 0;
  let gaps = 0;
  const close = subscribeGameEvent(
    gameId,
    {
      onOpen: () => (opened += 1),
      onSnapshot: () => (snapshots += 1),
      onEvent(message, id) {
        ids.push(id);
        seen.push(describe(message));
      },
      onError: (error) => errors.push(error),
      onGap: () => (gaps += 1),
    },
    options(proxy.url),
  );
  t.after(close);
  await until(() => opened === 1 && snapshots === 1, "the stream to open");

  const published: string[] = [];
  for (const player of ["p1", "p2", "p3"]) published.push(await app.join(gameId, player));
  await until(() => ids.length === 3, "the first 3 events");

  proxy.cut();
  await until(() => errors.length === 1, "the client to see the connection fail");
  // Published straight to the server while the client is cut off: it must get them from history.
  for (const player of ["p4", "p5", "p6"]) published.push(await app.join(gameId, player));
  published.push(await app.score(gameId, "p1", 10));
  proxy.restore();
  await until(() => ids.length >= 7, "the events published while away");
  for (const player of ["p7", "p8"]) published.push(await app.join(gameId, player));
  await until(() => ids.length >= 9, "live events after the resume");
  await new Promise((resolve) => setTimeout(resolve, 100)); // and no more

  assert.deepEqual(ids, published, "every event once, in order");
  assert.deepEqual(seen, [
    "p1 joined",
    "p2 joined",
    "p3 joined",
    "p4 joined",
    "p5 joined",
    "p6 joined",
    "p1 has 10",
    "p7 joined",
    "p8 joined",
  ]);
  assert.equal(gaps, 0);
  assert.equal(snapshots, 1, "a resuming connection gets no snapshot");
  assert.ok(opened >= 2);
  const [error] = errors;
  assert.ok(error !== undefined && error.kind === "connection" && error.willRetry);
  // The first request had no id; the one that opened the stream again carried the last id seen.
  const streams = proxy.requests.filter((line) => line.startsWith(`GET /sse/game/${gameId}`));
  assert.equal(streams[0], `GET /sse/game/${gameId} HTTP/1.1`);
  assert.equal(streams.at(-1), `GET /sse/game/${gameId}?lastEventId=${encodeURIComponent(published[2]!)} HTTP/1.1`);
});

test("a gap's id becomes the last id: an id from the future brings one gap, not one per reconnect", async (t) => {
  const app = await game(t);
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  const gameId = await app.createGame();
  const end = await app.join(gameId, "ada");

  const ids: string[] = [];
  const errors: SseError[] = [];
  let opened = 0;
  let gaps = 0;
  const close = subscribeGameEvent(
    gameId,
    {
      onOpen: () => (opened += 1),
      onEvent: (_message, id) => ids.push(id),
      onError: (error) => errors.push(error),
      onGap: () => (gaps += 1),
    },
    { ...options(proxy.url), lastEventId: "18446744073709551615-0" },
  );
  t.after(close);
  await until(() => gaps === 1, "the gap");

  proxy.cut();
  await until(() => errors.length === 1, "the client to see the connection fail");
  proxy.restore();
  await until(() => opened === 2, "the stream to open again");
  const next = await app.join(gameId, "bob");
  await until(() => ids.length === 1, "the next event");

  assert.deepEqual(ids, [next]);
  assert.equal(gaps, 1, "no second gap after reopening");
  const streams = proxy.requests.filter((line) => line.startsWith(`GET /sse/game/${gameId}`));
  assert.equal(streams.at(-1), `GET /sse/game/${gameId}?lastEventId=${encodeURIComponent(end)} HTTP/1.1`);
});

test("one multiplexed connection for a game, the announcements and a user's notifications survives a dropped connection: every event once", async (t) => {
  const app = await game(t);
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  const cookie = await app.login("ada");
  const gameId = await app.createGame();

  const seen: string[] = [];
  const errors: SseError[] = [];
  let opened = 0;
  let snapshots = 0;
  let gaps = 0;
  const mux = subscribeMux(
    "/sse/page",
    [
      muxSystemAnnouncement({ onEvent: (announcement, id) => seen.push(`${id} ${announcement.text}`) }),
      muxNotification("ada", { onEvent: (note) => seen.push(`note ${note.text}`) }),
      muxGameEvent(gameId, {
        onSnapshot: () => (snapshots += 1),
        onEvent: (message, id) => seen.push(`${id} ${describe(message)}`),
        onGap: () => (gaps += 1),
      }),
    ],
    { onOpen: () => (opened += 1), onError: (error) => errors.push(error) },
    { ...options(proxy.url, withCookie(cookie)) },
  );
  t.after(() => mux.close());
  await until(() => opened === 1 && snapshots === 1, "the stream to open");

  const expected: string[] = [];
  expected.push(`${await app.join(gameId, "ada")} ada joined`);
  expected.push(`${await app.announce("hello")} hello`);
  await until(() => seen.length === 2, "the first 2 events");

  proxy.cut();
  await until(() => errors.length === 1, "the client to see the connection fail");
  // Published straight to the server while the client is cut off: it must get them from history.
  expected.push(`${await app.join(gameId, "bob")} bob joined`);
  expected.push(`${await app.score(gameId, "ada", 3)} ada has 3`);
  expected.push("note you have 3 points in game " + gameId);
  expected.push(`${await app.announce("while away")} while away`);
  proxy.restore();
  await until(() => seen.length >= 6, "the events published while away");
  expected.push(`${await app.leave(gameId, "bob")} bob left`);
  await until(() => seen.length >= 7, "live events after the resume");
  await new Promise((resolve) => setTimeout(resolve, 100)); // and no more

  // Per channel in publish order, each once; channels interleave as the server sent them.
  const only = (list: string[], test: (line: string) => boolean) => list.filter(test);
  for (const channel of [/ (ada|bob) /, /^note /, /^\d+-\d+ (hello|while away)$/]) {
    const pick = (line: string) => channel.test(line);
    assert.deepEqual(only(seen, pick), only(expected, pick));
  }
  assert.equal(seen.length, expected.length, "no event twice");
  assert.equal(gaps, 0);
  assert.equal(snapshots, 1, "a resuming connection gets no snapshot");
  const streams = proxy.requests.filter((line) => line.startsWith("GET /sse/"));
  assert.ok(streams.length >= 2);
  for (const line of streams) {
    assert.ok(line.startsWith(`GET /sse/page?SystemAnnouncement&Notification=ada&GameEvent=${gameId}`), line);
  }
  assert.match(streams.at(-1) ?? "", /&lastEventId=[^ ]+ HTTP\/1\.1$/);
});
