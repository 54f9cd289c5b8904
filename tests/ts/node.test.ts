// The generated client of the game example (examples/game/web/events.js + events.d.ts, written
// by the example's build.rs) in Node, against the running game: with its default transport
// (`fetch`), and with the `eventsource` package's class as `options.EventSource`.
import assert from "node:assert/strict";
import { test } from "node:test";

import { EventSource } from "eventsource";

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
  type SseMux,
  type SseOptions,
  type SseStatus,
} from "#game/events.js";
import { startRedis } from "./processes.js";
import { startProxy, type Proxy, type Received } from "./proxy.js";
import { startGame, until, type Game, type GameFlags } from "./server.js";

type After = { after(fn: () => Promise<void> | void): void };

async function game(t: After, flags: GameFlags = {}): Promise<Game> {
  const started = await startGame(flags);
  t.after(() => started.stop());
  return started;
}

function options(baseUrl: string, more: SseOptions = {}): SseOptions {
  return { baseUrl, reconnectDelayMs: 100, ...more };
}

/** The stream requests of `path` that went through `proxy`, e.g. `/sse/game/7`. */
function streamRequests(proxy: Proxy, path: string): Received[] {
  return proxy.received.filter((request) => request.line.startsWith(`GET ${path} `) || request.line.startsWith(`GET ${path}?`));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
  const close = subscribeGameEvent(
    gameId,
    {
      // Typed by the manifest (`with_snapshot`): the page names no type.
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
    options(app.url, { headers: { cookie: await app.login("ada") } }),
  );
  t.after(close);

  const denied: SseError[] = [];
  let bobOpened = false;
  const closeBob = subscribeNotification(
    "bob",
    { onOpen: () => (bobOpened = true), onError: (error) => denied.push(error) },
    options(app.url, { headers: { cookie: await app.login("ada") } }),
  );
  t.after(closeBob);

  await until(() => opened === 1 && denied.length === 1, "ada's stream to open and bob's to fail");
  await app.score(gameId, "bob", 1);
  await app.score(gameId, "ada", 2);
  await until(() => texts.length === 1, "ada's notification");
  assert.deepEqual(texts, [`you have 2 points in game ${gameId}`]);
  assert.equal(bobOpened, false);
  assert.deepEqual(denied, [{ kind: "http", status: 403, willRetry: false, retryInMs: null }]);
  assert.equal(closeBob.status, "closed");
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
  close.close(); // again: nothing
  await app.announce("after close");
  await sleep(200);
  assert.deepEqual(texts, ["hello", `game ${gameId} is open`]);
  assert.equal(close.status, "closed");
});

/** The transports of the client: its default, and the `eventsource` package's class. */
const TRANSPORTS = {
  fetch: {},
  EventSource: { EventSource },
} satisfies Record<string, SseOptions>;

/**
 * The `eventsource` class, sending `cookie` with each request as a browser's `EventSource` sends
 * the page's cookies (it takes no other header).
 */
function eventSourceWithCookie(cookie: string): typeof EventSource {
  return class extends EventSource {
    constructor(url: string | URL, init?: { withCredentials?: boolean }) {
      super(url, {
        ...init,
        fetch: (input, request) => fetch(input, { ...request, headers: { ...request.headers, cookie } }),
      });
    }
  };
}

/** The last id a stream request carried: the `Last-Event-ID` header, or `?lastEventId=` for `EventSource`. */
function sentId(request: Received | undefined): string | null {
  if (request === undefined) return null;
  const query = /[?&]lastEventId=([^& ]*)/.exec(request.line);
  return query?.[1] !== undefined ? decodeURIComponent(query[1]) : (request.headers["last-event-id"] ?? null);
}

