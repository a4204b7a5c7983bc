#!/usr/bin/env python3
"""Generates dashboards/distributex.json (kept in git). Edit here, run it, commit both.
Every query may use only metrics the code exports (test/integration/monitoring/grafana.test.ts checks)."""
import json, os

DS = {"type": "prometheus", "uid": "${datasource}"}
panels, pid, y = [], 1, 0

def row(title):
    global y, pid
    panels.append({"type": "row", "title": title, "id": pid, "collapsed": False, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []})
    pid += 1; y += 1

def panel(kind, title, targets, x, w, h=8, unit=None, desc="", extra=None, right=None):
    """right: {refId: unit} for queries in another unit, drawn against a right-hand axis
    (one axis per unit: test/unit/dashboard-units.test.ts)."""
    global pid
    p = {"type": kind, "title": title, "id": pid, "datasource": DS, "description": desc,
         "gridPos": {"x": x, "y": y, "w": w, "h": h},
         "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": l} for i, (e, l) in enumerate(targets)],
         "fieldConfig": {"defaults": {"unit": unit or "short"}, "overrides": []}, "options": {}}
    for ref, u in (right or {}).items():
        p["fieldConfig"]["overrides"].append({"matcher": {"id": "byFrameRefID", "options": ref},
            "properties": [{"id": "unit", "value": u}, {"id": "custom.axisPlacement", "value": "right"}]})
    if extra: p.update(extra)
    panels.append(p); pid += 1

def nextrow(h=8):
    global y
    y += h

