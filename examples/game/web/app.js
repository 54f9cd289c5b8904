// @ts-check
// The page's script: plain JavaScript with no build step, typed (in editors, and by `npm test`)
// by events.d.ts, which the example's build.rs generates beside events.js from the Rust types.
import { muxGameEvent, muxNotification, muxSystemAnnouncement, subscribeMux } from "./events.js";

/** @typedef {import("./events.js").GameSnapshot} GameSnapshot */
/** @typedef {import("./events.js").Player} Player */

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

/** @param {number} score */
function points(score) {
  return `${score} ${Math.abs(score) === 1 ? "point" : "points"}`;
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
/** The game the page follows. @type {number | null} */
let gameId = null;
/**
 * Who is connected to the game, by name, oldest first: the server's list on each connect, then
 * each join and leave (idempotent: a name is listed once, however many pages its user has open).
 * @type {Map<string, Player>}
 */
const lobby = new Map();

function renderLobby() {
  $("lobby").replaceChildren(
    ...Array.from(lobby.keys(), (name) => {
      const item = document.createElement("li");
      item.textContent = name === me ? `${name} (you)` : name;
      return item;
    }),
  );
}

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

/** Refetches the game's state, after events were lost. @param {number} id */
async function reloadGame(id) {
  const response = await fetch(`/api/games/${id}`);
  if (!response.ok || gameId !== id) return;
  game = /** @type {GameSnapshot} */ (await response.json());
  render();
}

/**
 * The page's channels, all on one connection: the announcements, the game it follows (a snapshot
 * first, then every event, and who is in the lobby: the server lists the logged-in user there
 * while the page follows the game; without a login the page watches unlisted), and once logged in
 * the user's notifications.
 */
function channels() {
  const list = [
    muxSystemAnnouncement({
      onEvent(announcement) {
        log("announcements", announcement.text);
      },
    }),
  ];
  if (me) {
    list.push(
      muxNotification(me, {
        onEvent(notification) {
          log("notifications", notification.text);
        },
      }),
    );
  }
  if (gameId !== null) {
    const id = gameId;
    list.push(
      muxGameEvent(id, {
        /** @param {GameSnapshot} snapshot */
        onSnapshot(snapshot) {
          game = snapshot;
          log("log", `snapshot: ${snapshot.players.length} players, round ${snapshot.round}`);
          render();
        },
        onPlayerJoined(joined, eventId) {
          game?.players.some((p) => p.player === joined.player) || game?.players.push({ player: joined.player, score: 0 });
          log("log", `#${eventId} ${joined.player} joined`);
        },
        onPlayerLeft(left, eventId) {
          if (game) game.players = game.players.filter((p) => p.player !== left.player);
          log("log", `#${eventId} ${left.player} left`);
        },
        onRoundStarted(started, eventId) {
          if (game) game.round = Math.max(game.round, started.round);
          log("log", `#${eventId} round ${started.round} started`);
        },
        onScoreChanged(changed, eventId) {
          const player = game?.players.find((p) => p.player === changed.player);
          if (player) player.score = changed.score;
          log("log", `#${eventId} ${changed.player} has ${points(changed.score)}`);
        },
        onPresence(members) {
          lobby.clear();
          for (const { member } of members) lobby.set(member.name, member);
          renderLobby();
        },
        onJoin(player) {
          lobby.set(player.name, player);
          log("log", `${player.name} connected`);
          renderLobby();
        },
        onLeave(player) {
          lobby.delete(player.name);
          log("log", `${player.name} disconnected`);
          renderLobby();
        },
        onEvent: render,
        onGap() {
          log("log", "missed events no longer in history: reloading the game");
          reloadGame(id).catch((error) => log("log", `error: ${error}`));
        },
      }),
    );
  }
  return list;
}

const stream = subscribeMux("/sse/page", channels(), {
  onOpen() {
    log("log", "stream open (resuming after the last event seen, if any)");
  },
  onStatusChange: status,
  onError(error) {
    if (error.kind === "decode") log("log", `undecodable ${error.event} event`);
    else if (error.kind === "http") log("log", `the server answered ${error.status}`);
  },
});

/** Follows game `id` instead of the one followed so far. @param {number} id */
function openGame(id) {
  history.replaceState(null, "", `?game=${id}`);
  if (gameId !== id) {
    lobby.clear();
    renderLobby();
  }
  gameId = id;
  stream.update(channels());
}

function openNotifications() {
  if (!me) return;
  $("me").textContent = `logged in as ${me}`;
  stream.update(channels());
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

const initial = new URLSearchParams(location.search).get("game");
// The game of the link once the page knows who is logged in, so that a logged-in user's page
// enters the lobby in its first connection rather than in a reconnect.
whoAmI()
  .catch((error) => log("log", `error: ${error}`))
  .then(() => {
    if (initial) openGame(Number(initial));
  });