for (const [transport, transportOptions] of Object.entries(TRANSPORTS)) {
  test(`${transport}: after the connection drops, the client resumes after the last id: every event once`, async (t) => {
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
      options(proxy.url, transportOptions),
    );
    t.after(close);
    await until(() => opened === 1 && snapshots === 1, "the stream to open");

    const published: string[] = [];
    for (const player of ["p1", "p2", "p3"]) published.push(await app.join(gameId, player));
    await until(() => ids.length === 3, "the first 3 events");

    proxy.cut();
    // At least one: a reconnect drawn within the first milliseconds of the backoff window
    // fails too, while the proxy is still cut.
    await until(() => errors.length >= 1, "the client to see the connection fail");
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
    const streams = streamRequests(proxy, `/sse/game/${gameId}`);
    assert.equal(sentId(streams[0]), null);
    assert.equal(sentId(streams.at(-1)), published[2]);
  });
}


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
  // At least one: a reconnect drawn within the first milliseconds of the backoff window
  // fails too, while the proxy is still cut.
  await until(() => errors.length >= 1, "the client to see the connection fail");
  proxy.restore();
  await until(() => opened === 2, "the stream to open again");
  const next = await app.join(gameId, "bob");
  await until(() => ids.length === 1, "the next event");

  assert.deepEqual(ids, [next]);
  assert.equal(gaps, 1, "no second gap after reopening");
  assert.equal(sentId(streamRequests(proxy, `/sse/game/${gameId}`).at(-1)), end);
});

test("a 503 with Retry-After is waited out, then the stream opens", async (t) => {
  const app = await game(t, { maxStreams: 1, retryMs: 2000 });
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  let firstOpen = false;
  const first = subscribeSystemAnnouncement({ onOpen: () => (firstOpen = true) }, options(app.url));
  t.after(first);
  await until(() => firstOpen, "the first stream to take the only slot");

  const errors: SseError[] = [];
  const statuses: SseStatus[] = [];
  let opened = false;
  const second = subscribeSystemAnnouncement(
    { onOpen: () => (opened = true), onError: (error) => errors.push(error), onStatusChange: (s) => statuses.push(s) },
    options(proxy.url),
  );
  t.after(second);
  await until(() => errors.length === 1, "the 503");
  first();
  await until(() => opened, "the stream to open once the slot is free", 10_000);

  const [error] = errors;
  assert.ok(error !== undefined && error.kind === "http", JSON.stringify(error));
  assert.equal(error.status, 503);
  assert.equal(error.willRetry, true);
  // `Retry-After: 2`, plus up to a tenth so that clients refused together do not return together.
  assert.ok(error.retryInMs !== null && error.retryInMs >= 2000 && error.retryInMs <= 2200, `${error.retryInMs}`);
  // Two requests, or more if the server had not yet seen the first stream go when the second came.
  const requests = streamRequests(proxy, "/sse/system/system-announcement");
  assert.ok(requests.length >= 2);
  const waited = requests[1]!.at - requests[0]!.at;
  assert.ok(waited >= 2000, `the second request came ${waited} ms after the first`);
  assert.deepEqual(statuses, ["reconnecting", "open"]);
  t.diagnostic(`waited ${Math.round(waited)} ms after a 503 with Retry-After: 2`);
});

test("a 401 is not retried: the stream closes and says why", async (t) => {
  const app = await game(t);
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  const errors: SseError[] = [];
  const statuses: SseStatus[] = [];
  const subscription = subscribeNotification(
    "ada",
    { onError: (error) => errors.push(error), onStatusChange: (status) => statuses.push(status) },
    options(proxy.url),
  );
  t.after(subscription);
  await until(() => subscription.status === "closed", "the stream to close");
  await sleep(500); // five retry windows: no second request

  assert.deepEqual(errors, [{ kind: "http", status: 401, willRetry: false, retryInMs: null }]);
  assert.deepEqual(statuses, ["closed"]);
  assert.equal(streamRequests(proxy, "/sse/user/ada/notification").length, 1);
});

test("a 401 is retried once with the headers onAuthError returns", async (t) => {
  const app = await game(t);
  const gameId = await app.createGame();
  const token = await app.token("ada");
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  const asked: number[] = [];
  const texts: string[] = [];
  const close = subscribeNotification(
    "ada",
    {
      async onAuthError(error) {
        asked.push(error.status);
        return { headers: { authorization: `Bearer ${await Promise.resolve(token)}` } };
      },
      onEvent: (notification) => texts.push(notification.text),
    },
    options(proxy.url),
  );
  t.after(close);
  await until(() => close.status === "open", "the stream to open with the new token");
  await app.join(gameId, "ada");
  await app.score(gameId, "ada", 3);
  await until(() => texts.length === 1, "ada's notification");

  assert.deepEqual(asked, [401]);
  const requests = streamRequests(proxy, "/sse/user/ada/notification");
  assert.deepEqual(
    requests.map((request) => request.headers["authorization"] ?? null),
    [null, `Bearer ${token}`],
  );
});