row("Cluster overview")
panel("stat", "Agents ready", [('sum(distx_agents{state="ready"})', "ready")], 0, 4, 4)
panel("stat", "Agents down", [('sum(distx_agents{state="down"})', "down")], 4, 4, 4, extra={"fieldConfig": {"defaults": {"unit": "short", "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}]}}, "overrides": []}})
panel("stat", "Jobs running", [('sum(distx_jobs{state="running"})', "running")], 8, 4, 4)
panel("stat", "Queue depth", [("sum(distx_queue_depth)", "queued tasks")], 12, 4, 4)
panel("stat", "Tasks finished / s", [("sum(rate(distx_tasks_finished_total[$__rate_interval]))", "tasks/s")], 16, 4, 4, unit="reqps")
panel("stat", "Scrape targets up", [('sum(up{job=~"distx-.*"})', "up"), ('count(up{job=~"distx-.*"})', "total")], 20, 4, 4)
nextrow(4)

row("Per-node load and forecast")
panel("timeseries", "CPU utilisation vs forecast", [
    ('distx_node_cpu_utilization{node=~"$node"}', "{{node}} load"),
    ('distx_node_forecast_cpu_utilization{node=~"$node"}', "{{node}} forecast"),
], 0, 12, 9, unit="percentunit", desc="Load from each node's heartbeats, and the forecaster's prediction over its horizon (dashed).",
    extra={"fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1}, "overrides": [
        {"matcher": {"id": "byRegexp", "options": ".*forecast"}, "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [6, 4]}}]}]}})
panel("timeseries", "Slots in use (assigned / capacity)", [('distx_node_assigned_tasks{node=~"$node"} / distx_node_capacity_tasks{node=~"$node"}', "{{node}}")], 12, 12, 9, unit="percentunit")
nextrow(9)
panel("timeseries", "Predicted time to saturation", [('distx_node_predicted_saturation_seconds{node=~"$node"}', "{{node}}")], 0, 8, 8, unit="s")
panel("timeseries", "Agent host memory", [("distx_agent_memory_utilization", "{{instance}}")], 8, 8, 8, unit="percentunit")
panel("timeseries", "Agent CPU and GPU", [("distx_agent_cpu_utilization", "{{instance}} cpu"), ("distx_agent_gpu_utilization", "{{instance}} gpu{{gpu}}")], 16, 8, 8, unit="percentunit")
nextrow(8)

row("Jobs: throughput and latency")
panel("timeseries", "Task throughput", [
    ("sum by (state) (rate(distx_tasks_finished_total[$__rate_interval]))", "{{state}}"),
    ("sum(rate(distx_tasks_submitted_total[$__rate_interval]))", "submitted"),
], 0, 8, 8, unit="reqps")
panel("timeseries", "Task latency (submit to final state)", [
    ("histogram_quantile(0.5, sum by (le) (rate(distx_task_latency_seconds_bucket[$__rate_interval])))", "p50"),
    ("histogram_quantile(0.99, sum by (le) (rate(distx_task_latency_seconds_bucket[$__rate_interval])))", "p99"),
    ("distx:task_latency_seconds:p99_5m", "p99 (5m, alerting)"),
], 8, 8, 8, unit="s")
panel("timeseries", "Placement latency and rate", [
    ("histogram_quantile(0.99, sum by (le) (rate(distx_placement_latency_seconds_bucket[$__rate_interval])))", "p99 queue-to-placement"),
    ("sum(rate(distx_placements_total[$__rate_interval]))", "placements/s"),
], 16, 8, 8, unit="s", right={"B": "reqps"})
nextrow(8)
panel("timeseries", "Queue depth and jobs", [("sum(distx_queue_depth)", "queued tasks"), ("sum by (state) (distx_jobs)", "jobs {{state}}")], 0, 8, 8)
panel("timeseries", "Retries, lost nodes, cache hits", [
    ("sum(rate(distx_task_retries_total[$__rate_interval]))", "retries/s"),
    ("sum(increase(distx_nodes_lost_total[$__rate_interval]))", "nodes lost"),
    ("sum(rate(distx_result_cache_hits_total[$__rate_interval]))", "cache hits/s"),
], 8, 8, 8, unit="reqps", right={"B": "short"})
panel("timeseries", "Forecast error vs naive", [("distx_forecast_error_ratio", "error ratio (<1 beats naive)")], 16, 8, 8)
nextrow(8)

row("Kernel performance")
panel("timeseries", "Kernel run time p50 / p99", [
    ('histogram_quantile(0.5, sum by (le, kernel, backend) (rate(distx_kernel_run_seconds_bucket{kernel=~"$kernel"}[$__rate_interval])))', "{{kernel}}/{{backend}} p50"),
    ('histogram_quantile(0.99, sum by (le, kernel, backend) (rate(distx_kernel_run_seconds_bucket{kernel=~"$kernel"}[$__rate_interval])))', "{{kernel}}/{{backend}} p99"),
], 0, 8, 8, unit="s")
panel("timeseries", "Wait for a worker p99", [
    ('histogram_quantile(0.99, sum by (le, kernel) (rate(distx_kernel_wait_seconds_bucket{kernel=~"$kernel"}[$__rate_interval])))', "{{kernel}}"),
], 8, 8, 8, unit="s")
panel("timeseries", "Failure ratio by kernel", [
    ('distx:kernel_failure_ratio:rate5m{kernel=~"$kernel"}', "{{kernel}}/{{backend}}"),
    ('sum by (code) (rate(distx_agent_task_failures_total{kernel=~"$kernel"}[$__rate_interval]))', "failures/s {{code}}"),
], 16, 8, 8, unit="percentunit", right={"B": "reqps"})
nextrow(8)
panel("timeseries", "Tasks completed by kernel", [('sum by (kernel, outcome) (rate(distx_agent_tasks_completed_total{kernel=~"$kernel"}[$__rate_interval]))', "{{kernel}} {{outcome}}")], 0, 12, 8, unit="reqps")
panel("timeseries", "Running tasks and worker restarts", [
    ("sum by (instance) (distx_agent_tasks_running)", "{{instance}} running"),
    ("sum by (instance) (distx_agent_workers)", "{{instance}} workers"),
    ("sum by (instance) (increase(distx_agent_worker_restarts_total[$__rate_interval]))", "{{instance}} restarts"),
], 12, 12, 8)
nextrow(8)

row("Alerts")
panel("table", "Firing alerts (Prometheus rules)", [('ALERTS{alertstate="firing", alertname=~"Distx.*"}', "")], 0, 12, 8,
    extra={"targets": [{"refId": "A", "datasource": DS, "expr": 'ALERTS{alertstate="firing", alertname=~"Distx.*"}', "format": "table", "instant": True}]})
panel("timeseries", "Scheduler alerts fired (agent lost, job failing, predicted saturation)", [
    ("sum by (alertname) (increase(distx_alerts_fired_total[$__rate_interval]))", "{{alertname}}"),
    ("sum(increase(distx_alert_webhook_failures_total[$__rate_interval]))", "webhook failures"),
], 12, 12, 8)
nextrow(8)

dashboard = {
    "uid": "distx-overview", "title": "DistributeX", "tags": ["distributex"], "timezone": "browser",
    "schemaVersion": 39, "version": 1, "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "current": {"text": "Prometheus (DistributeX)", "value": "distx-prometheus"}, "hide": 0},
        {"name": "node", "type": "query", "datasource": DS, "query": {"query": "label_values(distx_node_cpu_utilization, node)", "refId": "node"},
         "definition": "label_values(distx_node_cpu_utilization, node)", "includeAll": True, "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "refresh": 2},
        {"name": "kernel", "type": "query", "datasource": DS, "query": {"query": "label_values(distx_agent_tasks_completed_total, kernel)", "refId": "kernel"},
         "definition": "label_values(distx_agent_tasks_completed_total, kernel)", "includeAll": True, "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "refresh": 2},
    ]},
    "annotations": {"list": []},
    "panels": panels,
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards", "distributex.json")
with open(out, "w") as f:
    json.dump(dashboard, f, indent=2)
    f.write("\n")
print(out)
