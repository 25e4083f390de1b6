import assert from "node:assert/strict";
import { test } from "node:test";

import { isNewer, mergeSlim, QueueModel, queueOrder, SeenSet } from "../../services/api/console/store.js";

const at = (minute) => `2024-05-01T12:${String(minute).padStart(2, "0")}:00Z`;

test("queue order: priority, then oldest, then id", () => {
  const items = [
    { id: "b", priority: "normal", created_at: at(1) },
    { id: "a", priority: "normal", created_at: at(1) },
    { id: "c", priority: "urgent", created_at: at(9) },
    { id: "d", priority: "low", created_at: at(0) },
    { id: "e", priority: "normal", created_at: at(0) },
  ];
  assert.deepEqual(items.sort(queueOrder).map((x) => x.id), ["c", "e", "a", "b", "d"]);
});

test("an older copy never replaces a newer one", () => {
  assert.equal(isNewer({ updated_at: at(2) }, undefined), true);
  assert.equal(isNewer({ updated_at: at(2) }, { updated_at: at(2) }), true);
  assert.equal(isNewer({ updated_at: at(1) }, { updated_at: at(2) }), false);
});

test("an event's slim handoff merged into the full one", () => {
  const full = { id: "h", status: "pending", resolution_notes: null, snapshot: { problem_summary: "old", transcript: ["x"] } };
  const slim = { id: "h", status: "claimed", snapshot: { problem_summary: "new", tried_step_count: 0 } };
  assert.deepEqual(mergeSlim(full, slim), {
    id: "h", status: "claimed", resolution_notes: null,
    snapshot: { problem_summary: "new", transcript: ["x"], tried_step_count: 0 },
  });
  assert.equal(mergeSlim(null, slim), slim);
});

test("the queue keeps open handoffs from events, newest copy first", () => {
  const queue = new QueueModel();
  let changes = 0;
  queue.addEventListener("change", () => { changes += 1; });
  const handoff = { id: "h", status: "pending", priority: "high", created_at: at(0), updated_at: at(0) };
  assert.equal(queue.apply(handoff), true);
  assert.deepEqual(queue.pending().map((x) => x.id), ["h"]);
  assert.equal(queue.apply({ ...handoff, status: "claimed", claimed_at: at(1), updated_at: at(1) }), true);
  assert.deepEqual([queue.pending().length, queue.claimed().length], [0, 1]);
  assert.equal(queue.apply({ ...handoff, updated_at: at(0) }), false); // older: ignored
  assert.equal(queue.apply({ ...handoff, status: "resolved", updated_at: at(2) }), true);
  assert.equal(queue.items.size, 0);
  assert.equal(queue.apply({ id: "other", status: "cancelled", updated_at: at(3) }), false); // never open here
  assert.equal(changes, 3);
});

test("the seen set survives a reload and starts with what is already waiting", () => {
  const stored = new Map();
  globalThis.localStorage = {
    getItem: (key) => (stored.has(key) ? stored.get(key) : null),
    setItem: (key, value) => stored.set(key, value),
  };
  try {
    const claims = { org: "acme", sub: "u-1" };
    const seen = new SeenSet(claims);
    assert.equal(seen.initialized, false);
    assert.equal(seen.has("a"), false);
    seen.seed(["a", "b"]);
    seen.seed(["c"]); // only the first time
    seen.add("d");
    const again = new SeenSet(claims);
    assert.deepEqual(["a", "b", "c", "d"].map((id) => again.has(id)), [true, true, false, true]);
    assert.equal(new SeenSet({ org: "acme", sub: "u-2" }).initialized, false);
  } finally {
    delete globalThis.localStorage;
  }
});
