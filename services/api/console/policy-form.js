// The admin's escalation-policy editor: levels (how long a handoff waits at
// the level, who it targets — the team owning its domain, a chosen team, or all
// seniors — and whether the level notifies everyone or assigns one senior), and
// how many times to go round again. PUT escalation-policy; the API's errors
// (unknown_team, 422 fields) show next to the level they concern.

import { api } from "./api.js";
import { LevelMode, LevelTarget } from "./enums.js";
import { errorLine, FormFields, formSummary, select } from "./forms.js";
import { fill, h, toast } from "./ui.js";

const TARGET_LABELS = {
  [LevelTarget.domain_team]: "The domain's team",
  [LevelTarget.team]: "A chosen team",
  [LevelTarget.all_seniors]: "All seniors",
};
const MODE_LABELS = { [LevelMode.broadcast]: "Notify everyone", [LevelMode.assign]: "Assign to one senior" };
const TARGETS = Object.values(LevelTarget).map((target) => [target, TARGET_LABELS[target] || target]);
const MODES = Object.values(LevelMode).map((mode) => [mode, MODE_LABELS[mode] || mode]);
const MAX_LEVELS = 10;
let rowIds = 0;

function teamOptions(select, teams, chosen) {
  fill(select, teams.length
    ? teams.map((t) => h("option", { value: t.id, selected: t.id === chosen }, t.name))
    : h("option", { value: "" }, "No teams yet"));
}

/** One level's row; ``row.sync(teams)`` refreshes its team picker. */
function levelRow(level, teams, onRemove) {
  const el = h("li", { class: "level-row" });
  const after = h("input", { type: "number", min: 1, max: 86400, step: 1, inputmode: "numeric", value: String(level.after_seconds) });
  const target = select(TARGETS, level.target);
  const team = h("select", {});
  const mode = select(MODES, level.mode);
  const teamBox = h("div", { class: "level-team" });
  const remove = h("button", { type: "button", class: "icon-btn" }, "×");
  const uid = `level-${(rowIds += 1)}`;
  const errors = Object.fromEntries(["after", "target", "team", "mode", "row"].map((k) => [k, errorLine(`${uid}-${k}-error`)]));
  const labelled = (text, control, error) => h("label", { class: "level-field" }, h("span", { class: "label" }, text), control, error);
  teamBox.append(labelled("Team", team, errors.team));
  el.append(
    h("div", { class: "level-head" }, h("span", { class: "level-name" }), remove),
    h("div", { class: "level-inputs" },
      labelled("Wait (seconds)", after, errors.after),
      labelled("Target", target, errors.target),
      teamBox,
      labelled("Mode", mode, errors.mode)),
    errors.row,
  );
  const showTeam = () => {
    teamBox.hidden = target.value !== "team";
  };
  target.addEventListener("change", showTeam);
  remove.addEventListener("click", () => onRemove(el));
  teamOptions(team, teams, level.team_id);
  showTeam();
  el.parts = { after, target, team, mode, remove, errors };
  el.sync = (next) => teamOptions(team, next, team.value || level.team_id);
  return el;
}

function numberRows(list) {
  [...list.children].forEach((row, i) => {
    const n = i + 1;
    row.querySelector(".level-name").textContent = `Level ${n}`;
    row.parts.after.setAttribute("aria-label", `Level ${n}: wait (seconds)`);
    row.parts.target.setAttribute("aria-label", `Level ${n}: target`);
    row.parts.team.setAttribute("aria-label", `Level ${n}: team`);
    row.parts.mode.setAttribute("aria-label", `Level ${n}: mode`);
    row.parts.remove.setAttribute("aria-label", `Remove level ${n}`);
    row.parts.remove.disabled = list.children.length === 1;
  });
}

function registerRows(fields, list) {
  fields.dropUnder("levels");
  [...list.children].forEach((row, i) => {
    const { after, target, team, mode, errors } = row.parts;
    fields.add(`levels.${i}`, target, errors.row);
    fields.add(`levels.${i}.after_seconds`, after, errors.after);
    fields.add(`levels.${i}.target`, target, errors.target);
    fields.add(`levels.${i}.team_id`, team, errors.team);
    fields.add(`levels.${i}.mode`, mode, errors.mode);
  });
}

function levelBody(row) {
  const { after, target, team, mode } = row.parts;
  const raw = after.value.trim();
  return {
    after_seconds: raw === "" ? null : Number(raw),
    target: target.value,
    mode: mode.value,
    ...(target.value === "team" ? { team_id: team.value || null } : {}),
  };
}

/** ``{el, setTeams(teams), setPolicy(policy)}``; the form saves itself. */
export function policyForm() {
  let teams = [];
  const fields = new FormFields(formSummary(), "policy");
  const list = h("ol", { class: "level-rows", id: "policy-levels" });
  const add = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "+ Add a level");
  const repeat = h("input", { type: "number", min: 0, max: 5, step: 1, inputmode: "numeric", value: "0" });
  const state = h("p", { class: "muted small", id: "policy-state" });
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Save policy");
  const levelsError = errorLine("policy-levels-error");
  fields.add("levels", add, levelsError);
  const form = h("form", { class: "form panel policy-form", novalidate: true, "aria-labelledby": "policy-h" },
    h("h2", { id: "policy-h" }, "Escalation policy"),
    state,
    fields.summary,
    h("fieldset", { class: "fieldset" },
      h("legend", { class: "label" }, "Levels"),
      h("p", { class: "hint" }, "A new escalation starts at level 1. Still unclaimed after the level's wait, it moves to the next level."),
      list, levelsError, add),
    fields.field("repeat", "Repeat", repeat, { hint: "After the last level, go round again this many times (0–5)." }),
    h("div", { class: "button-row" }, submit),
  );

  const addRow = (level) => {
    list.append(levelRow(level, teams, removeRow));
    numberRows(list);
  };
  function removeRow(row) {
    row.remove();
    numberRows(list);
    add.focus();
  }
  add.addEventListener("click", () => {
    if (list.children.length >= MAX_LEVELS) return;
    addRow({ after_seconds: 300, target: LevelTarget.all_seniors, mode: LevelMode.broadcast, team_id: null });
    list.lastElementChild.parts.after.focus();
  });

  function setPolicy(policy) {
    fill(list);
    for (const level of policy.levels) addRow(level);
    repeat.value = String(policy.repeat);
    state.textContent = policy.is_default
      ? "No policy is set: every escalation goes to all seniors, as below. Saving sets this org's policy."
      : "Applies to escalations created from now on; open ones keep the levels they started with.";
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fields.clear();
    registerRows(fields, list);
    const rawRepeat = repeat.value.trim();
    const body = { levels: [...list.children].map(levelBody), repeat: rawRepeat === "" ? null : Number(rawRepeat) };
    submit.disabled = true;
    try {
      setPolicy(await api.putPolicy(body));
      toast("Escalation policy saved.");
    } catch (error) {
      const unknownTeam = (e) => (e.code === "unknown_team" && e.body.level ? `levels.${e.body.level - 1}.team_id` : null);
      if (error.status !== 401) fields.report(error, unknownTeam);
    } finally {
      submit.disabled = false;
    }
  });

  return {
    el: form,
    setPolicy,
    setTeams(next) {
      teams = next;
      for (const row of list.children) row.sync(teams);
    },
  };
}
