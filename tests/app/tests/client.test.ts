// Drives the generated TypeScript client against the running test app (real server, real
// database). Type-checked with the generated files under `tsc --strict`, then run by Node.
import { addNote, createClient, ForgeError, myNotes, ping } from "./forge/index.js";

declare const process: { env: Record<string, string | undefined>; exitCode: number };

function check(condition: boolean, message: string): void {
  if (!condition) {
    throw new Error(`assertion failed: ${message}`);
  }
}

async function rejects(call: Promise<unknown>, code: string, status: number): Promise<ForgeError> {
  try {
    await call;
  } catch (error) {
    check(error instanceof ForgeError, `expected a ForgeError, got ${String(error)}`);
    const forgeError = error as ForgeError;
    check(forgeError.code === code, `expected ${code}, got ${forgeError.code}: ${forgeError.message}`);
    check(forgeError.status === status, `expected HTTP ${status}, got ${forgeError.status}`);
    check(typeof forgeError.requestId === "string", "errors carry the request id");
    return forgeError;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

const baseUrl = process.env["FORGE_URL"] ?? "";
const alice = createClient({ baseUrl, token: () => process.env["ALICE_TOKEN"] });
const bob = createClient({ baseUrl, token: async () => process.env["BOB_TOKEN"] });
const anonymous = createClient({ baseUrl });

async function main(): Promise<void> {
  const pong = await ping(anonymous, { message: "hi" });
  check(pong.message === "hi" && pong.caller === null, JSON.stringify(pong));
  const known = await ping(alice, { message: "hello" });
  check(known.caller === process.env["ALICE_ID"], JSON.stringify(known));

  await rejects(myNotes(anonymous), "UNAUTHORIZED", 401);
  await rejects(alice.call("no_such_function", {}), "NOT_FOUND", 404);

  const first = await addNote(alice, { text: "buy milk" });
  const second = await addNote(alice, { text: "call mum" });
  check(typeof first === "number" && second > first, `ids ${first}, ${second}`);
  await addNote(bob, { text: "bob's secret" });

  const invalid = await rejects(addNote(alice, { text: "  " }), "VALIDATION_ERROR", 400);
  check(JSON.stringify(invalid.details) === '{"field":"text"}', JSON.stringify(invalid.details));

  const notes = await myNotes(alice);
  check(notes.length === 2, `alice sees only her notes: ${JSON.stringify(notes)}`);
  check(notes[0]?.text === "buy milk" && notes[1]?.text === "call mum", JSON.stringify(notes));
  check(!Number.isNaN(Date.parse(notes[0]?.createdAt ?? "")), "dates arrive as ISO strings");
  const bobs = await myNotes(bob);
  check(bobs.length === 1 && bobs[0]?.text === "bob's secret", JSON.stringify(bobs));
}

main().then(
  () => console.log("client.test.ts: ok"),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