test("a 401 after onAuthError's headers is not retried again", async (t) => {
  const app = await game(t);
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  let asked = 0;
  const errors: SseError[] = [];
  const close = subscribeNotification(
    "ada",
    {
      onAuthError: () => {
        asked += 1;
        return { headers: { authorization: "Bearer forged" } };
      },
      onError: (error) => errors.push(error),
    },
    options(proxy.url),
  );
  t.after(close);
  await until(() => close.status === "closed", "the stream to close");

  assert.equal(asked, 1);
  assert.deepEqual(errors, [
    { kind: "http", status: 401, willRetry: true, retryInMs: 0 },
    { kind: "http", status: 401, willRetry: false, retryInMs: null },
  ]);
  assert.equal(streamRequests(proxy, "/sse/user/ada/notification").length, 2);
});

test("a token in the headers function reaches the route's authorize hook", async (t) => {
  const app = await game(t);
  const gameId = await app.createGame();
  await app.join(gameId, "ada");
  const tokens = { ada: await app.token("ada"), bob: await app.token("bob") };
  let calls = 0;
  const texts: string[] = [];
  const close = subscribeNotification(
    "ada",
    { onEvent: (notification) => texts.push(notification.text) },
    options(app.url, {
      headers: async () => {
        calls += 1;
        return { authorization: `Bearer ${await Promise.resolve(tokens.ada)}` };
      },
    }),
  );
  t.after(close);
  const errors: SseError[] = [];
  const bob = subscribeNotification(
    "ada",
    { onError: (error) => errors.push(error) },
    options(app.url, { headers: { authorization: `Bearer ${tokens.bob}` } }),
  );
  t.after(bob);
  await until(() => close.status === "open" && bob.status === "closed", "ada's stream to open, bob's to be refused");
  await app.score(gameId, "ada", 1);
  await until(() => texts.length === 1, "ada's notification");

  assert.equal(calls, 1);
  assert.deepEqual(errors, [{ kind: "http", status: 403, willRetry: false, retryInMs: null }]);
});

test("the server's retry hint starts the backoff window", async (t) => {
  const app = await game(t, { retryMs: 500 });
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  const errors: SseError[] = [];
  let opened = 0;
  // Without the hint the first window would be a minute: a wait under 500 ms is then a 1 in 120 chance.
  const close = subscribeSystemAnnouncement(
    { onOpen: () => (opened += 1), onError: (error) => errors.push(error) },
    options(proxy.url, { reconnectDelayMs: 60_000, maxReconnectDelayMs: 60_000 }),
  );
  t.after(close);
  for (let cut = 1; cut <= 5; cut += 1) {
    await until(() => opened === cut, `the stream to open (${cut})`);
    proxy.cut();
    proxy.restore();
  }
  await until(() => opened === 6, "the stream to open again");

  assert.equal(errors.length, 5);
  for (const error of errors) {
    assert.ok(error.kind === "connection" && error.willRetry, JSON.stringify(error));
    assert.ok(error.retryInMs !== null && error.retryInMs <= 500, `waited ${error.retryInMs} ms`);
  }
});

test("100 clients reconnecting after a server restart spread over the backoff window", async (t) => {
  const retryMs = 1000;
  let app = await startGame({ retryMs });
  t.after(() => app.stop());
  const proxy = await startProxy(app.url);
  t.after(() => proxy.close());
  const clients = Array.from({ length: 100 }, () => {
    const client = { opened: 0, waits: [] as number[], close: () => {} };
    client.close = subscribeSystemAnnouncement(
      {
        onOpen: () => (client.opened += 1),
        onError: (error) => {
          if (error.kind !== "decode" && error.retryInMs !== null) client.waits.push(error.retryInMs);
        },
      },
      options(proxy.url),
    );
    return client;
  });
  t.after(() => clients.forEach((client) => client.close()));
  await until(() => clients.every((client) => client.opened === 1), "100 streams to open", 10_000);

  // A rolling restart: the new instance is up when the old one shuts down and ends its streams.
  const next = await startGame({ retryMs });
  proxy.retarget(next.url);
  const stopped = performance.now();
  await app.stop();
  app = next;
  await until(() => clients.every((client) => client.opened === 2), "100 streams to open again", 10_000);

  const waits = clients.map((client) => client.waits[0] ?? -1).sort((a, b) => a - b);
  assert.ok(waits.every((wait) => wait >= 0 && wait < retryMs), `every first wait is within the window: ${waits.join(" ")}`);
  // Full jitter: uniform over the window. 100 draws within half of it has a chance of 2^-99.
  assert.ok(waits.at(-1)! - waits[0]! > retryMs / 2, `waits spread: ${waits[0]}..${waits.at(-1)} ms`);
  const arrivals = proxy.received
    .filter((request) => request.at > stopped && request.line.startsWith("GET /sse/system/"))
    .map((request) => Math.round(request.at - stopped))
    .sort((a, b) => a - b);
  const quantile = (q: number) => arrivals[Math.min(arrivals.length - 1, Math.floor(q * arrivals.length))];
  t.diagnostic(
    `100 clients, retry ${retryMs} ms: reconnects arrived ${arrivals[0]}..${arrivals.at(-1)} ms after the restart ` +
      `(p10 ${quantile(0.1)}, p50 ${quantile(0.5)}, p90 ${quantile(0.9)}); planned waits ${waits[0]}..${waits.at(-1)} ms`,
  );
});

