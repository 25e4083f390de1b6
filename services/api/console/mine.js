// The junior's own escalations (GET handoffs?created_by=me), live: claims,
// resolutions and where each one is routed (level, team or all seniors,
// assignee) change in place as their events arrive.

import { listAll } from "./api.js";
import { routedToText } from "./routing.js";
import { HandoffFollower, isNewer } from "./store.js";
import { announce, domainChip, errorMessage, fill, h, priorityBadge, statusBadge, timeEl } from "./ui.js";

function stateLine(handoff) {
  switch (handoff.status) {
    case "pending":
      return h("p", { class: "state-line" }, "Waiting for a senior · escalated ", timeEl(handoff.created_at));
    case "claimed":
      return h("p", { class: "state-line" }, h("strong", {}, handoff.claimed_by_name), " is on it · claimed ", timeEl(handoff.claimed_at));
    case "resolved":
      return h("p", { class: "state-line" }, "Resolved by ", h("strong", {}, handoff.claimed_by_name || "a senior"), " ", timeEl(handoff.resolved_at));
    default:
      return h("p", { class: "state-line" }, "Cancelled ", timeEl(handoff.updated_at));
  }
}

function mineCard(handoff, highlight) {
  return h("li", { class: `card mine${highlight ? " is-new" : ""}`, dataset: { id: handoff.id, status: handoff.status } },
    h("div", { class: "card-body" },
      h("span", { class: "card-top" },
        priorityBadge(handoff.priority), statusBadge(handoff.status), domainChip(handoff.snapshot.problem_domain),
        h("span", { class: "card-time" }, timeEl(handoff.created_at)),
      ),
      h("a", { class: "card-title", href: `#/handoff/${encodeURIComponent(handoff.id)}` }, handoff.snapshot.problem_summary),
      stateLine(handoff),
      handoff.status === "pending" ? h("p", { class: "routed-line" }, routedToText(handoff)) : null,
      handoff.status === "resolved" && handoff.resolution_notes
        ? h("div", { class: "resolution-box" }, h("span", { class: "label small" }, "Resolution"), h("p", { class: "prose" }, handoff.resolution_notes))
        : null,
    ),
  );
}

const OPEN_FIRST = { claimed: 0, pending: 1, resolved: 2, cancelled: 3 };

function announceChange(type, handoff) {
  const what = `“${handoff.snapshot.problem_summary}”`;
  if (type === "handoff_claimed") announce(`${handoff.claimed_by_name} claimed your escalation ${what}.`);
  if (type === "handoff_resolved") announce(`${handoff.claimed_by_name || "A senior"} resolved your escalation ${what}.`);
  if (type === "handoff_escalated" || type === "handoff_assigned") announce(`Your escalation ${what}: ${routedToText(handoff)}.`);
}

export function mountMine(main, ctx, params) {
  const { claims, stream } = ctx;
  const items = new Map();
  const highlight = params.get("new");
  const list = h("ol", { class: "cards", "aria-label": "My escalations", id: "mine-list" });
  const empty = h("div", { class: "empty", hidden: true },
    h("p", { class: "empty-title" }, "You have not escalated anything yet."),
    h("p", {}, "When a session gets stuck, escalate it and follow it here."),
  );
  const status = h("p", { class: "muted" }, "Loading…");
  fill(main,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { tabindex: "-1" }, "My escalations"), h("p", { class: "subtitle" }, "Live: who it is routed to, claims and resolutions appear as they happen.")),
      h("a", { class: "btn btn-primary", href: "#/escalate" }, "Escalate a session"),
    ),
    status,
    list,
    empty,
  );

  function render() {
    const sorted = [...items.values()].sort(
      (a, b) => OPEN_FIRST[a.status] - OPEN_FIRST[b.status] || Date.parse(b.created_at) - Date.parse(a.created_at),
    );
    fill(list, sorted.map((x) => mineCard(x, x.id === highlight)));
    empty.hidden = sorted.length > 0;
  }

  async function load() {
    try {
      const { items: mine } = await listAll({ created_by: "me" });
      items.clear();
      for (const handoff of mine) items.set(handoff.id, handoff);
      status.hidden = true;
      render();
    } catch (error) {
      if (error.status === 401) return;
      status.textContent = errorMessage(error);
    }
  }

  function show(handoff) {
    if (!isNewer(handoff, items.get(handoff.id))) return;
    items.set(handoff.id, handoff);
    render();
  }

  // Events carry a slim handoff: a resolution's notes come with the full one.
  const follower = new HandoffFollower(show, new Set(["handoff_resolved"]));

  function onEvent({ detail }) {
    const handoff = detail.data.handoff;
    if (!handoff || handoff.created_by_id !== claims.sub || !isNewer(handoff, items.get(handoff.id))) return;
    follower.follow(detail.type, handoff, items.get(handoff.id));
    announceChange(detail.type, handoff);
  }

  stream.addEventListener("event", onEvent);
  stream.addEventListener("resync", load);
  load();
  return {
    title: "My escalations",
    unmount() {
      stream.removeEventListener("event", onEvent);
      stream.removeEventListener("resync", load);
    },
  };
}
