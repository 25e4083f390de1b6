import assert from "node:assert/strict";
import { test } from "node:test";

import { describe } from "../../services/api/console/notify.js";

const handoff = {
  priority: "high",
  escalation_level: 1,
  escalation_loop: 0,
  escalation_target: { target: "team", team_id: "t-1", team_name: "Networking" },
  snapshot: { problem_summary: "DNS fails", problem_domain: "networking" },
};

test("a notification's text for each reason an event concerns the user", () => {
  assert.deepEqual(describe("arrived", handoff), { title: "New high escalation", body: "networking: DNS fails" });
  assert.deepEqual(describe("escalated", handoff), { title: "Escalated to you: Level 2", body: "DNS fails (Networking)" });
  assert.deepEqual(describe("assigned", handoff), { title: "Assigned to you", body: "DNS fails" });
  assert.equal(describe(null, handoff), null);
});
