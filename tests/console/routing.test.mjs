import assert from "node:assert/strict";
import { test } from "node:test";

import { levelLabel, routedToText, routingEventText, targetName } from "../../services/api/console/routing.js";

const networking = { target: "team", team_id: "t-1", team_name: "Networking" };

test("levels read from 1, with the round once the policy has looped", () => {
  assert.equal(levelLabel(0), "Level 1");
  assert.equal(levelLabel(1, 0), "Level 2");
  assert.equal(levelLabel(1, 1), "Level 2 · round 2");
});

test("a target in words", () => {
  assert.equal(targetName(null), "All seniors");
  assert.equal(targetName({ target: "all_seniors", team_id: null }), "All seniors");
  assert.equal(targetName(networking), "Networking");
  assert.equal(targetName({ target: "domain_team", team_id: "t-2", team_name: null }), "A team");
});

test("the junior's routed-to line", () => {
  assert.equal(routedToText({ escalation_target: networking, escalation_level: 0 }), "Routed to Networking (level 1)");
  assert.equal(
    routedToText({ escalation_target: networking, escalation_level: 1, escalation_loop: 1, assigned_to_name: "Dana" }),
    "Routed to Networking (level 2 · round 2), assigned to Dana",
  );
});

test("the routing events' timeline lines", () => {
  const handoff = { escalation_target: networking, assigned_to_name: "Dana" };
  const escalation = { level: 1, loop: 0, target: "team", mode: "assign" };
  assert.equal(
    routingEventText({ type: "handoff_escalated", data: { escalation }, handoff }),
    "Moved to Level 2: Networking (assigned to one)",
  );
  assert.equal(
    routingEventText({ type: "handoff_escalated", data: { escalation: { ...escalation, target: "all_seniors", mode: "broadcast" } } }),
    "Moved to Level 2: All seniors (everyone notified)",
  );
  assert.equal(routingEventText({ type: "handoff_escalated", data: null }), "Escalated");
  assert.equal(
    routingEventText({ type: "handoff_assigned", data: { assignment: { assigned_to_name: "Sam", level: 0 } } }),
    "Assigned to Sam at level 1",
  );
  assert.equal(routingEventText({ type: "handoff_assigned", data: {}, handoff }), "Assigned to Dana");
  assert.equal(
    routingEventText({ type: "handoff_reassigned", data: { reassignment: { from_name: "Sam", to_name: "Dana" } }, actor_name: "Alex" }),
    "Reassigned from Sam to Dana by Alex",
  );
  assert.equal(routingEventText({ type: "handoff_claimed", data: null }), "handoff_claimed");
});
