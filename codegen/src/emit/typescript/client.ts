// The RPC client every generated function calls through. Written by hand and emitted as is:
// no dependencies, runs in browsers and in Node 20+ (global fetch).

/** The codes the forge server sends, plus those this client raises itself. */
export type ForgeErrorCode =
  | "VALIDATION_ERROR"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "RATE_LIMITED"
  | "INTERNAL_ERROR"
  | "TIMEOUT"
  | "NETWORK_ERROR"
  // Codes from a newer server still type-check; `string & {}` keeps the literals suggested.
  | (string & {});

/** A failed call: an error the server reported, or a request that never got an answer. */
export class ForgeError extends Error {
  override readonly name = "ForgeError";
  readonly code: ForgeErrorCode;
  /** What the server attached to the error (which fields failed validation, …), as sent. */
  readonly details: unknown;
  /** The server's id for the request, for its logs; `null` when no response named one. */
  readonly requestId: string | null;
  /** The HTTP status; `null` when no response arrived. */
  readonly status: number | null;
  /**
   * For `RATE_LIMITED`: how many milliseconds to wait before calling again (the server's
   * `details.retry_after_ms`); `null` otherwise.
   */
  readonly retryAfterMs: number | null;

  constructor(init: {
    code: ForgeErrorCode;
    message: string;
    details?: unknown;
    requestId?: string | null;
    status?: number | null;
    cause?: unknown;
  }) {
    super(init.message);
    // Set by hand rather than through `super(message, { cause })`, which needs the ES2022
    // lib in the user's tsconfig.
    if (init.cause !== undefined) {
      Object.defineProperty(this, "cause", { value: init.cause, configurable: true, writable: true });
    }
    this.code = init.code;
    this.details = init.details;
    this.requestId = init.requestId ?? null;
    this.status = init.status ?? null;
    const retryAfter =
      typeof init.details === "object" && init.details !== null
        ? (init.details as { retry_after_ms?: unknown }).retry_after_ms
        : undefined;
    this.retryAfterMs = typeof retryAfter === "number" ? retryAfter : null;
  }
}

export type TokenProvider = () =>
  | string
  | null
  | undefined
  | Promise<string | null | undefined>;

export interface ClientOptions {
  /** The server's origin (and path prefix, if any), e.g. `https://api.example.com`. */
  baseUrl: string;
  /** Called before every request; a token it returns is sent as `Authorization: Bearer`. */
  token?: TokenProvider;
  /** Replaces the global `fetch` (tests, server-side rendering, instrumentation). */
  fetch?: typeof fetch;
  /** Sent with every request. */
  headers?: Record<string, string>;
}

export interface CallOptions {
  /** Aborting rejects the call with the signal's reason (an `AbortError` by default). */
  signal?: AbortSignal;
}

/** Ends a live subscription; calling it again does nothing. */
export type Unsubscribe = () => void;

/**
 * The store contract of Svelte (`subscribe(run)` calls `run` at once with the current value
 * and on every change, and returns the function that stops it), so `$store` works on it
 * without this client depending on Svelte.
 */
export interface Readable<T> {
  subscribe(run: (value: T) => void): Unsubscribe;
}

/** What a live query's store holds. */
export interface LiveState<T> {
  /** The latest result; `undefined` until the first one arrives. */
  data: T | undefined;
  /** The latest failure; `null` again once a result arrives. */
  error: ForgeError | null;
}

export interface ForgeClient {
  /** Calls the query or mutation `name` with `args` (its parameters by name). */
  call<T>(name: string, args: object, options?: CallOptions): Promise<T>;
  /**
   * Keeps the result of the query `name` current: `onData` receives the first result and
   * then every result that differs from the last, whoever changed the data and through
   * whichever server. The connection (one per client, shared by every subscription) is
   * re-established with backoff when it drops, and every subscription is made again.
   */
  subscribe<T>(
    name: string,
    args: object,
    onData: (data: T) => void,
    onError?: (error: ForgeError) => void,
  ): Unsubscribe;
  /** The same as a store: subscribed while it has at least one subscriber. */
  live<T>(name: string, args: object): Readable<LiveState<T>>;
}

