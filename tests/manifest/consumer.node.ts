// The generated client in Node, with the `eventsource` package as its EventSource: the package's
// class must fit the client's `EventSource` option under tests/manifest/tsconfig.node.json.

import { EventSource } from "eventsource";

import { subscribePlayerLeft } from "./expected.js";

const close = subscribePlayerLeft(
  1,
  {
    onEvent(payload, id) {
      console.log(payload.game_id, payload.reason, id);
    },
  },
  { baseUrl: "http://127.0.0.1:3000", EventSource },
);
close();
