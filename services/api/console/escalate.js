// The junior's escalation form: no client-side rules of its own; it sends what
// was typed and shows the API's 422 `fields` next to the inputs they name.

import { api } from "./api.js";
import { ConfidenceTier, Priority, PRIORITIES } from "./enums.js";
import { errorLine, FormFields, formSummary, select } from "./forms.js";
import { fill, h, toast } from "./ui.js";

const DOMAINS = ["kubernetes", "database", "networking", "auth", "ci", "storage", "frontend", "observability"];

/** The "What you tried" rows: description and outcome, add and remove. */
function triedSteps() {
  const list = h("ol", { class: "step-rows" });
  const addStep = h("button", { type: "button", class: "btn btn-ghost btn-small" }, "+ Add a step");

  function renumber() {
    [...list.children].forEach((row, i) => {
      row.parts.description.setAttribute("aria-label", `Step ${i + 1}`);
      row.parts.outcome.setAttribute("aria-label", `Outcome of step ${i + 1}`);
    });
  }

  function row() {
    const el = h("li", { class: "step-row" });
    const description = h("input", { type: "text", maxlength: 2000, placeholder: "What you did", "aria-label": "Step" });
    const outcome = h("input", { type: "text", maxlength: 2000, placeholder: "What happened", "aria-label": "Outcome" });
    const descError = h("p", { class: "field-error", hidden: true });
    const outError = h("p", { class: "field-error", hidden: true });
    const remove = h("button", { type: "button", class: "icon-btn", "aria-label": "Remove this step" }, "×");
    remove.addEventListener("click", () => {
      el.remove();
      renumber();
      (list.querySelector("input") || addStep).focus();
    });
    el.append(h("div", { class: "step-inputs" }, h("div", {}, description, descError), h("div", {}, outcome, outError)), remove);
    el.parts = { description, outcome, descError, outError };
    return el;
  }

  addStep.addEventListener("click", () => {
    const added = row();
    list.append(added);
    renumber();
    added.parts.description.focus();
  });
  list.append(row());
  renumber();

  /** The rows with something typed, registered in ``fields`` as the API will index them. */
  function sent(fields) {
    fields.dropUnder("snapshot.tried_steps");
    const rows = [...list.children].filter((r) => r.parts.description.value.trim() || r.parts.outcome.value.trim());
    rows.forEach((r, i) => {
      fields.add(`snapshot.tried_steps.${i}.description`, r.parts.description, r.parts.descError);
      fields.add(`snapshot.tried_steps.${i}.outcome`, r.parts.outcome, r.parts.outError);
    });
    return rows.map((r) => ({ description: r.parts.description.value.trim(), outcome: r.parts.outcome.value.trim() }));
  }

  return { list, addStep, sent };
}

function formBody(fields, steps) {
  const value = (name) => fields.map.get(name).control.value;
  const count = value("snapshot.step_count").trim();
  const triedSteps = steps.sent(fields);
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
      tried_steps: triedSteps,
    },
  };
}

function buildForm(form, fields, steps, submit) {
  const triedError = errorLine("f-snapshot-tried_steps-error");
  fields.add("snapshot.tried_steps", steps.addStep, triedError);
  form.append(
    fields.summary,
    h("div", { class: "form-grid" },
      fields.field("snapshot.problem_summary", "Problem summary",
        h("textarea", { rows: 3, maxlength: 2000, placeholder: "What is broken, in one or two sentences" }), { className: "span-2" }),
      fields.field("snapshot.problem_domain", "Domain",
        h("input", { type: "text", maxlength: 64, list: "domain-options", autocomplete: "off", placeholder: "e.g. kubernetes" })),
      fields.field("priority", "Priority", select(PRIORITIES, Priority.normal)),
      fields.field("session_id", "Session ID", h("input", { type: "text", maxlength: 128, autocomplete: "off", placeholder: "e.g. sess-8f2c41" }),
        { hint: "The assistant session you are escalating." }),
      fields.field("snapshot.status", "Session status", h("input", { type: "text", maxlength: 64, value: "stuck" })),
      fields.field("snapshot.step_count", "Steps in the session", h("input", { type: "number", min: 0, step: 1, inputmode: "numeric", value: "0" })),
      fields.field("snapshot.confidence_tier", "Assistant confidence", select(Object.values(ConfidenceTier), ConfidenceTier.low)),
    ),
    h("fieldset", { class: "fieldset" },
      h("legend", { class: "label" }, "What you tried"),
      h("p", { class: "hint" }, "Each step and what happened. The AI assessment will not suggest these again."),
      steps.list,
      triedError,
      steps.addStep,
    ),
    fields.field("engineer_notes", "Notes for the senior", h("textarea", { rows: 4, maxlength: 10000, placeholder: "Anything else they should know" })),
    h("div", { class: "button-row" }, submit, h("a", { class: "btn btn-ghost", href: "#/mine" }, "Cancel")),
    h("datalist", { id: "domain-options" }, DOMAINS.map((d) => h("option", { value: d }))),
  );
}

export function mountEscalate(main, ctx) {
  const form = h("form", { class: "form panel", novalidate: true });
  const fields = new FormFields(formSummary());
  const steps = triedSteps();
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Escalate to a senior");
  let idempotencyKey = crypto.randomUUID();
  buildForm(form, fields, steps, submit);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fields.clear();
    submit.disabled = true;
    submit.textContent = "Escalating…";
    try {
      const created = await api.createHandoff(formBody(fields, steps), idempotencyKey);
      idempotencyKey = crypto.randomUUID();
      toast("Escalated. A senior will pick it up; follow it here.");
      ctx.navigate(`#/mine?new=${encodeURIComponent(created.id)}`);
    } catch (error) {
      idempotencyKey = crypto.randomUUID(); // a corrected body is a new request
      if (error.status !== 401) fields.report(error, (e) => (e.code === "session_already_escalated" ? "session_id" : null));
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
