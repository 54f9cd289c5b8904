// Must NOT compile (tests/manifest/tsconfig.fail.json): a PlayerJoined handler that takes a
// PlayerLeft. tests/ts/expect-type-error.mjs checks that tsc rejects this file for that reason.

import { subscribePlayerJoined, type PlayerLeft } from "./expected.js";

subscribePlayerJoined(42, {
  onEvent: (payload: PlayerLeft) => console.log(payload.reason),
});
