// How a handoff is routed, in words: its level (shown 1-based, as the policy
// form numbers them: escalation_level 0 is "Level 1"), who that level targets
// ("Networking", "All seniors"), who it is assigned to, and the timeline lines
// of the routing events. Whether a handoff's level targets the user: relevance.js.

import { EventType, HandoffStatus, LevelMode, LevelTarget } from "./enums.js";
import { h } from "./ui.js";

export const ROUTING_EVENTS = new Set([EventType.escalated, EventType.assigned, EventType.reassigned]);

/** "Level 2", and "Level 2 · round 2" once the policy has looped. */
export function levelLabel(level, loop = 0) {
  return `Level ${level + 1}${loop ? ` · round ${loop + 1}` : ""}`;
}

/** A level target ``{target, team_id, team_name}`` as a reader says it. */
export function targetName(target) {
  if (!target || target.target === LevelTarget.all_seniors) return "All seniors";
  return target.team_name || "A team";
}

/** Level, target and assignee as badges (queue cards, the junior's list). */
export function routingBadges(handoff) {
  return [
    h("span", { class: "badge level", title: "Escalation level" }, levelLabel(handoff.escalation_level || 0, handoff.escalation_loop || 0)),
    h("span", { class: "badge target", title: "Routed to" }, targetName(handoff.escalation_target)),
    handoff.assigned_to_name && handoff.status === HandoffStatus.pending
      ? h("span", { class: "badge assignee", title: "Assigned to" }, `→ ${handoff.assigned_to_name}`)
      : null,
  ];
}

/** "Routed to Networking (level 1), assigned to Dana Senior" — the junior's line. */
export function routedToText(handoff) {
  const level = levelLabel(handoff.escalation_level || 0, handoff.escalation_loop || 0).toLowerCase();
  const assigned = handoff.assigned_to_name ? `, assigned to ${handoff.assigned_to_name}` : "";
  return `Routed to ${targetName(handoff.escalation_target)} (${level})${assigned}`;
}

const MODE = { [LevelMode.assign]: "assigned to one", [LevelMode.broadcast]: "everyone notified" };

/** The timeline line of one routing event (history item or live event). */
export function routingEventText(event) {
  const data = event.data || {};
  if (event.type === EventType.escalated) {
    const e = data.escalation;
    if (!e) return "Escalated";
    const target = e.target === LevelTarget.all_seniors ? "All seniors" : targetName(event.handoff && event.handoff.escalation_target);
    return `Moved to ${levelLabel(e.level, e.loop)}: ${target} (${MODE[e.mode] || e.mode})`;
  }
  if (event.type === EventType.assigned) {
    const a = data.assignment || {};
    const name = a.assigned_to_name || (event.handoff && event.handoff.assigned_to_name) || "someone";
    return `Assigned to ${name}${a.level !== undefined ? ` at ${levelLabel(a.level, a.loop || 0).toLowerCase()}` : ""}`;
  }
  if (event.type === EventType.reassigned) {
    const r = data.reassignment || {};
    return `Reassigned from ${r.from_name || "someone"} to ${r.to_name || "someone"}${event.actor_name ? ` by ${event.actor_name}` : ""}`;
  }
  return event.type;
}
