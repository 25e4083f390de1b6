// The handoff page's panel while this user holds the claim: suggested-step
// chips above the resolution notes (a draft kept in sessionStorage), resolve
// and release.

import { api } from "./api.js";
import { errorMessage, fill, h, timeEl, toast } from "./ui.js";

const chipsKey = (id) => `escalations.chips-hidden.${id}`;
const draftKey = (id) => `escalations.draft.${id}`;

function notesBox(id, errorEl) {
  const textarea = h("textarea", {
    id: "work-notes", rows: 7, maxlength: 10000, "aria-describedby": "work-notes-hint work-notes-error",
    placeholder: "What did you find, and what fixed it?",
  });
  textarea.value = sessionStorage.getItem(draftKey(id)) || "";
  textarea.addEventListener("input", () => {
    sessionStorage.setItem(draftKey(id), textarea.value);
    errorEl.hidden = true;
  });
  return textarea;
}

/** The suggested steps as chips; a click appends the step to the notes. */
function chipsBox(page, textarea) {
  const id = page.handoff.id;
  const chips = h("div", { class: "chips", role: "group", "aria-labelledby": "chips-h" });
  const box = h("div", { class: "chips-box" },
    h("div", { class: "chips-head" },
      h("h3", { id: "chips-h" }, "Suggested steps"),
      h("button", { type: "button", class: "icon-btn", "aria-label": "Hide suggested steps", onclick: hide }, "×"),
    ),
    chips,
  );
  function hide() {
    sessionStorage.setItem(chipsKey(id), "1");
    box.hidden = true;
    textarea.focus();
  }
  function use(chip, step) {
    const current = textarea.value.replace(/\s+$/, "");
    textarea.value = current ? `${current}\n${step}` : step;
    sessionStorage.setItem(draftKey(id), textarea.value);
    chip.classList.add("used");
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  }
  function refresh() {
    const handoff = page.handoff;
    const steps = (handoff.ai_assessment_data && handoff.ai_assessment_data.suggested_steps) || [];
    box.hidden = sessionStorage.getItem(chipsKey(id)) === "1" || steps.length === 0;
    const key = String(steps.length) + handoff.assessment_status;
    if (chips.dataset.for === key) return;
    chips.dataset.for = key;
    fill(chips, steps.map((step) => h("button", {
      type: "button", class: "chip", title: step, onclick: (event) => use(event.currentTarget, step),
    }, h("span", { "aria-hidden": "true" }, "+"), h("span", {}, step))));
  }
  return { box, refresh, hideForGood: () => { sessionStorage.setItem(chipsKey(id), "1"); box.hidden = true; } };
}

export function workPanel(page) {
  const id = page.handoff.id;
  const errorEl = h("p", { class: "field-error", id: "work-notes-error", hidden: true });
  const textarea = notesBox(id, errorEl);
  const chips = chipsBox(page, textarea);
  const resolveBtn = h("button", { type: "submit", class: "btn btn-primary" }, "Resolve");
  const releaseBtn = h("button", { type: "button", class: "btn btn-ghost", onclick: release }, "Release to queue");
  const form = h("form", { class: "work-form", novalidate: true },
    chips.box,
    h("label", { for: "work-notes", class: "label" }, "Resolution notes"),
    h("p", { class: "hint", id: "work-notes-hint" }, "Saved as the resolution when you resolve. The junior sees them."),
    textarea,
    errorEl,
    h("div", { class: "button-row" }, resolveBtn, releaseBtn),
  );
  form.addEventListener("submit", resolve);
  const el = h("section", { class: "panel work", "aria-labelledby": "work-h" },
    h("h2", { id: "work-h" }, "You are on it"),
    h("p", { class: "muted small" }, "Claimed ", timeEl(page.handoff.claimed_at), "."),
    form,
  );

  const busy = (value) => {
    resolveBtn.disabled = releaseBtn.disabled = value;
  };

  async function resolve(event) {
    event.preventDefault();
    const notes = textarea.value.trim();
    if (!notes) {
      errorEl.textContent = "Write what fixed it before resolving.";
      errorEl.hidden = false;
      textarea.setAttribute("aria-invalid", "true");
      textarea.focus();
      return;
    }
    chips.hideForGood(); // the first send hides the suggestions
    busy(true);
    try {
      const resolved = await api.resolve(id, notes);
      sessionStorage.removeItem(draftKey(id));
      page.update(resolved);
      toast("Resolved. The junior can see your notes.");
    } catch (error) {
      busy(false);
      if (error.status === 401) return;
      errorEl.textContent = errorMessage(error);
      errorEl.hidden = false;
    }
  }

  async function release() {
    busy(true);
    try {
      page.update(await api.release(id));
      toast("Released back to the queue.");
    } catch (error) {
      busy(false);
      if (error.status !== 401) toast(errorMessage(error), { kind: "error" });
    }
  }

  return { el, refresh: chips.refresh, focus: () => textarea.focus() };
}
