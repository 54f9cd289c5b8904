// @ts-check
// The page's script: plain JavaScript with no build step, typed (in editors, and by `npm test`)
// by events.d.ts, which build.rs generates beside events.js.
import { subscribeAnnouncement, subscribeGameEvent } from "./events.js";

const game = Number(new URLSearchParams(location.search).get("game") ?? "7");
const log = element("log");
let open = 0;
element("game").textContent = String(game);

/** @param {string} id */
function element(id) {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`no #${id}`);
  return found;
}

/** @param {string} text */
function show(text) {
  const item = document.createElement("li");
  item.textContent = text;
  log.append(item);
}

/** @param {import("./events.js").SseError} error */
function failed(error) {
  if (error.kind === "decode") show(`undecodable ${error.event} event`);
}

function opened() {
  open += 1;
  element("open").textContent = String(open);
}

const closers = [
  subscribeGameEvent(game, {
    /** @param {import("./events.js").GameSnapshot} snapshot */
    onSnapshot(snapshot) {
      show(`players: ${snapshot.players.join(", ") || "none"}`);
    },
    onPlayerJoined(joined) {
      show(`${joined.playerName} joined`);
    },
    onScoreChanged(change) {
      show(`${change.playerName} has ${change.score} points`);
    },
    onGap() {
      show("missed events: reload");
    },
    onOpen: opened,
    onError: failed,
  }),
  subscribeAnnouncement({
    onEvent(announcement) {
      show(`announcement: ${announcement.text}`);
    },
    onOpen: opened,
    onError: failed,
  }),
];
addEventListener("pagehide", () => closers.forEach((close) => close()));
