// "Reassign": the claimer or an admin hands a claimed handoff to another
// senior — one who is online now, or a senior or admin the org knows (GET
// /people: signed in within 90 days) — with an optional note (POST
// handoffs/{id}/reassign). The API's errors show next to the form.

import { api } from "./api.js";
import { FormFields, formSummary } from "./forms.js";
import { isClaimingRole } from "./relevance.js";
import { fill, h, toast } from "./ui.js";

/** Option groups: who is online, then the other seniors and admins the org knows;
 * never the current claimer. Only they can work a claim (the API refuses others). */
function candidateGroups(presence, people, claimerId) {
  const groups = [];
  const online = (presence?.items || []).filter((p) => p.id !== claimerId);
  if (online.length) groups.push(["Online now", online]);
  const onlineIds = new Set(online.map((p) => p.id));
  const known = people.filter((p) => isClaimingRole(p.role) && p.id !== claimerId && !onlineIds.has(p.id));
  if (known.length) groups.push(["Other seniors", known]);
  return groups;
}

function fillCandidates(select, groups) {
  fill(select,
    h("option", { value: "" }, groups.length ? "Choose a senior…" : "No other senior is online or known"),
    groups.map(([label, people]) => h("optgroup", { label },
      people.map((p) => h("option", { value: p.id, dataset: { name: p.name } }, p.name)))));
}

/** The panel, shown only while it applies: ``render(page)`` redraws or hides it. */
export function reassignPanel() {
  let people = [];
  let peopleLoaded = false;
  let current = null;
  const fields = new FormFields(formSummary(), "r");
  const to = h("select", {});
  const note = h("textarea", { rows: 2, maxlength: 2000, placeholder: "What they should know (optional)" });
  const submit = h("button", { type: "submit", class: "btn btn-secondary" }, "Reassign");
  const form = h("form", { class: "reassign-form", novalidate: true },
    fields.summary,
    fields.field("to_id", "Reassign to", to),
    fields.field("note", "Handover note", note),
    h("div", { class: "button-row" }, submit),
  );
  const el = h("details", { class: "panel reassign", id: "reassign", hidden: true },
    h("summary", {}, "Reassign to another senior"), form);

  // Opening the control refetches who is online, so the choice is current.
  el.addEventListener("toggle", () => {
    if (el.open) current?.ctx.presence?.refresh();
  });

  async function loadPeople(page) {
    if (peopleLoaded) return;
    peopleLoaded = true;
    try {
      people = (await api.people()).items;
    } catch {
      people = []; // online seniors are still offered
    }
    refreshOptions(page);
  }

  function refreshOptions(page) {
    const chosen = to.value;
    fillCandidates(to, candidateGroups(page.ctx.presence, people, page.handoff.claimed_by_id));
    to.value = chosen;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fields.clear();
    const option = to.selectedOptions[0];
    const body = { to_id: to.value, to_name: option?.dataset.name || "", note: note.value.trim() };
    if (!body.to_id) {
      fields.mark("to_id", "Choose who takes it over.");
      to.focus();
      return;
    }
    submit.disabled = true;
    try {
      const moved = await api.reassign(current.handoff.id, body);
      note.value = "";
      el.open = false;
      toast(`Reassigned to ${moved.claimed_by_name}.`);
      current.update(moved);
    } catch (error) {
      if (error.status !== 401) fields.report(error);
    } finally {
      submit.disabled = false;
    }
  });

  function render(page) {
    current = page;
    const { handoff, claims } = page;
    const applies = handoff.status === "claimed" && (handoff.claimed_by_id === claims.sub || claims.role === "admin");
    el.hidden = !applies;
    if (!applies) return;
    refreshOptions(page);
    loadPeople(page);
  }

  return { el, render };
}
