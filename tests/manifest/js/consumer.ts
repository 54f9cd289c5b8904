// A page's consumer of the generated .js module, typed by its .d.ts (js/expected.d.ts). It
// must type-check under tests/manifest/js/tsconfig.json; each `@ts-expect-error` line must not.

import {
  DEFAULT_BASE_URL,
  events,
  muxAnnouncement,
  muxGameEvent,
  muxPlayerJoined,
  subscribeAnnouncement,
  subscribeGameEvent,
  subscribeMux,
  subscribeMessagePosted,
  subscribePlayerJoined,
  muxMessagePosted,
  type Chatter,
  type GameEventMessage,
  type PlayerLeft,
  type SseError,
  type SseGap,
  type SseHttpError,
  type SseMember,
  type SseStatus,
  type SseSubscription,
} from "./expected.js";

const seen: unknown[] = [];
const closers: SseSubscription[] = [];

closers.push(
  subscribePlayerJoined(
    42,
    {
      onEvent(payload, id) {
        const name: string = payload.playerName;
        const joinedAt: number = payload.joinedAtMs;
        const x: number = payload.position.xPos;
        const nickname: string | null = payload.nickname;
        const team: string | null | undefined = payload.team;
        if (payload.role.kind === "guest") {
          const invitedBy: string = payload.role.data.invited_by;
          seen.push(invitedBy);
        } else if (payload.role.kind === "spectator") {
          const seat: number = payload.role.data;
          seen.push(seat);
        }
        const eventId: string = id;
        seen.push(name, joinedAt, x, nickname, team, eventId);
      },
      onGap(gap: SseGap) {
        const missed: number | null = gap.missed;
        seen.push(missed);
      },
      onError(error: SseError) {
        if (error.kind === "decode") {
          seen.push(error.event, error.data);
        } else if (error.kind === "http") {
          const status: number = error.status;
          seen.push(status);
        } else {
          const willRetry: boolean = error.willRetry;
          const retryInMs: number | null = error.retryInMs;
          const status: null = error.status;
          seen.push(willRetry, retryInMs, status);
        }
      },
      onOpen() {
        seen.push("open");
      },
      onStatusChange(status: SseStatus) {
        seen.push(status);
      },
    },
    {
      baseUrl: "https://api.example.com",
      lastEventId: "1700000000000-0",
      credentials: "include",
      reconnectDelayMs: 500,
      maxReconnectDelayMs: 10_000,
      pauseWhenHidden: false,
      EventSource: globalThis.EventSource,
    },
  ),
);

// Headers, static or from an async function called before each connect; a new token after a 401.
let token = "first";
closers.push(
  subscribePlayerJoined(
    42,
    {
      async onAuthError(error: SseHttpError) {
        if (error.status !== 401) return;
        token = await Promise.resolve("refreshed");
        return { headers: { authorization: `Bearer ${token}` } };
      },
    },
    { headers: async () => ({ authorization: `Bearer ${token}` }) },
  ),
);
closers.push(subscribePlayerJoined(42, { onAuthError: () => undefined }, { headers: { "x-api-key": "k" } }));

// An enum stream: one handler per variant, and a discriminated union for all of them; the
// snapshot's type is the caller's.
interface Lobby {
  players: string[];
}

closers.push(
  subscribeGameEvent<Lobby>(7, {
    onSnapshot(lobby) {
      seen.push(lobby.players.length);
    },
    onJoined(payload, id) {
      seen.push(payload.playerName, id);
    },
    onLeft(payload) {
      const reason: string | null = payload.reason;
      seen.push(reason);
    },
    onScoreChanged(payload) {
      const score: number = payload.newScore;
      if (payload.reward?.type === "Points") {
        const amount: number = payload.reward.amount;
        seen.push(amount);
      }
      seen.push(score);
    },
    onGameOver(payload) {
      const winner: string | null = payload.winner;
      seen.push(winner);
    },
    onEvent(message: GameEventMessage, id) {
      switch (message.event) {
        case "Joined":
          seen.push(message.data.playerName);
          break;
        case "ScoreChanged":
          seen.push(message.data.newScore);
          break;
        case "game-over":
          seen.push(message.data.winner);
          break;
        case "Left":
          seen.push(message.data.game_id);
          break;
      }
      seen.push(id);
    },
  }),
);

// A string key, generics, maps and serde_json::Value.
closers.push(
  subscribeMessagePosted("lobby/1 & more", {
    onEvent(payload) {
      const first: number | undefined = payload.mentions.items[0]?.yPos;
      const next: string | null = payload.mentions.next;
      seen.push(first, next, payload.meta["color"]);
    },
  }),
);

// A presence type: who is in the room, typed by its member type.
const room = new Map<number, Chatter>();
closers.push(
  subscribeMessagePosted("lobby", {
    onPresence(members: SseMember<Chatter>[]) {
      room.clear();
      for (const { member, connections, since } of members) {
        room.set(member.id, member);
        seen.push(connections + 1, since + 1);
      }
    },
    onJoin(member, since) {
      room.set(member.id, member);
      seen.push(member.nick.toUpperCase(), since + 1);
    },
    onLeave: (member: Chatter) => room.delete(member.id),
    onEvent: (payload) => seen.push(payload.text),
  }),
);

// A keyless (broadcast) event takes no key.
closers.push(
  subscribeAnnouncement({
    onEvent(payload) {
      const level: "INFO" | "WARNING" = payload.level;
      const sentAt: number = payload.sent_at;
      seen.push(level, sentAt, payload.text);
    },
  }),
);

