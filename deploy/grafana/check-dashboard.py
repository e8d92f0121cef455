#!/usr/bin/env python3
"""Checks deploy/grafana/tearsheet-sync.json (python3, standard library only).

    python3 deploy/grafana/check-dashboard.py [DASHBOARD.json]   # the dashboard
    python3 deploy/grafana/check-dashboard.py --self-test        # the checks, against broken copies
    (--no-promtool: without promtool's PromQL parsing, even when promtool is on the PATH)

1. What Grafana needs to import it: a title, a uid, an integer schemaVersion, a panels list;
   each panel with a unique integer id, a known type, a gridPos of integers inside the 24
   columns, overlapping no other panel; every panel but a row with the `${datasource}`
   Prometheus data source, a unit, and targets each with a unique refId, an expr and a
   legendFormat; template variables well formed, and every variable a query names defined.
2. What the queries name: every metric in every expr (and in the variables' label_values())
   is exported by the code (a string literal "NAME" in a Swift file under Sources/; NAME_bucket,
   NAME_sum and NAME_count when NAME is a Timer's or a Recorder's: a histogram), recorded by deploy/prometheus/alerts.yml, or one
   of RabbitMQ's listed below; every function called is PromQL's; brackets balance.
3. With promtool on the PATH (deploy/prometheus/test-rules.sh installs it), every expr, its
   Grafana variables replaced, parses as PromQL (`promtool check rules` on a rules file made
   of them).

Each failure is one line on standard error; the exit status is then 1.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DASHBOARD = os.path.join(HERE, "tearsheet-sync.json")
SOURCES = os.path.join(REPO, "Sources")
RULES = os.path.join(REPO, "deploy", "prometheus", "alerts.yml")

# RabbitMQ's own series, from its rabbitmq_prometheus plugin (3.10; the aggregated /metrics
# endpoint the local services serve). Each was seen in a scrape of RabbitMQ 3.10.8 (Debian 12's
# rabbitmq-server) with deploy/local/services.sh, and is defined in rabbitmq-server:
RABBITMQ_METRICS = {
    # deps/rabbitmq_prometheus/src/collectors/prometheus_rabbitmq_core_metrics_collector.erl,
    # ?METRICS_RAW node_coarse_metrics (mem_used) and node_metrics (mem_limit):
    "rabbitmq_process_resident_memory_bytes": "core collector, node_coarse_metrics",
    "rabbitmq_resident_memory_limit_bytes": "core collector, node_metrics",
    # the same file, ?TOTALS (connection_created, channel_created, queue_metrics), and
    # identity_info() (labels rabbitmq_node, rabbitmq_cluster):
    "rabbitmq_connections": "core collector, ?TOTALS",
    "rabbitmq_channels": "core collector, ?TOTALS",
    "rabbitmq_queues": "core collector, ?TOTALS",
    "rabbitmq_identity_info": "core collector, identity_info()",
    # deps/rabbitmq_prometheus/src/collectors/prometheus_rabbitmq_alarm_metrics_collector.erl:
    "rabbitmq_alarms_memory_used_watermark": "alarm collector",
    "rabbitmq_alarms_free_disk_space_watermark": "alarm collector",
    # deps/rabbit/src/rabbit_global_counters.erl, exported with the rabbitmq_global_ prefix by
    # deps/rabbitmq_prometheus/src/collectors/prometheus_rabbitmq_global_metrics_collector.erl
    # (labels protocol, and queue_type for the last three):
    "rabbitmq_global_messages_received_total": "global counters",
    "rabbitmq_global_messages_delivered_total": "global counters",
    "rabbitmq_global_messages_acknowledged_total": "global counters",
    "rabbitmq_global_messages_redelivered_total": "global counters",
}

PANEL_TYPES = {"row", "timeseries", "stat", "table", "bargauge", "gauge", "text", "heatmap", "piechart"}
VARIABLE_TYPES = {"query", "datasource", "custom", "constant", "interval", "textbox", "adhoc"}
GRAFANA_VARIABLES = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
                     "__from", "__to", "__dashboard", "__org", "__user", "__name", "__all"}
# What each Grafana variable stands for when the exprs go through promtool.
SAMPLE_VALUES = {"__rate_interval": "5m", "__interval": "1m", "__interval_ms": "60000", "__range": "1d",
                 "__range_s": "86400", "__range_ms": "86400000"}

PROMQL_FUNCTIONS = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
    "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv", "exp", "floor", "histogram_count",
    "histogram_fraction", "histogram_quantile", "histogram_stddev", "histogram_stdvar", "histogram_sum",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "last_over_time", "ln",
    "log10", "log2", "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
    "predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar",
    "sgn", "sin", "sinh", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc", "sqrt",
    "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector",
    "year",
}
PROMQL_AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                       "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
PROMQL_KEYWORDS = {"and", "or", "unless", "atan2", "bool", "offset", "by", "without", "on", "ignoring",
                   "group_left", "group_right", "inf", "nan", "start", "end"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
VARIABLE_REF = re.compile(r"\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]")


# ------------------------------------------------------------------ PromQL
def strip_strings(expr):
    """The expr without its comments and string literals (each replaced by a space)."""
    out, i, n = [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c == "#":
            while i < n and expr[i] != "\n":
                i += 1
            continue
        if c in "\"'`":
            quote, i = c, i + 1
            while i < n and expr[i] != quote:
                i += 2 if expr[i] == "\\" and quote != "`" else 1
            if i >= n:
                raise ValueError("a string literal is not closed")
            i += 1
            out.append(" ")
            continue
        out.append(c)
        i += 1
    return "".join(out)


def metric_names(expr):
    """(metric names, called names) of a PromQL expr; ValueError when its brackets do not balance."""
    names = set(re.findall(r'__name__\s*=\s*"([A-Za-z_:][A-Za-z0-9_:]*)"', expr))
    text = strip_strings(expr)
    text = VARIABLE_REF.sub(" ", text)  # Grafana's $vars, outside strings: ranges, mostly
    stack = []
    for c in text:
        if c in "({[":
            stack.append(c)
        elif c in ")}]":
            if not stack or stack.pop() != {")": "(", "}": "{", "]": "["}[c]:
                raise ValueError(f"unbalanced '{c}'")
    if stack:
        raise ValueError(f"'{stack[-1]}' is not closed")
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges and subqueries
    # Groupings: by (...), without (...), on (...), ignoring (...), group_left (...), group_right (...)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r" \1 ", text)
    called = set()
    for match in IDENTIFIER.finditer(text):
        word = match.group(0)
        if match.start() > 0 and (text[match.start() - 1].isdigit() or text[match.start() - 1] == "."):
            continue  # a duration (5m), or a number's exponent (1e3)
        rest = text[match.end():].lstrip()
        if rest.startswith("("):
            called.add(word)
        elif word.lower() in PROMQL_KEYWORDS or word in PROMQL_FUNCTIONS or word in PROMQL_AGGREGATIONS:
            continue
        else:
            names.add(word)
    return names, called


def variable_query_expr(query):
    """The PromQL inside a Prometheus template variable's query, or None (label_names() and the like)."""
    if isinstance(query, dict):
        query = query.get("query", "")
    if not isinstance(query, str):
        return None
    query = query.strip()
    m = re.fullmatch(r"label_values\s*\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", query, re.S)
    if m:
        return m.group(1)
    m = re.fullmatch(r"query_result\s*\((.*)\)", query, re.S)
    if m:
        return m.group(1)
    return None


