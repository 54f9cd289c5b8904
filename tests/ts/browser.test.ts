// Headless Chromium (Debian's, driven by playwright-core; no browser download) loads the game
// example's page, which uses the generated client in its .js + .d.ts form: a user logs in,
// creates and joins a game through the page, and sees the events published through the server's
// HTTP API appear live, also across a lost connection. The page goes through a TCP proxy that
// the test cuts, while the test publishes straight to the server.
import assert from "node:assert/strict";
import { test } from "node:test";

import { chromium, type Browser, type Page } from "playwright-core";

import { startProxy, type Proxy } from "./proxy.js";
import { startGame } from "./server.js";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";

/** What the page shows; list items without their time, oldest first. */
interface Shown {
  status: string;
  me: string;
  round: string;
  players: string[];
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
      events: log.filter((line) => line.startsWith("#")).map((line) => line.slice(1)),
      snapshots: log.filter((line) => line.startsWith("snapshot:")).length,
      announcements: untimed("#announcements li"),
      notifications: untimed("#notifications li"),
    };
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
  browser = await chromium.launch({
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
  const page = await browser.newPage({ locale: "en-GB" });
  // Counts the page's open EventSources, and the most it ever held at once.
  await page.addInitScript(() => {
    const counts = { open: 0, most: 0 };
    (window as unknown as { sseCounts: typeof counts }).sseCounts = counts;
    const Native = window.EventSource;
    window.EventSource = class extends Native {
      #open = true;
      constructor(url: string | URL, init?: EventSourceInit) {
        super(url, init);
        counts.open += 1;
        counts.most = Math.max(counts.most, counts.open);
      }
      override close() {
        if (this.#open) counts.open -= 1;
        this.#open = false;
        super.close();
      }
    };
  });
  const sseCounts = () =>
    page.evaluate(() => (window as unknown as { sseCounts: { open: number; most: number } }).sseCounts);
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
  // One connection for the game, the announcements and the notifications, reopened with the
  // cursor of all three.
  assert.deepEqual(await sseCounts(), { open: 1, most: 1 });
  const streams = proxy.requests.filter((line) => line.startsWith("GET /sse/"));
  for (const line of streams) assert.ok(line.startsWith("GET /sse/page?SystemAnnouncement"), line);
  const reopened = `GET /sse/page?SystemAnnouncement&Notification=ada&GameEvent=${gameId}&lastEventId=`;
  assert.ok(streams.at(-1)?.startsWith(reopened), `the page reopened its stream with ${reopened}..`);
  // Chromium reports the lost connections as console errors; only errors of the page's own code count.
  assert.deepEqual(problems, []);
});
