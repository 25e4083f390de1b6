// The analytics page's routing figures: time to claim by the team the level
// targeted, claims by the level they came at, and each senior's claims,
// resolutions and time to claim. Absent fields (an older API) draw nothing.

import { levelLabel } from "./routing.js";
import { barChart, figure, responsive } from "./charts.js";
import { formatDuration, h } from "./ui.js";

function teamLabel(row) {
  if (!row.team_id) return "All seniors";
  return row.team_name || "(deleted team)";
}

function byTeam(rows, disposers) {
  const box = h("div", { class: "chart-box", id: "chart-claim-by-team" });
  const bars = rows.map((r) => ({ label: `${teamLabel(r)} (${r.count})`, values: [r.p50, r.p90] }));
  disposers.push(responsive(box, (width) => bars.length
    ? barChart({
        rows: bars, series: [{ name: "p50", className: "s-p50" }, { name: "p90", className: "s-p90" }],
        width, format: formatDuration, durations: true, noData: "not claimed yet", label: "Time to claim by team",
      })
    : h("p", { class: "muted" }, "Nothing claimed in this window.")));
  return figure("Time to claim by team", "p50 and p90 by the team the handoff's level targeted when it was claimed.", box);
}

function byLevel(rows, disposers) {
  const box = h("div", { class: "chart-box", id: "chart-claimed-at-level" });
  const bars = rows.map((r) => ({ label: levelLabel(r.level), values: [r.count] }));
  disposers.push(responsive(box, (width) => bars.length
    ? barChart({
        rows: bars, series: [{ name: "claims", className: "s-p50" }], width,
        format: (v) => String(v), integers: true, label: "Claims by escalation level",
      })
    : h("p", { class: "muted" }, "Nothing claimed in this window.")));
  return figure("Claimed at level", "The escalation level a handoff had reached when it was first claimed.", box);
}

function seniorsTable(rows) {
  const num = (text) => h("td", { class: "num" }, text);
  const table = h("table", { class: "table", id: "table-seniors" },
    h("caption", { class: "sr-only" }, "Seniors: claims, resolutions and time to claim"),
    h("thead", {}, h("tr", {},
      h("th", { scope: "col" }, "Senior"), h("th", { scope: "col", class: "num" }, "Claimed"),
      h("th", { scope: "col", class: "num" }, "Resolved"), h("th", { scope: "col", class: "num" }, "Claim p50"))),
    h("tbody", {}, rows.map((r) => h("tr", {},
      h("th", { scope: "row" }, r.name), num(String(r.claimed)), num(String(r.resolved)), num(formatDuration(r.time_to_claim_p50_seconds))))),
  );
  return h("section", { class: "panel chart-panel", "aria-labelledby": "seniors-h" },
    h("h2", { id: "seniors-h" }, "Seniors"),
    h("p", { class: "muted small" }, "Who claimed and resolved the window's escalations."),
    rows.length ? table : h("p", { class: "muted" }, "Nobody has claimed anything in this window."));
}

/** The routing figures for ``data`` (their resize observers pushed onto ``disposers``). */
export function routingFigures(data, disposers) {
  if (!data.claimed_at_level || !data.time_to_claim_by_team || !data.seniors) return null;
  return h("div", { class: "chart-grid routing-charts" },
    byTeam(data.time_to_claim_by_team, disposers),
    byLevel(data.claimed_at_level, disposers),
    seniorsTable(data.seniors),
  );
}
