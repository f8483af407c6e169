// The tessera dashboard's script: reads the scheduler's snapshots (server-sent events on /events, the
// first one whole, then the task records that are new) and redraws the page from them. No library:
// the tables are built with DOM calls and the charts are plain SVG.
"use strict";

const WINDOW_MS = 60000;
const state = { tasks: [], lastSeq: 0, nowMs: 0 };
const colours = new Map();
const palette = ["#2f6fdf", "#2e9d5b", "#d08a12", "#cc3d3d", "#7d4fc4", "#1f9bb0", "#b5527a", "#6f8a1c",
                 "#8c5a2b", "#4f5fa8"];

function colour(layer) {
  // One colour per op name (the part before '#'), stable while the page is open.
  const op = layer.split("#")[0];
  if (!colours.has(op)) colours.set(op, palette[colours.size % palette.length]);
  return colours.get(op);
}

function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + units[i];
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function bar(parts) {
  const b = el("div", { class: "bar" });
  let left = 0;
  for (const [cls, frac] of parts) {
    const w = Math.max(0, Math.min(1, frac)) * 100;
    b.append(el("span", { class: cls, style: `left:${left}%;width:${w}%` }));
    left += w;
  }
  return b;
}

function renderWorkers(s) {
  const body = document.getElementById("workers");
  body.replaceChildren();
  if (!s.workers.length) {
    body.append(el("tr", {}, el("td", { colspan: 10, class: "empty" }, "no workers")));
  }
  for (const w of s.workers) {
    const limit = w.memory_limit || 1;
    const held = w.reported_bytes / limit;
    const memCls = held > 0.8 ? "mem high" : "mem";
    const cpu = w.cpu == null ? "–" : (w.cpu * 100).toFixed(0) + "%";
    body.append(el("tr", { id: "worker-" + w.id, class: "worker" },
      el("td", {}, "#" + w.id + (w.paused ? " (paused)" : "") + (w.retiring ? " (retiring)" : "")),
      el("td", { class: "address" }, w.address),
      el("td", { class: "num threads" }, w.threads),
      el("td", { class: "num" }, w.running),
      el("td", { class: "num" }, w.chunks_held),
      el("td", {}, bar([[memCls, held], ["spill", w.bytes_spilled / limit]])),
      el("td", { class: "num" }, bytes(w.reported_bytes)),
      el("td", { class: "num" }, bytes(w.memory_limit)),
      el("td", { class: "num" }, bytes(w.bytes_spilled)),
      el("td", { class: "num" }, cpu)));
  }
  document.getElementById("n-workers").textContent = s.workers.length;
  document.getElementById("n-threads").textContent = s.workers.reduce((a, w) => a + w.threads, 0);
}

function renderJobs(s) {
  const box = document.getElementById("jobs");
  box.replaceChildren();
  if (!s.jobs.length) box.append(el("p", { class: "empty" }, "no jobs yet"));
  for (const j of s.jobs) {
    const running = j.layers.reduce((a, l) => a + l.running, 0);
    const pct = j.tasks ? Math.floor((100 * j.done) / j.tasks) : 100;
    const layers = el("div", { class: "layers" });
    for (const l of j.layers) {
      layers.append(el("span", { class: "layer-name" }, l.name),
        bar([["done", l.done / l.tasks], ["run", l.running / l.tasks]]),
        el("span", { class: "layer-progress" }, `${l.done} / ${l.tasks}`));
    }
    box.append(el("div", { class: "job", id: "job-" + j.id, "data-state": j.state },
      el("div", { class: "title" },
        el("b", {}, "job " + j.id.slice(0, 8)),
        el("span", { class: "state " + j.state }, j.state),
        el("span", { class: "progress" }, `${j.done} / ${j.tasks} tasks (${pct}%)`),
        el("span", { class: "muted" }, `${j.age_seconds.toFixed(0)} s ago`)),
      bar([["done", j.tasks ? j.done / j.tasks : 1], ["run", j.tasks ? running / j.tasks : 0]]),
      layers));
  }
}

