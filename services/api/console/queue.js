// The senior queue: waiting escalations in queue order (priority, then oldest
// first), live; unread dots for what arrived since this user last looked.

import {
  domainChip,
  fill,
  h,
  priorityBadge,
  slaBadge,
  timeEl,
} from "./ui.js";

export function isUnread(handoff, seen) {
  return handoff.status === "pending" && seen.initialized && !seen.has(handoff.id);
}

const ASSESSMENT_LABEL = { pending: "Assessing…", ready: "AI assessment ready", failed: "Assessment failed" };

function cardContent(handoff, unread) {
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
    h("span", { class: "card-meta" },
      h("span", {}, handoff.created_by_name),
      h("span", {}, `${s.step_count} step${s.step_count === 1 ? "" : "s"}`),
      h("span", {}, `confidence ${s.confidence_tier}`),
      h("span", { class: `ai ai-${handoff.assessment_status}` }, ASSESSMENT_LABEL[handoff.assessment_status] || ""),
    ),
  );
}

/** Keyed update of a list: reuses each card's element so focus and scroll stay put. */
function reconcile(list, handoffs, render, signature) {
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

function inProgressRow(handoff, me) {
  const who = handoff.claimed_by_id === me ? "You" : handoff.claimed_by_name;
  return h(
    "a",
    { class: "row-link", href: `#/handoff/${encodeURIComponent(handoff.id)}` },
    priorityBadge(handoff.priority),
    h("span", { class: "row-title" }, handoff.snapshot.problem_summary),
    h("span", { class: "row-meta" }, `${who} · `, timeEl(handoff.claimed_at, "claimed ")),
  );
}

export function mountQueue(main, ctx) {
  const { queue, seen, claims } = ctx;
  const count = h("p", { class: "subtitle" });
  const pendingList = h("ol", { class: "cards", "aria-label": "Waiting escalations", id: "queue-list" });
  const empty = h("div", { class: "empty", hidden: true },
    h("p", { class: "empty-title" }, "No one is waiting."),
    h("p", {}, "New escalations appear here the moment they arrive."),
  );
  const loading = h("p", { class: "muted" }, "Loading the queue…");
  const truncated = h("p", { class: "muted small", hidden: true }, "Showing the first 2,000 open handoffs.");
  const claimedList = h("ul", { class: "rows", "aria-label": "Escalations in progress" });
  const claimedSection = h("section", { class: "section", "aria-labelledby": "in-progress-h" },
    h("h2", { id: "in-progress-h" }, "In progress"),
    claimedList,
  );

  fill(main, 
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { tabindex: "-1" }, "Queue"), count),
    ),
    loading,
    pendingList,
    empty,
    truncated,
    claimedSection,
  );

  function render() {
    if (!queue.loaded) return;
    loading.hidden = true;
    const pending = queue.pending();
    const claimed = queue.claimed();
    const unread = pending.filter((x) => isUnread(x, seen)).length;
    count.textContent = `${pending.length} waiting · ${claimed.length} in progress${unread ? ` · ${unread} new` : ""}`;
    reconcile(
      pendingList,
      pending,
      (x) => cardContent(x, isUnread(x, seen)),
      (x) => `${x.updated_at}|${isUnread(x, seen)}`,
    );
    for (const el of pendingList.children) el.classList.toggle("is-unread", isUnread(queue.items.get(el.dataset.id), seen));
    empty.hidden = pending.length > 0;
    truncated.hidden = queue.complete;
    reconcile(claimedList, claimed, (x) => inProgressRow(x, claims.sub), (x) => x.updated_at);
    for (const el of claimedList.children) el.className = "row";
    claimedSection.hidden = claimed.length === 0;
  }

  queue.addEventListener("change", render);
  seen.addEventListener("change", render);
  render();
  return {
    title: "Queue",
    unmount() {
      queue.removeEventListener("change", render);
      seen.removeEventListener("change", render);
    },
  };
}
