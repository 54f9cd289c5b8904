// Compiles tests/manifest/tsconfig.fail.json, which must fail: a handler with the wrong payload
// type (tests/manifest/wrong-payload.ts) is a type error in the generated client, and the only one.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const run = spawnSync(process.execPath, [tsc, "-p", "tests/manifest/tsconfig.fail.json", "--pretty", "false"], {
  encoding: "utf8",
});
const output = `${run.stdout}${run.stderr}`;
const errors = output.split("\n").filter((line) => /error TS\d+/.test(line));
const expected =
  errors.length === 1 &&
  errors[0].startsWith("tests/manifest/wrong-payload.ts(") &&
  errors[0].includes("TS2322") &&
  output.includes("'PlayerJoined' is missing the following properties from type 'PlayerLeft'");
if (run.status === 0 || !expected) {
  console.error("expected exactly one error, PlayerJoined is not a PlayerLeft, in wrong-payload.ts; tsc said:");
  console.error(output || `(nothing, exit code ${run.status})`);
  process.exit(1);
}
console.log("ok: tsc rejects a handler with the wrong payload type");
