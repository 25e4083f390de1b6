import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { concern, inForMeQueue, isClaimingRole, isForMe } from "../../services/api/console/relevance.js";
import { ForMeSet } from "../../services/api/console/store.js";
import { CASES, handoffOf, meOf } from "./cases.mjs";

describe("the shared cases (relevance_cases.json)", () => {
  for (const c of CASES.cases) {
    test(c.name, () => {
      const me = meOf(c.person);
      const handoff = handoffOf(c.handoff);
      assert.equal(inForMeQueue(handoff, me), c.for_me, "in the 'for me' list");
      for (const [type, reason] of Object.entries(c.concern)) {
        assert.equal(concern(type, handoff, me), reason, type);
      }
    });
  }

  test("the 'For me' set keeps what the list has, event by event", () => {
    for (const c of CASES.cases) {
      const set = new ForMeSet();
      set.me = meOf(c.person);
      const handoff = { ...handoffOf(c.handoff), id: c.name };
      set.apply(handoff);
      assert.equal(set.has(c.name), c.for_me, c.name);
      set.apply({ ...handoff, status: "resolved" });
      assert.equal(set.has(c.name), false, `${c.name}: resolved`);
    }
  });
});

describe("relevance without the shared cases", () => {
  const target = (team) => ({ status: "pending", escalation_target: { target: "team", team_id: team, team_name: team } });

  test("while the staffed teams are unknown only the user's own teams count", () => {
    const me = { ...meOf("dana"), staffedTeams: null };
    assert.equal(isForMe(target("empty"), me), false);
    assert.equal(isForMe({ status: "pending", escalation_target: { target: "all_seniors" } }, me), true);
    assert.equal(isForMe(target("database"), { ...meOf("sam"), staffedTeams: null }), true);
  });

  test("a handoff with no target (older than levels) is all seniors'", () => {
    assert.equal(isForMe({ status: "pending", escalation_target: null }, meOf("dana")), true);
    assert.equal(isForMe({ status: "pending" }, meOf("casey")), false);
  });

  test("nobody signed in: nothing concerns them", () => {
    assert.equal(isForMe(target("database"), null), false);
    assert.equal(concern("handoff_created", target("database"), null), null);
  });

  test("seniors and admins are the claiming roles", () => {
    assert.deepEqual(["engineer", "senior", "admin", "root"].map(isClaimingRole), [false, true, true, false]);
  });
});
