// Starts the example server (`examples/ts-server`, built by `npm test`'s pretest step) on a free
// port, and drives its HTTP API.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
export async function startServer() {
    const binary = resolve(process.env["CARGO_TARGET_DIR"] ?? "target", "debug", "example-ts-server");
    const child = spawn(binary, [], {
        env: { ...process.env, ADDR: "127.0.0.1:0" },
        stdio: ["ignore", "pipe", "inherit"],
    });
    const stdout = child.stdout;
    if (stdout === null)
        throw new Error("no stdout");
    const lines = createInterface({ input: stdout });
    const [line] = (await Promise.race([
        once(lines, "line"),
        once(child, "exit").then(([code]) => {
            throw new Error(`${binary} exited with ${String(code)} before listening`);
        }),
    ]));
    const match = /^listening on (http:\/\/\S+)$/.exec(line);
    if (match === null || match[1] === undefined)
        throw new Error(`unexpected first line: ${line}`);
    const url = match[1];
    const post = async (path, body) => {
        const init = body === undefined
            ? { method: "POST" }
            : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
        const response = await fetch(url + path, init);
        if (!response.ok)
            throw new Error(`POST ${path}: ${response.status} ${await response.text()}`);
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
export async function until(condition, what, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
        if (Date.now() > deadline)
            throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
}
