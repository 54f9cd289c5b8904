// A TCP proxy between a client and the game server, that loses every connection on demand: what a
// network failure does to an event stream, without a test-only endpoint in the server.
import { once } from "node:events";
import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";

export interface Proxy {
  /** The proxy's origin, e.g. `http://127.0.0.1:41235`; it forwards to the target's. */
  url: string;
  /** The request line of every HTTP request that went through, e.g. `GET /sse/game/7 HTTP/1.1`. */
  requests: string[];
  /** Every HTTP request that went through: its line, its headers (names in lower case), when it came. */
  received: Received[];
  /** How many open connections carry an event stream (their first request is to `/sse/`). */
  openStreams(): number;
  /** Closes every open connection, and every new one until `restore`. */
  cut(): void;
  /** Forwards new connections again. */
  restore(): void;
  /** Forwards new connections to `target` from now on, e.g. a restarted server. */
  retarget(target: string): void;
  close(): Promise<void>;
}

export interface Received {
  line: string;
  headers: Record<string, string>;
  /** `performance.now()` when its first bytes came. */
  at: number;
}

const REQUEST_LINE = /^[A-Z]+ \S+ HTTP\/1\.[01]$/;

export async function startProxy(target: string): Promise<Proxy> {
  let upstreamUrl = new URL(target);
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  const received: Received[] = [];
  let cut = false;
  const streams = new Set<Socket>();

  const server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: upstreamUrl.hostname, port: Number(upstreamUrl.port) });
    const pair = [client, upstream];
    for (const socket of pair) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        streams.delete(client);
        for (const other of pair) {
          sockets.delete(other);
          other.destroy();
        }
      });
    }
    client.on("data", (chunk: Buffer) => {
      const at = performance.now();
      const [line = "", ...rest] = chunk.toString("latin1").split("\r\n\r\n", 1)[0]?.split("\r\n") ?? [];
      if (!REQUEST_LINE.test(line)) return;
      requests.push(line);
      if (line.startsWith("GET /sse/") && !client.destroyed) streams.add(client);
      const headers: Record<string, string> = {};
      for (const header of rest) {
        const colon = header.indexOf(":");
        if (colon > 0) headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
      }
      received.push({ line, headers, at });
    });
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address() as AddressInfo;
  const cutAll = () => {
    cut = true;
    // Closed rather than reset: Node 20's `resetAndDestroy` sometimes leaves the handle open, and
    // the test process with it. To the client, a stream cut short is a lost connection either way.
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    streams.clear();
  };

  return {
    url: `http://127.0.0.1:${address.port}`,
    requests,
    received,
    openStreams: () => streams.size,
    cut: cutAll,
    restore() {
      cut = false;
    },
    retarget(next) {
      upstreamUrl = new URL(next);
    },
    async close() {
      cutAll();
      server.close();
      await once(server, "close");
    },
  };
}
