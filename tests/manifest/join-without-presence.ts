// Must NOT compile (tests/manifest/tsconfig.fail.json): an onJoin handler of PlayerJoined, which
// keeps no presence. tests/ts/expect-type-error.mjs checks that tsc rejects this file for that
// reason.

import { subscribePlayerJoined } from "./expected.js";

subscribePlayerJoined(42, {
  onJoin: (member: unknown) => console.log(member),
});
