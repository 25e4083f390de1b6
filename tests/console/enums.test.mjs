// The console's hand-written comparisons name only values Python has: every
// event type, status or role a comparison (or a table keyed by event type)
// names is one of the enums (enums.js, generated from Python).

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { EVENT_TYPES, HandoffStatus, Role } from "../../services/api/console/enums.js";

const DIR = new URL("../../services/api/console/", import.meta.url);
const SOURCES = readdirSync(DIR)
  .filter((name) => name.endsWith(".js") && name !== "enums.js")
  .map((name) => [name, readFileSync(new URL(name, DIR), "utf8")]);

function found(pattern) {
  const hits = [];
  for (const [name, text] of SOURCES) for (const match of text.matchAll(pattern)) hits.push([name, match[1]]);
  return hits;
}

test("every event type compared with, or keying a table, is an event type", () => {
  const hits = [...found(/type\s*[!=]==\s*"(handoff_[a-z_]+)"/g), ...found(/^\s*(handoff_[a-z_]+):/gm)];
  assert.ok(hits.length > 0);
  assert.deepEqual(hits.filter(([, value]) => !EVENT_TYPES.includes(value)), []);
});

test("every status a handoff is compared with is a handoff status", () => {
  const hits = found(/handoff\.status\s*[!=]==\s*"([a-z_]+)"/g);
  assert.ok(hits.length > 0);
  assert.deepEqual(hits.filter(([, value]) => !Object.values(HandoffStatus).includes(value)), []);
});

test("every role compared with is a role", () => {
  const hits = found(/\.role\s*[!=]==\s*"([a-z_]+)"/g);
  assert.ok(hits.length > 0);
  assert.deepEqual(hits.filter(([, value]) => !Object.values(Role).includes(value)), []);
});
