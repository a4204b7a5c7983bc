// The live dashboard page: one self-contained HTML document (no CDN, no build step; the
// machines it runs on may have no internet). It opens an SSE stream to /api/events, gets a
// full snapshot first, then a compact tick every second, and updates the DOM in place:
// node cards are created once and only their text and sparkline points change, so 200+
// nodes cost a few hundred attribute writes per tick.
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DistributeX dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
:root{--bg:#0f1419;--panel:#19212b;--text:#d8dee9;--dim:#8a96a8;--ok:#5fb878;--warn:#e5b94e;--bad:#e0645c;--load:#4ea1e5;--fc:#c58af9}
*{box-sizing:border-box}body{margin:0;font:13px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--text)}
header{display:flex;gap:24px;align-items:baseline;padding:10px 16px;background:var(--panel);position:sticky;top:0;z-index:1}
header h1{font-size:16px;margin:0}.kpi b{font-size:18px;margin-right:4px}.dim{color:var(--dim)}
#conn.ok{color:var(--ok)}#conn.bad{color:var(--bad)}
main{display:grid;grid-template-columns:minmax(0,2fr) minmax(320px,1fr);gap:12px;padding:12px}
section{background:var(--panel);border-radius:6px;padding:10px}h2{font-size:14px;margin:0 0 8px}
#nodes{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:8px}
.node{border:1px solid #2a3442;border-radius:5px;padding:6px 8px;contain:content}
.node .t{display:flex;justify-content:space-between;gap:6px}.node .h{font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.node .u{white-space:nowrap}
.node.draining{opacity:.7}.node.backoff{opacity:.7;outline:1px dashed var(--dim)}.node .p{color:var(--dim);font-size:11px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.node svg{width:100%;height:36px;display:block;background:#121920;margin-top:4px}
.node .load{stroke:var(--load);fill:none;stroke-width:1.5}.node .fc{stroke:var(--fc);fill:none;stroke-width:1;stroke-dasharray:3 2}
.node.sat{border-color:var(--bad)}
.bar{height:8px;background:#2a3442;border-radius:4px;overflow:hidden;display:flex}.bar i{display:block;height:100%}
.bar .s{background:var(--ok)}.bar .f{background:var(--bad)}.bar .r{background:var(--load)}
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:3px 4px;border-bottom:1px solid #2a3442;vertical-align:middle}
.state-running,.state-pending{color:var(--load)}.state-succeeded{color:var(--ok)}.state-failed{color:var(--bad)}.state-cancelled{color:var(--dim)}
.alert{border-left:4px solid var(--warn);padding:4px 8px;margin-bottom:6px;background:#202a35}.alert.critical{border-color:var(--bad)}
.legend i{display:inline-block;width:12px;height:2px;vertical-align:middle;margin:0 4px 0 10px}
</style></head><body>
<header><h1>DistributeX</h1>
<span class="kpi"><b id="k-nodes">–</b><span class="dim">nodes ready</span></span>
<span class="kpi"><b id="k-jobs">–</b><span class="dim">jobs running</span></span>
<span class="kpi"><b id="k-queue">–</b><span class="dim">tasks queued</span></span>
<span class="kpi"><b id="k-done">–</b><span class="dim">tasks done</span></span>
<span class="kpi"><b id="k-alerts">–</b><span class="dim">alerts</span></span>
<span id="conn" class="bad">connecting…</span></header>
<main>
<section><h2>Nodes <span class="legend dim"><i style="background:var(--load)"></i>CPU load<i style="background:var(--fc)"></i>forecast</span></h2><div id="nodes"></div></section>
<div>
<section><h2>Active alerts</h2><div id="alerts"><span class="dim">none</span></div></section>
<section style="margin-top:12px"><h2>Jobs</h2><table><thead><tr><th>job</th><th>state</th><th style="width:40%">progress</th><th>tasks</th></tr></thead><tbody id="jobs"></tbody></table></section>
</div></main>
<script>
"use strict";
const POINTS = 120, W = 200, H = 36;
const cards = new Map();      // nodeId -> {el, refs, cpu[], fc[]}
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\\"":"&quot;","'":"&#39;"}[c]));
const gib = (b) => (b / 2 ** 30).toFixed(1) + " GiB";
const pct = (v) => (v * 100).toFixed(0) + "%";
function pointsOf(arr) {
  let s = "";
  const n = arr.length, off = POINTS - n;
  for (let i = 0; i < n; i++) { const v = arr[i]; if (v < 0) continue; s += ((off + i) * W / (POINTS - 1)).toFixed(1) + "," + (H - 1 - v * (H - 2)).toFixed(1) + " "; }
  return s;
}
function makeCard(n) {
  const el = document.createElement("div");
  el.className = "node"; el.dataset.node = n.id;
  el.innerHTML = '<div class="t"><span class="h"></span><span class="u"></span></div><div class="p prof"></div><div class="p lbl"></div>' +
    '<svg viewBox="0 0 ' + W + ' ' + H + '" preserveAspectRatio="none"><polyline class="fc"/><polyline class="load"/></svg><div class="p tasks"></div>';
  const q = (s) => el.querySelector(s);
  return { el, refs: { h: q(".h"), u: q(".u"), prof: q(".prof"), lbl: q(".lbl"), load: q(".load"), fc: q(".fc"), tasks: q(".tasks") }, cpu: [], fc: [], key: "" };
}
function renderNodes(nodes, history, append) {
  const box = $("nodes"), seen = new Set();
  const frag = document.createDocumentFragment();
  for (const n of nodes) {
    seen.add(n.id);
    let c = cards.get(n.id);
    if (!c) { c = makeCard(n); cards.set(n.id, c); frag.appendChild(c.el); }
    if (history && history[n.id]) { c.cpu = history[n.id][0].slice(-POINTS); c.fc = history[n.id][1].slice(-POINTS); }
    else if (append) { c.cpu.push(n.cpuUtil); c.fc.push(n.forecast); if (c.cpu.length > POINTS) { c.cpu.shift(); c.fc.shift(); } }
    const r = c.refs;
    const key = n.host + n.state + n.cpu + n.cores + n.memoryBytes + n.gpus.join() + n.workers + JSON.stringify(n.labels) + n.agentVersion + n.reservedCores;
    if (key !== c.key) {
      c.key = key;
      r.h.textContent = n.host + " · " + n.id;
      r.prof.textContent = n.cores + " cores · " + gib(n.memoryBytes) + " · " + n.workers + " workers" + (n.reservedCores ? " (" + n.reservedCores + " reserved)" : "") + (n.gpus.length ? " · " + n.gpus.join(", ") : "") + " · " + n.cpu + " · v" + n.agentVersion;
      r.lbl.textContent = Object.entries(n.labels).map(([k, v]) => k + "=" + v).join(" ");
      c.el.classList.toggle("draining", n.state === "draining");
    }
    r.u.textContent = "CPU " + pct(n.cpuUtil) + (n.forecast >= 0 ? " → " + pct(n.forecast) : "") + " · host " + pct(n.hostLoad) + (n.hostLoadForecast >= 0 ? " → " + pct(n.hostLoadForecast) : "") + (n.backingOff ? " · backing off: " + n.backingOff : "");
    c.el.classList.toggle("backoff", n.backingOff !== "");
    r.tasks.textContent = n.running + " running · " + n.assigned + "/" + n.capacity + " slots · " + n.completed + " done" + (n.saturationInSeconds >= 0 ? " · saturates in " + Math.round(n.saturationInSeconds) + " s" : "");
    c.el.classList.toggle("sat", n.saturationInSeconds >= 0);
    r.load.setAttribute("points", pointsOf(c.cpu));
    r.fc.setAttribute("points", pointsOf(c.fc));
  }
  if (frag.childNodes.length) box.appendChild(frag);
  for (const [id, c] of cards) if (!seen.has(id)) { c.el.remove(); cards.delete(id); }
}
function renderJobs(jobs) {
  $("jobs").innerHTML = jobs.map((j) => {
    const w = (x) => (j.tasks ? (100 * x / j.tasks).toFixed(1) : 0) + "%";
    return '<tr data-job="' + esc(j.id) + '" data-state="' + esc(j.state) + '"><td title="' + esc(j.id) + '">' + esc(j.name || j.id.slice(0, 12)) +
      '</td><td class="state-' + esc(j.state) + '">' + esc(j.state) + '</td><td><div class="bar"><i class="s" style="width:' + w(j.succeeded) +
      '"></i><i class="f" style="width:' + w(j.failed) + '"></i><i class="r" style="width:' + w(j.running) + '"></i></div></td><td>' +
      (j.succeeded + j.failed) + "/" + j.tasks + "</td></tr>";
  }).join("") || '<tr><td colspan="4" class="dim">no jobs yet</td></tr>';
}
function renderAlerts(alerts) {
  $("k-alerts").textContent = alerts.length;
  $("alerts").innerHTML = alerts.map((a) => '<div class="alert ' + esc(a.severity) + '" data-alert="' + esc(a.name) + '"><b>' + esc(a.name) + "</b> " +
    esc(a.summary) + ' <span class="dim">' + new Date(a.firedAtMs).toLocaleTimeString() + "</span></div>").join("") || '<span class="dim">none</span>';
}
let last = null, pending = false;
function render(s, append) {
    const t0 = performance.now();
    renderNodes(s.nodes, s.history, append);
    renderJobs(s.jobs);
    renderAlerts(s.alerts);
    $("k-nodes").textContent = s.totals.nodesReady;
    $("k-jobs").textContent = s.totals.jobsRunning;
    $("k-queue").textContent = s.totals.queueDepth;
    $("k-done").textContent = s.totals.tasksDone;
    window.__distxRenderMs = performance.now() - t0;
    window.__distxTicks = (window.__distxTicks || 0) + 1;
}
// Ticks render on the next frame; if several arrive before it (a background tab), the newest wins.
function tick(snap) {
  last = snap;
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => { pending = false; render(last, true); });
}
function connect() {
  const es = new EventSource("api/events");
  es.addEventListener("snapshot", (e) => { $("conn").textContent = "live"; $("conn").className = "ok"; render(JSON.parse(e.data), false); });
  es.addEventListener("tick", (e) => tick(JSON.parse(e.data)));
  es.addEventListener("alerts", (e) => renderAlerts(JSON.parse(e.data)));
  es.onerror = () => { $("conn").textContent = "reconnecting…"; $("conn").className = "bad"; };
}
connect();
</script></body></html>`;
