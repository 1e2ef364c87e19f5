// Live queries through the generated TypeScript client against two nodes of the test app on
// one database (real servers, real database). Subscriptions go to node A, writes to node B.
// Prints `phase:kill` / `phase:kill-done` around the writes during which the Rust side
// terminates the nodes' LISTEN connections.
import { addItem, addNote, createClient, live, renameItem, subscribe, tagItem } from "./forge/index.js";
import type { ForgeError, Item, LiveState, Note, TaggedItem } from "./forge/index.js";

declare const process: { env: Record<string, string | undefined>; exitCode: number };

function check(condition: boolean, message: string): void {
  if (!condition) {
    throw new Error(`assertion failed: ${message}`);
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Every value a subscription received, and a way to wait for one. */
class Received<T> {
  readonly values: T[] = [];
  readonly errors: ForgeError[] = [];
  push = (value: T): void => {
    this.values.push(value);
  };
  fail = (error: ForgeError): void => {
    this.errors.push(error);
  };
  last(): T | undefined {
    return this.values[this.values.length - 1];
  }
  async until(what: string, test: (value: T) => boolean, ms = 10_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const last = this.last();
      if (last !== undefined && test(last)) {
        return last;
      }
      check(this.errors.length === 0, `${what}: ${this.errors.map((e) => e.message).join("; ")}`);
      check(Date.now() < deadline, `${what}: not within ${ms} ms; last ${JSON.stringify(last)}`);
      await sleep(20);
    }
  }
}

const env = (name: string): string => process.env[name] ?? "";
const nodeA = createClient({ baseUrl: env("FORGE_URL_A") });
const nodeB = createClient({ baseUrl: env("FORGE_URL_B") });
const aliceA = createClient({ baseUrl: env("FORGE_URL_A"), token: () => env("ALICE_TOKEN") });
const aliceB = createClient({ baseUrl: env("FORGE_URL_B"), token: () => env("ALICE_TOKEN") });
const bobA = createClient({ baseUrl: env("FORGE_URL_A"), token: () => env("BOB_TOKEN") });

async function main(): Promise<void> {
  // A write through node B reaches a subscriber of node A; a subscription whose result did
  // not change receives nothing more than its first result.
  const groceries = new Received<Item[]>();
  const other = new Received<Item[]>();
  const stops = [
    subscribe(nodeA, "list_items", { list: "groceries" }, groceries.push, groceries.fail),
    subscribe(nodeA, "list_items", { list: "other" }, other.push, other.fail),
  ];
  await groceries.until("the first result", (items) => items.length === 0);
  await other.until("the first result", (items) => items.length === 0);
  const milk = await addItem(nodeB, { list: "groceries", name: "milk" });
  await groceries.until("milk", (items) => items.length === 1 && items[0]?.name === "milk");

  // The store contract: the current value at once, then each change.
  const states: LiveState<Item[]>[] = [];
  const stopStore = live(nodeA, "list_items", { list: "groceries" }).subscribe((state) => states.push(state));
  check(states.length === 1 && states[0]?.data === undefined, "a store calls run at once");

  // A JOIN is invalidated by writes to either table.
  const tagged = new Received<TaggedItem[]>();
  stops.push(subscribe(nodeA, "tagged_items", { list: "groceries" }, tagged.push, tagged.fail));
  await tagged.until("the first result", (rows) => rows.length === 0);
  await tagItem(nodeB, { id: milk, tag: "dairy" });
  await tagged.until("the tag", (rows) => rows.length === 1 && rows[0]?.tag === "dairy");
  await renameItem(nodeB, { id: milk, name: "oat milk" });
  await tagged.until("the rename", (rows) => rows[0]?.name === "oat milk");
  await groceries.until("the rename", (items) => items[0]?.name === "oat milk");
  check(states[states.length - 1]?.data?.[0]?.name === "oat milk", `the store: ${JSON.stringify(states)}`);
  stopStore();

  // Writes to another list re-ran `other`'s group, but its result did not change.
  await sleep(400);
  check(other.values.length === 1, `unchanged results are not sent: ${JSON.stringify(other.values)}`);

  // Private queries run as each subscriber: each sees only their own rows.
  const alices = new Received<Note[]>();
  const bobs = new Received<Note[]>();
  stops.push(subscribe(aliceA, "my_notes", {}, alices.push, alices.fail));
  stops.push(subscribe(bobA, "my_notes", {}, bobs.push, bobs.fail));
  await alices.until("alice's first result", (notes) => notes.length === 0);
  await bobs.until("bob's first result", (notes) => notes.length === 0);
  await addNote(aliceB, { text: "alice's secret" });
  await alices.until("alice's note", (notes) => notes.length === 1 && notes[0]?.text === "alice's secret");
  await sleep(400);
  check(bobs.values.length === 1, `bob sees nothing of alice's: ${JSON.stringify(bobs.values)}`);

  // Writes while the listeners' connections are being killed: subscribers converge.
  const burst = new Received<Item[]>();
  stops.push(subscribe(nodeA, "list_items", { list: "burst" }, burst.push, burst.fail));
  await burst.until("the first result", (items) => items.length === 0);
  console.log("phase:kill");
  for (let i = 0; i < 20; i++) {
    await addItem(nodeB, { list: "burst", name: `item ${i}` });
    await sleep(100);
  }
  console.log("phase:kill-done");
  await burst.until("convergence after the listener was killed", (items) => items.length === 20, 15_000);

  for (const stop of stops) {
    stop();
  }
}

main().then(
  () => console.log("live.test.ts: ok"),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
    // Open streams would keep Node alive.
    setTimeout(() => (globalThis as { process?: { exit(code: number): void } }).process?.exit(1), 100);
  },
);
