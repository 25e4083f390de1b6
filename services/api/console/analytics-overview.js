// The analytics page's overview: the headline numbers, then time to claim by
// domain (with a table), handoffs by status and the claim SLA, as SVG charts.

import { barChart, figure, legend, responsive, stackedBar } from "./charts.js";
import { HandoffStatus } from "./enums.js";
import { formatDuration, h, STATUS_LABEL } from "./ui.js";

const STATUSES = Object.values(HandoffStatus);

function stat(label, value, sub, id) {
  return h("div", { class: "stat", id }, h("span", { class: "stat-label" }, label), h("span", { class: "stat-value" }, value), sub ? h("span", { class: "stat-sub" }, sub) : null);
}

function durationStat(label, stats, id) {
  const sub = stats.count ? `p90 ${formatDuration(stats.p90)} · max ${formatDuration(stats.max)} · n=${stats.count}` : "no data yet";
  return stat(`${label} (p50)`, formatDuration(stats.p50), sub, id);
}

export function statsRow(data) {
  const breachRate = data.total ? Math.round((data.sla_breaches / data.total) * 100) : 0;
  return h("div", { class: "stats" },
    stat("Escalations", String(data.total), `${data.by_status.pending} waiting · ${data.by_status.claimed} in progress`, "stat-total"),
    durationStat("Time to claim", data.time_to_claim_seconds, "stat-claim"),
    durationStat("Time to assessment", data.time_to_assessment_seconds, "stat-assessment"),
    durationStat("Time to resolve", data.time_to_resolve_seconds, "stat-resolve"),
    stat("SLA breaches", String(data.sla_breaches), data.total ? `${breachRate}% of escalations` : "no escalations", "stat-sla"),
  );
}

function domainTable(data, withP90) {
  const num = (text) => h("td", { class: "num" }, text);
  return h("table", { class: "table" },
    h("caption", { class: "sr-only" }, "Time to claim by domain"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Domain"), h("th", { scope: "col", class: "num" }, "Escalations"), h("th", { scope: "col", class: "num" }, "Claim p50"),
      withP90 ? h("th", { scope: "col", class: "num" }, "Claim p90") : null)),
    h("tbody", {}, data.by_domain.map((d) => h("tr", {},
      h("th", { scope: "row" }, d.domain), num(String(d.count)), num(formatDuration(d.time_to_claim_p50_seconds)),
      withP90 ? num(formatDuration(d.time_to_claim_p90_seconds)) : null))),
  );
}

function byDomain(data, disposers) {
  const withP90 = data.by_domain.some((d) => "time_to_claim_p90_seconds" in d);
  const series = [{ name: "p50", className: "s-p50" }];
  if (withP90) series.push({ name: "p90", className: "s-p90" });
  const rows = data.by_domain.map((d) => ({
    label: `${d.domain} (${d.count})`,
    values: withP90 ? [d.time_to_claim_p50_seconds, d.time_to_claim_p90_seconds] : [d.time_to_claim_p50_seconds],
  }));
  const overall = data.time_to_claim_seconds;
  const refs = [];
  if (overall.p50 !== null) refs.push({ value: overall.p50, label: "all p50" });
  if (overall.p90 !== null) refs.push({ value: overall.p90, label: "all p90" });
  const box = h("div", { class: "chart-box", id: "chart-claim-by-domain" });
  disposers.push(responsive(box, (width) => rows.length
    ? barChart({ rows, series, width, format: formatDuration, refs, durations: true, noData: "not claimed yet", label: "Time to claim by domain" })
    : h("p", { class: "muted" }, "No escalations in this window.")));
  return figure("Time to claim by domain",
    withP90 ? "p50 and p90 per domain; dashed lines are all domains." : "p50 per domain; dashed lines are the p50 and p90 across all domains.",
    box,
    data.by_domain.length ? h("details", { class: "table-details" }, h("summary", {}, "Show as table"), domainTable(data, withP90)) : null);
}

function byStatus(data, disposers) {
  const box = h("div", { class: "chart-box", id: "chart-by-status" });
  disposers.push(responsive(box, (width) => barChart({
    rows: STATUSES.map((s) => ({ label: STATUS_LABEL[s], values: [data.by_status[s]], className: `s-${s}` })),
    series: [{ name: "count", className: "s-p50" }],
    width,
    format: (v) => String(v),
    integers: true,
    label: "Escalations by status",
  })));
  return figure("Escalations by status", "Handoffs created in the window, by where they are now.", box);
}

function sla(data, disposers) {
  const box = h("div", { class: "chart-box", id: "chart-sla" });
  const parts = [
    { label: "Claimed within SLA or still in time", value: data.total - data.sla_breaches, className: "s-ok" },
    { label: "Breached the claim SLA", value: data.sla_breaches, className: "s-breach" },
  ];
  disposers.push(responsive(box, (width) => stackedBar({ parts, width, label: `${data.sla_breaches} of ${data.total} breached the claim SLA` })));
  return figure("Claim SLA", "Handoffs that waited longer than the claim SLA before anyone took them.", box, legend(parts));
}

/** The three overview charts (their resize observers pushed onto ``disposers``). */
export function overviewFigures(data, disposers) {
  return h("div", { class: "chart-grid" }, byDomain(data, disposers), byStatus(data, disposers), sla(data, disposers));
}