# ------------------------------------------------------------------ what the code exports
def exported_names(sources=SOURCES):
    """(names, histograms): every string literal of a Swift file under Sources/ that could be a
    metric name, and those of them a swift-metrics Timer or aggregating Recorder is made with
    (Prometheus histograms: NAME_bucket, NAME_sum and NAME_count)."""
    names, histograms = set(), set()
    for root, _, files in os.walk(sources):
        for name in files:
            if name.endswith(".swift"):
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                    text = f.read()
                names.update(re.findall(r'"([A-Za-z_:][A-Za-z0-9_:]*)"', text))
                histograms.update(re.findall(r'\b(?:Timer|Recorder)\(\s*label:\s*"([A-Za-z_:][A-Za-z0-9_:]*)"', text))
    return names, histograms


def recorded_names(rules=RULES):
    with open(rules, encoding="utf-8") as f:
        return set(re.findall(r"^\s*(?:-\s*)?record:\s*['\"]?([A-Za-z_:][A-Za-z0-9_:]*)", f.read(), re.M))


def known(name, exported, recorded):
    names, histograms = exported
    if name in names or name in recorded or name in RABBITMQ_METRICS:
        return True
    return any(name.endswith(suffix) and name[: -len(suffix)] in histograms for suffix in HISTOGRAM_SUFFIXES)