for (const transport of Object.keys(TRANSPORTS)) {
  // `EventSource` sends no header: the notifications, which need the login cookie, go by `fetch`
  // only; the game, whose lobby lists the logged-in user, gets the cookie as a browser's
  // `EventSource` sends it.
  const withNotes = transport === "fetch";
  test(`${transport}: one multiplexed connection for a game, the announcements${withNotes ? " and a user's notifications" : ""} survives a dropped connection: every event once`, async (t) => {
    const app = await game(t);
    const proxy = await startProxy(app.url);
    t.after(() => proxy.close());
    const cookie = await app.login("ada");
    const gameId = await app.createGame();
    const transportOptions: SseOptions = withNotes ? {} : { EventSource: eventSourceWithCookie(cookie) };

    const seen: string[] = [];
    const errors: SseError[] = [];
    const statuses: SseStatus[] = [];
    let opened = 0;
    let snapshots = 0;
    let gaps = 0;
    const mux = subscribeMux(
      "/sse/page",
      [
        muxSystemAnnouncement({ onEvent: (announcement, id) => seen.push(`${id} ${announcement.text}`) }),
        ...(withNotes ? [muxNotification("ada", { onEvent: (note) => seen.push(`note ${note.text}`) })] : []),
        muxGameEvent(gameId, {
          onSnapshot: () => (snapshots += 1),
          onEvent: (message, id) => seen.push(`${id} ${describe(message)}`),
          onGap: () => (gaps += 1),
        }),
      ],
      {
        onOpen: () => (opened += 1),
        onError: (error) => errors.push(error),
        onStatusChange: (status) => statuses.push(status),
      },
      options(proxy.url, { ...transportOptions, headers: { cookie } }),
    );
    t.after(() => mux.close());
    await until(() => opened === 1 && snapshots === 1, "the stream to open");
    assert.equal(mux.status, "open");

    const expected: string[] = [];
    expected.push(`${await app.join(gameId, "ada")} ada joined`);
    expected.push(`${await app.announce("hello")} hello`);
    await until(() => seen.length === 2, "the first 2 events");

    proxy.cut();
    // At least one: a reconnect drawn within the first milliseconds of the backoff window
    // fails too, while the proxy is still cut.
    await until(() => errors.length >= 1, "the client to see the connection fail");
    // Published straight to the server while the client is cut off: it must get them from history.
    expected.push(`${await app.join(gameId, "bob")} bob joined`);
    expected.push(`${await app.score(gameId, "ada", 3)} ada has 3`);
    if (withNotes) expected.push("note you have 3 points in game " + gameId);
    expected.push(`${await app.announce("while away")} while away`);
    proxy.restore();
    await until(() => seen.length >= expected.length, "the events published while away");
    expected.push(`${await app.leave(gameId, "bob")} bob left`);
    await until(() => seen.length >= expected.length, "live events after the resume");
    await sleep(100); // and no more

    // Per channel in publish order, each once; channels interleave as the server sent them.
    const only = (list: string[], test: (line: string) => boolean) => list.filter(test);
    for (const channel of [/ (ada|bob) /, /^note /, /^\d+-\d+(-\d+)? (hello|while away)$/]) {
      const pick = (line: string) => channel.test(line);
      assert.deepEqual(only(seen, pick), only(expected, pick));
    }
    assert.equal(seen.length, expected.length, "no event twice");
    assert.equal(gaps, 0);
    assert.equal(snapshots, 1, "a resuming connection gets no snapshot");
    assert.deepEqual(statuses, ["open", "reconnecting", "open"]);
    const streams = streamRequests(proxy, "/sse/page");
    assert.ok(streams.length >= 2);
    const query = withNotes
      ? `/sse/page?SystemAnnouncement&Notification=ada&GameEvent=${gameId}`
      : `/sse/page?SystemAnnouncement&GameEvent=${gameId}`;
    for (const request of streams) assert.ok(request.line.startsWith(`GET ${query}`), request.line);
    // The reconnect carried the cursor: the last frame's event id, then the cursor.
    assert.match(sentId(streams.at(-1)) ?? "", /^\d+-\d+(-\d+)?\.[A-Za-z0-9_-]+$/);
  });
}

