/** Where and how a client connects; every field is optional. */
export interface SseOptions {
  /** Prefix of every stream URL, e.g. `https://api.example.com`; defaults to `DEFAULT_BASE_URL`. */
  baseUrl?: string;
  /** Resume after this event id, e.g. one saved before a page reload. */
  lastEventId?: string;
  /**
   * Request headers, e.g. `{ authorization: "Bearer ..." }`; or a function, awaited before each
   * connect, so that a token can be refreshed. Not sent by the `EventSource` transport.
   */
  headers?: SseHeaders | (() => SseHeaders | Promise<SseHeaders>);
  /** Whether cookies go with the request, as for `fetch` (default `"same-origin"`). */
  credentials?: "omit" | "same-origin" | "include";
  /** Reopen the stream after an error (default `true`). */
  reconnect?: boolean;
  /**
   * The first backoff window, in milliseconds, until the server sends a `retry:` hint (default
   * 1000); it doubles after each failed try, and each wait is a random part of it.
   */
  reconnectDelayMs?: number;
  /** The largest backoff window, in milliseconds (default 30000). */
  maxReconnectDelayMs?: number;
  /** Wait while the page is hidden before reconnecting, and reconnect when it shows (default `true`). */
  pauseWhenHidden?: boolean;
  /**
   * Use this `EventSource` class instead of `fetch` (e.g. `globalThis.EventSource`): no headers,
   * no status codes, the last id goes in the query string.
   */
  EventSource?: SseEventSourceConstructor;
}

/** Request headers, by name. */
export type SseHeaders = Record<string, string>;

/** Where a stream stands: opening, open, waiting to reopen after an error, or closed for good. */
export type SseStatus = "connecting" | "open" | "reconnecting" | "closed";

/** The handlers every stream accepts besides its event handlers. */
export interface SseHandlers<S = unknown> {
  /** The initial state the server sends before live events (the `snapshot` event). */
  onSnapshot?: (snapshot: S) => void;
  /** Events were lost and are no longer in the server's history (the `gap` event): refetch state. The client resumes after the gap's id, when it has one. */
  onGap?: (gap: SseGap) => void;
  /** The connection failed, the server refused it, or an event could not be decoded. */
  onError?: (error: SseError) => void;
  /** The stream is open (again). */
  onOpen?: () => void;
  /** The stream's `status` changed. */
  onStatusChange?: (status: SseStatus) => void;
  /**
   * The server answered 401 or 403. Return new headers (e.g. a fresh token) to try once more
   * with them, or nothing to stop.
   */
  onAuthError?: (error: SseHttpError) => SseAuthRetry | void | Promise<SseAuthRetry | void>;
}

/** What `onAuthError` returns to try again. */
export interface SseAuthRetry {
  /** Headers sent with this and every later request, over `options.headers`. */
  headers: SseHeaders;
}

/** The `gap` event: events were lost before the next one. */
export type SseGap = {
  /** How many events were lost, when the server knows. */
  missed: number | null;
};

/** The server answered with a status other than a stream. */
export interface SseHttpError {
  kind: "http";
  /** The response's status code. */
  status: number;
  /** Whether the client tries again, after `retryInMs`. */
  willRetry: boolean;
  retryInMs: number | null;
}

/** Why a stream reported an error. */
export type SseError =
  | SseHttpError
  | {
      /** The request failed, or the stream broke or ended. */
      kind: "connection";
      status: null;
      /** Whether the client tries again, after `retryInMs`, resuming after the last id. */
      willRetry: boolean;
      retryInMs: number | null;
      /** What failed: an exception, the `EventSource`'s `error` event, or `null` when the stream ended. */
      error: unknown;
    }
  | {
      /** An event's data was not JSON; the event was skipped. */
      kind: "decode";
      /** The SSE event name. */
      event: string;
      data: string;
      error: unknown;
    };

/** An open stream: call it (or its `close`) to close it for good; calling again does nothing. */
export interface SseSubscription {
  (): void;
  close(): void;
  /** Where the stream stands now. */
  readonly status: SseStatus;
}

/** One event of an event stream, as the parser dispatches it. */
export interface SseParsedEvent {
  /** The `event` field, `"message"` when none was given. */
  event: string;
  /** The `data` lines, joined with `\n`. */
  data: string;
  /** The last event id of the stream so far. */
  id: string;
}

/** The part of a `MessageEvent` the client reads. */
export interface SseMessageEventLike {
  readonly data: string;
  readonly lastEventId: string;
}

/** The part of an `EventSource` the client uses: the browser's and the `eventsource` package's fit. */
export interface SseEventSourceLike {
  addEventListener(type: string, listener: (event: SseMessageEventLike) => void): void;
  close(): void;
}

/** A constructor of `EventSource`s. */
export type SseEventSourceConstructor = new (
  url: string,
  init?: { withCredentials?: boolean },
) => SseEventSourceLike;

/** One channel of a multiplexed stream, made by a `mux<Event>` function: the key and handlers of one event type. */
export interface SseMuxChannel {
  /** The query parameter naming the channel's event type. */
  readonly param: string;
  /** The key, `null` for a keyless event. */
  readonly key: string | null;
  /** The type's SSE event names. */
  readonly names: readonly string[];
  /** Receives each event of the channel. */
  readonly deliver: SseDeliver;
  /** Receives the channel's initial state. */
  readonly snapshot: (data: unknown) => void;
  /** Receives the channel's gaps. */
  readonly gap: (gap: SseGap) => void;
}

/** Receives one event's name, decoded data and id. */
export type SseDeliver = (event: string, data: unknown, id: string) => void;

/**
 * The handlers of a multiplexed stream as a whole, those of a single stream but the channel's
 * own (each channel has its event, snapshot and gap handlers).
 */
export type SseMuxHandlers = Omit<SseHandlers, "onSnapshot" | "onGap">;

/** A multiplexed stream: one connection for many channels. */
export interface SseMux {
  /** Carries `channels` from now on: one reconnect with the last cursor, so the channels kept lose and repeat nothing. */
  update(channels: readonly SseMuxChannel[]): void;
  /** Closes the stream for good; calling it again does nothing. */
  close(): void;
  /** Where the stream stands now. */
  readonly status: SseStatus;
}

/** One member of a presence stream, as its `presence` event lists it. */
export interface SseMember<M> {
  /** Who: the identity the server's member hook gave the member's connections. */
  member: M;
  /** How many connections the member has open (on Redis, as of each instance's last heartbeat). */
  connections: number;
  /** When the member's first open connection opened, in milliseconds since the Unix epoch. */
  since: number;
}

/**
 * The handlers of a presence stream's members (an event type with `#[sse(presence = ..)]`).
 * `onPresence` gets the whole list on every connect, also on a resume; then `onJoin` and
 * `onLeave` change it. Apply them idempotently: a join of a member already listed, or a leave of
 * one not listed, can come around a connect.
 */
export interface SsePresenceHandlers<M> {
  /** Who is on the channel now, oldest first (the `presence` event): replaces any list kept so far. */
  onPresence?: (members: SseMember<M>[]) => void;
  /** A member's first connection opened, on any instance (the `join` event). */
  onJoin?: (member: M, since: number) => void;
  /** A member's last connection closed, or its instance stopped answering (the `leave` event). */
  onLeave?: (member: M) => void;
}
