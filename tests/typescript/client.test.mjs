// Drives the compiled client (see tests/tests/typescript_emit.rs) against a local HTTP server
// that speaks forge's RPC protocol. Exits non-zero on the first failed assertion.

import assert from "node:assert/strict";
import { createServer } from "node:http";

import { createClient, ForgeError, getUser, listUsers, ping, reset } from "./index.js";

// Nothing here should take long; a hang must fail the test, not stall it.
setTimeout(() => {
  console.error("client.test.mjs timed out");
  process.exit(1);
}, 20_000).unref();

/** Every request the server saw: method, path, headers, parsed body. */
const seen = [];

const server = createServer(async (request, response) => {
  let body = "";
  for await (const chunk of request) body += chunk;
  const name = request.url.replace("/_api/rpc/", "");
  seen.push({ method: request.method, url: request.url, headers: request.headers, body: JSON.parse(body) });
  const reply = (status, payload, type = "application/json") => {
    response.writeHead(status, { "content-type": type });
    response.end(typeof payload === "string" ? payload : JSON.stringify(payload));
  };
  switch (name) {
    case "list_users":
      return reply(200, { success: true, data: { items: [], total: 0, next: null }, request_id: "r-1" });
    case "ping":
      return reply(200, { success: true, data: "pong", request_id: "r-2" });
    case "get_user":
      return reply(404, {
        success: false,
        error: { code: "NOT_FOUND", message: "no such user", details: { id: "u-1" } },
        request_id: "r-3",
      });
    case "reset":
      return reply(502, "<html>Bad Gateway</html>", "text/html");
    case "slow":
      // Answers only after the client has given up.
      return setTimeout(() => reply(200, { success: true, data: null, request_id: "r-4" }), 5_000);
    default:
      return reply(200, { unexpected: true });
  }
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const baseUrl = `http://127.0.0.1:${server.address().port}/`;

const client = createClient({
  baseUrl,
  token: async () => "the-jwt",
  headers: { "x-app": "tests" },
});

// A successful call: the request's shape, and the envelope's data as the result.
assert.deepEqual(await listUsers(client, { limit: 2 }), { items: [], total: 0, next: null });
const [call] = seen;
assert.equal(call.method, "POST");
assert.equal(call.url, "/_api/rpc/list_users", "the trailing slash of baseUrl is dropped");
assert.deepEqual(call.body, { args: { limit: 2 } });
assert.equal(call.headers["content-type"], "application/json");
assert.equal(call.headers.authorization, "Bearer the-jwt");
assert.equal(call.headers["x-app"], "tests");

// No arguments: an empty `args` object; no token: no Authorization header.
const anonymous = createClient({ baseUrl, token: () => null });
assert.equal(await ping(anonymous), "pong");
assert.deepEqual(seen.at(-1).body, { args: {} });
assert.equal(seen.at(-1).headers.authorization, undefined);

// An error envelope becomes a ForgeError with everything the server said.
await assert.rejects(getUser(client, { args: { id: "u-1" } }), (error) => {
  assert.ok(error instanceof ForgeError);
  assert.ok(error instanceof Error);
  assert.equal(error.name, "ForgeError");
  assert.equal(error.code, "NOT_FOUND");
  assert.equal(error.message, "no such user");
  assert.deepEqual(error.details, { id: "u-1" });
  assert.equal(error.requestId, "r-3");
  assert.equal(error.status, 404);
  return true;
});

// A body that is not JSON (a proxy's error page) is an INTERNAL_ERROR with the status.
await assert.rejects(reset(client), (error) => {
  assert.ok(error instanceof ForgeError);
  assert.equal(error.code, "INTERNAL_ERROR");
  assert.equal(error.status, 502);
  assert.match(error.message, /Bad Gateway/);
  return true;
});

// JSON that is not an envelope is an INTERNAL_ERROR too.
await assert.rejects(client.call("unknown_shape", {}), (error) => {
  assert.ok(error instanceof ForgeError);
  assert.equal(error.code, "INTERNAL_ERROR");
  assert.equal(error.status, 200);
  return true;
});

// No server: a NETWORK_ERROR with no status, keeping the cause.
const closed = createServer();
await new Promise((resolve) => closed.listen(0, "127.0.0.1", resolve));
const closedPort = closed.address().port;
await new Promise((resolve) => closed.close(resolve));
await assert.rejects(ping(createClient({ baseUrl: `http://127.0.0.1:${closedPort}` })), (error) => {
  assert.ok(error instanceof ForgeError);
  assert.equal(error.code, "NETWORK_ERROR");
  assert.equal(error.status, null);
  assert.ok(error.cause instanceof Error);
  return true;
});

// Aborting rejects with the standard AbortError, not a ForgeError.
const controller = new AbortController();
const pending = client.call("slow", {}, { signal: controller.signal });
setTimeout(() => controller.abort(), 50);
await assert.rejects(pending, (error) => {
  assert.ok(!(error instanceof ForgeError));
  assert.equal(error.name, "AbortError");
  return true;
});

// A custom fetch replaces the global one and sees the same request.
const requests = [];
const stubbed = createClient({
  baseUrl: "https://api.example.com/base",
  fetch: async (url, init) => {
    requests.push({ url, init });
    return new Response(JSON.stringify({ success: true, data: 42, request_id: "r-5" }));
  },
});
assert.equal(await stubbed.call("answer", { q: 1 }), 42);
assert.equal(requests[0].url, "https://api.example.com/base/_api/rpc/answer");
assert.equal(requests[0].init.body, JSON.stringify({ args: { q: 1 } }));

server.closeAllConnections();
server.close();
console.log("client.test.mjs: all assertions passed");
