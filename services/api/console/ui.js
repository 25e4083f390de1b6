// Small DOM helpers shared by every view. Text always goes in as text nodes,
// never as HTML, so nothing a user typed can become markup.

import { HandoffStatus } from "./enums.js";

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replace ``el``'s children (arrays flattened; null, undefined and false skipped). */
export function fill(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// --- time ---------------------------------------------------------------------

const UNITS = [
  ["day", 86400],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

/** "just now", "12 seconds ago", "3 minutes ago" (a time a little in the future counts as now). */
export function timeAgo(iso, now = Date.now()) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  const seconds = Math.floor((now - at) / 1000);
  if (seconds < 5) return "just now";
  for (const [unit, size] of UNITS) {
    if (seconds >= size) {
      const n = Math.floor(seconds / size);
      return `${n} ${unit}${n === 1 ? "" : "s"} ago`;
    }
  }
  return "just now";
}

export function absoluteTime(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  return at.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A <time> whose relative text the ticker below keeps fresh. */
export function timeEl(iso, prefix = "") {
  return h(
    "time",
    { datetime: iso, title: absoluteTime(iso), dataset: { relative: "", prefix } },
    prefix + timeAgo(iso),
  );
}

export function refreshTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time[data-relative]")) {
    const text = (el.dataset.prefix || "") + timeAgo(el.getAttribute("datetime"), now);
    if (el.textContent !== text) el.textContent = text;
  }
}

/** Keep every relative time on the page fresh (every 15 s); app.js starts it once. */
export function startTimeTicker() {
  setInterval(() => refreshTimes(), 15000);
}

/** 0.4 → "0.4 s", 42 → "42 s", 125 → "2 min 5 s", 5400 → "1 h 30 min"; null → "—". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds > 0 && seconds < 0.1) return "< 0.1 s";
  if (seconds < 10) return `${Math.round(seconds * 10) / 10} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) {
    const m = Math.floor(seconds / 60);
    const s = Math.round(seconds % 60);
    return s ? `${m} min ${s} s` : `${m} min`;
  }
  if (seconds < 86400) {
    const hours = Math.floor(seconds / 3600);
    const m = Math.round((seconds % 3600) / 60);
    return m ? `${hours} h ${m} min` : `${hours} h`;
  }
  return `${Math.round((seconds / 86400) * 10) / 10} d`;
}

// --- badges -------------------------------------------------------------------

export function priorityBadge(priority) {
  return h("span", { class: `badge prio prio-${priority}` }, priority);
}

export const STATUS_LABEL = {
  [HandoffStatus.pending]: "Waiting",
  [HandoffStatus.claimed]: "In progress",
  [HandoffStatus.resolved]: "Resolved",
  [HandoffStatus.cancelled]: "Cancelled",
};

export function statusBadge(status) {
  return h("span", { class: `badge status status-${status}` }, STATUS_LABEL[status] || status);
}

export function domainChip(domain) {
  return h("span", { class: "badge domain" }, domain);
}

export function slaBadge(handoff) {
  if (!handoff.sla_breached_at || handoff.status !== HandoffStatus.pending) return null;
  return h("span", { class: "badge sla", title: `SLA breached ${timeAgo(handoff.sla_breached_at)}` }, "SLA breached");
}

// --- toasts and the screen-reader announcer ------------------------------------

const TOAST_MS = 7000;

export function toast(message, { kind = "info" } = {}) {
  const box = document.getElementById("toasts");
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss" }, "×");
  const item = h("div", { class: `toast toast-${kind}` }, h("span", { class: "toast-text" }, message), close);
  const remove = () => item.remove();
  close.addEventListener("click", remove);
  box.append(item);
  setTimeout(remove, TOAST_MS);
  return item;
}

export function announce(message) {
  const el = document.getElementById("announcer");
  el.textContent = "";
  // A separate task, so the same message twice is still announced.
  setTimeout(() => {
    el.textContent = message;
  }, 50);
}

export function errorMessage(error) {
  if (error && error.detail) return error.detail;
  if (error instanceof TypeError) return "The server could not be reached. Check your connection.";
  return (error && error.message) || "Something went wrong.";
}

// --- segmented control ------------------------------------------------------------

/**
 * A radio group of buttons (arrow keys move the choice). ``options``: [[key,
 * label]]; ``onChoose(key)`` runs on a change. Returns the element; call
 * ``el.choose(key)`` to change it from outside.
 */
export function segmented(label, options, value, onChoose) {
  const group = h("div", { class: "segmented", role: "radiogroup", "aria-label": label });
  const render = () => fill(group, options.map(([key, text]) => h("button", {
    type: "button", role: "radio", class: "seg", "aria-checked": String(key === value),
    tabindex: key === value ? "0" : "-1", dataset: { key },
    onclick: () => choose(key),
    onkeydown: (event) => arrows(event, key),
  }, text)));
  function choose(key) {
    const changed = key !== value;
    value = key;
    render();
    group.querySelector('[aria-checked="true"]').focus();
    if (changed) onChoose(key);
  }
  function arrows(event, key) {
    const delta = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (!delta) return;
    event.preventDefault();
    const i = options.findIndex(([k]) => k === key);
    choose(options[(i + delta + options.length) % options.length][0]);
  }
  render();
  return group;
}
