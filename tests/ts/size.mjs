// The generated client's size as a page ships it: the game example's client (events.js), bundled
// and minified with esbuild, then gzipped (level 9), for what a page imports. Run: npm run size
// To measure another version of it, e.g. to compare with an earlier commit:
//   git show <commit>:examples/game/web/events.js > /tmp/events.js && SIZE_CLIENT=/tmp/events.js npm run size
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

const client = process.env["SIZE_CLIENT"] ?? new URL("../../examples/game/web/events.js", import.meta.url).pathname;
const entries = {
  "the whole module": "export * from 'client';",
  "one stream (subscribeSystemAnnouncement)": "export { subscribeSystemAnnouncement } from 'client';",
  "a game on the page's stream (muxGameEvent)": "export { muxGameEvent, subscribeMux } from 'client';",
  "the parser alone (sseParser)": "export { sseParser } from 'client';",
};

console.log(`bytes of ${process.env["SIZE_CLIENT"] ?? "examples/game/web/events.js"}, bundled and minified by esbuild; gzip -9`);
console.log(`${"what is imported".padEnd(44)} ${"minified".padStart(9)} ${"gzipped".padStart(8)}`);
for (const [what, contents] of Object.entries(entries)) {
  const result = await build({
    stdin: { contents, resolveDir: ".", loader: "js" },
    alias: { client },
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    write: false,
  });
  const code = result.outputFiles[0].contents;
  const gzipped = gzipSync(code, { level: 9 }).length;
  console.log(`${what.padEnd(44)} ${String(code.length).padStart(9)} ${String(gzipped).padStart(8)}`);
}
