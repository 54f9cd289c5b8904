// Headless Chromium (Debian's, driven by playwright-core; no browser download) loads the game
// example's page, which uses the generated client in its .js + .d.ts form: a user logs in,
// creates and joins a game through the page, and sees the events published through the server's
// HTTP API appear live, also across a lost connection. The page goes through a TCP proxy that
// the test cuts, while the test publishes straight to the server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { chromium, type Browser, type Page } from "playwright-core";

import { subscribeGameEvent } from "#game/events.js";
import { startProxy, type Proxy } from "./proxy.js";
import { startGame } from "./server.js";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";

/** What the page shows; list items without their time, oldest first. */
interface Shown {
  status: string;
  me: string;
  round: string;
  players: string[];
  /** Who the lobby lists as connected to the game. */
  lobby: string[];
  /** The game log's event lines, `{id} {text}`. */
  events: string[];
  snapshots: number;
  announcements: string[];
  notifications: string[];
}

async function shown(page: Page): Promise<Shown> {
  return page.evaluate(() => {
    const texts = (selector: string) =>
      Array.from(document.querySelectorAll(selector), (item) => item.textContent ?? "").reverse();
    // Each list item starts with the time (`en-GB`: `14:03:59`).
    const untimed = (selector: string) => texts(selector).map((text) => text.slice(text.indexOf(" ") + 1));
    const log = untimed("#log li");
    return {
      status: document.getElementById("status")?.dataset["state"] ?? "",
      me: document.getElementById("me")?.textContent ?? "",
      round: document.getElementById("round")?.textContent ?? "",
      players: Array.from(document.querySelectorAll("#players tr"), (row) =>
        Array.from(row.querySelectorAll("td"), (cell) => cell.textContent).join(": "),
      ),
      lobby: Array.from(document.querySelectorAll("#lobby li"), (item) => item.textContent ?? ""),
      events: log.filter((line) => line.startsWith("#")).map((line) => line.slice(1)),
      snapshots: log.filter((line) => line.startsWith("snapshot:")).length,
      announcements: untimed("#announcements li"),
      notifications: untimed("#notifications li"),
    };
  });
}

/** Who the game's lobby lists now, `name×connections`: the list a new spectator (in Node) gets. */
function lobbyNow(url: string, gameId: number): Promise<string[]> {
  return new Promise((resolve) => {
    const close = subscribeGameEvent(
      gameId,
      {
        onPresence(members) {
          close();
          resolve(members.map(({ member, connections }) => `${member.name}×${connections}`));
        },
      },
      { baseUrl: url },
    );
  });
}

