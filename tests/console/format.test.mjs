// The console's formatting helpers: times, durations, validation messages,
// refusal reasons, the claim-lost line, the activity list, a token's claims.

import assert from "node:assert/strict";
import { test } from "node:test";

import { readClaims } from "../../services/api/console/api.js";
import { humanize } from "../../services/api/console/forms.js";
import { claimLostMessage } from "../../services/api/console/handoff-status.js";
import { activityText } from "../../services/api/console/handoff-timeline.js";
import { formatDuration, timeAgo } from "../../services/api/console/ui.js";
import { urlProblem } from "../../services/api/console/webhook-form.js";

const NOW = Date.parse("2024-05-01T12:00:00Z");
const ago = (seconds) => new Date(NOW - seconds * 1000).toISOString();

test("time ago", () => {
  assert.equal(timeAgo(ago(3), NOW), "just now");
  assert.equal(timeAgo(ago(-30), NOW), "just now"); // a little in the future
  assert.equal(timeAgo(ago(12), NOW), "12 seconds ago");
  assert.equal(timeAgo(ago(60), NOW), "1 minute ago");
  assert.equal(timeAgo(ago(3 * 3600 + 5), NOW), "3 hours ago");
  assert.equal(timeAgo(ago(2 * 86400), NOW), "2 days ago");
  assert.equal(timeAgo("not a time", NOW), "");
});

test("durations", () => {
  const cases = [
    [null, "—"], [undefined, "—"], [0, "0 s"], [0.05, "< 0.1 s"], [0.4, "0.4 s"], [42, "42 s"],
    [120, "2 min"], [125, "2 min 5 s"], [3600, "1 h"], [5400, "1 h 30 min"], [129600, "1.5 d"],
  ];
  for (const [seconds, text] of cases) assert.equal(formatDuration(seconds), text, String(seconds));
});

test("a validation problem as a sentence", () => {
  assert.equal(humanize({ type: "missing", msg: "Field required" }), "Required.");
  assert.equal(humanize({ type: "string_too_short", msg: "String should have at least 1 character" }), "Required.");
  assert.equal(humanize({ type: "value_error", msg: "Value error, must not be blank" }), "Must not be blank.");
  assert.equal(humanize({ type: "x", msg: "Already ends." }), "Already ends.");
  assert.equal(humanize({ type: "x" }), "Invalid value.");
});

test("a refused webhook URL names its reason in words", () => {
  assert.equal(urlProblem({ detail: "Bad URL.", body: {} }), "Bad URL.");
  assert.equal(urlProblem({ detail: "Refused.", body: { reason: "loopback" } }), "Refused. (it is a loopback address)");
  assert.equal(urlProblem({ detail: "Refused: loopback.", body: { reason: "loopback" } }), "Refused: loopback.");
  assert.equal(urlProblem({ detail: "Refused.", body: { reason: "odd" } }), "Refused. (odd)");
});

test("the claim race's message", () => {
  const claimedAt = new Date(Date.now() - 120 * 1000).toISOString();
  assert.equal(claimLostMessage({ claimed_by_name: "Dana", claimed_at: claimedAt }), "Already claimed by Dana 2 minutes ago.");
});

test("the activity list's lines", () => {
  assert.equal(activityText({ type: "handoff_created", actor_name: "Jamie" }), "Escalated by Jamie");
  assert.equal(activityText({ type: "handoff_claimed", actor_name: null }), "Claimed by someone");
  assert.equal(activityText({ type: "handoff_sla_breached" }), "Waited past the claim SLA");
  assert.equal(activityText({ type: "handoff_assigned", data: { assignment: { assigned_to_name: "Sam" } } }), "Assigned to Sam");
  assert.equal(activityText({ type: "handoff_unknown" }), "handoff_unknown");
});

test("a token's claims, read without verifying", () => {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const token = (claims) => `${part({ alg: "HS256" })}.${part(claims)}.signature`;
  const claims = { sub: "u-1", role: "senior", org: "acme", name: "Zoë" };
  assert.deepEqual(readClaims(token(claims)), claims);
  assert.equal(readClaims(token({ sub: "u-1", role: "senior" })), null); // no org
  assert.equal(readClaims("not a token"), null);
});
