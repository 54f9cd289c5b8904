/** Where and how a client connects; every field is optional. */
export interface SseOptions {
  /** Prefix of every stream URL, e.g. `https://api.example.com`; defaults to `DEFAULT_BASE_URL`. */
  baseUrl?: string;
  /** Resume after this event id, e.g. one saved before a page reload. */
  lastEventId?: string;
  /** Send credentials (cookies) with cross-origin requests. */
  withCredentials?: boolean;
  /** Reopen the stream after an error (default `true`). */
  reconnect?: boolean;
  /** Delay before reopening, in milliseconds (default 1000); doubles after each failed try. */
  reconnectDelayMs?: number;
  /** Longest delay before reopening, in milliseconds (default 30000). */
  maxReconnectDelayMs?: number;
  /** The `EventSource` implementation (default `globalThis.EventSource`), e.g. the `eventsource` package's in Node. */
  EventSource?: SseEventSourceConstructor;
}

/** The handlers every stream accepts besides its event handlers. */
export interface SseHandlers<S = unknown> {
  /** The initial state the server sends before live events (the `snapshot` event), typed by the caller. */
  onSnapshot?: (snapshot: S) => void;
  /** Events were lost and are no longer in the server's history (the `gap` event): refetch state. The client resumes after the gap's id, when it has one. */
  onGap?: (gap: SseGap) => void;
  /** The connection failed or an event could not be decoded. */
  onError?: (error: SseError) => void;
  /** The stream is open (again). */
  onOpen?: () => void;
}

/** The `gap` event: events were lost before the next one. */
export type SseGap = {
  /** How many events were lost, when the server knows. */
  missed: number | null;
};

/** Why a stream reported an error. */
export type SseError =
  | {
      /** The connection failed or closed; the client reopens it (resuming after the last id) when `willRetry`. */
      kind: "connection";
      willRetry: boolean;
      /** The `EventSource`'s `error` event. */
      event: unknown;
    }
  | {
      /** An event's data was not JSON; the event was skipped. */
      kind: "decode";
      /** The SSE event name. */
      event: string;
      data: string;
      error: unknown;
    };

/** Closes a stream; calling it again does nothing. */
export type SseClose = () => void;

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

/** The handlers of a multiplexed stream as a whole (each channel has its own event handlers). */
export interface SseMuxHandlers {
  /** The connection failed or an event could not be decoded. */
  onError?: (error: SseError) => void;
  /** The stream is open (again). */
  onOpen?: () => void;
}

/** Where and how a multiplexed stream connects: the options of every stream, and its transport. */
export interface SseMuxOptions extends SseOptions {
  /** How to connect (default: `EventSource`, from `options.EventSource` or the global one). */
  transport?: SseTransport;
}

/** A multiplexed stream: one connection for many channels. */
export interface SseMux {
  /** Carries `channels` from now on: one reconnect with the last cursor, so the channels kept lose and repeat nothing. */
  update(channels: readonly SseMuxChannel[]): void;
  /** Closes the stream; calling it again does nothing. */
  close(): void;
}

/** What a transport reports about one connection. */
export interface SseTransportSink {
  /** The connection is open. */
  open(): void;
  /** An event named `name` arrived, with its data and id (`""` when none). */
  event(name: string, data: string, id: string): void;
  /** The connection failed or closed; the client connects again itself. */
  error(event: unknown): void;
}

/** How a client connects: one connection to `url`, resuming after `lastEventId`, receiving the events named `names`. */
export interface SseTransport {
  connect(url: string, lastEventId: string | null, names: readonly string[], sink: SseTransportSink): SseClose;
}
