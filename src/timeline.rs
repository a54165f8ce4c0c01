//! `eddy replay --timeline run.html`: a simulated run drawn as one self-contained page.
//!
//! The page holds the run's [`Timeline`] as JSON and a small script that draws it as SVG: a
//! lane per task (grouped by operator) with its batches (binned when dense), its watermark as
//! a step line and its state size; checkpoints, commits, faults and restores across all
//! lanes; the records and the commit a violation names, highlighted. Hovering a mark shows
//! it; the wheel zooms the time axis and dragging pans it. No network, no external assets.

use eddy_sim::{Report, Timeline};
use serde::Serialize;

#[derive(Serialize)]
struct Page<'a> {
    title: String,
    report: String,
    timeline: &'a Timeline,
}

/// The page for `report`'s run.
pub fn timeline_html(report: &Report, timeline: &Timeline) -> String {
    let page = Page {
        title: format!("eddy: {} seed {}", report.scenario, report.seed),
        report: report.to_string(),
        timeline,
    };
    // `</` inside a script element would end it: JSON allows `<\/` for `</`.
    let data = serde_json::to_string(&page)
        .expect("a timeline serialises")
        .replace("</", "<\\/");
    TEMPLATE
        .replace("{{TITLE}}", &escape(&page.title))
        .replace("{{DATA}}", &data)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

const TEMPLATE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{TITLE}}</title>
<style>
  body { font: 13px system-ui, sans-serif; margin: 12px; color: #1d2330; }
  pre { background: #f4f6fa; padding: 8px; margin: 0 0 8px 0; font-size: 12px; }
  #bar { margin: 6px 0; }
  #bar button { font: inherit; }
  #legend span { display: inline-block; margin-right: 14px; }
  #legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
  svg { border: 1px solid #c9d0dc; cursor: grab; user-select: none; }
  svg text { font: 11px system-ui, sans-serif; }
</style>
</head>
<body>
<h3 id="title"></h3>
<pre id="report"></pre>
<div id="bar"><button id="reset">reset zoom</button> wheel: zoom the time axis, drag: pan, hover: details. <b id="highlight"></b></div>
<div id="legend"></div>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="1300" height="400"></svg>
<script type="application/json" id="data">{{DATA}}</script>
<script>
"use strict";
const page = JSON.parse(document.getElementById("data").textContent);
const tl = page.timeline;
document.getElementById("title").textContent = page.title;
document.getElementById("report").textContent = page.report;
if (tl.highlight) document.getElementById("highlight").textContent = "highlighted: " + tl.highlight;
const COLORS = {
  records: "#4a7bd0", hit: "#ff00ff", watermark: "#2f9e44", state: "#f08c00", barrier: "#1c7ed6",
  ack: "#1c7ed6", end: "#000000", poll: "#adb5bd",
  trigger: "#1c7ed6", completed: "#2f9e44", "checkpoint-failed": "#f76707", commit: "#0ca678",
  "notification-lost": "#7048e8", corrupted: "#8d5524", "failed-write": "#f76707", crash: "#e00000",
  restored: "#087f5b", rescaled: "#495057", jump: "#868e96", finished: "#212529",
};
const LEGEND = [["records", "batch of records (binned when dense)"], ["hit", "the violation's records / commit"],
  ["watermark", "task watermark"], ["state", "state size"], ["barrier", "barrier (circle: acknowledged)"],
  ["trigger", "checkpoint triggered"], ["completed", "checkpoint completed"], ["commit", "notified: sinks commit"],
  ["checkpoint-failed", "checkpoint failed / failed write"], ["notification-lost", "notification lost"],
  ["corrupted", "snapshot damaged"], ["crash", "crash"], ["restored", "restore"], ["rescaled", "rescaled"],
  ["jump", "processing-time jump"]];
document.getElementById("legend").innerHTML = LEGEND.map(([k, text]) =>
  `<span><i style="background:${COLORS[k]}"></i>${text}</span>`).join("");

const NS = "http://www.w3.org/2000/svg";
const svg = document.getElementById("timeline");
const LABEL = 170, TOP = 46, LANE = 34, WIDTH = 1300;
const lanes = tl.lanes.map((lane, index) => ({ ...lane, index }));
// Lanes grouped by operator, in the order operators first appear.
const operators = [...new Set(lanes.map(l => l.operator))];
lanes.sort((a, b) => operators.indexOf(a.operator) - operators.indexOf(b.operator) || a.index - b.index);
const row = new Map(lanes.map((l, i) => [l.index, i]));
const height = TOP + lanes.length * LANE + 20;
svg.setAttribute("height", height);
const times = tl.marks.map(m => m.t).concat(tl.events.map(e => e.t));
const tMin = Math.min(0, ...times), tMax = Math.max(tMin + 1, ...times);
let view = [tMin, tMax + (tMax - tMin) * 0.02];
const marks = tl.marks.filter(m => m.watermark !== null && m.watermark > -9e18 && m.watermark < 9e18);
const wmMin = Math.min(...marks.map(m => m.watermark)), wmMax = Math.max(wmMin + 1, ...marks.map(m => m.watermark));
const stateMax = Math.max(1, ...tl.marks.map(m => m.state));

function el(name, attrs, parent, title) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (title) { const t = document.createElementNS(NS, "title"); t.textContent = title; node.appendChild(t); }
  parent.appendChild(node);
  return node;
}
const x = t => LABEL + (t - view[0]) / (view[1] - view[0]) * (WIDTH - LABEL - 10);
const laneY = lane => TOP + row.get(lane) * LANE;

function draw() {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const g = el("g", {}, svg);
  lanes.forEach((lane, i) => {
    const y = TOP + i * LANE;
    el("rect", { x: 0, y, width: WIDTH, height: LANE, fill: i % 2 ? "#ffffff" : "#f4f6fa" }, g);
    if (i > 0 && lanes[i - 1].operator !== lane.operator) el("line", { x1: 0, x2: WIDTH, y1: y, y2: y, stroke: "#868e96" }, g);
    el("text", { x: 6, y: y + 21 }, g, `${lane.kind} ${lane.name}`).textContent = `${lane.name}` + (lane.kind === "operator" ? "" : ` (${lane.kind})`);
  });
  el("line", { x1: LABEL, x2: LABEL, y1: 0, y2: height, stroke: "#c9d0dc" }, g);
  // Time axis.
  for (let k = 0; k <= 8; k++) {
    const t = view[0] + (view[1] - view[0]) * k / 8;
    el("text", { x: x(t) - 14, y: 12, fill: "#495057" }, g).textContent = `${Math.round(t)} ms`;
  }
  const visible = tl.marks.filter(m => m.t >= view[0] && m.t <= view[1]);
  // Watermark step lines and state size, per lane.
  for (const lane of lanes) {
    const own = tl.marks.filter(m => m.lane === lane.index);
    let path = "", state = "";
    for (const m of own) {
      const y0 = laneY(lane.index);
      if (m.watermark !== null && m.watermark > -9e18 && m.watermark < 9e18) {
        const wy = y0 + LANE - 4 - (m.watermark - wmMin) / (wmMax - wmMin) * (LANE - 10);
        path += (path ? ` H${x(m.t)} V${wy}` : `M${x(m.t)} ${wy}`);
      }
      const sy = y0 + LANE - 2 - m.state / stateMax * 8;
      state += (state ? ` H${x(m.t)} V${sy}` : `M${x(m.t)} ${sy}`);
    }
    if (path) el("path", { d: path, fill: "none", stroke: COLORS.watermark, "stroke-width": 1.5 }, g, `${lane.name}: watermark`);
    if (state) el("path", { d: state, fill: "none", stroke: COLORS.state, "stroke-width": 1, opacity: 0.8 }, g, `${lane.name}: state size (max ${stateMax})`);
  }
  // Records: one mark each when few, per 4 px bin when dense.
  const records = visible.filter(m => m.kind === "records");
  if (records.length > (WIDTH - LABEL) / 4) {
    const bins = new Map();
    for (const m of records) {
      const key = `${m.lane}:${Math.floor(x(m.t) / 4)}`;
      const bin = bins.get(key) || { lane: m.lane, px: Math.floor(x(m.t) / 4) * 4, n: 0, batches: 0, hit: false, hits: [] };
      bin.n += m.n; bin.batches += 1; bin.hit = bin.hit || m.hit;
      if (m.hit) bin.hits.push(...m.records);
      bins.set(key, bin);
    }
    for (const bin of bins.values()) {
      const h = Math.min(LANE - 8, 4 + Math.log2(1 + bin.n) * 3);
      el("rect", { x: bin.px, y: laneY(bin.lane) + (LANE - h) / 2, width: 3.5, height: h,
        fill: bin.hit ? COLORS.hit : COLORS.records }, g,
        `${bin.n} records in ${bin.batches} batches` + (bin.hit ? `\nviolation's records:\n${bin.hits.join("\n")}` : ""));
    }
  } else {
    for (const m of records) {
      const h = Math.min(LANE - 8, 6 + Math.log2(1 + m.n) * 3);
      el("rect", { x: x(m.t) - 2, y: laneY(m.lane) + (LANE - h) / 2, width: 4, height: h,
        fill: m.hit ? COLORS.hit : COLORS.records, stroke: m.hit ? "#000" : "none" }, g,
        `step ${m.step}, t ${m.t} ms: ${m.n} records\n${m.records.join("\n")}`);
    }
  }
  for (const m of visible.filter(m => m.kind !== "records")) {
    const y = laneY(m.lane);
    const what = m.kind === "watermark" ? `watermark ${m.n}` : m.kind === "barrier" || m.kind === "ack" ? `barrier of checkpoint ${m.n}` : m.kind;
    const title = `step ${m.step}, t ${m.t} ms: ${what}${m.kind === "ack" ? " (aligned: snapshot taken, acknowledged)" : ""}, watermark ${m.watermark ?? "none"}, state ${m.state}`;
    if (m.kind === "ack") el("circle", { cx: x(m.t), cy: y + 7, r: 3.5, fill: COLORS.ack }, g, title);
    else if (m.kind === "barrier") el("rect", { x: x(m.t) - 1, y: y + 3, width: 2, height: 9, fill: COLORS.barrier }, g, title);
    else if (m.kind === "watermark") el("rect", { x: x(m.t) - 0.5, y: y + LANE - 9, width: 1, height: 6, fill: COLORS.watermark }, g, title);
    else el("rect", { x: x(m.t) - 0.5, y: y + 4, width: 1.5, height: LANE - 8, fill: COLORS[m.kind] || "#999" }, g, title);
  }
  // Checkpoints, commits, faults and restores, across every lane.
  for (const e of tl.events.filter(e => e.t >= view[0] && e.t <= view[1])) {
    const color = e.hit ? COLORS.hit : COLORS[e.kind] || "#999";
    const wide = e.kind === "crash" || e.hit ? 3 : 1.2;
    el("line", { x1: x(e.t), x2: x(e.t), y1: 20, y2: height - 16, stroke: color, "stroke-width": wide,
      "stroke-dasharray": e.kind === "trigger" ? "4 3" : "none", opacity: e.kind === "crash" || e.hit ? 1 : 0.7 }, g);
    const marker = el(e.kind === "crash" ? "rect" : "circle", e.kind === "crash"
      ? { x: x(e.t) - 7, y: 22, width: 14, height: 14, fill: color }
      : { cx: x(e.t), cy: 29, r: 5, fill: color }, g,
      `step ${e.step}, t ${e.t} ms: ${e.text}` + (e.hit ? "\nthe commit that made the wrong value visible" : ""));
    if (e.kind === "crash") el("text", { x: x(e.t) + 9, y: 33, fill: color }, g).textContent = "crash";
  }
}
draw();

svg.addEventListener("wheel", ev => {
  ev.preventDefault();
  const rect = svg.getBoundingClientRect();
  const at = view[0] + (ev.clientX - rect.left - LABEL) / (WIDTH - LABEL - 10) * (view[1] - view[0]);
  const scale = ev.deltaY < 0 ? 0.8 : 1.25;
  view = [at - (at - view[0]) * scale, at + (view[1] - at) * scale];
  draw();
}, { passive: false });
let drag = null;
svg.addEventListener("mousedown", ev => { drag = { x: ev.clientX, view: view.slice() }; });
window.addEventListener("mouseup", () => { drag = null; });
window.addEventListener("mousemove", ev => {
  if (!drag) return;
  const dt = (ev.clientX - drag.x) / (WIDTH - LABEL - 10) * (drag.view[1] - drag.view[0]);
  view = [drag.view[0] - dt, drag.view[1] - dt];
  draw();
});
document.getElementById("reset").addEventListener("click", () => { view = [tMin, tMax + (tMax - tMin) * 0.02]; draw(); });
</script>
</body>
</html>
"##;
