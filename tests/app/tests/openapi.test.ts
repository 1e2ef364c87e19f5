// Calls the running test app through `openapi-fetch`, typed by what `openapi-typescript`
// generated from the app's OpenAPI document (`api.d.ts`). Type-checked under
// `tsc --strict`, then run by Node.
import createClient from "openapi-fetch";
import type { paths } from "./api.js";

declare const process: { env: Record<string, string | undefined>; exitCode: number };

function check(condition: boolean, message: string): void {
  if (!condition) {
    throw new Error(`assertion failed: ${message}`);
  }
}

const baseUrl = process.env["FORGE_URL"] ?? "";
const anonymous = createClient<paths>({ baseUrl });
const alice = createClient<paths>({
  baseUrl,
  headers: { Authorization: `Bearer ${process.env["ALICE_TOKEN"] ?? ""}` },
});

async function main(): Promise<void> {
  // A public query, anonymously.
  const pong = await anonymous.POST("/_api/rpc/ping", { body: { args: { message: "hi" } } });
  check(pong.response.status === 200, `ping: ${pong.response.status}`);
  const message: string | undefined = pong.data?.data.message;
  check(message === "hi" && pong.data?.data.caller === null, JSON.stringify(pong.data));

  // A mutation with a bearer token; the result is typed as a number.
  const added = await alice.POST("/_api/rpc/add_note", { body: { args: { text: "from openapi" } } });
  const id: number | undefined = added.data?.data;
  check(added.data?.success === true && typeof id === "number", JSON.stringify(added.data));

  // A query without arguments: the request body may leave `args` out.
  const notes = await alice.POST("/_api/rpc/my_notes", { body: {} });
  const texts = notes.data?.data.map((note) => note.text) ?? [];
  check(texts.includes("from openapi"), JSON.stringify(notes.data));

  // Errors come back typed as the error envelope.
  const denied = await anonymous.POST("/_api/rpc/my_notes", { body: {} });
  check(denied.response.status === 401, `my_notes anonymously: ${denied.response.status}`);
  check(denied.error?.error.code === "UNAUTHORIZED", JSON.stringify(denied.error));
  const invalid = await alice.POST("/_api/rpc/add_note", { body: { args: { text: " " } } });
  check(invalid.response.status === 400, `empty note: ${invalid.response.status}`);
  check(invalid.error?.error.code === "VALIDATION_ERROR", JSON.stringify(invalid.error));
  check(typeof invalid.error?.request_id === "string", "errors carry the request id");
}

main().then(
  () => console.log("openapi client: ok"),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
