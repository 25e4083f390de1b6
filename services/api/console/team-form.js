// The admin's team editor: a name, members as id + name rows, and the problem
// domains the team owns. Creates (POST teams) or replaces (PUT teams/{id});
// the API's errors (team_name_taken, domain_taken, 422 fields) show next to
// the field they concern.

import { api } from "./api.js";
import { errorLine, FormFields, formSummary } from "./forms.js";
import { h, toast } from "./ui.js";

/** Member rows (id and display name), add and remove. */
function memberRows(members) {
  const list = h("ol", { class: "member-rows" });
  const add = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "+ Add a member");

  function renumber() {
    [...list.children].forEach((row, i) => {
      row.parts.id.setAttribute("aria-label", `Member ${i + 1} ID`);
      row.parts.name.setAttribute("aria-label", `Member ${i + 1} name`);
      row.parts.remove.setAttribute("aria-label", `Remove member ${i + 1}`);
    });
  }

  function row(member = { id: "", name: "" }) {
    const el = h("li", { class: "member-row" });
    const id = h("input", { type: "text", maxlength: 128, autocomplete: "off", placeholder: "User id (token sub)", value: member.id });
    const name = h("input", { type: "text", maxlength: 256, autocomplete: "off", placeholder: "Display name", value: member.name });
    const remove = h("button", { type: "button", class: "icon-btn" }, "×");
    const uid = `member-${(rowIds += 1)}`;
    const idError = errorLine(`${uid}-id-error`);
    const nameError = errorLine(`${uid}-name-error`);
    remove.addEventListener("click", () => {
      el.remove();
      renumber();
      (list.querySelector("input") || add).focus();
    });
    el.append(h("div", { class: "pair-inputs" }, h("div", {}, id, idError), h("div", {}, name, nameError)), remove);
    el.parts = { id, name, remove, idError, nameError };
    return el;
  }

  add.addEventListener("click", () => {
    const added = row();
    list.append(added);
    renumber();
    added.parts.id.focus();
  });
  for (const member of members.length ? members : [undefined]) list.append(row(member));
  renumber();

  /** The rows with something typed, registered in ``fields`` as the API will index them. */
  function sent(fields) {
    fields.dropUnder("members");
    const rows = [...list.children].filter((r) => r.parts.id.value.trim() || r.parts.name.value.trim());
    rows.forEach((r, i) => {
      fields.add(`members.${i}.id`, r.parts.id, r.parts.idError);
      fields.add(`members.${i}.name`, r.parts.name, r.parts.nameError);
    });
    return rows.map((r) => ({ id: r.parts.id.value.trim(), name: r.parts.name.value.trim() }));
  }

  return { list, add, sent };
}

let rowIds = 0;

const CONFLICT_FIELD = { team_name_taken: "name", domain_taken: "domains" };

/**
 * A form for ``team`` (null: a new team). ``onSaved(team)`` after a save,
 * ``onCancel()`` for the Cancel button. Returns ``{el, focus}``.
 */
export function teamForm(team, { onSaved, onCancel }) {
  const fields = new FormFields(formSummary(), "team");
  const members = memberRows(team ? team.members : []);
  const membersError = errorLine("team-members-error");
  fields.add("members", members.add, membersError);
  const name = h("input", { type: "text", maxlength: 64, autocomplete: "off", value: team ? team.name : "" });
  const domains = h("input", { type: "text", autocomplete: "off", placeholder: "e.g. networking, dns", value: team ? team.domains.join(", ") : "" });
  const slackChannel = h("input", { type: "text", maxlength: 32, autocomplete: "off", placeholder: "e.g. C0123ABCD", value: (team && team.slack_channel) || "" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, team ? "Save team" : "Create team");
  const title = team ? `Edit team ${team.name}` : "New team";
  const form = h("form", { class: "form panel team-form", novalidate: true, "aria-label": title },
    h("h3", { class: "form-title" }, title),
    fields.summary,
    fields.field("name", "Team name", name),
    h("fieldset", { class: "fieldset" },
      h("legend", { class: "label" }, "Members"),
      h("p", { class: "hint" }, "Each senior's user id (the token's sub) and the name shown to others."),
      members.list, membersError, members.add),
    fields.field("domains", "Owned domains", domains,
      { hint: "Problem domains this team owns, separated by commas. A domain belongs to one team at most." }),
    fields.field("slack_channel", "Slack channel (optional)", slackChannel,
      { hint: "A channel id: when an escalation reaches this team's level, the Slack bot posts it there too." }),
    h("div", { class: "button-row" }, submit, h("button", { type: "button", class: "btn btn-ghost", onclick: onCancel }, "Cancel")),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fields.clear();
    const body = {
      name: name.value.trim(),
      members: members.sent(fields),
      domains: domains.value.split(",").map((d) => d.trim()).filter(Boolean),
      slack_channel: slackChannel.value.trim() || null,
    };
    submit.disabled = true;
    try {
      const saved = team ? await api.replaceTeam(team.id, body) : await api.createTeam(body);
      toast(team ? `Team ${saved.name} saved.` : `Team ${saved.name} created.`);
      onSaved(saved);
    } catch (error) {
      if (error.status !== 401) fields.report(error, (e) => CONFLICT_FIELD[e.code]);
    } finally {
      submit.disabled = false;
    }
  });

  return { el: form, focus: () => name.focus() };
}
