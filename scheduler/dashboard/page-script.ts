// The dashboard page's script (page.ts inlines it). Plain DOM, no framework. Every text that
// came from a client or an agent goes through el()/textContent: nothing is parsed as HTML.
// Node cards are drawn by one function, fillCard, so a new field goes in one place.
export const DASHBOARD_SCRIPT = `
"use strict";
const POINTS = 120, W = 200, H = 36;
const cards = new Map();      // nodeId -> {el, refs, cpu[], fc[], key}
const $ = (id) => document.getElementById(id);
// el("td", {class: "n"}, "text", childNode, ...): attributes and text only, never HTML.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const k in attrs || {}) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
  for (const c of kids) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}
const svgEl = (tag, attrs) => { const e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (const k in attrs) e.setAttribute(k, String(attrs[k])); return e; };
const gib = (b) => (b / 2 ** 30).toFixed(1) + " GiB";
const pct = (v) => (v * 100).toFixed(0) + "%";
function dur(ms) {
  if (!(ms >= 0)) return "–";
  if (ms < 1000) return Math.round(ms) + " ms";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " m " + (s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " m";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}
const age = (j) => dur(Date.now() - j.submittedAtMs);
const took = (j) => (j.startedAtMs ? dur((j.finishedAtMs || Date.now()) - j.startedAtMs) : "–");
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
function pointsOf(arr, w, h) {
  let s = "";
  const n = arr.length, off = POINTS - n;
  for (let i = 0; i < n; i++) { const v = arr[i]; if (v < 0) continue; s += ((off + i) * w / (POINTS - 1)).toFixed(1) + "," + (h - 1 - v * (h - 2)).toFixed(1) + " "; }
  return s;
}
function progressBar(j) {
  const w = (x) => (j.tasks ? (100 * x / j.tasks).toFixed(1) : 0) + "%";
  return el("div", { class: "bar" }, el("i", { class: "s", style: "width:" + w(j.succeeded) }), el("i", { class: "f", style: "width:" + w(j.failed) }), el("i", { class: "r", style: "width:" + w(j.running) }));
}
// A bearer token for actions: from ?token= once (then dropped from the address bar), kept for this tab only.
(() => {
  const q = new URLSearchParams(location.search).get("token");
  if (q) { sessionStorage.setItem("distx_token", q); history.replaceState(null, "", location.pathname + location.hash); }
})();
async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(r.status + " " + (await r.text()).slice(0, 300));
  return r.json();
}

// ───────────── node cards ─────────────
function makeCard(n) {
  const c = { cpu: [], fc: [], key: "", refs: {} };
  const r = c.refs;
  r.h = el("a", { class: "h", href: "#/node/" + encodeURIComponent(n.id) });
  r.st = el("span", { class: "st" });
  r.id = el("div", { class: "id" });
  r.u = el("div", { class: "u" });
  r.host = el("div", { class: "p hostload" });
  r.prof = el("div", { class: "p prof" });
  r.lbl = el("div", { class: "p lbl" });
  r.fc = svgEl("polyline", { class: "fc" });
  r.load = svgEl("polyline", { class: "load" });
  const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none" });
  svg.append(r.fc, r.load);
  r.tasks = el("div", { class: "p tasks" });
  c.el = el("div", { class: "node", "data-node": n.id }, el("div", { class: "t" }, r.h, r.st), r.id, r.u, r.host, r.prof, r.lbl, svg, r.tasks);
  return c;
}
/** Everything a node card shows, in one place. */
function fillCard(c, n) {
  const r = c.refs;
  const key = n.host + n.state + n.cpu + n.cores + n.memoryBytes + n.gpus.join() + n.workers + n.speed + JSON.stringify(n.labels) + n.agentVersion + n.reservedCores;
  if (key !== c.key) {
    c.key = key;
    r.h.textContent = n.host;
    r.h.title = n.host + " (" + n.id + ")";
    r.id.textContent = n.id;
    r.st.textContent = n.state;
    r.st.className = "st state-" + n.state;
    r.prof.textContent = n.cores + " cores · " + gib(n.memoryBytes) + " · " + n.workers + " workers" + (n.reservedCores ? " (" + n.reservedCores + " cores reserved)" : "") + " · speed " + n.speed + (n.gpus.length ? " · " + n.gpus.join(", ") : "") + " · " + n.cpu + " · v" + n.agentVersion;
    r.lbl.textContent = Object.entries(n.labels).map(([k, v]) => k + "=" + v).join(" ");
    c.el.classList.toggle("draining", n.state === "draining");
  }
  r.u.textContent = "CPU " + pct(n.cpuUtil) + (n.forecast >= 0 ? " → forecast " + pct(n.forecast) : "");
  r.host.textContent = "host load " + pct(n.hostLoad) + (n.hostLoadForecast >= 0 ? " → " + pct(n.hostLoadForecast) : "") + (n.backingOff ? " · backing off: " + n.backingOff : "");
  c.el.classList.toggle("backoff", n.backingOff !== "");
  r.tasks.textContent = n.running + " running · " + n.assigned + "/" + n.capacity + " slots · " + n.completed + " done" + (n.saturationInSeconds >= 0 ? " · saturates in " + Math.round(n.saturationInSeconds) + " s" : "");
  c.el.classList.toggle("sat", n.saturationInSeconds >= 0);
  r.load.setAttribute("points", pointsOf(c.cpu, W, H));
  r.fc.setAttribute("points", pointsOf(c.fc, W, H));
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
    c.node = n;
    fillCard(c, n);
  }
  if (frag.childNodes.length) box.appendChild(frag);
  for (const [id, c] of cards) if (!seen.has(id)) { c.el.remove(); cards.delete(id); }
}

// ───────────── alerts: grouped by name + node, bounded by the server ─────────────
function renderAlerts(v) {
  $("k-alerts").textContent = v.firing;
  $("alert-summary").textContent = v.total ? v.firing + " firing · " + v.groups.length + " of " + v.total + " groups" : "";
  const box = $("alerts");
  box.replaceChildren(...v.groups.map((g) => el("div", { class: "alert " + (g.firing ? g.severity : "resolved"), "data-alert": g.name, "data-node": g.node },
    el("b", {}, g.name), g.node ? " " : "", g.node ? el("span", { class: "mono" }, g.node) : "", el("span", { class: "count", title: "times fired" }, "×" + g.count),
    " ", el("span", { class: "dim" }, (g.firing ? "firing" : "resolved") + " · last " + new Date(g.lastSeenMs).toLocaleTimeString()),
    el("div", { class: "msg dim" }, g.lastSummary))));
  if (!v.groups.length) box.replaceChildren(el("span", { class: "dim" }, "none"));
}

// ───────────── job table: filters and pages from /api/jobs ─────────────
const jobQ = { state: "", q: "", offset: 0, limit: 50 };
let jobsBusy = false;
const STATES = ["", "pending", "running", "succeeded", "failed", "cancelled"];
function buildFilters() {
  const box = $("job-filters");
  for (const s of STATES) {
    const b = el("button", { "data-filter": s }, s || "all", el("span", { class: "count" }, ""));
    b.onclick = () => { jobQ.state = s; jobQ.offset = 0; refreshJobs(); };
    box.append(b);
  }
  const input = el("input", { id: "job-search", placeholder: "id, name, tenant, token", size: 22 });
  input.oninput = () => { jobQ.q = input.value; jobQ.offset = 0; refreshJobs(); };
  box.append(input);
  $("job-prev").onclick = () => { jobQ.offset = Math.max(0, jobQ.offset - jobQ.limit); refreshJobs(); };
  $("job-next").onclick = () => { jobQ.offset += jobQ.limit; refreshJobs(); };
}
async function refreshJobs() {
  if (jobsBusy) return;
  jobsBusy = true;
  try {
    const p = new URLSearchParams({ state: jobQ.state, q: jobQ.q, offset: String(jobQ.offset), limit: String(jobQ.limit) });
    renderJobs(await getJson("api/jobs?" + p));
  } catch (e) { $("job-range").textContent = "jobs: " + e.message; } finally { jobsBusy = false; }
}
function renderJobs(list) {
  let all = 0;
  for (const k in list.byState) all += list.byState[k];
  for (const b of $("job-filters").querySelectorAll("button")) {
    const s = b.dataset.filter;
    b.classList.toggle("on", s === jobQ.state);
    b.lastChild.textContent = String(s ? list.byState[s] || 0 : all);
  }
  $("jobs").replaceChildren(...list.rows.map((j) => el("tr", { "data-job": j.id, "data-state": j.state },
    el("td", {}, el("a", { href: "#/job/" + encodeURIComponent(j.id) }, j.name || "(unnamed)"), el("div", { class: "mono" }, j.id)),
    el("td", {}, j.tenant, el("div", { class: "mono" }, j.submitter)),
    el("td", { class: "n" }, age(j)), el("td", { class: "n" }, took(j)),
    el("td", { class: "state-" + j.state }, j.state), el("td", {}, progressBar(j)),
    el("td", { class: "n" }, (j.succeeded + j.failed) + "/" + j.tasks))));
  if (!list.rows.length) $("jobs").replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "dim" }, list.total ? "no more jobs" : "no jobs")));
  $("job-range").textContent = list.total ? (list.offset + 1) + "–" + (list.offset + list.rows.length) + " of " + list.total : "0 jobs";
  $("job-prev").disabled = list.offset === 0;
  $("job-next").disabled = list.offset + list.rows.length >= list.total;
}

// ───────────── a job's page ─────────────
function kv(pairs) { const d = el("dl", { class: "kv" }); for (const [k, v] of pairs) d.append(el("dt", {}, k), el("dd", {}, v)); return d; }
function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { class: h[0] === "#" ? "n" : null }, h.replace(/^#/, ""))))), el("tbody", {}, ...rows));
}
function histogram(h) {
  const n = h.counts.length, bw = 46, ch = 90;
  const s = svgEl("svg", { class: "hist", viewBox: "0 0 " + Math.max(1, n * bw) + " " + (ch + 28), width: Math.max(1, n * bw), height: ch + 28 });
  const max = Math.max(1, ...h.counts);
  h.counts.forEach((c, i) => {
    const bh = Math.round((c / max) * ch);
    s.append(svgEl("rect", { x: i * bw + 4, y: ch - bh, width: bw - 8, height: Math.max(bh, c ? 1 : 0) }));
    const t1 = svgEl("text", { x: i * bw + 4, y: ch + 12 }); t1.textContent = String(c); s.append(t1);
    const lo = h.edgesMs[i], hi = h.edgesMs[i + 1];
    const t2 = svgEl("text", { x: i * bw + 2, y: ch + 25 }); t2.textContent = "<" + (hi < 0 ? "∞" : dur(hi)); t2.setAttribute("data-lo", lo); s.append(t2);
  });
  return s;
}
function renderJobPage(d) {
  const j = d.job, v = $("view-job");
  const counts = el("div", { class: "chips", id: "job-counts" }, ...Object.entries(d.counts).map(([k, n]) => el("span", { class: "state-" + k, "data-state": k }, k + " " + n)));
  const failures = d.failures.map((f) => el("tr", { "data-task": f.index },
    el("td", { class: "n" }, f.index), el("td", { class: "n" }, f.attempt), el("td", { class: "state-failed code" }, f.code),
    el("td", {}, el("a", { href: "#/node/" + encodeURIComponent(f.nodeId), class: "mono" }, f.nodeId)), el("td", { class: "msg" }, f.message)));
  const placement = d.placement.map((p) => el("tr", { "data-node": p.nodeId },
    el("td", {}, el("a", { href: "#/node/" + encodeURIComponent(p.nodeId) }, p.host || "?"), el("div", { class: "mono" }, p.nodeId)),
    el("td", { class: "n" }, p.running), el("td", { class: "n" }, p.succeeded), el("td", { class: "n" }, p.failed), el("td", { class: "n" }, p.other)));
  v.replaceChildren(
    el("section", {}, el("h2", {}, "Job ", el("span", { id: "job-name" }, j.name || "(unnamed)"), " ", el("span", { class: "state-" + j.state, id: "job-state" }, j.state)),
      el("div", { class: "mono", id: "job-id" }, j.id), progressBar(j), el("h3", {}, "Tasks by state (" + j.tasks + ")"), counts,
      kv([["submitter", j.tenant + (j.submitter ? " / token " + j.submitter : "")], ["submitted", when(j.submittedAtMs) + " (" + age(j) + " ago)"], ["duration", took(j)],
        ["finished", when(j.finishedAtMs)], ["kernel", d.kernelId], ["priority", d.priority], ["retries", d.retries + " (max attempts " + d.maxAttempts + ")"]])),
    el("div", { class: "cols" },
      el("section", {}, el("h2", {}, "Failures ", el("span", { class: "dim" }, d.failuresTotal > d.failures.length ? "first " + d.failures.length + " of " + d.failuresTotal : String(d.failuresTotal))),
        el("div", { class: "chips" }, ...Object.entries(d.failureCodes).map(([c, n]) => el("span", { class: "state-failed" }, c + " ×" + n))),
        d.failures.length ? table(["#task", "#attempt", "code", "node", "message"], failures) : el("span", { class: "dim" }, "none")),
      el("section", {}, el("h2", {}, "Run time ", el("span", { class: "dim" }, d.runMs.n ? "p50 " + dur(d.runMs.p50) + " · p95 " + dur(d.runMs.p95) + " · max " + dur(d.runMs.max) + " · " + d.runMs.n + " runs" : "no finished runs")),
        d.runMs.n ? histogram(d.histogram) : "")),
    el("section", { id: "job-placement" }, el("h2", {}, "Placement ", el("span", { class: "dim" }, d.nodesTotal + " nodes")), table(["node", "#running", "#succeeded", "#failed", "#other"], placement)));
}

// ───────────── a node's page ─────────────
let drainMsg = { id: "", text: "", cls: "msg" }; // survives the page's refreshes
function drainBox(n) {
  const out = el("div", { id: "drain-result", class: drainMsg.id === n.id ? drainMsg.cls : "msg" }, drainMsg.id === n.id ? drainMsg.text : "");
  const tokenInput = el("input", { id: "drain-token", type: "password", placeholder: "admin token", size: 30 });
  const btn = el("button", { class: "danger", id: "drain" }, "Drain node");
  btn.disabled = n.state !== "ready";
  btn.onclick = async () => {
    if (!confirm("Drain " + n.host + "? It takes no new tasks; its running tasks finish.")) return;
    const token = tokenInput.value || sessionStorage.getItem("distx_token") || "";
    const headers = { "X-Distx-Dashboard": "1" };
    if (token) headers.Authorization = "Bearer " + token;
    const r = await fetch("api/nodes/drain?node=" + encodeURIComponent(n.id), { method: "POST", headers });
    drainMsg = { id: n.id, text: r.ok ? "draining: it takes no new tasks" : "refused (" + r.status + "): " + (await r.text()).slice(0, 300), cls: "msg " + (r.ok ? "state-draining" : "state-failed") };
    out.textContent = drainMsg.text;
    out.className = drainMsg.cls;
    if (r.ok) showNode(n.id);
  };
  return el("div", { class: "filters" }, btn, sessionStorage.getItem("distx_token") ? "" : tokenInput, out);
}
let nodeChart = null;
function renderNodePage(n) {
  const v = $("view-node");
  const c = cards.get(n.id);
  const cpu = c ? c.cpu : n.history[0], fc = c ? c.fc : n.history[1];
  const svg = svgEl("svg", { viewBox: "0 0 600 120", preserveAspectRatio: "none" });
  nodeChart = { id: n.id, fc: svgEl("polyline", { class: "fc" }), load: svgEl("polyline", { class: "load" }) };
  svg.append(nodeChart.fc, nodeChart.load);
  drawNodeChart(cpu, fc);
  const cal = n.calibration ? n.calibration.kernel + ": " + (n.calibration.opsPerSecond / 1e9).toFixed(3) + " Gops/s per worker (" + Math.round(n.calibration.wallMs) + " ms to measure)" : "not calibrated";
  const tasks = n.tasks.map((t) => el("tr", {}, el("td", {}, el("a", { href: "#/job/" + encodeURIComponent(t.jobId) }, t.jobName || t.jobId)), el("td", { class: "n" }, t.index), el("td", { class: "state-" + t.state }, t.state)));
  v.replaceChildren(
    el("section", {}, el("h2", {}, "Node ", el("span", { id: "node-host" }, n.host), " ", el("span", { class: "state-" + n.state, id: "node-state" }, n.state)),
      el("div", { class: "mono" }, n.id), drainBox(n)),
    el("div", { class: "cols" },
      el("section", { id: "node-hw" }, el("h2", {}, "Hardware"), kv([["CPU", n.cpu], ["cores", n.physicalCores + " physical · " + n.logicalCores + " logical · " + n.baseGhz + " GHz"], ["SIMD", n.simd.join(" ")],
        ["memory", gib(n.memoryBytes) + " (" + gib(n.memUsedBytes) + " used)"], ["GPUs", n.gpus.map((g) => g.model + " " + gib(g.memoryBytes)).join(", ") || "none"], ["GPU backend", n.gpuBackend || "none"],
        ["workers", n.workers], ["kernels", n.kernelKinds.join(" ")], ["platform", n.platform + " " + n.arch], ["labels", Object.entries(n.labels).map(([k, x]) => k + "=" + x).join(" ") || "none"],
        ["calibrated speed", n.speed.toFixed(3)], ["calibration", cal], ["registered", when(n.registeredAtMs)], ["last heartbeat", when(n.lastHeartbeatMs)]])),
      el("section", { class: "big" }, el("h2", {}, "Load against forecast"),
        el("div", { id: "node-load" }, "CPU " + pct(n.cpuUtil) + (n.forecast >= 0 ? " · forecast " + pct(n.forecast) + " over " + n.forecastHorizonSeconds + " s" : " · no forecast yet") + " · " + n.assigned + "/" + n.capacity + " slots · " + n.completed + " done"),
        el("span", { class: "legend dim" }, el("i", { style: "background:var(--load)" }), "CPU load", el("i", { style: "background:var(--fc)" }), "forecast"), svg)),
    el("section", { id: "node-tasks" }, el("h2", {}, "Tasks on it ", el("span", { class: "dim" }, n.tasksTotal > n.tasks.length ? "first " + n.tasks.length + " of " + n.tasksTotal : String(n.tasksTotal))),
      n.tasks.length ? table(["job", "#task", "state"], tasks) : el("span", { class: "dim" }, "none")));
}
function drawNodeChart(cpu, fc) {
  if (!nodeChart) return;
  nodeChart.load.setAttribute("points", pointsOf(cpu, 600, 120));
  nodeChart.fc.setAttribute("points", pointsOf(fc, 600, 120));
}

// ───────────── views (#/job/<id>, #/node/<id>, else the overview) ─────────────
let view = { kind: "overview", id: "" }, pageTimer = 0;
async function showJob(id) { try { renderJobPage(await getJson("api/job?id=" + encodeURIComponent(id))); } catch (e) { $("view-job").replaceChildren(el("section", {}, "job " + id + ": " + e.message)); } }
async function showNode(id) { try { renderNodePage(await getJson("api/node?id=" + encodeURIComponent(id))); } catch (e) { $("view-node").replaceChildren(el("section", {}, "node " + id + ": " + e.message)); } }
function route() {
  const m = /^#\\/(job|node)\\/(.+)$/.exec(location.hash);
  view = m ? { kind: m[1], id: decodeURIComponent(m[2]) } : { kind: "overview", id: "" };
  $("view-overview").hidden = view.kind !== "overview";
  $("view-job").hidden = view.kind !== "job";
  $("view-node").hidden = view.kind !== "node";
  clearInterval(pageTimer);
  nodeChart = null;
  if (view.kind === "job") { showJob(view.id); pageTimer = setInterval(() => showJob(view.id), 2000); }
  else if (view.kind === "node") { showNode(view.id); pageTimer = setInterval(() => showNode(view.id), 5000); }
  else refreshJobs();
  window.scrollTo(0, 0);
}

let last = null, pending = false;
function render(s, append) {
    const t0 = performance.now();
    renderNodes(s.nodes, s.history, append);
    renderAlerts(s.alerts);
    $("k-nodes").textContent = s.totals.nodesReady;
    $("k-jobs").textContent = s.totals.jobsRunning;
    $("k-queue").textContent = s.totals.queueDepth;
    $("k-done").textContent = s.totals.tasksDone;
    if (nodeChart && cards.get(nodeChart.id)) { const c = cards.get(nodeChart.id); drawNodeChart(c.cpu, c.fc); }
    window.__distxRenderMs = performance.now() - t0;
    window.__distxTicks = (window.__distxTicks || 0) + 1;
    if (view.kind === "overview") refreshJobs();
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
buildFilters();
window.addEventListener("hashchange", route);
route();
connect();
`;
