// The junior's side: escalate a session (the create form, with the server's
// validation errors next to the fields) and follow your own escalations live.

import { api, listAll } from "./api.js";
import { isNewer } from "./store.js";
import {
  announce,
  domainChip,
  errorMessage,
  fill,
  h,
  PRIORITIES,
  priorityBadge,
  statusBadge,
  timeEl,
  toast,
} from "./ui.js";

const DOMAINS = ["kubernetes", "database", "networking", "auth", "ci", "storage", "frontend", "observability"];

function humanize(error) {
  if (error.type === "missing") return "Required.";
  if (error.type === "string_too_short" && /at least 1 character/.test(error.msg)) return "Required.";
  const msg = error.msg || "Invalid value.";
  return msg.charAt(0).toUpperCase() + msg.slice(1) + (msg.endsWith(".") ? "" : ".");
}

/** A labelled control with its hint and its error line, registered under ``name`` (the API's loc). */
function field(form, name, label, control, { hint, className = "" } = {}) {
  const id = `f-${name.replace(/\./g, "-")}`;
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  control.id = id;
  control.name = name;
  control.setAttribute("aria-describedby", [hintId, errorId].filter(Boolean).join(" "));
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  form.fields.set(name, { control, error });
  return h("div", { class: `field ${className}` },
    h("label", { class: "label", for: id }, label),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    control,
    error,
  );
}

function select(options, value) {
  return h("select", {}, options.map((o) => h("option", { value: o, selected: o === value }, o)));
}

