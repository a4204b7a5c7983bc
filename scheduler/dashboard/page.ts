// The live dashboard page: one self-contained HTML document (no CDN, no build step; the
// machines it runs on may have no internet). It opens an SSE stream to /api/events, gets a
// full snapshot first, then a compact tick every second, and updates the DOM in place:
// node cards are created once and only their text and sparkline points change, so 200+
// nodes cost a few hundred attribute writes per tick. The job table, a job's page (#/job/<id>)
// and a node's page (#/node/<id>) are fetched on demand, bounded by the server (views.ts).
// Everything a client or an agent named (node names, job names, error messages) is written as
// text (textContent), never parsed as HTML. The script is in page-script.ts.
import { DASHBOARD_SCRIPT } from "./page-script.js";

const STYLE = `
:root{--bg:#0f1419;--panel:#19212b;--text:#d8dee9;--dim:#8a96a8;--ok:#5fb878;--warn:#e5b94e;--bad:#e0645c;--load:#4ea1e5;--fc:#c58af9;--line:#2a3442}
*{box-sizing:border-box}body{margin:0;font:13px/1.4 system-ui,sans-serif;background:var(--bg);color:var(--text)}
a{color:inherit}a:hover{color:var(--load)}
header{display:flex;flex-wrap:wrap;gap:8px 22px;align-items:baseline;padding:10px 16px;background:var(--panel);position:sticky;top:0;z-index:1}
header h1{font-size:16px;margin:0}header h1 a{text-decoration:none}.kpi b{font-size:18px;margin-right:4px}.dim{color:var(--dim)}
#conn.ok{color:var(--ok)}#conn.bad{color:var(--bad)}
.view{padding:12px;display:grid;gap:12px}.view[hidden]{display:none}.cols{display:grid;grid-template-columns:minmax(0,2fr) minmax(300px,1fr);gap:12px;align-items:start}
section{background:var(--panel);border-radius:6px;padding:10px;min-width:0}h2{font-size:14px;margin:0 0 8px}h3{font-size:13px;margin:10px 0 6px}
#nodes{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:8px}
.node{border:1px solid var(--line);border-radius:5px;padding:6px 8px;contain:content;min-width:0}
.node .t{display:flex;justify-content:space-between;gap:8px;align-items:baseline}
.node .h{font-weight:600;overflow-wrap:anywhere;min-width:0}.node .st{white-space:nowrap;font-size:11px}
.node .id,.mono{font:11px/1.3 ui-monospace,monospace;overflow-wrap:anywhere;color:var(--dim)}
.node .p{color:var(--dim);font-size:11px;overflow-wrap:anywhere}
.node svg{width:100%;height:36px;display:block;background:#121920;margin-top:4px}
.load{stroke:var(--load);fill:none;stroke-width:1.5}.fc{stroke:var(--fc);fill:none;stroke-width:1;stroke-dasharray:3 2}
.node.draining{opacity:.7}.node.backoff{opacity:.7;outline:1px dashed var(--dim)}.node.sat{border-color:var(--bad)}
.bar{height:8px;background:var(--line);border-radius:4px;overflow:hidden;display:flex;min-width:60px}.bar i{display:block;height:100%}
.bar .s{background:var(--ok)}.bar .f{background:var(--bad)}.bar .r{background:var(--load)}
table{width:100%;border-collapse:collapse}td,th{text-align:left;padding:3px 5px;border-bottom:1px solid var(--line);vertical-align:top}th{color:var(--dim);font-weight:500}
td.n,th.n{text-align:right;white-space:nowrap}
.state-running,.state-pending,.state-assigned,.state-draining{color:var(--load)}.state-succeeded,.state-ready{color:var(--ok)}.state-failed,.state-down{color:var(--bad)}.state-cancelled{color:var(--dim)}
.alert{border-left:4px solid var(--warn);padding:4px 8px;margin-bottom:6px;background:#202a35;overflow-wrap:anywhere}.alert.critical{border-color:var(--bad)}.alert.resolved{opacity:.6;border-color:var(--dim)}
.count{background:var(--line);border-radius:8px;padding:0 6px;font-size:11px;margin-left:4px}
.legend i{display:inline-block;width:12px;height:2px;vertical-align:middle;margin:0 4px 0 10px}
.filters{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin-bottom:6px}
button,input{font:inherit;color:var(--text);background:#222c38;border:1px solid var(--line);border-radius:4px;padding:2px 8px}
button.on{background:var(--load);color:#08121c}button.danger{border-color:var(--bad);color:var(--bad)}button:disabled{opacity:.5}
.chips span{display:inline-block;margin:0 10px 4px 0}.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px}.kv dt{color:var(--dim)}.kv dd{margin:0;overflow-wrap:anywhere}
.hist rect{fill:var(--load)}.hist text{fill:var(--dim);font-size:10px}
.big svg{width:100%;height:120px;background:#121920}
.msg{overflow-wrap:anywhere;white-space:pre-wrap}
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DistributeX dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style></head><body>
<header><h1><a href="#">DistributeX</a></h1>
<span class="kpi"><b id="k-nodes">–</b><span class="dim">nodes ready</span></span>
<span class="kpi"><b id="k-jobs">–</b><span class="dim">jobs running</span></span>
<span class="kpi"><b id="k-queue">–</b><span class="dim">tasks queued</span></span>
<span class="kpi"><b id="k-done">–</b><span class="dim">tasks done</span></span>
<span class="kpi"><b id="k-alerts">–</b><span class="dim">alerts firing</span></span>
<span id="conn" class="bad">connecting…</span></header>
<div id="view-overview" class="view">
<section><h2>Nodes <span class="legend dim"><i style="background:var(--load)"></i>CPU load<i style="background:var(--fc)"></i>forecast</span></h2><div id="nodes"></div></section>
<div class="cols">
<section><h2>Jobs</h2>
<div class="filters" id="job-filters"></div>
<table><thead><tr><th>job</th><th>submitter</th><th class="n">age</th><th class="n">duration</th><th>state</th><th style="width:22%">progress</th><th class="n">tasks</th></tr></thead><tbody id="jobs"></tbody></table>
<div class="filters" style="margin-top:6px"><button id="job-prev">‹ newer</button><span id="job-range" class="dim"></span><button id="job-next">older ›</button></div></section>
<section><h2>Alerts <span id="alert-summary" class="dim"></span></h2><div id="alerts"><span class="dim">none</span></div></section>
</div></div>
<div id="view-job" class="view" hidden></div>
<div id="view-node" class="view" hidden></div>
<script>${DASHBOARD_SCRIPT}</script></body></html>`;
