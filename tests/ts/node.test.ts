// The generated client (examples/ts-server/client/events.ts, written by the example's build.rs)
// in Node, with the `eventsource` package, against the running example server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { EventSource } from "eventsource";

import {
  subscribeAnnouncement,
  subscribeChatMessage,
  subscribeGameEvent,
  type ChatMessage,
  type GameEventMessage,
  type GameSnapshot,
  type SseError,
  type SseOptions,
} from "../../examples/ts-server/client/events.js";
import { startServer, until, type Server } from "./server.js";

async function server(t: { after(fn: () => Promise<void> | void): void }): Promise<Server> {
  const started = await startServer();
  t.after(() => started.stop());
  return started;
}

function options(server: Server): SseOptions {
  return { baseUrl: server.url, EventSource, reconnectDelayMs: 100 };
}

/** Event ids are `{millis}-{seq}`: compares them as numbers. */
function increasing(ids: string[]): boolean {
  const parsed = ids.map((id) => id.split("-").map(BigInt) as [bigint, bigint]);
  return parsed.every(
    ([ms, seq], i) => i === 0 || ms > parsed[i - 1]![0] || (ms === parsed[i - 1]![0] && seq > parsed[i - 1]![1]),
  );
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test("events arrive typed and in order, on a URL-encoded key", async (t) => {
  const app = await server(t);
  const room = "room/1 ?&#=é";
  const received: ChatMessage[] = [];
  const ids: string[] = [];
  let opened = 0;
  const close = subscribeChatMessage(
    room,
    {
      onOpen: () => (opened += 1),
      onEvent(message, id) {
        received.push(message);
        ids.push(id);
      },
    },
    options(app),
  );
  t.after(close);
  await until(() => opened === 1, "the stream to open");

  for (const seq of range(1, 20)) {
    await app.publish("chat-message", { room, seq, text: `message ${seq}` });
  }
  await until(() => received.length === 20, "20 messages");

  assert.deepEqual(
    received.map((message) => message.seq),
    range(1, 20),
  );
  assert.ok(received.every((message) => message.room === room && message.text === `message ${message.seq}`));
  assert.ok(increasing(ids), `ids increase: ${ids.join(" ")}`);
});

test("after the server drops the connection, the client resumes with no gap", async (t) => {
  const app = await server(t);
  const room = "resume";
  const seqs: number[] = [];
  const errors: SseError[] = [];
  let opened = 0;
  let gaps = 0;
  const close = subscribeChatMessage(
    room,
    {
      onOpen: () => (opened += 1),
      onEvent: (message) => seqs.push(message.seq),
      onError: (error) => errors.push(error),
      onGap: () => (gaps += 1),
    },
    options(app),
  );
  t.after(close);
  await until(() => opened === 1, "the stream to open");

  for (const seq of range(1, 5)) await app.publish("chat-message", { room, seq, text: "before" });
  await until(() => seqs.length === 5, "the first 5 messages");

  await app.drop();
  await until(() => errors.length === 1, "the client to see the connection end");
  // Published while the client is disconnected: it must get them from history when it reopens.
  for (const seq of range(6, 10)) await app.publish("chat-message", { room, seq, text: "while away" });
  await until(() => seqs.length >= 10, "the messages published while away");
  for (const seq of range(11, 12)) await app.publish("chat-message", { room, seq, text: "after" });
  await until(() => seqs.length >= 12, "live messages after the resume");

  assert.deepEqual(seqs, range(1, 12), "every message once, in order");
  assert.equal(gaps, 0);
  assert.equal(opened, 2);
  const [error] = errors;
  assert.ok(error !== undefined && error.kind === "connection" && error.willRetry);
});

test("an enum stream has one typed handler per variant, after the snapshot", async (t) => {
  const app = await server(t);
  await app.publish("game-event", { playerJoined: { gameId: 7, playerName: "ada" } });

  const log: string[] = [];
  const messages: GameEventMessage[] = [];
  let opened = 0;
  const close = subscribeGameEvent<GameSnapshot>(
    7,
    {
      onOpen: () => (opened += 1),
      onSnapshot: (snapshot) => log.push(`snapshot ${snapshot.game_id}: ${snapshot.players.join(",")}`),
      onPlayerJoined: (joined) => log.push(`joined ${joined.playerName}`),
      onScoreChanged: (change) => log.push(`score ${change.playerName} ${change.score + 1}`),
      onEvent: (message) => messages.push(message),
    },
    options(app),
  );
  t.after(close);
  await until(() => opened === 1 && log.length === 1, "the snapshot");

  await app.publish("game-event", { playerJoined: { gameId: 7, playerName: "bob" } });
  await app.publish("game-event", { scoreChanged: { gameId: 7, playerName: "bob", score: 41 } });
  await app.publish("game-event", { scoreChanged: { gameId: 8, playerName: "eve", score: 1 } });
  await until(() => log.length === 3, "two events");

  assert.deepEqual(log, ["snapshot 7: ada", "joined bob", "score bob 42"]);
  assert.deepEqual(
    messages.map((message) => message.event),
    ["PlayerJoined", "ScoreChanged"],
  );
  const last = messages[1];
  assert.ok(last !== undefined && last.event === "ScoreChanged" && last.data.score === 41);
});

test("a keyless event's client takes no key, and close stops it", async (t) => {
  const app = await server(t);
  const texts: string[] = [];
  let opened = 0;
  const close = subscribeAnnouncement(
    { onOpen: () => (opened += 1), onEvent: (announcement) => texts.push(announcement.text) },
    options(app),
  );
  await until(() => opened === 1, "the stream to open");
  await app.publish("announcement", { text: "hello" });
  await until(() => texts.length === 1, "the announcement");

  close();
  await app.publish("announcement", { text: "after close" });
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(texts, ["hello"]);
});
