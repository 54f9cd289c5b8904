// Starts the game example (`target/debug/example-game`, built by `npm test`'s pretest step) on a
// free port, in memory, and drives its HTTP API.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { createInterface } from "node:readline";

import type { GameSnapshot } from "#game/events.js";

export interface Game {
  /** The server's origin, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** `POST /api/login`: the `cookie` header value that logs `player` in, e.g. `user=ada`. */
  login(player: string): Promise<string>;
  /** A bearer token of `player`: the signed login cookie's value, which the server also takes as `Authorization: Bearer`. */
  token(player: string): Promise<string>;
  /** `POST /api/games`: a new game's id. */
  createGame(): Promise<number>;
  /** `GET /api/games/{id}`: the game's state. */
  game(gameId: number): Promise<GameSnapshot>;
  /** The API calls that publish a game event; each answers the id of the event on the game's stream. */
  join(gameId: number, player: string): Promise<string>;
  leave(gameId: number, player: string): Promise<string>;
  startRound(gameId: number): Promise<string>;
  score(gameId: number, player: string, points: number): Promise<string>;
  /** `POST /api/announcements`: the announcement's event id. */
  announce(text: string): Promise<string>;
  stop(): Promise<void>;
}

/** How to start the game: its backplane and flags. */
export interface GameFlags {
  /** The Redis at this `redis://` URL; in memory when missing. */
  redis?: string;
  /** `--max-streams`. */
  maxStreams?: number;
  /** `--retry-ms` (the `retry` hint and `Retry-After`); default 100, so that clients reconnect quickly. */
  retryMs?: number;
}

/** Starts the game with `flags`. */
export async function startGame(flags: GameFlags = {}): Promise<Game> {
  const binary = resolve(process.env["CARGO_TARGET_DIR"] ?? "target", "debug", "example-game");
  // The backplane the options say, whatever the environment says; only warnings in the test output.
  const env: NodeJS.ProcessEnv = { ...process.env, RUST_LOG: process.env["RUST_LOG"] ?? "warn" };
  delete env["GAME_REDIS"];
  const args = ["--port", "0", "--retry-ms", String(flags.retryMs ?? 100)];
  if (flags.redis !== undefined) args.push("--redis", flags.redis);
  if (flags.maxStreams !== undefined) args.push("--max-streams", String(flags.maxStreams));
  const child: ChildProcess = spawn(binary, args, {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const stdout = child.stdout;
  if (stdout === null) throw new Error("no stdout");
  const lines = createInterface({ input: stdout });
  const [line] = (await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(([code]) => {
      throw new Error(`${binary} exited with ${String(code)} before listening`);
    }),
  ])) as [string];
  const match = /^listening on (http:\/\/\S+)/.exec(line);
  if (match === null || match[1] === undefined) throw new Error(`unexpected first line: ${line}`);
  const url = match[1];

  const call = async (method: "GET" | "POST", path: string, body?: unknown): Promise<Response> => {
    const init: RequestInit =
      body === undefined
        ? { method }
        : { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch(url + path, init);
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response;
  };
  const post = async <T>(path: string, body?: unknown): Promise<T> =>
    (await (await call("POST", path, body)).json()) as T;

  const login = async (player: string): Promise<string> => {
    const cookie = (await call("POST", "/api/login", { player })).headers.get("set-cookie");
    if (cookie === null) throw new Error("login set no cookie");
    return cookie.split(";")[0] ?? "";
  };

  return {
    url,
    login,
    async token(player) {
      const cookie = await login(player);
      return cookie.slice(cookie.indexOf("=") + 1);
    },
    createGame: async () => (await post<GameSnapshot>("/api/games")).gameId,
    game: async (gameId) => (await (await call("GET", `/api/games/${gameId}`)).json()) as GameSnapshot,
    join: (gameId, player) => post(`/api/games/${gameId}/join`, { player }),
    leave: (gameId, player) => post(`/api/games/${gameId}/leave`, { player }),
    startRound: (gameId) => post(`/api/games/${gameId}/rounds`),
    score: (gameId, player, points) => post(`/api/games/${gameId}/score`, { player, points }),
    announce: (text) => post("/api/announcements", { text }),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill();
        await once(child, "exit");
      }
    },
  };
}

/** Resolves when `condition` holds, polling; rejects after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
