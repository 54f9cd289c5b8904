// Compiles tests/manifest/tsconfig.fail.json, which must fail: each of its consumer files holds
// one mistake the generated client must reject, and tsc must report exactly that error for it,
// and no other error anywhere.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";

/** Each failing file: the error code tsc must give for it, and text its message must contain. */
const expected = [
  {
    file: "tests/manifest/wrong-payload.ts",
    code: "TS2322",
    says: "'PlayerJoined' is missing the following properties from type 'PlayerLeft'",
    what: "a handler with the wrong payload type",
  },
  {
    file: "tests/manifest/wrong-member.ts",
    code: "TS2322",
    says: "'Chatter' is missing the following properties from type 'PlayerLeft'",
    what: "a presence handler with the wrong member type",
  },
  {
    file: "tests/manifest/join-without-presence.ts",
    code: "TS2353",
    says: "'onJoin' does not exist in type 'PlayerJoinedHandlers<unknown>'",
    what: "onJoin on an event type without presence",
  },
];

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const run = spawnSync(process.execPath, [tsc, "-p", "tests/manifest/tsconfig.fail.json", "--pretty", "false"], {
  encoding: "utf8",
});
const output = `${run.stdout}${run.stderr}`;
// An error's first line, and the lines that explain it (indented), up to the next error.
const errors = output.split(/\n(?=\S)/).filter((error) => /error TS\d+/.test(error));
const failed = expected.filter(({ file, code, says }) => {
  const mine = errors.filter((error) => error.startsWith(`${file}(`));
  return mine.length !== 1 || !mine[0].includes(`error ${code}:`) || !mine[0].includes(says);
});
if (run.status === 0 || failed.length > 0 || errors.length !== expected.length) {
  console.error(`expected exactly ${expected.length} errors, one per file:`);
  for (const { file, code, says } of expected) console.error(`  ${file}: ${code} ${says}`);
  console.error("tsc said:");
  console.error(output || `(nothing, exit code ${run.status})`);
  process.exit(1);
}
for (const { what } of expected) console.log(`ok: tsc rejects ${what}`);