/** Retries `check` until it passes, for up to `timeoutMs`. */
async function eventually(check: () => Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

test("the game page shows live events through the generated client, across a lost connection", { timeout: 60_000 }, async (t) => {
  const app = await startGame();
  let proxy: Proxy | undefined;
  let browser: Browser | undefined;
  // The browser first, so that it does not reconnect to a stopped server meanwhile.
  t.after(async () => {
    await browser?.close();
    await proxy?.close();
    await app.stop();
  });
  proxy = await startProxy(app.url);
  browser = await launch();
  const page = await browser.newPage({ locale: "en-GB" });
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));

  // Through the page: log in, create a game, join it.
  await page.goto(proxy.url);
  await page.fill("#login input[name=player]", "ada");
  await page.click("#login button");
  await eventually(async () => assert.equal((await shown(page)).me, "logged in as ada"));
  await page.click("#create");
  await page.waitForSelector("#game:not([hidden])");
  const gameId = Number(await page.textContent("#game-id"));
  assert.ok(gameId > 0);
  await eventually(async () => assert.equal((await shown(page)).status, "open"));
  await page.click("#join");
  await eventually(async () => assert.deepEqual((await shown(page)).players, ["ada (you): 0"]));
  const adaJoined = (await shown(page)).events[0] ?? "";
  assert.match(adaJoined, /^\d+-\d+ ada joined$/);

  // Through the API, straight to the server: the page shows each event as it happens.
  const events = [adaJoined];
  events.push(`${await app.join(gameId, "bob")} bob joined`);
  events.push(`${await app.score(gameId, "bob", 5)} bob has 5 points`);
  events.push(`${await app.startRound(gameId)} round 1 started`);
  events.push(`${await app.score(gameId, "ada", 1)} ada has 1 point`);
  await app.announce("hello everyone");
  await eventually(async () => {
    const now = await shown(page);
    assert.deepEqual(now.players, ["ada (you): 1", "bob: 5"]);
    assert.equal(now.round, "1");
    assert.deepEqual(now.events, events);
    assert.deepEqual(now.announcements, [`game ${gameId} is open`, "hello everyone"]);
    assert.deepEqual(now.notifications, [`you have 1 point in game ${gameId}`]);
  });

  // One connection carries the game, the announcements and the notifications.
  await eventually(async () => assert.equal(proxy.openStreams(), 1, "the page holds one event-stream connection"));
  // The connection is lost; what is published meanwhile arrives once the page has reconnected.
  proxy.cut();
  await eventually(async () => assert.equal((await shown(page)).status, "reconnecting"));
  events.push(`${await app.join(gameId, "carol")} carol joined`);
  events.push(`${await app.leave(gameId, "bob")} bob left`);
  events.push(`${await app.score(gameId, "ada", 1)} ada has 2 points`);
  await app.announce("while you were away");
  proxy.restore();
  await eventually(async () => {
    const now = await shown(page);
    assert.equal(now.status, "open");
    assert.deepEqual(now.players, ["ada (you): 2", "carol: 0"]);
    assert.deepEqual(now.events, events, "every event once, in order");
    assert.deepEqual(now.announcements, [`game ${gameId} is open`, "hello everyone", "while you were away"]);
    assert.deepEqual(now.notifications, [
      `you have 1 point in game ${gameId}`,
      `you have 2 points in game ${gameId}`,
    ]);
  });
  assert.equal((await shown(page)).snapshots, 1, "a resuming stream gets no snapshot");
  await eventually(async () => assert.equal(proxy.openStreams(), 1, "the page holds one event-stream connection again"));
  // One connection for the game, the announcements and the notifications, reopened with the
  // cursor of all three (the last event's id, then the cursor) in `Last-Event-ID`.
  const streams = proxy.received.filter((request) => request.line.startsWith("GET /sse/"));
  for (const request of streams) assert.ok(request.line.startsWith("GET /sse/page?SystemAnnouncement"), request.line);
  const reopened = streams.at(-1);
  assert.equal(reopened?.line, `GET /sse/page?SystemAnnouncement&Notification=ada&GameEvent=${gameId} HTTP/1.1`);
  assert.match(String(reopened?.headers["last-event-id"]), /^\d+-\d+(-\d+)?\.[A-Za-z0-9_-]+$/);
  // Chromium reports the lost connections as console errors; only errors of the page's own code count.
  assert.deepEqual(problems, []);
});

test("the lobby lists who is connected to the game, live: a second player connects, opens a second tab, and disconnects", { timeout: 60_000 }, async (t) => {
  const app = await startGame();
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await app.stop();
  });
  const problems: string[] = [];
  /** A player's browser: its own cookies, so its own login. */
  const player = async (name: string, path = "/") => {
    const context = await browser.newContext({ locale: "en-GB" });
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    await page.goto(app.url + path);
    await page.fill("#login input[name=player]", name);
    await page.click("#login button");
    await eventually(async () => assert.equal((await shown(page)).me, `logged in as ${name}`));
    return { context, page };
  };

  const ada = await player("ada");
  await ada.page.click("#create");
  await ada.page.waitForSelector("#game:not([hidden])");
  const gameId = Number(await ada.page.textContent("#game-id"));
  await eventually(async () => assert.deepEqual((await shown(ada.page)).lobby, ["ada (you)"]));

  // Bob opens the game's link and logs in: both pages list both, the oldest first.
  const bob = await player("bob", `/?game=${gameId}`);
  await eventually(async () => assert.deepEqual((await shown(bob.page)).lobby, ["ada", "bob (you)"]));
  await eventually(async () => assert.deepEqual((await shown(ada.page)).lobby, ["ada (you)", "bob"]));

  // Bob's second tab (same browser, same login): still one bob.
  const bobTab = await bob.context.newPage();
  await bobTab.goto(`${app.url}/?game=${gameId}`);
  await eventually(async () => assert.deepEqual((await shown(bobTab)).lobby, ["ada", "bob (you)"]));
  assert.deepEqual((await shown(ada.page)).lobby, ["ada (you)", "bob"]);

  // One tab closed (the server counts one connection of bob's): bob is still listed. Both
  // closed: he is gone.
  assert.deepEqual(await lobbyNow(app.url, gameId), ["ada×1", "bob×2"]);
  await bobTab.close();
  await eventually(async () => assert.deepEqual(await lobbyNow(app.url, gameId), ["ada×1", "bob×1"]));
  assert.deepEqual((await shown(ada.page)).lobby, ["ada (you)", "bob"]);
  await bob.context.close();
  await eventually(async () => assert.deepEqual((await shown(ada.page)).lobby, ["ada (you)"]));
  const log = await ada.page.$$eval("#log li", (items) => items.map((item) => item.textContent ?? "").reverse());
  const lobbyLines = log.map((line) => line.slice(line.indexOf(" ") + 1)).filter((line) => / (dis)?connected$/.test(line));
  assert.deepEqual(lobbyLines, ["bob connected", "bob disconnected"], "one join and one leave for bob's two tabs");
  assert.deepEqual(problems, []);
});