# ------------------------------------------------------------------ the checks
def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def all_panels(dashboard):
    """(panel, where) for every panel, a collapsed row's own panels included, and the groups
    whose grids must not overlap (the top level; each collapsed row's panels)."""
    top = dashboard.get("panels") if isinstance(dashboard.get("panels"), list) else []
    flat, groups = [], [top]
    for p in top:
        flat.append(p)
        if isinstance(p, dict) and p.get("type") == "row" and isinstance(p.get("panels"), list) and p["panels"]:
            flat.extend(p["panels"])
            groups.append(p["panels"])
    return flat, groups


def describe(panel):
    if not isinstance(panel, dict):
        return "a panel that is not an object"
    return f"panel {panel.get('id')!r} ({panel.get('title', 'untitled')!r})"


def check(dashboard, exported, recorded, promtool=None):
    failures = []
    fail = failures.append
    if not isinstance(dashboard, dict):
        return ["the dashboard is not a JSON object"]
    if not isinstance(dashboard.get("title"), str) or not dashboard["title"].strip():
        fail("the dashboard has no title")
    uid = dashboard.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
        fail(f"uid {uid!r}: Grafana wants 1 to 40 letters, digits, - or _")
    if not is_int(dashboard.get("schemaVersion")):
        fail(f"schemaVersion {dashboard.get('schemaVersion')!r} is not an integer")
    if not isinstance(dashboard.get("panels"), list) or not dashboard["panels"]:
        fail("panels is not a non-empty list")
    time = dashboard.get("time")
    if not isinstance(time, dict) or not all(isinstance(time.get(k), str) for k in ("from", "to")):
        fail("time needs from and to")

    # Template variables.
    variables = {}
    templating = dashboard.get("templating", {})
    var_list = templating.get("list") if isinstance(templating, dict) else None
    if not isinstance(var_list, list):
        fail("templating.list is not a list")
        var_list = []
    datasource_vars = set()
    for v in var_list:
        if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not re.fullmatch(r"[A-Za-z0-9_]+", v["name"]):
            fail(f"template variable {v!r:.60}: no valid name")
            continue
        name = v["name"]
        if name in variables:
            fail(f"template variable {name}: defined twice")
        variables[name] = v
        if v.get("type") not in VARIABLE_TYPES:
            fail(f"template variable {name}: type {v.get('type')!r} is not one of {sorted(VARIABLE_TYPES)}")
        for flag in ("multi", "includeAll"):
            if flag in v and not isinstance(v[flag], bool):
                fail(f"template variable {name}: {flag} is not true or false")
        if v.get("type") == "datasource":
            if v.get("query") != "prometheus":
                fail(f"template variable {name}: a datasource variable whose query is {v.get('query')!r}, not prometheus")
            datasource_vars.add(name)
        if v.get("type") == "query":
            if not isinstance(v.get("datasource"), dict) or not v["datasource"].get("uid"):
                fail(f"template variable {name}: a query variable without a datasource")
            query = v.get("query")
            if not (isinstance(query, str) and query.strip()) and not (isinstance(query, dict) and isinstance(query.get("query"), str) and query["query"].strip()):
                fail(f"template variable {name}: no query")
    if "datasource" not in datasource_vars:
        fail("no `datasource` template variable of type datasource (query prometheus)")
    wanted_ds = {"type": "prometheus", "uid": "${datasource}"}

    # Every expr: the panels', then the variables'.
    exprs = []  # (where, expr)
    for v in var_list:
        if isinstance(v, dict) and v.get("type") == "query":
            inner = variable_query_expr(v.get("query"))
            if inner is not None:
                exprs.append((f"template variable {v.get('name')}", inner))
            if v.get("datasource") not in (wanted_ds, None) and isinstance(v.get("datasource"), dict):
                fail(f"template variable {v.get('name')}: datasource {v['datasource']!r}, not {wanted_ds!r}")

    # Panels.
    flat, groups = all_panels(dashboard)
    ids = {}
    for panel in flat:
        where = describe(panel)
        if not isinstance(panel, dict):
            fail(where)
            continue
        pid = panel.get("id")
        if not is_int(pid):
            fail(f"{where}: id is not an integer")
        elif pid in ids:
            fail(f"{where}: id {pid} is also {describe(ids[pid])}'s")
        else:
            ids[pid] = panel
        ptype = panel.get("type")
        if ptype not in PANEL_TYPES:
            fail(f"{where}: type {ptype!r} is not one of {sorted(PANEL_TYPES)}")
        if not isinstance(panel.get("title"), str) or not panel["title"].strip():
            fail(f"{where}: no title")
        pos = panel.get("gridPos")
        if not isinstance(pos, dict) or not all(is_int(pos.get(k)) for k in ("x", "y", "w", "h")):
            fail(f"{where}: gridPos needs integers x, y, w and h")
        else:
            if pos["x"] < 0 or pos["y"] < 0 or pos["w"] < 1 or pos["h"] < 1:
                fail(f"{where}: gridPos {pos} has a negative place or an empty size")
            if pos["x"] + pos["w"] > 24:
                fail(f"{where}: gridPos x + w = {pos['x'] + pos['w']}, past the 24 columns")
        if ptype == "row":
            if pos and isinstance(pos, dict) and (pos.get("w"), pos.get("h")) != (24, 1):
                fail(f"{where}: a row is 24 wide and 1 high")
            continue
        if ptype == "text":
            continue
        if panel.get("datasource") != wanted_ds:
            fail(f"{where}: datasource {panel.get('datasource')!r}, not {wanted_ds!r}")
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit") if isinstance(panel.get("fieldConfig"), dict) else None
        if not isinstance(unit, str) or not unit:
            fail(f"{where}: no unit (fieldConfig.defaults.unit)")
        targets = panel.get("targets")
        if not isinstance(targets, list) or not targets:
            fail(f"{where}: no targets")
            continue
        refs = set()
        for i, t in enumerate(targets):
            if not isinstance(t, dict):
                fail(f"{where}: target {i} is not an object")
                continue
            ref = t.get("refId")
            if not isinstance(ref, str) or not ref:
                fail(f"{where}: target {i} has no refId")
            elif ref in refs:
                fail(f"{where}: refId {ref} twice")
            else:
                refs.add(ref)
            if "datasource" in t and t["datasource"] != wanted_ds:
                fail(f"{where}: target {ref or i}: datasource {t['datasource']!r}, not {wanted_ds!r}")
            if not isinstance(t.get("expr"), str) or not t["expr"].strip():
                fail(f"{where}: target {ref or i} has no expr")
                continue
            if not isinstance(t.get("legendFormat"), str):
                fail(f"{where}: target {ref or i} has no legendFormat")
            exprs.append((f"{where} target {ref or i}", t["expr"]))
            for m in re.finditer(r"\{\{\s*([^}\s]+)\s*\}\}", t.get("legendFormat") or ""):
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", m.group(1)):
                    fail(f"{where}: target {ref or i}: legend {{{{{m.group(1)}}}}} is not a label name")

    # No panel overlaps another.
    for group in groups:
        boxes = [(p, p["gridPos"]) for p in group if isinstance(p, dict) and isinstance(p.get("gridPos"), dict)
                 and all(is_int(p["gridPos"].get(k)) for k in ("x", "y", "w", "h"))]
        for i, (a, pa) in enumerate(boxes):
            for b, pb in boxes[i + 1:]:
                if (pa["x"] < pb["x"] + pb["w"] and pb["x"] < pa["x"] + pa["w"]
                        and pa["y"] < pb["y"] + pb["h"] and pb["y"] < pa["y"] + pa["h"]):
                    fail(f"{describe(a)} at {pa} overlaps {describe(b)} at {pb}")

    # What the exprs name.
    for where, expr in exprs:
        for m in VARIABLE_REF.finditer(expr):
            name = next(g for g in m.groups() if g)
            if name not in variables and name not in GRAFANA_VARIABLES and not name.isdigit():
                fail(f"{where}: ${name} is not a template variable")
        try:
            names, called = metric_names(expr)
        except ValueError as error:
            fail(f"{where}: {error} in {expr!r}")
            continue
        # The exporter (swift-prometheus) writes bucket bounds as Doubles, le="600.0", and
        # Prometheus 3 normalises every le to that form: le="600" matches no series.
        for m in re.finditer(r'\ble\s*=\s*"([0-9]+)"', expr):
            fail(f'{where}: le="{m.group(1)}" matches no bucket: they are written le="{m.group(1)}.0" '
                 f'(le=~"{m.group(1)}(\\\\.0)?" matches either)')
        for name in sorted(called - PROMQL_FUNCTIONS - PROMQL_AGGREGATIONS - PROMQL_KEYWORDS):
            fail(f"{where}: {name}() is not a PromQL function or aggregation")
        if not names:
            if not re.fullmatch(r"\s*(time|vector)\s*\(.*", expr, re.S):
                fail(f"{where}: names no metric: {expr!r}")
        for name in sorted(names):
            if not known(name, exported, recorded):
                fail(f"{where}: metric {name} is not exported by Sources/, recorded by deploy/prometheus/alerts.yml, "
                     f"or one of RabbitMQ's listed in check-dashboard.py")

    if promtool:
        failures.extend(promtool_check(promtool, exprs, variables))
    return failures


