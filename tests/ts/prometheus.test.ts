// A real Prometheus (Debian's `prometheus`, on a free port with a temporary configuration and
// storage, scraping every second) scrapes the game example on its own redis-server during a short
// load run: SSE clients on a game's stream, a publisher, a resume with an id ahead of the stream (a
// gap) and a request the route refuses. Every query of the Grafana dashboard in docs/grafana/ is
// then run through Prometheus's HTTP API and must answer the series it documents. Headless
// Chromium takes a picture of Prometheus's own graph page of the first five queries, written to
// the path in STATELESSE_SCREENSHOT when set (docs/observability-prometheus.png is one).
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { EventSource } from "eventsource";
import { chromium, type Browser } from "playwright-core";

import { freePort, start, startRedis } from "./processes.js";
import { startGame, type Game } from "./server.js";

const CHROMIUM = process.env["CHROMIUM"] ?? "/usr/bin/chromium";
const PROMETHEUS = process.env["PROMETHEUS"] ?? "prometheus";
const CLIENTS = 20;
const LOAD_SECONDS = 8;

interface Panel {
  title: string;
  targets: { expr: string }[];
}

/** Retries `check` until it returns without throwing, for up to `timeoutMs`. */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** One instant query's result: each series' labels and value. */
async function query(prometheus: string, expr: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const response = await fetch(`${prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await response.json()) as {
    status: string;
    data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    error?: string;
  };
  assert.equal(body.status, "success", `${expr}: ${body.error ?? ""}`);
  assert.equal(body.data?.resultType, "vector", expr);
  return (body.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

/** What each dashboard query must answer after the load run, by panel title. */
const EXPECTED: Record<string, (series: { metric: Record<string, string>; value: number }[]) => void> = {
  "Deliveries per second": (series) => {
    const game = series.find((s) => s.metric["domain"] === "game" && s.metric["event"] === "GameEvent");
    assert.ok(game !== undefined && game.value > 0, JSON.stringify(series));
  },
  "p99 publish-to-delivery latency": (series) => {
    const game = series.find((s) => s.metric["domain"] === "game" && s.metric["event"] === "GameEvent");
    assert.ok(game !== undefined && Number.isFinite(game.value) && game.value >= 0, JSON.stringify(series));
  },
  "Open SSE connections": (series) => {
    const game = series.find((s) => s.metric["domain"] === "game" && s.metric["event"] === "GameEvent");
    assert.ok(game !== undefined && game.value >= CLIENTS, JSON.stringify(series));
  },
  "Gaps in the last 5 minutes, by cause": (series) => {
    const ahead = series.find((s) => s.metric["cause"] === "id_ahead");
    assert.ok(ahead !== undefined && ahead.value > 0, JSON.stringify(series));
  },
  "Redis pub/sub connected (every instance: 1)": (series) => {
    assert.deepEqual(
      series.map((s) => s.value),
      [1],
    );
  },
  "Publishes per second": (series) => {
    const game = series.find((s) => s.metric["domain"] === "game" && s.metric["event"] === "GameEvent");
    assert.ok(game !== undefined && game.value > 0, JSON.stringify(series));
  },
  "Connections rejected per second, by reason": (series) => {
    const denied = series.find((s) => s.metric["reason"] === "denied");
    assert.ok(denied !== undefined && denied.value > 0, JSON.stringify(series));
  },
};

test("Prometheus scrapes the game's documented series during a load run", { timeout: 120_000 }, async (t) => {
  const dashboard = JSON.parse(await readFile("docs/grafana/statelesse-dashboard.json", "utf8")) as { panels: Panel[] };
  const panels = dashboard.panels.map((panel) => ({ title: panel.title, expr: panel.targets[0]?.expr ?? "" }));
  assert.deepEqual(
    panels.map((p) => p.title).sort(),
    Object.keys(EXPECTED).sort(),
    "every dashboard query is checked",
  );

  const dir = await mkdtemp(join(tmpdir(), "statelesse-prometheus-"));
  const redis = await startRedis();
  let game: Game | undefined;
  let prometheus: { stop: () => Promise<void> } | undefined;
  let browser: Browser | undefined;
  const clients: EventSource[] = [];
  t.after(async () => {
    for (const client of clients) client.close();
    await browser?.close();
    await prometheus?.stop();
    await game?.stop();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });

  game = await startGame({ redis: redis.url });
  const target = new URL(game.url).host;
  await writeFile(
    join(dir, "prometheus.yml"),
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: game",
      "    static_configs:",
      `      - targets: ["${target}"]`,
      "",
    ].join("\n"),
  );
  const promPort = await freePort();
  const promUrl = `http://127.0.0.1:${promPort}`;
  prometheus = start(PROMETHEUS, [
    `--config.file=${join(dir, "prometheus.yml")}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    "--log.level=warn",
  ]);
  await eventually(async () => assert.equal((await fetch(`${promUrl}/-/ready`)).status, 200));
  // A first scrape before the load, so that each counter's first increase is seen.
  await eventually(async () => assert.deepEqual((await query(promUrl, 'up{job="game"}')).map((s) => s.value), [1]));

  // The load: clients on one game's stream, a publisher, a resume from the future, a refusal.
  const gameId = await game.createGame();
  let received = 0;
  for (let i = 0; i < CLIENTS; i += 1) {
    const client = new EventSource(`${game.url}/sse/game/${gameId}`);
    client.addEventListener("ScoreChanged", () => (received += 1));
    clients.push(client);
  }
  await game.join(gameId, "ada");
  const ahead = await fetch(`${game.url}/sse/game/${gameId}?lastEventId=99999999999999-0`);
  const reader = ahead.body?.getReader();
  await reader?.read();
  await reader?.cancel();
  const refused = await fetch(`${game.url}/sse/user/ada/notification`);
  assert.equal(refused.status, 401);
  await refused.body?.cancel();
  const until = Date.now() + LOAD_SECONDS * 1000;
  let points = 0;
  while (Date.now() < until) {
    points += 1;
    await game.score(gameId, "ada", 1);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(received > 0, "the clients received events");

  for (const { title, expr } of panels) {
    await eventually(async () => EXPECTED[title]?.(await query(promUrl, expr)));
  }
  assert.ok(points > 0);

  // Prometheus's own graph page of the five series, over the load run.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const graphs = panels
    .slice(0, 5)
    .map(({ expr }, i) => `g${i}.expr=${encodeURIComponent(expr)}&g${i}.tab=0&g${i}.range_input=1m`)
    .join("&");
  await page.goto(`${promUrl}/classic/graph?${graphs}`);
  await page.waitForFunction((count) => document.querySelectorAll(".graph svg path").length >= count, 5);
  // The navigation bar is fixed to the top: in a full-page picture it would cover a graph.
  await page.addStyleTag({ content: "nav.navbar { position: static !important; }" });
  const screenshot = await page.screenshot({ fullPage: true });
  assert.ok(screenshot.length > 10_000, "a picture of the graphs");
  const path = process.env["STATELESSE_SCREENSHOT"];
  if (path !== undefined && path !== "") await writeFile(path, screenshot);
});