/** Opens a keyless stream from the page with the page's client, recording its statuses and errors in `window`. */
async function subscribeInPage(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const url = "/events.js";
    const client = (await import(url)) as typeof import("#game/events.js");
    const record = window as unknown as { statuses: string[]; errors: number };
    record.statuses = [];
    record.errors = 0;
    client.subscribeSystemAnnouncement({
      onStatusChange: (status) => record.statuses.push(status),
      onError: () => (record.errors += 1),
    });
  });
}

async function recorded(page: Page): Promise<{ statuses: string[]; errors: number }> {
  return page.evaluate(() => {
    const record = window as unknown as { statuses: string[]; errors: number };
    return { statuses: [...record.statuses], errors: record.errors };
  });
}

/**
 * Sets `document.visibilityState` as a browser does when its tab is hidden or shown, and fires
 * `visibilitychange`: a headless browser has no tab strip to hide a page with.
 */
async function setVisibility(page: Page, state: "hidden" | "visible"): Promise<void> {
  await page.evaluate((state) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => state === "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
  }, state);
}

test("a hidden tab does not reconnect until it is visible again", { timeout: 60_000 }, async (t) => {
  const app = await startGame();
  const proxy = await startProxy(app.url);
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await proxy.close();
    await app.stop();
  });
  const page = await browser.newPage();
  await page.goto(proxy.url);
  await subscribeInPage(page);
  await eventually(async () => assert.deepEqual((await recorded(page)).statuses, ["open"]));
  const streams = () =>
    proxy.received.filter((request) => /^GET \/sse\/(system\/|page\?)/.test(request.line)).length;
  // The page's own multiplexed stream and this one.
  await eventually(async () => assert.equal(streams(), 2));

  await setVisibility(page, "hidden");
  proxy.cut();
  proxy.restore();
  await eventually(async () => assert.deepEqual((await recorded(page)).statuses, ["open", "reconnecting"]));
  await new Promise((resolve) => setTimeout(resolve, 1000)); // ten retry windows of the server's 100 ms
  assert.equal(streams(), 2, "no request while hidden");
  assert.deepEqual((await recorded(page)).statuses, ["open", "reconnecting"]);

  await setVisibility(page, "visible");
  await eventually(async () => assert.deepEqual((await recorded(page)).statuses, ["open", "reconnecting", "open"]));
  assert.equal(streams(), 4, "both streams reopened once visible");
});

test("an offline page waits for the network instead of retrying", { timeout: 60_000 }, async (t) => {
  const app = await startGame();
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await app.stop();
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(app.url);
  await subscribeInPage(page);
  await eventually(async () => assert.deepEqual((await recorded(page)).statuses, ["open"]));

  await context.setOffline(true);
  await eventually(async () => assert.deepEqual((await recorded(page)).statuses, ["open", "reconnecting"]));
  await new Promise((resolve) => setTimeout(resolve, 1000)); // ten retry windows of the server's 100 ms
  assert.equal((await recorded(page)).errors, 1, "one error: no attempt while offline");

  await context.setOffline(false);
  await eventually(async () => assert.deepEqual((await recorded(page)).statuses, ["open", "reconnecting", "open"]));
});
