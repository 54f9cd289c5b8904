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