def substitute(expr, variables):
    def value(m):
        name = next(g for g in m.groups() if g)
        if name in SAMPLE_VALUES:
            return SAMPLE_VALUES[name]
        v = variables.get(name, {})
        return v.get("allValue") or "x"
    return VARIABLE_REF.sub(value, expr)


def promtool_check(promtool, exprs, variables):
    """`promtool check rules` on the exprs as recording rules: one line per expr that does not parse."""
    failures = []
    with tempfile.TemporaryDirectory(prefix="check-dashboard.") as tmp:
        path = os.path.join(tmp, "rules.json")
        for i, (where, expr) in enumerate(exprs):
            # One file a rule: promtool stops at a file's first error.
            rules = {"groups": [{"name": "dashboard", "rules": [{"record": "dashboard:query", "expr": substitute(expr, variables)}]}]}
            with open(path, "w") as f:
                json.dump(rules, f)
            run = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
            if run.returncode != 0:
                detail = " ".join((run.stderr or run.stdout).split())
                detail = detail.split(path + ": ", 1)[-1] if path in detail else detail
                failures.append(f"{where}: promtool: {detail[:300]}")
    return failures


# ------------------------------------------------------------------ self-test
def self_test(dashboard, exported, recorded, promtool):
    problems = []
    baseline = set(check(dashboard, exported, recorded, promtool))

    def first(pred):
        for p in all_panels(dashboard)[0]:
            if isinstance(p, dict) and pred(p):
                return p["id"]
        raise SystemExit("self-test: the dashboard has no panel to mutate")

    def panel(d, pid):
        return next(p for p in all_panels(d)[0] if isinstance(p, dict) and p.get("id") == pid)

    def with_expr(d, pid, metric, replacement):
        for t in panel(d, pid)["targets"]:
            if metric in t["expr"]:
                t["expr"] = t["expr"].replace(metric, replacement, 1)
                return
        raise SystemExit(f"self-test: panel {pid} has no {metric}")

    query_panels = [p for p in all_panels(dashboard)[0] if isinstance(p, dict) and p.get("targets")]
    added = first(lambda p: any("tsync_pairs_added_total" in t.get("expr", "") for t in p.get("targets", [])))
    q1, q2 = query_panels[0]["id"], query_panels[1]["id"]

    def misspelt(d):
        with_expr(d, added, "tsync_pairs_added_total", "tsync_pair_added_total")

    def overlapping(d):
        panel(d, q2)["gridPos"] = dict(panel(d, q1)["gridPos"])

    def no_ref_id(d):
        del panel(d, q1)["targets"][0]["refId"]

    def too_wide(d):
        panel(d, q1)["gridPos"]["w"] = 25 - panel(d, q1)["gridPos"]["x"]

    def same_id(d):
        panel(d, q2)["id"] = q1

    def unknown_type(d):
        panel(d, q1)["type"] = "graph-ish"

    def unknown_function(d):
        with_expr(d, added, "rate(", "rat(")

    def undefined_variable(d):
        with_expr(d, added, "$integration", "$integraton")

    def unclosed(d):
        t = panel(d, added)["targets"][0]
        t["expr"] = t["expr"] + ")"

    def bad_histogram(d):
        for t in panel(d, added)["targets"]:
            t["expr"] = t["expr"].replace("tsync_pairs_added_total", "tsync_pairs_added_total_bucket", 1)

    def label_in_grouping_is_no_metric(d):
        # A label name in by (...) and on (...) is not a metric: nothing new must fail.
        t = panel(d, added)["targets"][0]
        t["expr"] = f"sum by (integration, not_a_metric) ({t['expr']}) * on (not_a_metric) group_left (other_label) vector(1)"

    def integer_le(d):
        for p in all_panels(d)[0]:
            for t in p.get("targets", []) if isinstance(p, dict) else []:
                if 'le=~"600(\\\\.0)?"' in t["expr"]:
                    t["expr"] = t["expr"].replace('le=~"600(\\\\.0)?"', 'le="600"', 1)
                    return
        raise SystemExit("self-test: no le=~\"600(\\\\.0)?\" matcher to mutate")

    def no_datasource_variable(d):
        d["templating"]["list"] = [v for v in d["templating"]["list"] if v.get("type") != "datasource"]

    def schema_string(d):
        d["schemaVersion"] = str(d["schemaVersion"])

    cases = [
        ("a misspelt metric", misspelt, "metric tsync_pair_added_total is not exported"),
        ("overlapping panels", overlapping, "overlaps"),
        ("a target without refId", no_ref_id, "has no refId"),
        ("a panel past the 24 columns", too_wide, "past the 24 columns"),
        ("two panels of one id", same_id, f"id {q1} is also"),
        ("an unknown panel type", unknown_type, "type 'graph-ish'"),
        ("an unknown function", unknown_function, "rat() is not a PromQL function"),
        ("an undefined variable", undefined_variable, "$integraton is not a template variable"),
        ("an unbalanced bracket", unclosed, "unbalanced ')'"),
        ("a counter with a histogram suffix", bad_histogram, "metric tsync_pairs_added_total_bucket is not exported"),
        ("an integer le matcher", integer_le, 'le="600" matches no bucket'),
        ("no datasource variable", no_datasource_variable, "no `datasource` template variable"),
        ("a string schemaVersion", schema_string, "schemaVersion '39' is not an integer"),
        ("label names in groupings", label_in_grouping_is_no_metric, None),
    ]
    for description, mutate, expected in cases:
        broken = copy.deepcopy(dashboard)
        mutate(broken)
        new = [f for f in check(broken, exported, recorded, None) if f not in baseline]
        if expected is None:
            if new:
                problems.append(f"{description}: flagged, wrongly: {new}")
            else:
                print(f"self-test: {description}: not flagged, rightly")
        elif not any(expected in f for f in new):
            problems.append(f"{description}: not caught (wanted a line with {expected!r}; new lines: {new})")
        else:
            print(f"self-test: {description}: caught: {next(f for f in new if expected in f)}")

    # The extractor, on its own.
    samples = [
        ('sum by (integration, le) (rate(foo_seconds_bucket{le=~"600(\\\\.0)?", q="a{b}[c]"}[5m])) '
         '/ on (queue) group_left (integration) bar_total offset 1h', {"foo_seconds_bucket", "bar_total"}),
        ("topk(10, time() - x_timestamp_seconds{integration=~\"$integration\"}) > 1e3", {"x_timestamp_seconds"}),
        ("rate(a_total[$__rate_interval:1m]) and ignoring(instance) tsync:rule:ratio_rate5m # a comment b_total",
         {"a_total", "tsync:rule:ratio_rate5m"}),
        ('{__name__="named_total", job="x"} unless absent(c_total)', {"named_total", "c_total"}),
        ("sum without (le) (d_total) or vector(0)", {"d_total"}),
    ]
    for expr, wanted in samples:
        got = metric_names(expr)[0]
        if got != wanted:
            problems.append(f"metric_names({expr!r}) = {sorted(got)}, not {sorted(wanted)}")
        else:
            print(f"self-test: metric names of {expr!r}: {sorted(got)}")

    if promtool:
        broken = copy.deepcopy(dashboard)
        t = panel(broken, added)["targets"][0]
        t["expr"] = re.sub(r"\[[^\]]*\]", "", t["expr"], count=1)  # rate() of an instant vector: a type error
        new = [f for f in check(broken, exported, recorded, promtool) if f not in baseline]
        if any("promtool" in f for f in new):
            print(f"self-test: an expr PromQL refuses: caught: {next(f for f in new if 'promtool' in f)}")
        else:
            problems.append(f"an expr PromQL refuses: not caught by promtool (new lines: {new})")
    else:
        print("self-test: promtool not on the PATH: PromQL parsing not tested")

    for p in problems:
        print(f"self-test: FAIL: {p}", file=sys.stderr)
    return not problems


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    if flags - {"--self-test", "--no-promtool"} or len(args) > 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = args[0] if args else DASHBOARD
    with open(path, encoding="utf-8") as f:
        try:
            dashboard = json.load(f)
        except json.JSONDecodeError as error:
            print(f"{path}: not JSON: {error}", file=sys.stderr)
            return 1
    exported, recorded = exported_names(), recorded_names()
    promtool = None if "--no-promtool" in flags else shutil.which("promtool")
    if "--self-test" in flags:
        ok = self_test(dashboard, exported, recorded, promtool)
        print(f"check-dashboard self-test: {'passed' if ok else 'FAILED'}")
        return 0 if ok else 1
    failures = check(dashboard, exported, recorded, promtool)
    for failure in failures:
        print(f"{os.path.relpath(path, REPO)}: {failure}", file=sys.stderr)
    if failures:
        return 1
    flat = [p for p in all_panels(dashboard)[0] if isinstance(p, dict) and p.get("type") != "row"]
    queries = sum(len(p.get("targets", [])) for p in flat)
    used = set()
    for p in flat:
        for t in p.get("targets", []):
            for name in metric_names(t["expr"])[0]:
                base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s) and name[: -len(s)] in exported[1]), name)
                used.add(base)
    rabbit = {n for n in used if n in RABBITMQ_METRICS and n not in exported[0]}
    rec = {n for n in used if n in recorded}
    print(f"check-dashboard: {len(flat)} panels, {queries} queries, {len(used)} metrics "
          f"({len(used) - len(rabbit) - len(rec)} the code's, {len(rec)} recorded, {len(rabbit)} RabbitMQ's)"
          f"{', PromQL parsed by promtool' if promtool else ', PromQL not parsed (no promtool)'}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
