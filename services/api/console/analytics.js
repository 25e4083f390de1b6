// Escalation analytics for admins: the window picker and loading; the numbers
// and charts are analytics-overview.js (by domain, by status, the claim SLA)
// and analytics-routing.js (by team, by level, by senior). Refreshes itself a
// moment after any event, so it stays current while open.

import { api } from "./api.js";
import { overviewFigures, statsRow } from "./analytics-overview.js";
import { routingFigures } from "./analytics-routing.js";
import { errorMessage, fill, h, segmented } from "./ui.js";

const WINDOWS = [
  { key: "1d", label: "24 hours", seconds: 86400 },
  { key: "7d", label: "7 days", seconds: 7 * 86400 },
  { key: "30d", label: "30 days", seconds: 30 * 86400 },
];
const REFRESH_AFTER_EVENT_MS = 1500;

export function mountAnalytics(main, ctx) {
  let windowKey = sessionStorage.getItem("escalations.analytics-window") || "30d";
  let timer = null;
  let disposers = [];
  const content = h("div", { class: "analytics", "aria-live": "off" });
  const status = h("p", { class: "muted" }, "Loading…");
  const picker = segmented("Time window", WINDOWS.map((w) => [w.key, w.label]), windowKey, (key) => {
    windowKey = key;
    sessionStorage.setItem("escalations.analytics-window", key);
    load();
  });

  async function load() {
    const chosen = WINDOWS.find((w) => w.key === windowKey) || WINDOWS[2];
    const since = new Date(Date.now() - chosen.seconds * 1000).toISOString();
    try {
      render(await api.analytics({ since }));
      status.hidden = true;
    } catch (error) {
      if (error.status === 401) return;
      status.hidden = false;
      status.className = "notice notice-error";
      status.textContent = error.status === 403 ? "Analytics are for admins." : errorMessage(error);
    }
  }

  function render(data) {
    for (const dispose of disposers) dispose();
    disposers = [];
    fill(content, statsRow(data), overviewFigures(data, disposers), routingFigures(data, disposers));
  }

  function onEvent() {
    clearTimeout(timer);
    timer = setTimeout(load, REFRESH_AFTER_EVENT_MS);
  }

  fill(main, 
    h("div", { class: "page-head" },
      h("div", {}, h("h1", { tabindex: "-1" }, "Escalation analytics"), h("p", { class: "subtitle" }, "How fast escalations get picked up and solved.")),
      picker,
    ),
    status,
    content,
  );
  ctx.stream.addEventListener("event", onEvent);
  ctx.stream.addEventListener("resync", onEvent);
  load();
  return {
    title: "Analytics",
    unmount() {
      clearTimeout(timer);
      for (const dispose of disposers) dispose();
      ctx.stream.removeEventListener("event", onEvent);
      ctx.stream.removeEventListener("resync", onEvent);
    },
  };
}