export function createClient(options: ClientOptions): ForgeClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  // Looked up per call, and called unbound: browsers reject `fetch` called as a method of
  // another object ("Illegal invocation").
  const send: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const live = new LiveConnection(baseUrl, send, options);
  const client: ForgeClient = {
    async call<T>(name: string, args: object, callOptions?: CallOptions): Promise<T> {
      const signal = callOptions?.signal;
      const headers = new Headers(options.headers);
      headers.set("content-type", "application/json");
      headers.set("accept", "application/json");
      const token = options.token ? await options.token() : null;
      if (token) {
        headers.set("authorization", `Bearer ${token}`);
      }
      const url = `${baseUrl}/_api/rpc/${encodeURIComponent(name)}`;
      let status: number | null = null;
      let text: string;
      try {
        const response = await send(url, {
          method: "POST",
          headers,
          body: JSON.stringify({ args }),
          signal: signal ?? null,
        });
        status = response.status;
        text = await response.text();
      } catch (error) {
        if (signal?.aborted) {
          throw error;
        }
        throw new ForgeError({
          code: "NETWORK_ERROR",
          message: `${name}: ${describe(error)}`,
          status,
          cause: error,
        });
      }
      return decode<T>(name, text, status);
    },
    subscribe<T>(
      name: string,
      args: object,
      onData: (data: T) => void,
      onError?: (error: ForgeError) => void,
    ): Unsubscribe {
      return live.subscribe(name, args, (data) => onData(data as T), onError ?? (() => {}));
    },
    live<T>(name: string, args: object): Readable<LiveState<T>> {
      let state: LiveState<T> = { data: undefined, error: null };
      const runs = new Set<(value: LiveState<T>) => void>();
      let stop: Unsubscribe | null = null;
      const publish = (next: LiveState<T>): void => {
        state = next;
        for (const run of [...runs]) {
          run(state);
        }
      };
      return {
        subscribe(run: (value: LiveState<T>) => void): Unsubscribe {
          runs.add(run);
          run(state);
          if (stop === null) {
            stop = client.subscribe<T>(
              name,
              args,
              (data) => publish({ data, error: null }),
              (error) => publish({ data: state.data, error }),
            );
          }
          return () => {
            runs.delete(run);
            if (runs.size === 0 && stop !== null) {
              stop();
              stop = null;
            }
          };
        },
      };
    },
  };
  return client;
}

interface Subscription {
  name: string;
  args: object;
  onData: (data: unknown) => void;
  onError: (error: ForgeError) => void;
}

/** Reconnection backoff: 0.5 s doubling to 30 s, back to the start once connected. */
const FIRST_RETRY_MS = 500;
const LAST_RETRY_MS = 30_000;

/**
 * The client's one server-sent-events stream (`GET /_api/events`), opened with the first
 * subscription and closed after the last. Read through `fetch`, not `EventSource`, so it
 * can send the bearer token.
 */
class LiveConnection {
  private readonly baseUrl: string;
  private readonly send: typeof fetch;
  private readonly options: ClientOptions;
  private readonly subscriptions = new Map<string, Subscription>();
  private session: { id: string; secret: string } | null = null;
  private stream: AbortController | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private retryMs = FIRST_RETRY_MS;
  private lastId = 0;

  constructor(baseUrl: string, send: typeof fetch, options: ClientOptions) {
    this.baseUrl = baseUrl;
    this.send = send;
    this.options = options;
  }

  subscribe(
    name: string,
    args: object,
    onData: (data: unknown) => void,
    onError: (error: ForgeError) => void,
  ): Unsubscribe {
    this.lastId += 1;
    const id = String(this.lastId);
    const subscription: Subscription = { name, args, onData, onError };
    this.subscriptions.set(id, subscription);
    if (this.session !== null) {
      void this.register(id, subscription);
    } else {
      this.open();
    }
    return () => {
      if (this.subscriptions.get(id) !== subscription) {
        return;
      }
      this.subscriptions.delete(id);
      if (this.session !== null) {
        void this.post("unsubscribe", this.session, { subscription_id: id }).catch(() => {});
      }
      if (this.subscriptions.size === 0) {
        this.close();
      }
    };
  }

  private open(): void {
    if (this.stream !== null || this.timer !== null) {
      return;
    }
    const stream = new AbortController();
    this.stream = stream;
    void this.read(stream).then(
      () => this.lost(stream, null),
      (error: unknown) => this.lost(stream, error),
    );
  }

