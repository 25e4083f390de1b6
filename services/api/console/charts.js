// Plain SVG charts, drawn for the container's actual width (redrawn when it
// changes), so text stays readable from phone to desktop. Colours come from
// CSS classes (app.css), not from here.

import { fill, h, svg } from "./ui.js";

const FONT_PX = 12;
const CHAR_PX = 6.6; // average glyph width at 12 px, for truncating labels

/** Steps that read well as durations: 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1, 2, 3, 6, 12 h, days. */
const DURATION_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

function durationStep(max, ticks) {
  const step = DURATION_STEPS.find((s) => max / s <= ticks);
  return step || Math.ceil(max / ticks / 86400) * 86400;
}

function niceStep(max, ticks) {
  const raw = max / ticks;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const ratio = raw / magnitude;
  const nice = ratio <= 1 ? 1 : ratio <= 2 ? 2 : ratio <= 2.5 ? 2.5 : ratio <= 5 ? 5 : 10;
  return nice * magnitude;
}

function fit(text, px) {
  const room = Math.max(3, Math.floor(px / CHAR_PX));
  return text.length <= room ? text : `${text.slice(0, room - 1)}…`;
}

/**
 * Horizontal bars, one group per row and one bar per series.
 * rows: [{label, values: [number|null], className?}]; series: [{name, className}];
 * refs: [{value, label}] dashed reference lines; format(value) labels the bars and ticks;
 * durations: values are seconds (ticks at 1 min, 5 min… rather than 3 min 20 s);
 * integers: values are counts (no tick at 0.25).
 */
export function barChart({
  rows, series, width, format, refs = [], label, durations = false, integers = false, noData = "no data",
}) {
  const labelW = Math.round(Math.min(Math.max(76, width * 0.26), 160));
  const valueW = 72;
  const barH = 14;
  const barGap = 3;
  const groupGap = 14;
  const axisH = 22;
  const plotX = labelW + 8;
  const plotW = Math.max(40, width - plotX - valueW);
  const groupH = series.length * barH + (series.length - 1) * barGap;
  const topPad = refs.length ? 18 : 0;
  const height = topPad + rows.length * (groupH + groupGap) + axisH;
  const values = rows.flatMap((r) => r.values).concat(refs.map((r) => r.value)).filter((v) => v !== null && v !== undefined);
  const top = Math.max(1e-9, ...values);
  let step = durations && top >= 1 ? durationStep(top, 4) : niceStep(top, 4);
  if (integers) step = Math.max(1, Math.round(step));
  const max = Math.max(step, Math.ceil(top / step) * step);
  const x = (v) => plotX + (v / max) * plotW;
  const plotBottom = height - axisH;

  const grid = [];
  for (let tick = 0; tick <= max + step / 1000; tick += step) {
    grid.push(
      svg("line", { class: "grid", x1: x(tick), x2: x(tick), y1: topPad, y2: plotBottom }),
      svg("text", { class: "tick", x: x(tick), y: plotBottom + 15, "text-anchor": "middle" }, format(tick)),
    );
  }

  const groups = rows.map((row, i) => {
    const y0 = topPad + i * (groupH + groupGap) + groupGap / 2;
    const bars = series.map((s, j) => {
      const value = row.values[j];
      const y = y0 + j * (barH + barGap);
      if (value === null || value === undefined) {
        return svg("text", { class: "bar-value muted", x: plotX + 4, y: y + barH - 3 }, series.length > 1 ? `${s.name}: ${noData}` : noData);
      }
      const w = Math.max(2, x(value) - plotX);
      return svg("g", {},
        svg("rect", { class: `bar ${row.className || s.className}`, x: plotX, y, width: w, height: barH, rx: 3 },
          svg("title", {}, `${row.label} — ${s.name}: ${format(value)}`)),
        svg("text", { class: "bar-value", x: plotX + w + 6, y: y + barH - 3 }, series.length > 1 ? `${format(value)} ${s.name}` : format(value)),
      );
    });
    return svg("g", {},
      svg("text", { class: "row-label", x: labelW, y: y0 + groupH / 2 + FONT_PX / 2 - 2, "text-anchor": "end" },
        svg("title", {}, row.label), fit(row.label, labelW)),
      ...bars,
    );
  });

  // Labels sit above the plot; two close lines get their labels on either side.
  const sorted = [...refs].sort((a, b) => a.value - b.value);
  const refLines = sorted.map((ref, i) => {
    const next = sorted[i + 1];
    const crowded = next && x(next.value) - x(ref.value) < 70;
    const anchor = crowded ? "end" : "start";
    return svg("g", { class: "ref" },
      svg("line", { x1: x(ref.value), x2: x(ref.value), y1: topPad - 4, y2: plotBottom }),
      svg("text", { x: x(ref.value) + (crowded ? -4 : 4), y: 11, "text-anchor": anchor }, ref.label),
    );
  });

  return svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    svg("title", {}, label), ...grid, ...groups, ...refLines);
}

/** One bar split into parts (e.g. breached vs not), with an HTML legend below. */
export function stackedBar({ parts, width, label }) {
  const total = parts.reduce((sum, p) => sum + p.value, 0);
  const height = 28;
  let at = 0;
  const rects = total === 0
    ? [svg("rect", { class: "bar empty-bar", x: 0, y: 0, width, height, rx: 6 })]
    : parts.filter((p) => p.value > 0).map((p) => {
      const w = (p.value / total) * width;
      const rect = svg("rect", { class: `bar ${p.className}`, x: at, y: 0, width: w, height },
        svg("title", {}, `${p.label}: ${p.value}`));
      at += w;
      return rect;
    });
  return svg("svg", { class: "chart stacked", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label },
    svg("title", {}, label),
    svg("clipPath", { id: "stack-clip" }, svg("rect", { x: 0, y: 0, width, height, rx: 6 })),
    svg("g", { "clip-path": "url(#stack-clip)" }, ...rects));
}

export function legend(items) {
  return h("ul", { class: "legend" }, items.map((item) => h("li", {},
    h("span", { class: `swatch ${item.className}`, "aria-hidden": "true" }), `${item.label}${item.value !== undefined ? `: ${item.value}` : ""}`)));
}

/** Draws ``draw(width)`` into ``container`` now and whenever its width changes. */
export function responsive(container, draw) {
  let last = 0;
  const paint = () => {
    const width = Math.floor(container.clientWidth);
    if (width <= 0 || width === last) return;
    last = width;
    fill(container, draw(width));
  };
  const observer = new ResizeObserver(paint);
  observer.observe(container);
  requestAnimationFrame(paint);
  return () => observer.disconnect();
}

/** A chart in a panel with its title and one-line description (and an optional legend or table). */
export function figure(title, description, chartBox, extra) {
  return h("figure", { class: "panel chart-panel" },
    h("figcaption", {}, h("h2", {}, title), h("p", { class: "muted small" }, description)),
    chartBox,
    extra,
  );
}