test("a cursor the server refuses is dropped: each channel gets a gap, then the stream starts live with its snapshot", async (t) => {
  const app = await game(t);
  const gameId = await app.createGame();

  const errors: SseError[] = [];
  const gaps: unknown[] = [];
  let snapshots = 0;
  let opened = 0;
  const mux = subscribeMux(
    "/sse/page",
    [
      muxSystemAnnouncement({ onGap: (gap) => gaps.push(gap) }),
      muxGameEvent(gameId, { onSnapshot: () => (snapshots += 1), onGap: (gap) => gaps.push(gap) }),
    ],
    { onOpen: () => (opened += 1), onError: (error) => errors.push(error) },
    // A cursor of another route (or of an older version of this one): not one this route wrote.
    options(app.url, { lastEventId: "1700000000000-0.AAAAAAAAAAAAAAAA", headers: { cookie: await app.login("ada") } }),
  );
  t.after(() => mux.close());
  await until(() => opened === 1 && snapshots === 1, "the stream to open afresh");
  assert.deepEqual(errors, [{ kind: "http", status: 400, willRetry: true, retryInMs: 0 }]);
  assert.deepEqual(gaps, [{ missed: null }, { missed: null }]);
  assert.equal(mux.status, "open");
});

test("a multiplexed request the server refuses without a cursor stops: 400, no retry", async (t) => {
  const app = await game(t);
  const errors: SseError[] = [];
  // A key that is not a game id: the query is refused whatever the cursor.
  const mux = subscribeMux("/sse/page", [muxGameEvent(Number.NaN, {})], { onError: (error) => errors.push(error) }, options(app.url));
  t.after(() => mux.close());
  await until(() => errors.length === 1, "the refusal");
  assert.deepEqual(errors, [{ kind: "http", status: 400, willRetry: false, retryInMs: null }]);
  assert.equal(mux.status, "closed");
});

/** Who the game's lobby lists now, `name×connections`, oldest first: the list a new spectator gets. */
async function lobbyNow(app: Game, gameId: number): Promise<string[]> {
  return new Promise((resolve) => {
    const close = subscribeGameEvent(
      gameId,
      {
        onPresence(members) {
          close();
          resolve(members.map(({ member, connections }) => `${member.name}×${connections}`));
        },
      },
      options(app.url),
    );
  });
}

/**
 * Opens the page's stream on `app` for game `gameId` as the game page does, logged in with
 * `cookie`; pushes each lobby list it gets (the players' names) to `seen`. Closed after the test.
 */
function openPage(t: After, app: Game, gameId: number, cookie: string, seen: string[][] = []): SseMux {
  const mux = subscribeMux(
    "/sse/page",
    [muxGameEvent(gameId, { onPresence: (members) => seen.push(members.map(({ member }) => member.name)) })],
    {},
    options(app.url, { headers: { cookie } }),
  );
  t.after(() => mux.close());
  return mux;
}