function renderStream(s) {
  const svg = document.getElementById("stream");
  const lanes = [];
  for (const w of s.workers) for (let t = 1; t <= w.threads; t++) lanes.push(`${w.id}:${t}`);
  for (const t of state.tasks) {
    const k = `${t.worker}:${t.thread}`;
    if (!lanes.includes(k)) lanes.push(k);
  }
  const laneH = 18, labelW = 70, width = Math.max(600, svg.clientWidth || 900);
  const height = Math.max(1, lanes.length) * laneH + 16;
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const x = (ms) => labelW + ((ms - (state.nowMs - WINDOW_MS)) / WINDOW_MS) * (width - labelW);
  lanes.forEach((k, i) => {
    const [w, t] = k.split(":");
    svg.append(svgEl("text", { x: 2, y: i * laneH + 13, "font-size": 11, fill: "#6b7385" }))
    svg.lastChild.textContent = `w${w} t${t}`;
    svg.append(svgEl("line", { x1: labelW, x2: width, y1: (i + 1) * laneH, y2: (i + 1) * laneH,
      stroke: "#eceff4" }));
  });
  const seen = new Set();
  for (const t of state.tasks) {
    const i = lanes.indexOf(`${t.worker}:${t.thread}`);
    const x0 = Math.max(labelW, x(t.start_ms)), x1 = x(t.end_ms);
    const r = svgEl("rect", { x: x0, y: i * laneH + 2, width: Math.max(1, x1 - x0), height: laneH - 4,
      fill: colour(t.layer), class: "task" });
    const title = svgEl("title", {});
    title.textContent = `${t.layer} (job ${t.job.slice(0, 8)}): ${(t.end_ms - t.start_ms).toFixed(2)} ms`;
    r.append(title);
    svg.append(r);
    seen.add(t.layer.split("#")[0]);
  }
  for (let s = 0; s <= 60; s += 10) {
    const tx = x(state.nowMs - WINDOW_MS + s * 1000);
    svg.append(svgEl("text", { x: Math.min(tx, width - 24), y: height - 2, "font-size": 10, fill: "#9aa1b0" }));
    svg.lastChild.textContent = s === 60 ? "now" : `-${60 - s}s`;
  }
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  for (const op of [...seen].sort()) {
    legend.append(el("span", {}, el("i", { style: "background:" + colour(op) }), op));
  }
}

function renderThroughput(s) {
  const svg = document.getElementById("throughput");
  svg.replaceChildren();
  const tp = s.throughput;
  const max = Math.max(1, ...tp.map((p) => p[0]));
  const w = 600 / tp.length;
  tp.forEach(([tasks], i) => {
    const h = (tasks / max) * 130;
    svg.append(svgEl("rect", { x: i * w + 1, y: 135 - h, width: w - 2, height: h, fill: "#2f6fdf" }));
  });
  const last = tp.length > 1 ? tp[tp.length - 2] : [0, 0];
  const bytesMinute = tp.reduce((a, p) => a + p[1], 0);
  document.getElementById("n-rate").textContent = last[0];
  document.getElementById("throughput-note").textContent =
    `peak ${max} tasks/s; ${bytes(bytesMinute)} transferred between workers in the last minute`;
}

function apply(s) {
  state.nowMs = s.now_ms;
  for (const t of s.tasks) {
    if (t.seq > state.lastSeq) { state.tasks.push(t); state.lastSeq = t.seq; }
  }
  state.tasks = state.tasks.filter((t) => t.end_ms >= s.now_ms - WINDOW_MS);
  renderWorkers(s);
  renderJobs(s);
  renderStream(s);
  renderThroughput(s);
  document.getElementById("n-jobs").textContent = s.jobs_in_flight;
  document.getElementById("n-done").textContent = s.tasks_done;
  document.getElementById("n-transfer").textContent = bytes(s.transfer_bytes);
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

function connect() {
  const conn = document.getElementById("conn");
  const events = new EventSource("/events");
  events.onopen = () => { conn.textContent = "live"; conn.className = "live"; };
  events.onmessage = (m) => apply(JSON.parse(m.data));
  events.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "down"; };
}

const initial = document.getElementById("initial");
if (initial && initial.textContent.trim().startsWith("{")) apply(JSON.parse(initial.textContent));
connect();