export function mountEscalate(main, ctx) {
  const form = h("form", { class: "form panel", novalidate: true });
  form.fields = new Map();
  const summary = h("div", { class: "notice notice-error", role: "alert", tabindex: "-1", hidden: true });
  const steps = h("ol", { class: "step-rows" });
  let sentRows = [];
  let idempotencyKey = crypto.randomUUID();

  function stepRow() {
    const row = h("li", { class: "step-row" });
    const description = h("input", { type: "text", maxlength: 2000, placeholder: "What you did", "aria-label": "Step" });
    const outcome = h("input", { type: "text", maxlength: 2000, placeholder: "What happened", "aria-label": "Outcome" });
    const descError = h("p", { class: "field-error", hidden: true });
    const outError = h("p", { class: "field-error", hidden: true });
    const remove = h("button", { type: "button", class: "icon-btn", "aria-label": "Remove this step" }, "×");
    remove.addEventListener("click", () => {
      row.remove();
      renumber();
      (steps.querySelector("input") || addStep).focus();
    });
    row.append(
      h("div", { class: "step-inputs" },
        h("div", {}, description, descError),
        h("div", {}, outcome, outError),
      ),
      remove,
    );
    row.parts = { description, outcome, descError, outError };
    return row;
  }

  function renumber() {
    [...steps.children].forEach((row, i) => {
      row.parts.description.setAttribute("aria-label", `Step ${i + 1}`);
      row.parts.outcome.setAttribute("aria-label", `Outcome of step ${i + 1}`);
    });
  }

  const addStep = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "+ Add a step");
  addStep.addEventListener("click", () => {
    const row = stepRow();
    steps.append(row);
    renumber();
    row.parts.description.focus();
  });
  steps.append(stepRow());
  renumber();

  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Escalate to a senior");
  const stepCount = h("input", { type: "number", min: 0, step: 1, inputmode: "numeric", value: "0" });
  const status = h("input", { type: "text", maxlength: 64, value: "stuck" });
  const domain = h("input", { type: "text", maxlength: 64, list: "domain-options", autocomplete: "off", placeholder: "e.g. kubernetes" });

  form.append(
    summary,
    h("div", { class: "form-grid" },
      field(form, "snapshot.problem_summary", "Problem summary",
        h("textarea", { rows: 3, maxlength: 2000, placeholder: "What is broken, in one or two sentences" }),
        { className: "span-2" }),
      field(form, "snapshot.problem_domain", "Domain", domain),
      field(form, "priority", "Priority", select(PRIORITIES, "normal")),
      field(form, "session_id", "Session ID", h("input", { type: "text", maxlength: 128, autocomplete: "off", placeholder: "e.g. sess-8f2c41" }),
        { hint: "The assistant session you are escalating." }),
      field(form, "snapshot.status", "Session status", status),
      field(form, "snapshot.step_count", "Steps in the session", stepCount),
      field(form, "snapshot.confidence_tier", "Assistant confidence", select(["low", "medium", "high"], "low")),
    ),
    h("fieldset", { class: "fieldset" },
      h("legend", { class: "label" }, "What you tried"),
      h("p", { class: "hint" }, "Each step and what happened. The AI assessment will not suggest these again."),
      steps,
      h("p", { class: "field-error", id: "f-snapshot-tried_steps-error", hidden: true }),
      addStep,
    ),
    field(form, "engineer_notes", "Notes for the senior", h("textarea", { rows: 4, maxlength: 10000, placeholder: "Anything else they should know" })),
    h("div", { class: "button-row" }, submit, h("a", { class: "btn btn-ghost", href: "#/mine" }, "Cancel")),
    h("datalist", { id: "domain-options" }, DOMAINS.map((d) => h("option", { value: d }))),
  );
  form.fields.set("snapshot.tried_steps", { control: addStep, error: form.querySelector("#f-snapshot-tried_steps-error") });

  const value = (name) => form.fields.get(name).control.value;

  function body() {
    sentRows = [...steps.children].filter((row) => row.parts.description.value.trim() || row.parts.outcome.value.trim());
    const count = stepCount.value.trim();
    return {
      session_id: value("session_id").trim(),
      priority: value("priority"),
      engineer_notes: value("engineer_notes"),
      snapshot: {
        problem_summary: value("snapshot.problem_summary").trim(),
        problem_domain: value("snapshot.problem_domain").trim(),
        status: value("snapshot.status").trim(),
        step_count: count === "" ? null : Number(count),
        confidence_tier: value("snapshot.confidence_tier"),
        tried_steps: sentRows.map((row) => ({
          description: row.parts.description.value.trim(),
          outcome: row.parts.outcome.value.trim(),
        })),
      },
    };
  }

  function clearErrors() {
    summary.hidden = true;
    for (const el of form.querySelectorAll(".field-error")) {
      el.hidden = true;
      el.textContent = "";
    }
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  /** The registered control and error line for a loc, the most specific that exists. */
  function target(loc) {
    const parts = loc[0] === "body" ? loc.slice(1) : loc.slice();
    if (parts[0] === "snapshot" && parts[1] === "tried_steps" && parts.length >= 4) {
      const row = sentRows[Number(parts[2])];
      if (row) {
        const outcome = parts[3] === "outcome";
        return { control: outcome ? row.parts.outcome : row.parts.description, error: outcome ? row.parts.outError : row.parts.descError };
      }
    }
    while (parts.length) {
      const found = form.fields.get(parts.join("."));
      if (found) return found;
      parts.pop();
    }
    return null;
  }

  function showErrors(error) {
    const problems = error.code === "validation_error" && Array.isArray(error.body.fields) ? error.body.fields : [];
    let first = null;
    const unplaced = [];
    for (const problem of problems) {
      const place = target(problem.loc || []);
      if (!place) {
        unplaced.push(humanize(problem));
        continue;
      }
      place.error.textContent = place.error.textContent ? `${place.error.textContent} ${humanize(problem)}` : humanize(problem);
      place.error.hidden = false;
      place.control.setAttribute("aria-invalid", "true");
      first = first || place.control;
    }
    if (error.code === "session_already_escalated") {
      const place = form.fields.get("session_id");
      place.error.textContent = error.detail;
      place.error.hidden = false;
      place.control.setAttribute("aria-invalid", "true");
      first = place.control;
    }
    const count = problems.length;
    summary.textContent = count
      ? `Please fix ${count === 1 ? "the highlighted field" : `the ${count} highlighted fields`}.${unplaced.length ? ` ${unplaced.join(" ")}` : ""}`
      : errorMessage(error);
    summary.hidden = false;
    first = form.querySelector('[aria-invalid="true"]') || first;
    (first || summary).focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    submit.disabled = true;
    submit.textContent = "Escalating…";
    try {
      const created = await api.createHandoff(body(), idempotencyKey);
      idempotencyKey = crypto.randomUUID();
      toast("Escalated. A senior will pick it up; follow it here.");
      ctx.navigate(`#/mine?new=${encodeURIComponent(created.id)}`);
    } catch (error) {
      idempotencyKey = crypto.randomUUID(); // a corrected body is a new request
      if (error.status !== 401) showErrors(error);
    } finally {
      submit.disabled = false;
      submit.textContent = "Escalate to a senior";
    }
  });

  fill(main, 
    h("div", { class: "page-head" },
      h("div", {},
        h("h1", { tabindex: "-1" }, "Escalate a session"),
        h("p", { class: "subtitle" }, "Stuck? Hand the session to a senior engineer with what you already know."),
      ),
    ),
    form,
  );
  return { title: "Escalate", unmount() {} };
}

// --- my escalations ----------------------------------------------------------------

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
      handoff.status === "resolved" && handoff.resolution_notes
        ? h("div", { class: "resolution-box" }, h("span", { class: "label small" }, "Resolution"), h("p", { class: "prose" }, handoff.resolution_notes))
        : null,
    ),
  );
}

const OPEN_FIRST = { claimed: 0, pending: 1, resolved: 2, cancelled: 3 };

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
      h("div", {}, h("h1", { tabindex: "-1" }, "My escalations"), h("p", { class: "subtitle" }, "Live: claims and resolutions appear as they happen.")),
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

  function onEvent({ detail }) {
    const handoff = detail.data.handoff;
    if (!handoff || handoff.created_by_id !== claims.sub || !isNewer(handoff, items.get(handoff.id))) return;
    items.set(handoff.id, handoff);
    render();
    const what = `“${handoff.snapshot.problem_summary}”`;
    if (detail.type === "handoff_claimed") announce(`${handoff.claimed_by_name} claimed your escalation ${what}.`);
    if (detail.type === "handoff_resolved") announce(`${handoff.claimed_by_name || "A senior"} resolved your escalation ${what}.`);
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