// The metadata is literal.
const path: "/sse/game/{game_id}/player-joined" = events.PlayerJoined.path;
const key: null = events.Announcement.key;
const variants: readonly ["Joined", "Left", "ScoreChanged", "game-over"] = events.GameEvent.events;
const base: string = DEFAULT_BASE_URL;
seen.push(path, key, variants, base);

// What must not compile.
closers.push(
  subscribePlayerJoined(42, {
    // @ts-expect-error: a PlayerJoined handler cannot take a PlayerLeft
    onEvent: (payload: PlayerLeft) => seen.push(payload.reason),
  }),
);
// @ts-expect-error: the key of PlayerJoined is a number
closers.push(subscribePlayerJoined("42", {}));
// @ts-expect-error: a broadcast event takes no key
closers.push(subscribeAnnouncement("lobby", {}));
closers.push(
  subscribeGameEvent(7, {
    // @ts-expect-error: newScore is a number
    onScoreChanged: (payload) => seen.push(payload.newScore.toUpperCase()),
  }),
);
closers.push(
  subscribePlayerJoined(42, {
    // @ts-expect-error: a keyed event has no variant handlers
    onJoined: () => undefined,
  }),
);
closers.push(
  subscribeMessagePosted("lobby", {
    // @ts-expect-error: the members are Chatters, not PlayerLefts
    onPresence: (members: SseMember<PlayerLeft>[]) => seen.push(members),
  }),
);
closers.push(
  subscribePlayerJoined(42, {
    // @ts-expect-error: PlayerJoined keeps no presence
    onJoin: () => undefined,
  }),
);
closers.push(
  subscribeGameEvent(7, {
    // @ts-expect-error: GameEvent keeps no presence
    onPresence: () => undefined,
  }),
);
closers.push(
  subscribeGameEvent(7, {
    onEvent(message) {
      // @ts-expect-error: only a ScoreChanged message has newScore
      seen.push(message.data.newScore);
    },
  }),
);

closers.push(
  // @ts-expect-error: header values are strings
  subscribePlayerJoined(42, {}, { headers: { "x-retries": 3 } }),
);
closers.push(
  // @ts-expect-error: credentials are fetch's
  subscribePlayerJoined(42, {}, { credentials: "always" }),
);
closers.push(
  subscribePlayerJoined(42, {
    // @ts-expect-error: onAuthError returns headers, not a token
    onAuthError: () => "token",
  }),
);
closers.push(
  subscribePlayerJoined(42, {
    // @ts-expect-error: there is no "failed" status
    onStatusChange: (status) => status === "failed",
  }),
);
const subscription = subscribeAnnouncement({});
const status: SseStatus = subscription.status;
seen.push(status);
// @ts-expect-error: status is read-only
subscription.status = "open";
subscription.close();

// One connection for several channels: typed per event type like the single-stream clients.
const mux = subscribeMux(
  "/sse/page",
  [
    muxGameEvent<Lobby>(7, {
      onSnapshot: (lobby) => seen.push(lobby.players.length),
      onScoreChanged: (payload, id) => seen.push(payload.newScore + 1, id),
      onGap: (gap) => seen.push(gap.missed),
    }),
    muxPlayerJoined(42, { onEvent: (payload) => seen.push(payload) }),
    muxAnnouncement({ onEvent: (payload) => seen.push(payload) }),
    muxMessagePosted("lobby", {
      onPresence: (members) => seen.push(members.map((entry) => entry.member.nick)),
      onJoin: (member) => room.set(member.id, member),
      onLeave: (member) => room.delete(member.id),
    }),
  ],
  {
    onOpen: () => seen.push("open"),
    onError: (error: SseError) => seen.push(error.kind),
    onStatusChange: (status) => seen.push(status),
    onAuthError: () => ({ headers: { authorization: "Bearer fresh" } }),
  },
  { baseUrl: DEFAULT_BASE_URL, lastEventId: "cursor", headers: { authorization: "Bearer token" } },
);
const muxStatus: SseStatus = mux.status;
seen.push(muxStatus);
// @ts-expect-error: status is read-only
mux.status = "open";
// @ts-expect-error: a multiplexed stream's gaps and snapshots are its channels'
subscribeMux("/sse/page", [], { onGap: () => {} });
mux.update([muxAnnouncement({})]);
// @ts-expect-error: the key of PlayerJoined is a number
mux.update([muxPlayerJoined("42", {})]);
// @ts-expect-error: a broadcast event takes no key
mux.update([muxAnnouncement("lobby", {})]);
mux.update([
  muxGameEvent(7, {
    // @ts-expect-error: newScore is a number
    onScoreChanged: (payload) => seen.push(payload.newScore.toUpperCase()),
  }),
]);
mux.update([
  muxPlayerJoined(42, {
    // @ts-expect-error: a PlayerJoined handler cannot take a PlayerLeft
    onEvent: (payload: PlayerLeft) => seen.push(payload.reason),
  }),
]);
mux.update([
  muxMessagePosted("lobby", {
    // @ts-expect-error: a Chatter has no name
    onJoin: (member) => seen.push(member.name),
  }),
]);
mux.update([
  muxPlayerJoined(42, {
    // @ts-expect-error: PlayerJoined keeps no presence
    onLeave: () => undefined,
  }),
]);
mux.close();

for (const close of closers) close();
