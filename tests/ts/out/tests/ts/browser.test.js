// Headless Chromium (Debian's, driven by playwright-core; no browser download) loads the example
// server's page, which uses the generated client in its .js + .d.ts form, and sees live events
// published through the server's HTTP API, also across a dropped connection.
import assert from "node:assert/strict";
import { test } from "node:test";
import { chromium } from "playwright-core";
import { startServer } from "./server.js";
const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
test("a page sees live events through the generated client", { timeout: 60_000 }, async (t) => {
    const app = await startServer();
    t.after(() => app.stop());
    await app.publish("game-event", { playerJoined: { gameId: 7, playerName: "ada" } });
    const browser = await chromium.launch({
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
    t.after(() => browser.close());
    const page = await browser.newPage();
    const problems = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
        if (message.type() === "error")
            problems.push(`console: ${message.text()}`);
    });
    const log = page.locator("#log li");
    const shows = async (count) => {
        await page.waitForFunction((n) => document.querySelectorAll("#log li").length >= n, count, { timeout: 10_000 });
    };
    await page.goto(`${app.url}/?game=7`);
    await page.waitForFunction(() => document.getElementById("open")?.textContent === "2", null, { timeout: 10_000 });
    await shows(1);
    await app.publish("game-event", { playerJoined: { gameId: 7, playerName: "bob" } });
    await app.publish("game-event", { scoreChanged: { gameId: 7, playerName: "bob", score: 5 } });
    await shows(3);
    await app.publish("announcement", { text: "hi" });
    await shows(4);
    // The server drops every stream; what is published meanwhile arrives once the page reopens.
    await app.drop();
    await app.publish("game-event", { playerJoined: { gameId: 7, playerName: "carol" } });
    await shows(5);
    await page.waitForFunction(() => document.getElementById("open")?.textContent === "4", null, { timeout: 10_000 });
    assert.deepEqual(await log.allTextContents(), [
        "players: ada",
        "bob joined",
        "bob has 5 points",
        "announcement: hi",
        "carol joined",
    ]);
    // Connection errors during the drop are expected; anything else is not. Chromium logs the
    // dropped EventSource as a console error on some versions, so only page errors count.
    assert.deepEqual(problems.filter((problem) => problem.startsWith("page error")), []);
});
