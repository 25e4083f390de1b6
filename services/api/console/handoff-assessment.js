// The handoff page's AI assessment panel: a skeleton while pending, the
// summary, causes and steps when ready (filled in place by its event), and an
// error with "Retry assessment" for a senior when it failed.

import { api } from "./api.js";
import { absoluteTime, errorMessage, fill, h, timeAgo, toast } from "./ui.js";

function ready(a, title) {
  return [
    h("div", { class: "panel-head" }, title, h("span", { class: `badge conf conf-${a.confidence}` }, `${a.confidence} confidence`)),
    h("p", { class: "prose lead" }, a.summary),
    a.likely_causes.length ? [h("h3", {}, "Likely causes"), h("ul", { class: "list" }, a.likely_causes.map((c) => h("li", {}, c)))] : null,
    a.suggested_steps.length ? [h("h3", {}, "Suggested next steps"), h("ol", { class: "list" }, a.suggested_steps.map((c) => h("li", {}, c)))] : null,
    h("p", { class: "muted small" }, `By ${a.generator} · `, h("time", { datetime: a.generated_at, title: absoluteTime(a.generated_at) }, timeAgo(a.generated_at))),
  ];
}

function failed(title, page) {
  const retry = h("button", { type: "button", class: "btn btn-secondary", onclick: (event) => retryAssessment(event, page) }, "Retry assessment");
  return [
    title,
    h("div", { class: "notice notice-error" },
      h("p", {}, "The assessment could not be generated."),
      page.isSenior ? retry : h("p", { class: "small" }, "A senior can retry it."),
    ),
  ];
}

function pending(title) {
  return [
    title,
    h("p", { class: "muted" }, "Assessing this escalation… it usually takes a few seconds and appears here by itself."),
    h("div", { class: "skeleton", "aria-hidden": "true" }, h("span", {}), h("span", {}), h("span", {})),
  ];
}

async function retryAssessment(event, page) {
  const button = event.currentTarget;
  button.disabled = true;
  try {
    page.update(await api.retryAssessment(page.handoff.id));
  } catch (error) {
    button.disabled = false;
    if (error.status !== 401) toast(errorMessage(error), { kind: "error" });
    if (error.status === 409) page.reload();
  }
}

/** The panel element; ``render(page)`` redraws it from ``page.handoff``. */
export function assessmentPanel() {
  const el = h("section", { class: "panel assessment", "aria-labelledby": "assess-h", "aria-live": "polite" });
  function render(page) {
    const handoff = page.handoff;
    const a = handoff.ai_assessment_data;
    const state = handoff.assessment_status === "ready" && a ? "ready" : handoff.assessment_status;
    el.dataset.state = state;
    el.setAttribute("aria-busy", state === "pending" ? "true" : "false");
    const title = h("h2", { id: "assess-h" }, "AI assessment");
    fill(el, state === "ready" ? ready(a, title) : state === "failed" ? failed(title, page) : pending(title));
  }
  return { el, render };
}