  private close(): void {
    this.stream?.abort();
    this.stream = null;
    this.session = null;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** The stream ended: unless it was closed on purpose, reconnect after the backoff. */
  private lost(stream: AbortController, error: unknown): void {
    if (this.stream !== stream || stream.signal.aborted) {
      return;
    }
    this.stream = null;
    this.session = null;
    if (error instanceof ForgeError && error.code !== "NETWORK_ERROR") {
      for (const subscription of this.subscriptions.values()) {
        subscription.onError(error);
      }
    }
    if (this.subscriptions.size === 0) {
      return;
    }
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, LAST_RETRY_MS);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.subscriptions.size > 0) {
        this.open();
      }
    }, delay);
  }

  private async headers(): Promise<Headers> {
    const headers = new Headers(this.options.headers);
    const token = this.options.token ? await this.options.token() : null;
    if (token) {
      headers.set("authorization", `Bearer ${token}`);
    }
    return headers;
  }

  private async read(stream: AbortController): Promise<void> {
    const headers = await this.headers();
    headers.set("accept", "text/event-stream");
    let response: Response;
    try {
      response = await this.send(`${this.baseUrl}/_api/events`, { headers, signal: stream.signal });
    } catch (error) {
      throw new ForgeError({ code: "NETWORK_ERROR", message: `events: ${describe(error)}`, cause: error });
    }
    if (!response.ok || response.body === null) {
      decode<unknown>("events", await response.text(), response.status);
      throw new ForgeError({ code: "NETWORK_ERROR", message: "events: no stream", status: response.status });
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) {
        return;
      }
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, "\n");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        this.dispatch(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
      }
    }
  }

  /** One server-sent event: `event:` and `data:` lines; comments are keep-alives. */
  private dispatch(block: string): void {
    let event = "message";
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) {
        event = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
    }
    if (data.length === 0) {
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(data.join("\n"));
    } catch {
      return;
    }
    if (!isObject(body)) {
      return;
    }
    if (event === "connected") {
      const id = body["session_id"];
      const secret = body["session_secret"];
      if (typeof id === "string" && typeof secret === "string") {
        this.session = { id, secret };
        this.retryMs = FIRST_RETRY_MS;
        for (const [subscriptionId, subscription] of this.subscriptions) {
          void this.register(subscriptionId, subscription);
        }
      }
      return;
    }
    const subscriptionId = body["subscription_id"];
    const subscription = typeof subscriptionId === "string" ? this.subscriptions.get(subscriptionId) : undefined;
    if (subscription === undefined) {
      return;
    }
    if (event === "update") {
      subscription.onData(body["data"]);
    } else if (event === "error") {
      const error = isObject(body["error"]) ? body["error"] : {};
      subscription.onError(
        new ForgeError({
          code: typeof error["code"] === "string" ? error["code"] : "INTERNAL_ERROR",
          message: typeof error["message"] === "string" ? error["message"] : `${subscription.name} failed`,
          details: error["details"],
        }),
      );
    }
  }

  /** Makes one subscription on the current session; the first result arrives as an event. */
  private async register(id: string, subscription: Subscription): Promise<void> {
    const session = this.session;
    if (session === null) {
      return;
    }
    try {
      await this.post("subscribe", session, {
        subscription_id: id,
        function: subscription.name,
        args: subscription.args,
      });
    } catch (error) {
      if (this.subscriptions.get(id) !== subscription || this.session !== session) {
        return;
      }
      const failure =
        error instanceof ForgeError
          ? error
          : new ForgeError({ code: "NETWORK_ERROR", message: describe(error), cause: error });
      // The server refused it (bad arguments, no access): trying again cannot help. A
      // network failure is retried with the next connection.
      if (failure.code !== "NETWORK_ERROR") {
        this.subscriptions.delete(id);
      }
      subscription.onError(failure);
      return;
    }
    // Unsubscribed while the request was in flight: the server kept it.
    if (this.subscriptions.get(id) !== subscription && this.session === session) {
      await this.post("unsubscribe", session, { subscription_id: id }).catch(() => {});
    }
  }

  private async post(
    path: "subscribe" | "unsubscribe",
    session: { id: string; secret: string },
    body: object,
  ): Promise<unknown> {
    const headers = await this.headers();
    headers.set("content-type", "application/json");
    headers.set("accept", "application/json");
    let response: Response;
    try {
      response = await this.send(`${this.baseUrl}/_api/${path}`, {
        method: "POST",
        headers,
        body: JSON.stringify({ session_id: session.id, session_secret: session.secret, ...body }),
      });
    } catch (error) {
      throw new ForgeError({ code: "NETWORK_ERROR", message: `${path}: ${describe(error)}`, cause: error });
    }
    return decode<unknown>(path, await response.text(), response.status);
  }
}

/** Reads the server's envelope: the result, or the error it describes. */
function decode<T>(name: string, text: string, status: number): T {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ForgeError({
      code: "INTERNAL_ERROR",
      message: `${name}: the server answered ${status} with a body that is not JSON: ${excerpt(text)}`,
      status,
    });
  }
  if (isObject(body) && body["success"] === true) {
    return body["data"] as T;
  }
  const requestId = isObject(body) && typeof body["request_id"] === "string" ? body["request_id"] : null;
  const error = isObject(body) && isObject(body["error"]) ? body["error"] : null;
  if (!isObject(body) || body["success"] !== false || error === null) {
    throw new ForgeError({
      code: "INTERNAL_ERROR",
      message: `${name}: the server answered ${status} with an unexpected body: ${excerpt(text)}`,
      requestId,
      status,
    });
  }
  throw new ForgeError({
    code: typeof error["code"] === "string" ? error["code"] : "INTERNAL_ERROR",
    message: typeof error["message"] === "string" ? error["message"] : `${name} failed`,
    details: error["details"],
    requestId,
    status,
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function excerpt(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
