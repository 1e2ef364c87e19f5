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

export interface ForgeClient {
  /** Calls the query or mutation `name` with `args` (its parameters by name). */
  call<T>(name: string, args: object, options?: CallOptions): Promise<T>;
}

export function createClient(options: ClientOptions): ForgeClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, "");
  // Looked up per call, and called unbound: browsers reject `fetch` called as a method of
  // another object ("Illegal invocation").
  const send: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  return {
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
  };
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
