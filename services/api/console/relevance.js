// Which handoffs and events concern the signed-in person, decided in one place:
// the "for me" rule (what GET /handoffs?for=me answers, decided here for a
// handoff that arrives on the stream) and which stream events are worth a
// notification, an announcement or a count in the title.
//
// ``me`` is GET /me (``{id, role, teams: [{id}]}``) with ``staffedTeams``: the
// ids of the org's teams that have members (GET /teams?members=false), or null
// while unknown. tests/console/relevance_cases.json holds cases that both
// tests/console/relevance.test.mjs (this module) and tests/api/test_relevance_cases.py
// (the SQL of for=me, through the API) run.

import { CLAIMING_ROLES, EventType, HandoffStatus, LevelTarget } from "./enums.js";

/** True when ``role`` claims handoffs (a senior or an admin). */
export function isClaimingRole(role) {
  return CLAIMING_ROLES.includes(role);
}

/** True when the handoff's current level targets ``me``: a team they are in; for
 * a senior or an admin also all seniors, and a team with no members (it reaches
 * nobody, so it counts as all seniors'; while ``staffedTeams`` is unknown only
 * the user's own teams count). The SQL: shared/handoffs/queries.py ``_targets``. */
export function isForMe(handoff, me) {
  if (!me) return false;
  const target = handoff.escalation_target;
  const teamId = target && target.target !== LevelTarget.all_seniors ? target.team_id : null;
  if (teamId && me.teams.some((team) => team.id === teamId)) return true;
  if (!isClaimingRole(me.role)) return false;
  return !teamId || Boolean(me.staffedTeams && !me.staffedTeams.has(teamId));
}

/** True when the handoff belongs in ``me``'s "For me" list: waiting, and for me. */
export function inForMeQueue(handoff, me) {
  return handoff.status === HandoffStatus.pending && isForMe(handoff, me);
}

/**
 * Why the stream event ``type`` about ``handoff`` (the event's handoff, after
 * the change) concerns ``me``, or null when it does not: "arrived" (a new
 * escalation: every senior's and admin's business), "escalated" (its level
 * moved and now targets ``me`` while it waits) or "assigned" (assigned to
 * ``me``). For seniors and admins the title counts "arrived" and "assigned";
 * all three are announced and notified.
 */
export function concern(type, handoff, me) {
  if (!me) return null;
  if (type === EventType.created) return isClaimingRole(me.role) ? "arrived" : null;
  if (type === EventType.escalated && inForMeQueue(handoff, me)) return "escalated";
  if (type === EventType.assigned && handoff.assigned_to_id === me.id) return "assigned";
  return null;
}
