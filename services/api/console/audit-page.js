// The admin's audit page (#/audit): every configuration change of the org,
// newest first (who, when, what, on what), filtered by kind or by who made it,
// with "Older changes" for the next page and each change's before/after on demand.

import { api } from "./api.js";
import { errorMessage, fill, h, timeEl } from "./ui.js";

const KINDS = [
  "", "team.created", "team.replaced", "team.deleted", "policy.updated",
  "webhook.created", "webhook.updated", "webhook.deleted", "webhook.secret_rotated",
  "api_key.created", "api_key.revoked", "slack.connected", "slack.disconnected",
  "slack_link.updated", "slack_link.deleted", "redaction.updated", "retention.updated",
  "handoff.purged", "person.erased",
];

function changeRow(entry) {
  const details = entry.before || entry.after
    ? h("details", { class: "audit-change" }, h("summary", {}, "Before and after"),
      h("div", { class: "audit-diff" },
        h("div", {}, h("h4", {}, "Before"), h("pre", {}, entry.before ? JSON.stringify(entry.before, null, 2) : "—")),
        h("div", {}, h("h4", {}, "After"), h("pre", {}, entry.after ? JSON.stringify(entry.after, null, 2) : "—"))))
    : null;
  return h("li", { class: "card audit-entry", dataset: { id: String(entry.id) } },
    h("div", { class: "card-body" },
      h("span", { class: "card-top" },
        h("span", { class: "card-title" }, h("code", {}, entry.kind)),
        h("span", { class: "card-time" }, timeEl(entry.at))),
      h("p", { class: "card-meta" }, "by ", entry.actor_name, " ", h("span", { class: "muted" }, `(${entry.actor_id})`),
        entry.target_id ? [" · on ", h("code", {}, entry.target_id)] : null),
      details));
}

export function mountAudit(main) {
  let mounted = true;
  let cursor = null;
  const status = h("p", { class: "muted" }, "Loading…");
  const kind = h("select", { id: "audit-kind", "aria-label": "Kind" },
    KINDS.map((value) => h("option", { value }, value || "Every kind")));
  const actor = h("input", { id: "audit-actor", type: "text", placeholder: "Who (an id)", "aria-label": "Who", maxlength: 128 });
  const list = h("ol", { class: "cards", id: "audit-list", "aria-label": "Changes" });
  const empty = h("p", { class: "muted", hidden: true }, "No changes recorded yet.");
  const more = h("button", { type: "button", class: "btn btn-secondary btn-small", hidden: true }, "Older changes");

  async function load({ append = false } = {}) {
    const params = { limit: 50 };
    if (kind.value) params.kind = kind.value;
    if (actor.value.trim()) params.actor_id = actor.value.trim();
    if (append && cursor) params.cursor = cursor;
    try {
      const page = await api.audit(params);
      if (!mounted) return;
      status.hidden = true;
      const rows = page.items.map(changeRow);
      if (append) list.append(...rows); else fill(list, rows);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      empty.hidden = list.children.length > 0;
    } catch (error) {
      if (error.status === 401) return;
      status.hidden = false;
      status.className = "notice notice-error";
      status.textContent = error.status === 403 ? "The audit log is for admins." : errorMessage(error);
    }
  }

  kind.addEventListener("change", () => load());
  actor.addEventListener("change", () => load());
  more.addEventListener("click", () => load({ append: true }));
  fill(main,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { tabindex: "-1" }, "Audit"),
        h("p", { class: "subtitle" }, "Every change to the org's configuration: who made it, when, and what it was before and after. Secrets are never recorded."))),
    status,
    h("section", { class: "section", "aria-labelledby": "audit-h" },
      h("div", { class: "section-head" }, h("h2", { id: "audit-h" }, "Changes"), h("div", { class: "button-row" }, kind, actor)),
      list, empty, more));
  load();
  return { title: "Audit", unmount() { mounted = false; } };
}
