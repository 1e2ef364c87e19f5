// Type-level tests of the client `forge generate` writes for fixtures/kitchen_sink (see
// tests/tests/kitchen_sink.rs). Each value is what serde puts on the wire for the fixture's
// Rust types and must type-check; each `@ts-expect-error` line is a value serde never
// produces, so a type that is too loose makes tsc fail with "Unused '@ts-expect-error'".

import {
  createUser,
  listTeam,
  me,
  stats,
  createClient,
  type Block,
  type Collections,
  type CreateUser,
  type Document,
  type Event,
  type FunctionsBillingStatus,
  type KebabCase,
  type Loose,
  type Page,
  type Point,
  type Role,
  type SchemaUserStatus,
  type Shape,
  type Tagged,
  type User,
  type Queries,
} from "./index.js";

// ---- User: camelCase, skip, skip_serializing_if, rename, Option, map, recursion ----------

export const user: User = {
  id: "7f1c0e52-4d0a-4a5e-9a57-3c1f6f0b7a10",
  displayName: "Ada",
  email: null,
  role: "TEAM_ADMIN",
  createdAt: "2026-01-01T00:00:00Z",
  birthday: "1990-12-10",
  isAdmin: false,
  settings: { theme: "dark" },
  counters: { logins: 3 },
  manager: null,
};
export const withAvatar: User = { ...user, avatarUrl: "https://example.com/a.png", manager: user };

// @ts-expect-error wrong case: the wire name is displayName
export const snake: User = { ...user, display_name: "Ada" };
// @ts-expect-error a #[serde(skip)] field never crosses the wire
export const skipped: User = { ...user, passwordHash: "x" };
// @ts-expect-error renamed field: admin is sent as isAdmin
export const renamed: User = { ...user, admin: true };
// @ts-expect-error Option without skip_serializing_if is always present (null when None)
export const missingEmail: User = { ...{ ...user, email: undefined } };
// @ts-expect-error rename_all = "SCREAMING_SNAKE_CASE" on Role
export const badRole: Role = "TeamAdmin";

// ---- inputs: deserialize names, default and Option fields may be omitted ---------------

export const create: CreateUser = { displayName: "Ada" };
export const createFull: CreateUser = { displayName: "Ada", email: null, inviteCode: "x" };
// @ts-expect-error skip_deserializing: clients cannot send it
export const createServerOnly: CreateUser = { displayName: "Ada", serverOnly: 1 };
// @ts-expect-error the required field is missing
export const createEmpty: CreateUser = {};

// ---- enums --------------------------------------------------------------------------

export const circle: Shape = { kind: "circle", radius: 1 };
export const labelled: Shape = { kind: "labelled", text: "hi" };
export const empty: Shape = { kind: "empty" };
// @ts-expect-error internally tagged: the tag is required
export const untaggedCircle: Shape = { radius: 1 };
// @ts-expect-error rename_all = "snake_case" on the variants
export const pascalTag: Shape = { kind: "Circle", radius: 1 };

export const text: Block = { t: "Text", c: "hi" };
export const pair: Block = { t: "Pair", c: [1, 2] };
export const divider: Block = { t: "Divider" };
// @ts-expect-error adjacently tagged: the payload goes under "c"
export const inlineQuote: Block = { t: "Quote", author: "a", body: "b" };

export const created: Event = { Created: { id: "7f1c0e52-4d0a-4a5e-9a57-3c1f6f0b7a10" } };
export const moved: Event = { Moved: [1, 2] };
export const deleted: Event = "Deleted";
export const purged: Event = "purged";
// @ts-expect-error a #[serde(skip)] variant is never sent
export const internal: Event = "Internal";
// @ts-expect-error externally tagged tuple variant: exactly two elements
export const movedTooFar: Event = { Moved: [1, 2, 3] };

export const looseNumber: Loose = 1.5;
export const loosePair: Loose = ["a", "b"];
export const looseNamed: Loose = { name: "x" };
export const looseNothing: Loose = null;
// @ts-expect-error untagged: no variant has this shape
export const looseBad: Loose = { Number: 1 };

export const paid: FunctionsBillingStatus = "past_due";
export const active: SchemaUserStatus = "active";
// @ts-expect-error the two Status enums are different types
export const mixed: SchemaUserStatus = "past_due";

// ---- structs of other shapes ------------------------------------------------------------

export const point: Point = [1, 2];
// @ts-expect-error a tuple struct has exactly its fields
export const point3: Point = [1, 2, 3];
export const tagged: Tagged = { type: "Tagged", value: 1 };
// @ts-expect-error #[serde(tag)] on a struct: the tag is required
export const untagged: Tagged = { value: 1 };
export const kebab: KebabCase = { "first-name": "a", "http-status": 200 };
export const document: Document = { title: "t", created_by: "me", version: 2, anything: [1] };
// @ts-expect-error the flattened struct's fields are required
export const documentNoAudit: Document = { title: "t" };
export const collections: Collections = {
  pair: ["a", 1],
  rgb: [0, 128, 255],
  tags: ["x"],
  maybe_list: [1, null],
  unit: null,
  scores: { a: [1.5] },
};
// @ts-expect-error [u8; 3] has exactly three elements
export const rgb4: Collections = { ...collections, rgb: [0, 0, 0, 0] };

export const page: Page<User> = { items: [user], nextCursor: null, totalCount: 1 };
// @ts-expect-error the generic argument types the items
export const badPage: Page<User> = { items: [1], nextCursor: null, totalCount: 1 };

// ---- functions ----------------------------------------------------------------------

const client = createClient({ baseUrl: "http://127.0.0.1:9081", token: () => "t" });
export async function calls(): Promise<void> {
  const mine: User = await me(client);
  const team: Page<User> = await listTeam(client, { limit: 10 });
  const made: User = await createUser(client, { input: { displayName: "Ada" } });
  const counts: number = (await stats(client)).users;
  // @ts-expect-error arguments are checked: limit is a number
  await listTeam(client, { limit: "10" });
  // @ts-expect-error jobs are not callable over RPC
  type NotAQuery = Queries["send_welcome"];
  void [mine, team, made, counts];
}
