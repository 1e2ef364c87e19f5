// Type-level tests of the generated client (see tests/tests/typescript_emit.rs, which emits
// the types this file imports). Each `ok` value is what serde puts on the wire and must
// type-check; each `@ts-expect-error` line is a value serde never produces or accepts, so a
// type that is too loose (`any`, a missing tag, an optional that should be required) makes
// tsc fail with "Unused '@ts-expect-error' directive".

import {
  createClient,
  createUser,
  ForgeError,
  getUser,
  listUsers,
  ping,
  reset,
  statuses,
  type Audited,
  type Command,
  type Event,
  type ForgeClient,
  type FunctionsBillingStatus,
  type GetUserArgs,
  type GetUserArgs2,
  type Marker,
  type Mutations,
  type NewUser,
  type Page,
  type Point,
  type Queries,
  type Rgb,
  type Role,
  type SchemaStatus,
  type Settings,
  type Shape,
  type Tagged,
  type Timing,
  type User,
  type Value,
} from "./index.js";

// ---- structs, output only: serialize names, server-omitted fields ----------------------

export const user: User = {
  id: "7f1c0e52-4d0a-4a5e-9a57-3c1f6f0b7a10",
  displayName: "Ada",
  avatar: null,
  createdAt: "2026-01-01T00:00:00Z",
  tags: ["admin"],
  role: "admin",
};
export const userWithEmail: User = { ...user, email: "ada@example.com" };

// @ts-expect-error the snake_case Rust name is not the wire name
export const userSnake: User = { id: "x", display_name: "Ada", avatar: null, createdAt: "t", tags: [], role: "admin" };
// @ts-expect-error a field skipped when serialising never arrives
export const userWithHash: User = { id: "x", displayName: "Ada", avatar: null, createdAt: "t", tags: [], role: "admin", password_hash: "h" };
// @ts-expect-error `skip_serializing_if = "Option::is_none"`: absent, never null
export const userNullEmail: User = { id: "x", displayName: "Ada", email: null, avatar: null, createdAt: "t", tags: [], role: "admin" };
// @ts-expect-error a plain `Option` is always sent, as null when absent
export const userNoAvatar: User = { id: "x", displayName: "Ada", createdAt: "t", tags: [], role: "admin" };
// @ts-expect-error a `Vec` is never null
export const userNullTags: User = { id: "x", displayName: "Ada", avatar: null, createdAt: "t", tags: null, role: "admin" };

// ---- structs, input only: deserialize names, client-omitted fields ---------------------

export const newUser: NewUser = { displayName: "Ada", "first-name": "Ada" };
export const newUserFull: NewUser = { displayName: "Ada", email: null, age: 36, "first-name": "Ada" };

// @ts-expect-error the serialize name is not what the server reads
export const newUserSerializeName: NewUser = { DisplayName: "Ada", "first-name": "Ada" };
// @ts-expect-error a field skipped when deserialising is not accepted
export const newUserNote: NewUser = { displayName: "Ada", "first-name": "Ada", internal_note: "x" };
// @ts-expect-error the renamed field is `first-name`
export const newUserFirstName: NewUser = { displayName: "Ada", first_name: "Ada" };
// @ts-expect-error `u8` is a number
export const newUserAge: NewUser = { displayName: "Ada", "first-name": "Ada", age: "36" };

// ---- structs used both ways ------------------------------------------------------------

export const settingsIn: Settings = { theme: "dark", new_password: "secret" };
export const settingsOut: Settings = { theme: "dark" };
// @ts-expect-error `theme` is sent both ways
export const settingsNoTheme: Settings = { new_password: "secret" };

// ---- enums -----------------------------------------------------------------------------

export const roles: Role[] = ["admin", "member"];
// @ts-expect-error the variant is renamed
export const roleRustName: Role = "Admin";
// @ts-expect-error skipped when serialising: never sent
export const roleRoot: Role = "Root";

export const shapes: Shape[] = [
  { type: "Circle", radius: 1.5 },
  { type: "Rect", w: 2, h: 3 },
  { type: "Empty" },
  { type: "Labelled", text: "a label" },
  [1, 2, 3],
];
// @ts-expect-error an internally tagged variant carries its tag
export const shapeNoTag: Shape = { radius: 1.5 };
// @ts-expect-error the tag names the variant
export const shapeWrongTag: Shape = { type: "Triangle", radius: 1.5 };
// @ts-expect-error the newtype variant's fields sit beside the tag
export const shapeNested: Shape = { type: "Labelled", Labelled: { text: "a label" } };

export const events: Event[] = [
  { t: "Ping" },
  { t: "Message", c: "hello" },
  { t: "Move", c: [1, 2] },
  { t: "Resize", c: { w: 1, h: 2 } },
];
// @ts-expect-error adjacently tagged content goes under `c`
export const eventNoContent: Event = { t: "Message" };
// @ts-expect-error the tuple has two elements
export const eventLongMove: Event = { t: "Move", c: [1, 2, 3] };