for (const [transport, transportOptions] of Object.entries(TRANSPORTS)) {
  test(`${transport}: the game's lobby through the generated client: who is connected, then each join and leave, a player with two pages once`, async (t) => {
    const app = await game(t);
    const gameId = await app.createGame();
    const cookies = { ada: await app.login("ada"), bob: await app.login("bob") };

    // A spectator, on the game's own route: told who is in the lobby, not listed in it.
    const lists: string[][] = [];
    const changes: string[] = [];
    const events: string[] = [];
    const spectator = subscribeGameEvent(
      gameId,
      {
        onPresence: (members) => lists.push(members.map(({ member }) => member.name)),
        onJoin(player, since) {
          assert.ok(since > 0 && since <= Date.now(), `since ${since}`);
          changes.push(`join ${player.name}`);
        },
        onLeave: (player) => changes.push(`leave ${player.name}`),
        onEvent: (message) => events.push(describe(message)),
      },
      options(app.url, transportOptions),
    );
    t.after(spectator);
    await until(() => lists.length === 1, "the spectator's lobby");
    assert.deepEqual(lists, [[]]);

    // The page's stream, as the game page opens it: the player is whoever its login cookie says.
    const adaSees: string[][] = [];
    const adaFirst = openPage(t, app, gameId, cookies.ada, adaSees);
    await until(() => changes.length === 1, "ada's join");
    assert.deepEqual(adaSees, [["ada"]], "a page lists its own player, and gets no join of its own");
    const adaSecond = openPage(t, app, gameId, cookies.ada);
    const bobSees: string[][] = [];
    const bobPage = openPage(t, app, gameId, cookies.bob, bobSees);
    await until(() => changes.length === 2 && bobSees.length === 1, "bob's join");
    assert.deepEqual(changes, ["join ada", "join bob"], "ada's second page is no second join");
    assert.deepEqual(bobSees, [["ada", "bob"]], "oldest first");
    assert.deepEqual(await lobbyNow(app, gameId), ["ada×2", "bob×1"]);

    adaFirst.close();
    const deadline = Date.now() + 5000;
    while ((await lobbyNow(app, gameId)).join() !== "ada×1,bob×1") {
      assert.ok(Date.now() < deadline, "ada's first page to close on the server");
    }
    bobPage.close();
    await until(() => changes.length === 3, "bob's leave");
    assert.deepEqual(changes, ["join ada", "join bob", "leave bob"], "ada stays while one page is open");
    adaSecond.close();
    await until(() => changes.length === 4, "ada's leave");
    assert.deepEqual(changes, ["join ada", "join bob", "leave bob", "leave ada"]);
    assert.deepEqual(await lobbyNow(app, gameId), []);

    // The game's own events still reach `onEvent`, which never sees the lobby's.
    await app.join(gameId, "ada");
    await until(() => events.length === 1, "the game event");
    assert.deepEqual(events, ["ada joined"]);
    assert.deepEqual(lists, [[]], "one lobby list per connect");
  });
}

test("on Redis, a game's lobby lists the players of two instances, and each one's joins and leaves reach the other", async (t) => {
  const redis = await startRedis();
  const a = await startGame({ redis: redis.url });
  const b = await startGame({ redis: redis.url });
  t.after(async () => {
    await a.stop();
    await b.stop();
    await redis.stop();
  });
  const gameId = await a.createGame();

  const lists: string[][] = [];
  const changes: string[] = [];
  const spectator = subscribeGameEvent(
    gameId,
    {
      onPresence: (members) => lists.push(members.map(({ member }) => member.name)),
      onJoin: (player) => changes.push(`join ${player.name}`),
      onLeave: (player) => changes.push(`leave ${player.name}`),
    },
    options(a.url),
  );
  t.after(spectator);
  await until(() => lists.length === 1, "the spectator's lobby");

  // Each instance signs its own logins: each player logs in where their page connects.
  const adaPage = openPage(t, b, gameId, await b.login("ada"));
  await until(() => changes.length === 1, "ada's join, from the other instance");
  const bobSees: string[][] = [];
  const bobPage = openPage(t, a, gameId, await a.login("bob"), bobSees);
  await until(() => changes.length === 2 && bobSees.length === 1, "bob's join");
  assert.deepEqual(bobSees, [["ada", "bob"]], "a page on one instance lists the player on the other");
  assert.deepEqual(await lobbyNow(b, gameId), ["ada×1", "bob×1"]);

  adaPage.close();
  await until(() => changes.length === 3, "ada's leave, from the other instance");
  bobPage.close();
  await until(() => changes.length === 4, "bob's leave");
  assert.deepEqual(lists, [[]]);
  assert.deepEqual(changes, ["join ada", "join bob", "leave ada", "leave bob"]);
});
