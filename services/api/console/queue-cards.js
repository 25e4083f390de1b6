// The queue's rows: a waiting handoff's card (priority, domain, level, target,
// assignee, unread dot), an in-progress row, and the keyed list update that
// keeps focus and scroll where they were.

import { routingBadges } from "./routing.js";
import { domainChip, fill, h, priorityBadge, slaBadge, timeEl } from "./ui.js";

export function isUnread(handoff, seen) {
  return handoff.status === "pending" && seen.initialized && !seen.has(handoff.id);
}

const ASSESSMENT_LABEL = { pending: "Assessing…", ready: "AI assessment ready", failed: "Assessment failed" };

export function cardContent(handoff, unread) {
  const s = handoff.snapshot;
  return h(
    "a",
    { class: "card-link", href: `#/handoff/${encodeURIComponent(handoff.id)}` },
    h("span", { class: "card-top" },
      unread ? h("span", { class: "unread-dot", title: "New" }, h("span", { class: "sr-only" }, "New: ")) : null,
      priorityBadge(handoff.priority),
      domainChip(s.problem_domain),
      slaBadge(handoff),
      h("span", { class: "card-time" }, timeEl(handoff.created_at)),
    ),
    h("span", { class: "card-title" }, s.problem_summary),
    h("span", { class: "card-routing" }, routingBadges(handoff)),
    h("span", { class: "card-meta" },
      h("span", {}, handoff.created_by_name),
      h("span", {}, `${s.step_count} step${s.step_count === 1 ? "" : "s"}`),
      h("span", {}, `confidence ${s.confidence_tier}`),
      h("span", { class: `ai ai-${handoff.assessment_status}` }, ASSESSMENT_LABEL[handoff.assessment_status] || ""),
    ),
  );
}

/** What a card shows changes when this does (events may not move ``updated_at``). */
export function cardSignature(handoff, unread) {
  return [handoff.updated_at, unread, handoff.escalation_level, handoff.escalation_loop, handoff.assigned_to_id].join("|");
}

export function inProgressRow(handoff, me) {
  const who = handoff.claimed_by_id === me ? "You" : handoff.claimed_by_name;
  return h(
    "a",
    { class: "row-link", href: `#/handoff/${encodeURIComponent(handoff.id)}` },
    priorityBadge(handoff.priority),
    h("span", { class: "row-title" }, handoff.snapshot.problem_summary),
    h("span", { class: "row-meta" }, `${who} · `, timeEl(handoff.claimed_at, "claimed ")),
  );
}

/** Keyed update of a list: reuses each card's element so focus and scroll stay put. */
export function reconcile(list, handoffs, render, signature) {
  const existing = new Map([...list.children].map((el) => [el.dataset.id, el]));
  const wanted = new Set(handoffs.map((x) => x.id));
  for (const [id, el] of existing) if (!wanted.has(id)) el.remove();
  let cursor = list.firstElementChild;
  for (const handoff of handoffs) {
    let el = existing.get(handoff.id);
    const sig = signature(handoff);
    if (!el) {
      el = h("li", { class: "card", dataset: { id: handoff.id } });
    }
    if (el.dataset.sig !== sig) {
      // The card's content is rebuilt; a keyboard user focused on its link keeps the focus.
      const hadFocus = el.contains(document.activeElement);
      el.dataset.sig = sig;
      fill(el, render(handoff));
      if (hadFocus) el.querySelector("a, button")?.focus();
    }
    if (el !== cursor) list.insertBefore(el, cursor);
    else cursor = cursor.nextElementSibling;
  }
}
