// The senior queue: waiting escalations in queue order (priority, then oldest
// first), live; "For me" (what the current level routes to this user, the
// choice remembered per user) or "All"; each card's level, target and
// assignee; who is online; unread dots for what arrived since the last look.

import { cardContent, cardSignature, inProgressRow, isUnread, reconcile } from "./queue-cards.js";
import { fill, h, segmented } from "./ui.js";

const SCOPES = [["forme", "For me"], ["all", "All"]];

const scopeKey = (claims) => `escalations.queue-scope.v1:${claims.org}:${claims.sub}`;

function storedScope(claims) {
  const stored = localStorage.getItem(scopeKey(claims));
  return SCOPES.some(([key]) => key === stored) ? stored : "forme";
}

/** "Online now": the present seniors and admins, this user marked. */
function onlinePanel(presence, me) {
  const list = h("ul", { class: "online-list", id: "online", "aria-label": "Online now" });
  const note = h("span", { class: "muted small", hidden: true }, "(may be out of date)");
  const el = h("section", { class: "online", "aria-labelledby": "online-h" },
    h("h2", { id: "online-h", class: "online-title" }, "Online now"), list, note);
  function render() {
    note.hidden = !presence.failed;
    if (!presence.loaded) return;
    fill(list, presence.items.length
      ? presence.items.map((p) => h("li", { class: "online-person", dataset: { id: p.id }, title: `${p.role}, ${p.streams} open stream${p.streams === 1 ? "" : "s"}` },
        h("span", { class: "online-dot", "aria-hidden": "true" }), p.id === me ? `${p.name} (you)` : p.name))
      : h("li", { class: "muted" }, "Nobody"));
  }
  presence.addEventListener("change", render);
  render();
  return { el, dispose: () => presence.removeEventListener("change", render) };
}

function emptyState(scope) {
  return scope === "forme"
    ? [h("p", { class: "empty-title" }, "Nothing is waiting for you."), h("p", {}, "Escalations routed to you or your teams appear here the moment they arrive. “All” shows every waiting one.")]
    : [h("p", { class: "empty-title" }, "No one is waiting."), h("p", {}, "New escalations appear here the moment they arrive.")];
}

export function mountQueue(main, ctx) {
  const { queue, seen, claims, forMe, presence } = ctx;
  let scope = storedScope(claims);
  const count = h("p", { class: "subtitle", id: "queue-count" });
  const pendingList = h("ol", { class: "cards", "aria-label": "Waiting escalations", id: "queue-list" });
  const empty = h("div", { class: "empty", hidden: true });
  const loading = h("p", { class: "muted" }, "Loading the queue…");
  const truncated = h("p", { class: "muted small", hidden: true }, "Showing the first 2,000 open handoffs.");
  const claimedList = h("ul", { class: "rows", "aria-label": "Escalations in progress" });
  const claimedSection = h("section", { class: "section", "aria-labelledby": "in-progress-h" },
    h("h2", { id: "in-progress-h" }, "In progress"),
    claimedList,
  );
  const picker = segmented("Show", SCOPES, scope, (key) => {
    scope = key;
    localStorage.setItem(scopeKey(claims), key);
    pendingList.dataset.scope = key;
    render();
  });
  pendingList.dataset.scope = scope;
  const online = onlinePanel(presence, claims.sub);

  fill(main,
    h("div", { class: "page-head" }, h("div", {}, h("h1", { tabindex: "-1" }, "Queue"), count), picker),
    online.el,
    loading,
    pendingList,
    empty,
    truncated,
    claimedSection,
  );

  function render() {
    if (!queue.loaded) return;
    loading.hidden = true;
    const pending = queue.pending().filter((x) => scope === "all" || forMe.has(x.id));
    const claimed = queue.claimed();
    const unread = pending.filter((x) => isUnread(x, seen)).length;
    const scopeText = scope === "forme" ? "waiting for you" : "waiting";
    count.textContent = `${pending.length} ${scopeText} · ${claimed.length} in progress${unread ? ` · ${unread} new` : ""}`;
    reconcile(pendingList, pending, (x) => cardContent(x, isUnread(x, seen)), (x) => cardSignature(x, isUnread(x, seen)));
    for (const el of pendingList.children) el.classList.toggle("is-unread", isUnread(queue.items.get(el.dataset.id), seen));
    if (empty.dataset.scope !== scope) fill(empty, emptyState(scope));
    empty.dataset.scope = scope;
    empty.hidden = pending.length > 0;
    truncated.hidden = queue.complete;
    reconcile(claimedList, claimed, (x) => inProgressRow(x, claims.sub), (x) => x.updated_at);
    for (const el of claimedList.children) el.className = "row";
    claimedSection.hidden = claimed.length === 0;
  }

  const models = [queue, seen, forMe];
  for (const model of models) model.addEventListener("change", render);
  render();
  return {
    title: "Queue",
    unmount() {
      for (const model of models) model.removeEventListener("change", render);
      online.dispose();
    },
  };
}
