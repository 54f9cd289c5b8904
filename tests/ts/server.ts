// Starts the example server (`examples/ts-server`, built by `npm test`'s pretest step) on a free
// port, and drives its HTTP API.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { createInterface } from "node:readline";

export interface Server {
  /** The server's origin, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Publishes `body` (serde's JSON of the event) through `POST /publish/{event}`; returns its id. */
  publish(event: string, body: unknown): Promise<string>;
  /** Ends every open stream, as a lost connection would. */
  drop(): Promise<void>;
  stop(): Promise<void>;
}

export async function startServer(): Promise<Server> {
  const binary = resolve(process.env["CARGO_TARGET_DIR"] ?? "target", "debug", "example-ts-server");
  const child: ChildProcess = spawn(binary, [], {
    env: { ...process.env, ADDR: "127.0.0.1:0" },
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
  const match = /^listening on (http:\/\/\S+)$/.exec(line);
  if (match === null || match[1] === undefined) throw new Error(`unexpected first line: ${line}`);
  const url = match[1];

  const post = async (path: string, body?: unknown): Promise<Response> => {
    const init: RequestInit =
      body === undefined
        ? { method: "POST" }
        : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch(url + path, init);
    if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
    return response;
  };

  return {
    url,
    publish: async (event, body) => (await post(`/publish/${event}`, body)).text(),
    drop: async () => {
      await post("/drop");
    },
    stop: async () => {
      if (child.exitCode === null) {
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
