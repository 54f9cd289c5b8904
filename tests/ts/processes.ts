// Helper processes of the tests: a free port, a spawned command, and a private redis-server.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createConnection, createServer } from "node:net";

const REDIS_SERVER = process.env["REDIS_SERVER"] ?? "redis-server";

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Spawns `command`, killed by `stop`. */
export function start(command: string, args: string[]): { child: ChildProcess; stop: () => Promise<void> } {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"] });
  return {
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill();
        await once(child, "exit");
      }
    },
  };
}

/** Whether something accepts TCP connections on `port` of the loopback interface. */
async function listening(port: number): Promise<boolean> {
  const socket = createConnection({ host: "127.0.0.1", port });
  try {
    await once(socket, "connect");
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/**
 * A redis-server of its own (`REDIS_SERVER`, default `redis-server` on the PATH), on a free port,
 * without persistence; resolves once it accepts connections, within 10 seconds.
 */
export async function startRedis(): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const redis = start(REDIS_SERVER, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (Date.now() > deadline || redis.child.exitCode !== null) {
      await redis.stop();
      throw new Error(`${REDIS_SERVER} did not listen on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url: `redis://127.0.0.1:${port}`, stop: redis.stop };
}
