// The admin's routing page (#/routing): the org's teams (create, edit, delete)
// and its escalation policy, both through forms. Team changes refresh the
// policy's team pickers.

import { allTeams, api } from "./api.js";
import { policyForm } from "./policy-form.js";
import { teamForm } from "./team-form.js";
import { errorMessage, fill, h, toast } from "./ui.js";

function teamCard(team, { onEdit, onDelete }) {
  const error = h("p", { class: "field-error", hidden: true, id: `team-${team.id}-error` });
  let armed = false;
  const remove = h("button", { type: "button", class: "btn btn-ghost btn-small", "aria-describedby": error.id }, "Delete");
  remove.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      remove.textContent = "Confirm delete";
      setTimeout(() => {
        armed = false;
        if (!remove.disabled) remove.textContent = "Delete";
      }, 5000);
      return;
    }
    remove.disabled = true;
    error.hidden = true;
    try {
      await onDelete(team);
    } catch (e) {
      remove.disabled = false;
      armed = false;
      remove.textContent = "Delete";
      error.textContent = errorMessage(e);
      error.hidden = false;
      remove.focus();
    }
  });
  return h("li", { class: "card team-card", dataset: { id: team.id } },
    h("div", { class: "card-body" },
      h("span", { class: "card-top" },
        h("span", { class: "card-title" }, team.name),
        h("span", { class: "card-time" },
          h("button", { type: "button", class: "btn btn-ghost btn-small", onclick: () => onEdit(team), "aria-label": `Edit team ${team.name}` }, "Edit"),
          " ", remove)),
      h("p", { class: "state-line" }, team.members.length
        ? `Members: ${team.members.map((m) => m.name).join(", ")}`
        : "No members yet."),
      h("p", { class: "card-meta" }, team.domains.length
        ? ["Owns ", team.domains.map((d) => h("span", { class: "badge domain" }, d))]
        : "Owns no domain."),
      error,
    ));
}

export function mountRouting(main, ctx) {
  let teams = [];
  let mounted = true;
  const status = h("p", { class: "muted" }, "Loading…");
  const editor = h("div", { class: "team-editor" });
  const list = h("ol", { class: "cards", id: "team-list", "aria-label": "Teams" });
  const empty = h("p", { class: "muted", hidden: true }, "No teams yet. Without teams, every level reaches all seniors.");
  const newTeam = h("button", { type: "button", class: "btn btn-secondary btn-small", onclick: () => edit(null) }, "New team");
  const policy = policyForm();

  function closeEditor(focus) {
    fill(editor);
    (focus || newTeam).focus();
  }

  function edit(team) {
    const form = teamForm(team, {
      onSaved: async () => {
        closeEditor();
        try {
          await loadTeams();
        } catch (error) {
          if (error.status !== 401) toast(errorMessage(error), { kind: "error" });
        }
      },
      onCancel: () => closeEditor(),
    });
    fill(editor, form.el);
    form.focus();
  }

  async function remove(team) {
    await api.deleteTeam(team.id);
    toast(`Team ${team.name} deleted.`);
    await loadTeams();
    newTeam.focus();
  }

  function renderTeams() {
    fill(list, teams.map((team) => teamCard(team, { onEdit: edit, onDelete: remove })));
    empty.hidden = teams.length > 0;
    policy.setTeams(teams);
  }

  async function loadTeams() {
    teams = (await allTeams()).items;
    if (mounted) renderTeams();
  }

  async function load() {
    try {
      const [teamList, current] = await Promise.all([allTeams(), api.policy()]);
      teams = teamList.items;
      renderTeams();
      policy.setPolicy(current);
      status.hidden = true;
    } catch (error) {
      if (error.status === 401) return;
      status.className = "notice notice-error";
      status.textContent = error.status === 403 ? "Routing is for admins." : errorMessage(error);
    }
  }

  fill(main,
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { tabindex: "-1" }, "Routing"),
        h("p", { class: "subtitle" }, "Who an escalation reaches, and what happens when nobody claims it."))),
    status,
    h("div", { class: "routing-grid" },
      h("section", { class: "section teams", "aria-labelledby": "teams-h" },
        h("div", { class: "section-head" }, h("h2", { id: "teams-h" }, "Teams"), newTeam),
        editor, list, empty),
      h("section", { class: "section" }, policy.el)),
  );
  load();
  return {
    title: "Routing",
    unmount() {
      mounted = false;
    },
  };
}
