// Forms whose rules are the server's: labelled controls registered under the
// API's field names, and an API error shown next to the field it names — a 422
// `fields[].loc`, or a 409 code the form maps to a field — with a summary at
// the top that takes the focus when nothing else can.

import { errorMessage, h } from "./ui.js";

/** A validation problem (`{loc, msg, type}`) as a sentence. */
export function humanize(problem) {
  if (problem.type === "missing") return "Required.";
  if (problem.type === "string_too_short" && /at least 1 character/.test(problem.msg)) return "Required.";
  const msg = (problem.msg || "Invalid value.").replace(/^Value error, /, "");
  return msg.charAt(0).toUpperCase() + msg.slice(1) + (msg.endsWith(".") ? "" : ".");
}

export function select(options, value) {
  return h("select", {}, options.map((o) => {
    const [optionValue, label] = Array.isArray(o) ? o : [o, o];
    return h("option", { value: optionValue, selected: optionValue === value }, label);
  }));
}

/** An inline error line for a control that is not a registered ``field``. */
export function errorLine(id) {
  return h("p", { class: "field-error", id, hidden: true });
}

export class FormFields {
  /** ``prefix`` keeps ids unique when several forms share a page. */
  constructor(summary, prefix = "f") {
    this.summary = summary;
    this.prefix = prefix;
    this.map = new Map();
  }

  /** A labelled control with its hint and its error line, registered under ``name`` (the API's loc). */
  field(name, label, control, { hint, className = "" } = {}) {
    const id = `${this.prefix}-${name.replace(/\./g, "-")}`;
    const error = errorLine(`${id}-error`);
    const hintId = hint ? `${id}-hint` : null;
    control.id = id;
    control.name = name;
    control.setAttribute("aria-describedby", [hintId, error.id].filter(Boolean).join(" "));
    this.add(name, control, error);
    return h("div", { class: `field ${className}` },
      h("label", { class: "label", for: id }, label),
      hint ? h("p", { class: "hint", id: hintId }, hint) : null,
      control,
      error,
    );
  }

  /** Register a control and its error line under ``name`` (e.g. "members.2.id"). */
  add(name, control, error) {
    if (error.id && !(control.getAttribute("aria-describedby") || "").includes(error.id)) {
      control.setAttribute("aria-describedby", [control.getAttribute("aria-describedby"), error.id].filter(Boolean).join(" "));
    }
    this.map.set(name, { control, error });
  }

  /** Forget every name under ``prefix.`` (rows are registered again at each send). */
  dropUnder(prefix) {
    for (const name of [...this.map.keys()]) if (name.startsWith(`${prefix}.`)) this.map.delete(name);
  }

  clear() {
    this.summary.hidden = true;
    for (const { control, error } of this.map.values()) {
      error.hidden = true;
      error.textContent = "";
      control.removeAttribute("aria-invalid");
    }
  }

  /** The registered place for a loc, the most specific that exists. */
  find(loc) {
    const parts = (loc[0] === "body" ? loc.slice(1) : loc.slice()).map(String);
    while (parts.length) {
      const found = this.map.get(parts.join("."));
      if (found) return found;
      parts.pop();
    }
    return null;
  }

  /** Show ``message`` next to the control registered as ``name``; false if none is. */
  mark(name, message) {
    const place = this.map.get(name);
    if (!place) return false;
    this.markPlace(place, message);
    return true;
  }

  markPlace(place, message) {
    place.error.textContent = place.error.textContent ? `${place.error.textContent} ${message}` : message;
    place.error.hidden = false;
    place.control.setAttribute("aria-invalid", "true");
  }

  /**
   * Show an API error: a 422's fields by loc; otherwise ``placeCode(error)`` may
   * name the field a conflict belongs to. The summary says what is left; the
   * focus goes to the first marked control, else to the summary.
   */
  report(error, placeCode = () => null) {
    const problems = error.code === "validation_error" && Array.isArray(error.body.fields) ? error.body.fields : [];
    const unplaced = [];
    for (const problem of problems) {
      const place = this.find(problem.loc || []);
      if (place) this.markPlace(place, humanize(problem));
      else unplaced.push(humanize(problem));
    }
    const placed = !problems.length && this.mark(placeCode(error) || "", error.detail || errorMessage(error));
    const count = problems.length - unplaced.length;
    if (problems.length) {
      const fix = count ? `Please fix ${count === 1 ? "the highlighted field" : `the ${count} highlighted fields`}.` : "";
      this.summary.textContent = [fix, ...unplaced].filter(Boolean).join(" ");
    } else {
      this.summary.textContent = placed ? "Please fix the highlighted field." : errorMessage(error);
    }
    this.summary.hidden = false;
    const first = (this.summary.closest("form") || document).querySelector('[aria-invalid="true"]');
    (first || this.summary).focus();
  }
}

/** The error summary at the top of a form (an alert that can take the focus). */
export function formSummary() {
  return h("div", { class: "notice notice-error", role: "alert", tabindex: "-1", hidden: true });
}