export const values: Value[] = [null, 1.5, "text", [1, 2], { key: "k" }];
// @ts-expect-error no variant is a boolean
export const valueBool: Value = true;
// @ts-expect-error untagged: no wrapper object
export const valueTagged: Value = { Text: "text" };

export const commands: Command[] = ["Stop", { Go: 3 }, { Move: [1, 2] }, { Say: { text: "hi" } }];
// @ts-expect-error a unit variant is a bare string
export const commandStopObject: Command = { Stop: null };
// @ts-expect-error externally tagged: the payload sits under the variant's name
export const commandUntagged: Command = { text: "hi" };

// ---- other struct forms ----------------------------------------------------------------

export const page: Page<User> = { items: [user], total: 1, next: null };
// @ts-expect-error the items are `T`
export const pageOfStrings: Page<User> = { items: ["x"], total: 1, next: null };

export const tagged: Tagged = { kind: "tagged", id: 1 };
// @ts-expect-error `#[serde(tag)]` on a struct writes its tag
export const taggedNoTag: Tagged = { id: 1 };
// @ts-expect-error the tag's value is fixed
export const taggedWrongTag: Tagged = { kind: "other", id: 1 };

export const audited: Audited = { name: "n", by: "ada", at: "2026-01-01T00:00:00Z", extraFlag: true };
// @ts-expect-error the flattened struct's fields are required
export const auditedNoBy: Audited = { name: "n", at: "2026-01-01T00:00:00Z" };
// @ts-expect-error flattened map entries hold booleans (or one of the declared fields' types)
export const auditedNumber: Audited = { name: "n", by: "ada", at: "t", extra: 1 };

export const point: Point = [1, 2];
// @ts-expect-error a tuple struct has exactly its fields
export const pointLong: Point = [1, 2, 3];
export const rgb: Rgb = [255, 0, 0];
// @ts-expect-error `[u8; 3]` has three elements
export const rgbShort: Rgb = [255, 0];
export const marker: Marker = null;
// @ts-expect-error a unit struct is null
export const markerObject: Marker = {};

export const timing: Timing = {
  took: { secs: 1, nanos: 500 },
  meta: { anything: [1, "two"] },
  blob: "any JSON at all",
  unit: null,
  scores: [1, null],
  lookup: { a: 1, b: null },
};
// @ts-expect-error a Duration is `{ secs, nanos }`
export const timingMillis: Timing = { took: 1500, meta: {}, blob: null, unit: null, scores: [], lookup: {} };
// @ts-expect-error a JSON object is not an array
export const timingMetaArray: Timing = { took: { secs: 1, nanos: 0 }, meta: [], blob: null, unit: null, scores: [], lookup: {} };

// Two Rust types named `Status`, told apart by their modules.
export const billing: FunctionsBillingStatus = "Paid";
export const schemaStatus: SchemaStatus = "Open";
// @ts-expect-error each keeps its own variants
export const crossed: FunctionsBillingStatus = "Open";

// ---- functions -------------------------------------------------------------------------

const client: ForgeClient = createClient({
  baseUrl: "https://api.example.com",
  token: async () => "jwt",
});
export const anonymous: ForgeClient = createClient({ baseUrl: "/", token: () => null, headers: { "x-app": "wire" } });

export const calls = async (signal: AbortSignal): Promise<void> => {
  const usersPage: Page<User> = await listUsers(client, { limit: 10 });
  const nextPage: Page<User> = await listUsers(client, { limit: 10, cursor: usersPage.next }, { signal });
  // @ts-expect-error `limit` is a number
  await listUsers(client, { limit: "10" });
  // @ts-expect-error `limit` is required
  await listUsers(client, {});

  const userId: GetUserArgs = { id: nextPage.items[0]?.id ?? "" };
  const args: GetUserArgs2 = { args: userId };
  const maybeUser: User | null = await getUser(client, args);
  // @ts-expect-error the user may not exist
  const surelyUser: User = await getUser(client, args);

  const created: User = await createUser(client, { input: { displayName: "Ada", "first-name": "Ada" } });
  const pong: string = await ping(client);
  const nothing: null = await reset(client, { signal });
  const both: [FunctionsBillingStatus, SchemaStatus] = await statuses(client);
  // @ts-expect-error `ping` takes no arguments
  await ping(client, { limit: 1 }, {});
  // @ts-expect-error `ping` returns a string
  const pongNumber: number = await ping(client);

  try {
    await reset(client);
  } catch (error) {
    if (error instanceof ForgeError) {
      const detail: [string, string, string | null, number | null, unknown] = [
        error.code,
        error.message,
        error.requestId,
        error.status,
        error.details,
      ];
      void detail;
    }
  }
  void [maybeUser, surelyUser, created, pong, nothing, both, pongNumber];
};

// The maps from handler name to arguments and result.
export const listUsersArgs: Queries["list_users"]["args"] = { limit: 1 };
export const createdUser: Mutations["create_user"]["result"] = user;
export const queryNames: (keyof Queries)[] = ["get_user", "list_users", "ping", "statuses"];
// @ts-expect-error mutations are not queries, and jobs are not callable
export const notQueries: (keyof Queries)[] = ["create_user", "send_welcome_email"];
