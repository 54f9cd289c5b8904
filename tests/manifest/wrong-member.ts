// Must NOT compile (tests/manifest/tsconfig.fail.json): an onJoin handler of the chat room's
// presence that takes a PlayerLeft, where its members are Chatters. tests/ts/expect-type-error.mjs
// checks that tsc rejects this file for that reason.

import { subscribeMessagePosted, type PlayerLeft } from "./expected.js";

subscribeMessagePosted("lobby", {
  onJoin: (member: PlayerLeft) => console.log(member.reason),
});
