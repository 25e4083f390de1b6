// The handoff page's routing and history: where the handoff is routed now
// (level, target, assignee, next move), the timeline of its escalations,
// assignments and reassignments, and the full activity list. Both lists are
// drawn from the page's events (history, then live), keyed by event id.

import { levelLabel, ROUTING_EVENTS, routingEventText, targetName } from "./routing.js";
import { absoluteTime, fill, h, timeEl } from "./ui.js";

const ACTIVITY = {
  handoff_created: (e) => `Escalated by ${e.actor_name || "someone"}`,
  handoff_assessment_ready: () => "AI assessment ready",
  handoff_assessment_failed: () => "AI assessment failed",
  handoff_claimed: (e) => `Claimed by ${e.actor_name || "someone"}`,
  handoff_released: (e) => `Released by ${e.actor_name || "someone"}`,
  handoff_resolved: (e) => `Resolved by ${e.actor_name || "someone"}`,
  handoff_cancelled: (e) => `Cancelled by ${e.actor_name || "someone"}`,
  handoff_sla_breached: () => "Waited past the claim SLA",
};

export function activityText(event) {
  if (ROUTING_EVENTS.has(event.type)) return routingEventText(event);
  return (ACTIVITY[event.type] || (() => event.type))(event);
}

function fact(label, value, id) {
  return h("div", { class: "fact", id }, h("dt", {}, label), h("dd", {}, value));
}

function nextMove(handoff) {
  if (handoff.status === "claimed") return "Stopped by the claim";
  if (handoff.status !== "pending") return "—";
  if (!handoff.next_escalation_at) return "No further level";
  return h("time", { datetime: handoff.next_escalation_at, title: absoluteTime(handoff.next_escalation_at) },
    new Date(handoff.next_escalation_at).toLocaleTimeString());
}

function routingEntry(event) {
  const note = event.type === "handoff_reassigned" && event.data?.reassignment?.note;
  return h("li", { dataset: { type: event.type } },
    h("span", { class: "timeline-text" }, routingEventText(event)), " ", timeEl(event.at),
    note ? h("p", { class: "timeline-note prose" }, note) : null);
}

/** "Routing": the current level, target, assignee and next move, and the escalation timeline. */
export function routingPanel() {
  const facts = h("dl", { class: "routing-facts" });
  const list = h("ol", { class: "timeline", id: "escalation-timeline", "aria-label": "Escalation timeline" });
  const none = h("p", { class: "muted small" }, "No escalations yet: it is at its first level.");
  const el = h("section", { class: "panel routing", id: "routing-panel", "aria-labelledby": "routing-h" },
    h("h2", { id: "routing-h" }, "Routing"), facts, h("h3", {}, "Escalations"), none, list);
  function render(handoff, events) {
    fill(facts,
      fact("Level", levelLabel(handoff.escalation_level || 0, handoff.escalation_loop || 0), "routing-level"),
      fact("Routed to", targetName(handoff.escalation_target), "routing-target"),
      fact("Assigned to", handoff.assigned_to_name || "Nobody", "routing-assignee"),
      fact("Next level", nextMove(handoff), "routing-next"),
    );
    const routing = events.filter((e) => ROUTING_EVENTS.has(e.type));
    fill(list, routing.map(routingEntry));
    none.hidden = routing.length > 0;
  }
  return { el, render };
}

/** "Activity": every event of the handoff, oldest first. */
export function activityPanel() {
  const list = h("ol", { class: "activity" });
  const el = h("section", { class: "panel", "aria-labelledby": "activity-h" }, h("h2", { id: "activity-h" }, "Activity"), list);
  function render(events) {
    fill(list, events.map((e) => h("li", {}, h("span", {}, activityText(e)), " ", timeEl(e.at))));
  }
  return { el, render };
}
