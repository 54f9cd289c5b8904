// @ts-check
// The page's script: plain JavaScript with no build step, typed (in editors, and by `npm test`)
// by events.d.ts, which the example's build.rs generates beside events.js from the Rust types.
import { subscribeGameEvent, subscribeNotification, subscribeSystemAnnouncement } from "./events.js";

/** @typedef {import("./events.js").GameSnapshot} GameSnapshot */

/** @param {string} id */
function $(id) {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`no #${id}`);
  return found;
}

/** @param {string} list @param {string} text */
function log(list, text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $(list).prepend(item);
}

/** @param {string} path @param {unknown} [body] */
async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body ?? {}),
  });
  if (!response.ok) log("log", `error: ${await response.text()}`);
  return response;
}

/** @type {GameSnapshot | null} */
let game = null;
/** Who is logged in: the login cookie is `HttpOnly`, so the page asks the server (`whoAmI`). */
let me = "";
/** @type {(() => void) | null} */
let closeGame = null;
/** @type {(() => void) | null} */
let closeNotifications = null;

function render() {
  if (game === null) return;
  $("game").hidden = false;
  $("game-id").textContent = String(game.gameId);
  $("round").textContent = String(game.round);
  $("players").replaceChildren(
    ...game.players.map(({ player, score }) => {
      const row = document.createElement("tr");
      row.insertCell().textContent = player === me ? `${player} (you)` : player;
      row.insertCell().textContent = String(score);
      return row;
    }),
  );
}

/** @param {import("./events.js").SseStatus} state */
function status(state) {
  $("status").textContent = state;
  $("status").dataset["state"] = state;
}

/** Opens the game's stream: a snapshot first, then every event; resumes by itself. @param {number} gameId */
function openGame(gameId) {
  closeGame?.();
  history.replaceState(null, "", `?game=${gameId}`);
  closeGame = subscribeGameEvent(gameId, {
    onSnapshot(snapshot) {
      game = snapshot;
      log("log", `snapshot: ${snapshot.players.length} players, round ${snapshot.round}`);
      render();
    },
    onPlayerJoined(joined, id) {
      game?.players.some((p) => p.player === joined.player) || game?.players.push({ player: joined.player, score: 0 });
      log("log", `#${id} ${joined.player} joined`);
    },
    onPlayerLeft(left, id) {
      if (game) game.players = game.players.filter((p) => p.player !== left.player);
      log("log", `#${id} ${left.player} left`);
    },
    onRoundStarted(started, id) {
      if (game) game.round = Math.max(game.round, started.round);
      log("log", `#${id} round ${started.round} started`);
    },
    onScoreChanged(changed, id) {
      const player = game?.players.find((p) => p.player === changed.player);
      if (player) player.score = changed.score;
      log("log", `#${id} ${changed.player} has ${changed.score} points`);
    },
    onEvent: render,
    onGap() {
      log("log", "missed events no longer in history: reloading the game");
      openGame(gameId);
    },
    onOpen() {
      log("log", "stream open (resuming after the last event seen, if any)");
    },
    onStatusChange: status,
    onError(error) {
      if (error.kind === "decode") log("log", `undecodable ${error.event} event`);
      else if (error.kind === "http") log("log", `the server answered ${error.status}`);
    },
  });
}

function openNotifications() {
  closeNotifications?.();
  if (!me) return;
  $("me").textContent = `logged in as ${me}`;
  closeNotifications = subscribeNotification(me, {
    onEvent(notification) {
      log("notifications", notification.text);
    },
  });
}

/** Asks the server who is logged in, e.g. after a reload, and opens their notifications. */
async function whoAmI() {
  const response = await fetch("/api/me");
  const name = response.ok ? /** @type {string | null} */ (await response.json()) : null;
  if (name && !me) {
    me = name;
    openNotifications();
    render();
  }
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const player = String(new FormData(/** @type {HTMLFormElement} */ (event.target)).get("player"));
  if ((await post("/api/login", { player })).ok) {
    me = player;
    openNotifications();
    render();
  }
});

$("create").addEventListener("click", async () => {
  const response = await post("/api/games");
  if (response.ok) openGame((/** @type {GameSnapshot} */ (await response.json())).gameId);
});

$("open").addEventListener("submit", (event) => {
  event.preventDefault();
  openGame(Number(new FormData(/** @type {HTMLFormElement} */ (event.target)).get("game")));
});

$("join").addEventListener("click", () => game && post(`/api/games/${game.gameId}/join`, { player: me }));
$("leave").addEventListener("click", () => game && post(`/api/games/${game.gameId}/leave`, { player: me }));
$("round-start").addEventListener("click", () => game && post(`/api/games/${game.gameId}/rounds`));
$("point").addEventListener("click", () => game && post(`/api/games/${game.gameId}/score`, { player: me, points: 1 }));

subscribeSystemAnnouncement({
  onEvent(announcement) {
    log("announcements", announcement.text);
  },
});
whoAmI().catch((error) => log("log", `error: ${error}`));
const initial = new URLSearchParams(location.search).get("game");
if (initial) openGame(Number(initial));
