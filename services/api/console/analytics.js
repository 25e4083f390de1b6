// Escalation analytics for admins: the numbers, and charts of time to claim by
// domain, handoffs by status and claim-SLA breaches, then routing (by level,
// by team, by senior: analytics-routing.js). Refreshes itself a moment
// after any event, so it stays current while open.

import { api } from "./api.js";
import { routingFigures } from "./analytics-routing.js";
import { barChart, figure, legend, responsive, stackedBar } from "./charts.js";
import { errorMessage, fill, formatDuration, h } from "./ui.js";

const WINDOWS = [
  { key: "1d", label: "24 hours", seconds: 86400 },
  { key: "7d", label: "7 days", seconds: 7 * 86400 },
  { key: "30d", label: "30 days", seconds: 30 * 86400 },
];
const REFRESH_AFTER_EVENT_MS = 1500;
const STATUSES = ["pending", "claimed", "resolved", "cancelled"];
const STATUS_LABEL = { pending: "Waiting", claimed: "In progress", resolved: "Resolved", cancelled: "Cancelled" };

function stat(label, value, sub, id) {
  return h("div", { class: "stat", id }, h("span", { class: "stat-label" }, label), h("span", { class: "stat-value" }, value), sub ? h("span", { class: "stat-sub" }, sub) : null);
}

function durationStat(label, stats, id) {
  const sub = stats.count ? `p90 ${formatDuration(stats.p90)} · max ${formatDuration(stats.max)} · n=${stats.count}` : "no data yet";
  return stat(`${label} (p50)`, formatDuration(stats.p50), sub, id);
}

export function mountAnalytics(main, ctx) {
  let windowKey = sessionStorage.getItem("escalations.analytics-window") || "30d";
  let timer = null;
  let disposers = [];
  const content = h("div", { class: "analytics", "aria-live": "off" });
  const status = h("p", { class: "muted" }, "Loading…");
  const picker = h("div", { class: "segmented", role: "radiogroup", "aria-label": "Time window" });

  function renderPicker() {
    fill(picker, WINDOWS.map((w) => h("button", {
      type: "button", role: "radio", class: "seg", "aria-checked": String(w.key === windowKey),
      tabindex: w.key === windowKey ? "0" : "-1",
      onclick: () => choose(w.key),
      onkeydown: (event) => arrows(event, w.key),
    }, w.label)));
  }

  function choose(key) {
    windowKey = key;
    sessionStorage.setItem("escalations.analytics-window", key);
    renderPicker();
    picker.querySelector('[aria-checked="true"]').focus();
    load();
  }

  function arrows(event, key) {
    const i = WINDOWS.findIndex((w) => w.key === key);
    const delta = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (!delta) return;
    event.preventDefault();
    choose(WINDOWS[(i + delta + WINDOWS.length) % WINDOWS.length].key);
  }

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
    const breachRate = data.total ? Math.round((data.sla_breaches / data.total) * 100) : 0;
    const domainHasP90 = data.by_domain.some((d) => "time_to_claim_p90_seconds" in d);
    const series = [{ name: "p50", className: "s-p50" }];
    if (domainHasP90) series.push({ name: "p90", className: "s-p90" });

    const claimBox = h("div", { class: "chart-box", id: "chart-claim-by-domain" });
    const statusBox = h("div", { class: "chart-box", id: "chart-by-status" });
    const slaBox = h("div", { class: "chart-box", id: "chart-sla" });

    const claimRows = data.by_domain.map((d) => ({
      label: `${d.domain} (${d.count})`,
      values: domainHasP90 ? [d.time_to_claim_p50_seconds, d.time_to_claim_p90_seconds] : [d.time_to_claim_p50_seconds],
    }));
    const overall = data.time_to_claim_seconds;
    const refs = [];
    if (overall.p50 !== null) refs.push({ value: overall.p50, label: "all p50" });
    if (overall.p90 !== null) refs.push({ value: overall.p90, label: "all p90" });

    disposers.push(responsive(claimBox, (width) => claimRows.length
      ? barChart({
          rows: claimRows, series, width, format: formatDuration, refs, durations: true,
          noData: "not claimed yet", label: "Time to claim by domain",
        })
      : h("p", { class: "muted" }, "No escalations in this window.")));
    disposers.push(responsive(statusBox, (width) => barChart({
      rows: STATUSES.map((s) => ({ label: STATUS_LABEL[s], values: [data.by_status[s]], className: `s-${s}` })),
      series: [{ name: "count", className: "s-p50" }],
      width,
      format: (v) => String(v),
      integers: true,
      label: "Escalations by status",
    })));
    const slaParts = [
      { label: "Claimed within SLA or still in time", value: data.total - data.sla_breaches, className: "s-ok" },
      { label: "Breached the claim SLA", value: data.sla_breaches, className: "s-breach" },
    ];
    disposers.push(responsive(slaBox, (width) => stackedBar({ parts: slaParts, width, label: `${data.sla_breaches} of ${data.total} breached the claim SLA` })));

    const domainTable = h("table", { class: "table" },
      h("caption", { class: "sr-only" }, "Time to claim by domain"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Domain"), h("th", { scope: "col", class: "num" }, "Escalations"), h("th", { scope: "col", class: "num" }, "Claim p50"),
        domainHasP90 ? h("th", { scope: "col", class: "num" }, "Claim p90") : null)),
      h("tbody", {}, data.by_domain.map((d) => h("tr", {},
        h("th", { scope: "row" }, d.domain), h("td", { class: "num" }, String(d.count)), h("td", { class: "num" }, formatDuration(d.time_to_claim_p50_seconds)),
        domainHasP90 ? h("td", { class: "num" }, formatDuration(d.time_to_claim_p90_seconds)) : null))),
    );

    fill(content, 
      h("div", { class: "stats" },
        stat("Escalations", String(data.total), `${data.by_status.pending} waiting · ${data.by_status.claimed} in progress`, "stat-total"),
        durationStat("Time to claim", data.time_to_claim_seconds, "stat-claim"),
        durationStat("Time to assessment", data.time_to_assessment_seconds, "stat-assessment"),
        durationStat("Time to resolve", data.time_to_resolve_seconds, "stat-resolve"),
        stat("SLA breaches", String(data.sla_breaches), data.total ? `${breachRate}% of escalations` : "no escalations", "stat-sla"),
      ),
      h("div", { class: "chart-grid" },
        figure("Time to claim by domain",
          domainHasP90 ? "p50 and p90 per domain; dashed lines are all domains." : "p50 per domain; dashed lines are the p50 and p90 across all domains.",
          claimBox,
          data.by_domain.length ? h("details", { class: "table-details" }, h("summary", {}, "Show as table"), domainTable) : null),
        figure("Escalations by status", "Handoffs created in the window, by where they are now.", statusBox),
        figure("Claim SLA", "Handoffs that waited longer than the claim SLA before anyone took them.", slaBox, legend(slaParts)),
      ),
      routingFigures(data, disposers),
    );
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
  renderPicker();
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
