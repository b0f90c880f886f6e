#!/usr/bin/env python3
"""deploy/grafana checked without Grafana: Grafana is not packaged here.

  provisioning  the data-source and dashboard-provider YAML (PyYAML, Debian's python3-yaml) has
                the fields Grafana's provisioning reads; every data-source uid a field names is
                provisioned with the right type; exemplars go to the Tempo data source by the
                label ordertrace writes the trace id in
  dashboards    each JSON has the dashboard model's required structure (title, uid,
                schemaVersion, panels with unique ids, known types, gridPos within 24 columns and
                not overlapping, datasource {type, uid} of a provisioned data source, targets
                with unique refIds, a well-formed templating list, no undefined $variable)
  live          a real ordertrace on free loopback ports, fed the spans of realistic orders:
                every metric name in every PromQL expression (panels, template variables, the
                Tempo data source's trace-to-metrics queries) is a family its /metrics exports
                and docs/metrics.md lists; every label an expression matches, groups by,
                label_replace reads or a legend prints is on that family's series; each
                histogram a panel draws exemplars for carries them under the provisioned
                label, and that trace is served at /api/traces/{id}; the Tempo panels' TraceQL
                (only when ordertrace answers TraceQL: until then SKIP)
  promtool      Prometheus 2.42's parser reads every expression (`promtool check rules` on
                them as recording rules; SKIP without promtool)
  self-test     the checks fail on a bogus metric name, a bogus label, a histogram without
                _bucket, a duplicate panel id, a panel past column 24, an unprovisioned data
                source uid, a repeated refId, an unescaped $ in provisioning and a broken
                expression

One PASS/FAIL/SKIP line per check; the exit status is non-zero when any check failed.

Usage: grafana_test.py path/to/ordertrace     (python3 standard library and python3-yaml)
"""

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

try:
    import yaml
except ImportError:
    print("grafana_test: PyYAML missing (apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(2)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from ordertrace_harness import (HOST, Checks, Ordertrace, export_json,  # noqa: E402
                                free_ports, http_request, otlp_span, post_otlp_json,
                                resource_spans)
GRAFANA = os.path.join(ROOT, "deploy", "grafana")
DASHBOARD_DIR = os.path.join(GRAFANA, "dashboards")
DATASOURCES_YAML = os.path.join(GRAFANA, "provisioning", "datasources", "ordertrace.yaml")
PROVIDERS_YAML = os.path.join(GRAFANA, "provisioning", "dashboards", "ordertrace.yaml")
METRICS_DOC = os.path.join(ROOT, "docs", "metrics.md")


# ---------------------------------------------------------------------------------------------
# Provisioning

def expand_env(value):
    """Grafana's provisioning expands $NAME and ${NAME} from the environment; $$ is a `$`."""
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"\$\$|\$\{(\w+)\}|\$(\w+)",
                      lambda m: "$" if m.group(0) == "$$" else
                      os.environ.get(m.group(1) or m.group(2), ""), value)
    return value


def env_references(value):
    """The environment variables a provisioning value would expand (none but $$ meant)."""
    if isinstance(value, dict):
        return [r for v in value.values() for r in env_references(v)]
    if isinstance(value, list):
        return [r for v in value for r in env_references(v)]
    if isinstance(value, str):
        return [m.group(1) or m.group(2)
                for m in re.finditer(r"\$\$|\$\{(\w+)\}|\$(\w+)", value) if m.group(0) != "$$"]
    return []


def check_datasources(doc):
    """Returns (problems, {uid: type}) for a parsed data-source provisioning file."""
    problems = []
    if not isinstance(doc, dict) or doc.get("apiVersion") != 1:
        return ["apiVersion is not 1"], {}
    sources = doc.get("datasources")
    if not isinstance(sources, list) or not sources:
        return ["no datasources list"], {}
    uids = {}
    for ds in sources:
        for field in ("name", "type", "uid", "url"):
            if not isinstance(ds.get(field), str) or not ds[field]:
                problems.append(f"a data source lacks {field}: {ds}")
        uid = ds.get("uid", "")
        if uid in uids:
            problems.append(f"uid {uid} twice")
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", uid or ""):
            problems.append(f"uid {uid!r}: Grafana wants at most 40 of [A-Za-z0-9._-]")
        uids[uid] = ds.get("type")
        refs = env_references(ds)
        if refs:
            problems.append(f"{uid}: expands environment variables {refs} (write $$ for a $)")
    for ds in sources:
        jd = ds.get("jsonData") or {}
        uid = ds.get("uid")
        if ds.get("type") == "prometheus":
            dests = jd.get("exemplarTraceIdDestinations")
            if not isinstance(dests, list) or not dests:
                problems.append(f"{uid}: no exemplarTraceIdDestinations")
            for d in dests or []:
                if not d.get("name"):
                    problems.append(f"{uid}: an exemplar destination without name")
                if uids.get(d.get("datasourceUid")) != "tempo":
                    problems.append(f"{uid}: exemplars go to {d.get('datasourceUid')!r}, "
                                    "not a provisioned tempo data source")
        if ds.get("type") == "tempo":
            t2m = jd.get("tracesToMetrics") or {}
            if uids.get(t2m.get("datasourceUid")) != "prometheus":
                problems.append(f"{uid}: tracesToMetrics.datasourceUid "
                                f"{t2m.get('datasourceUid')!r} is not a provisioned prometheus")
            tags = t2m.get("tags")
            if not isinstance(tags, list) or not all(isinstance(t, dict) and t.get("key")
                                                    for t in tags):
                problems.append(f"{uid}: tracesToMetrics.tags is not a list of {{key, value}}")
            queries = t2m.get("queries")
            if not isinstance(queries, list) or not queries or not all(
                    isinstance(q, dict) and q.get("name") and q.get("query") for q in queries):
                problems.append(f"{uid}: tracesToMetrics.queries is not a list of {{name, query}}")
            if (jd.get("serviceMap") or {}).get("datasourceUid"):
                problems.append(f"{uid}: serviceMap is on (ordertrace exports no service graph)")
            if (jd.get("nodeGraph") or {}).get("enabled") is not False:
                problems.append(f"{uid}: nodeGraph.enabled is not false")
            if (jd.get("search") or {}).get("hide") is not False:
                problems.append(f"{uid}: search.hide is not false")
    return problems, uids


def check_providers(doc):
    problems = []
    if not isinstance(doc, dict) or doc.get("apiVersion") != 1:
        return ["apiVersion is not 1"]
    providers = doc.get("providers")
    if not isinstance(providers, list) or not providers:
        return ["no providers list"]
    for p in providers:
        if not p.get("name"):
            problems.append("a provider without name")
        if p.get("type") != "file":
            problems.append(f"provider {p.get('name')}: type is not file")
        path = (p.get("options") or {}).get("path")
        if not isinstance(path, str) or not path:
            problems.append(f"provider {p.get('name')}: no options.path")
        elif not (path.startswith("/") or re.fullmatch(r"\$\{?\w+\}?(/.*)?", path)):
            problems.append(f"provider {p.get('name')}: path {path} is neither absolute nor "
                            "from the environment")
    return problems


# ---------------------------------------------------------------------------------------------
# Dashboards: structure

# Panel types Grafana 10 ships.
PANEL_TYPES = {
    "row", "timeseries", "stat", "gauge", "bargauge", "table", "text", "barchart", "piechart",
    "heatmap", "histogram", "state-timeline", "status-history", "traces", "nodeGraph", "logs",
    "news", "dashlist", "alertlist", "annolist", "candlestick", "trend", "xychart", "geomap",
    "canvas", "flamegraph",
}
VARIABLE_TYPES = {"query", "custom", "textbox", "constant", "datasource", "interval", "adhoc"}
GRAFANA_BUILTINS = re.compile(r"__\w+|\d+")  # $__rate_interval..., and regex backrefs ($1)
VARIABLE_REF = re.compile(r"\$\{(\w+)(?:[.:][^}]*)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")
TEMPO_QUERY_TYPES = {"traceql", "traceqlSearch", "serviceMap", "upload", "traceId"}


def all_panels(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        for inner in p.get("panels", []) if p.get("type") == "row" else []:
            yield inner


def variable_names(dashboard):
    return {v.get("name") for v in (dashboard.get("templating") or {}).get("list", [])}


def check_dashboard_structure(dashboard, datasources):
    """Returns the problems of one dashboard's JSON model; datasources is {uid: type}."""
    problems = []
    for field, kind in (("title", str), ("uid", str), ("schemaVersion", int), ("panels", list)):
        if not isinstance(dashboard.get(field), kind) or isinstance(dashboard.get(field), bool):
            problems.append(f"{field} missing or not {kind.__name__}")
    if problems:
        return problems
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard["uid"]):
        problems.append(f"uid {dashboard['uid']!r}: at most 40 of [A-Za-z0-9_-]")
    if dashboard["schemaVersion"] != 39:
        problems.append(f"schemaVersion {dashboard['schemaVersion']}, expected 39")
    if "id" in dashboard and dashboard["id"] is not None:
        problems.append("id is set (provisioned dashboards are matched by uid; leave id null)")

    def check_ds(ref, where):
        if not isinstance(ref, dict) or set(ref) - {"type", "uid"} or not ref.get("uid"):
            problems.append(f"{where}: datasource {ref!r} is not {{type, uid}}")
        elif datasources.get(ref["uid"]) != ref.get("type"):
            problems.append(f"{where}: datasource {ref} is not a provisioned data source")

    variables = (dashboard.get("templating") or {}).get("list")
    if not isinstance(variables, list):
        problems.append("templating.list is not a list")
        variables = []
    names = set()
    for v in variables:
        name = v.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
            problems.append(f"variable name {name!r}")
        if name in names:
            problems.append(f"variable {name} twice")
        names.add(name)
        if v.get("type") not in VARIABLE_TYPES:
            problems.append(f"variable {name}: type {v.get('type')!r}")
        if v.get("type") == "query":
            check_ds(v.get("datasource"), f"variable {name}")
            query = v.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            if not isinstance(query, str) or not query:
                problems.append(f"variable {name}: no query")
        if "current" in v and not isinstance(v["current"], dict):
            problems.append(f"variable {name}: current is not an object")

    ids = set()
    boxes = []
    for p in all_panels(dashboard):
        pid = p.get("id")
        where = f"panel {pid} {p.get('title')!r}"
        if not isinstance(pid, int) or isinstance(pid, bool):
            problems.append(f"{where}: id is not an int")
        elif pid in ids:
            problems.append(f"{where}: id used twice")
        ids.add(pid)
        if p.get("type") not in PANEL_TYPES:
            problems.append(f"{where}: unknown type {p.get('type')!r}")
        if not isinstance(p.get("title"), str):
            problems.append(f"{where}: no title")
        g = p.get("gridPos")
        if not isinstance(g, dict) or not all(
                isinstance(g.get(k), int) and not isinstance(g.get(k), bool)
                for k in ("x", "y", "w", "h")):
            problems.append(f"{where}: gridPos is not {{x, y, w, h}} ints")
        elif g["x"] < 0 or g["y"] < 0 or g["w"] < 1 or g["h"] < 1 or g["x"] + g["w"] > 24:
            problems.append(f"{where}: gridPos {g} outside the 24 columns")
        else:
            for other_where, o in boxes:
                if (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and
                        g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]):
                    problems.append(f"{where}: gridPos {g} overlaps {other_where}")
            boxes.append((where, g))
        if p.get("type") in ("row", "text"):
            continue
        check_ds(p.get("datasource"), where)
        targets = p.get("targets")
        if not isinstance(targets, list) or not targets:
            problems.append(f"{where}: no targets")
            continue
        refs = set()
        for t in targets:
            ref = t.get("refId")
            if not isinstance(ref, str) or not ref or ref in refs:
                problems.append(f"{where}: refId {ref!r} missing or repeated")
            refs.add(ref)
            check_ds(t.get("datasource", p.get("datasource")), f"{where} target {ref}")
            ds_type = (t.get("datasource") or p.get("datasource") or {}).get("type")
            if ds_type == "prometheus" and not (isinstance(t.get("expr"), str) and t["expr"]):
                problems.append(f"{where} target {ref}: no expr")
            if ds_type == "tempo":
                problems += [f"{where} target {ref}: {x}" for x in check_tempo_target(t)]
    for text in json_strings(dashboard):
        for m in VARIABLE_REF.finditer(text):
            name = m.group(1) or m.group(2) or m.group(3)
            if name not in names and not GRAFANA_BUILTINS.fullmatch(name):
                problems.append(f"${name} is not a variable of the dashboard (in {text[:80]!r})")
    return problems


def json_strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in ("description", "title"):
                yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)
    elif isinstance(value, str):
        yield value


def check_tempo_target(t):
    problems = []
    qt = t.get("queryType")
    if qt not in TEMPO_QUERY_TYPES:
        return [f"queryType {qt!r}"]
    if qt == "traceql":
        q = t.get("query", "")
        if not isinstance(q, str) or not re.fullmatch(r"\s*\{.*\}\s*", q, re.S):
            problems.append(f"TraceQL {q!r} is not a spanset filter {{ ... }}")
        elif q.count("{") != q.count("}") or q.count("(") != q.count(")"):
            problems.append(f"TraceQL {q!r}: unbalanced brackets")
    if qt == "traceqlSearch":
        filters = t.get("filters")
        if not isinstance(filters, list) or not filters:
            problems.append("traceqlSearch without filters")
        for f in filters or []:
            if not f.get("id") or f.get("scope") not in ("resource", "span", "intrinsic",
                                                         "unscoped"):
                problems.append(f"filter {f}: needs id and scope resource|span|intrinsic|unscoped")
            if f.get("operator") not in ("=", "!=", "=~", "!~", ">", "<", ">=", "<="):
                problems.append(f"filter {f}: operator {f.get('operator')!r}")
    return problems


def traceql_of(target, values):
    """The TraceQL a Tempo target sends, its $variables replaced from values."""
    if target.get("queryType") == "traceql":
        q = target["query"]
    else:
        parts = []
        for f in target["filters"]:
            value = f["value"][0] if isinstance(f.get("value"), list) else f.get("value")
            scope = "" if f["scope"] == "unscoped" else (
                "" if f["scope"] == "intrinsic" else f["scope"])
            parts.append(f'{scope}.{f["tag"]}{f["operator"]}"{value}"' if scope else
                         f'{f["tag"]}{f["operator"]}"{value}"')
        q = "{" + " && ".join(parts) + "}"
    return VARIABLE_REF.sub(lambda m: values.get(m.group(1) or m.group(2) or m.group(3), ""), q)


# ---------------------------------------------------------------------------------------------
# PromQL: the metric names and labels an expression uses

# Prometheus 2.42's functions and aggregations.
FUNCTIONS = set("""
abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp
clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month
deg delta deriv exp floor histogram_count histogram_fraction histogram_quantile histogram_sum
holt_winters hour idelta increase irate label_join label_replace last_over_time ln log10 log2
max_over_time min_over_time minute month pi predict_linear present_over_time
quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_desc sqrt
stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year
sum min max avg group stddev stdvar count count_values bottomk topk quantile
""".split())
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"bool", "and", "or", "unless", "offset", "atan2", "start", "end", "Inf", "NaN",
            "inf", "nan"}
# Grafana's interval macros, given a value so the expression parses.
GRAFANA_INTERVALS = re.compile(r"\$\{?(__rate_interval|__interval|__range)(_ms|_s)?\}?")
TOKEN = re.compile(r"""
  (?P<space>\s+)
| (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
| (?P<dur>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)
| (?P<num>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
| (?P<ident>[A-Za-z_][A-Za-z0-9_:]*)
| (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@:])
""", re.X)


class PromQL:
    """What one expression uses: selectors [(name, [(label, op, value)])], labels it groups or
    joins on, labels label_replace/label_join read and write, and parse errors."""

    def __init__(self, expr):
        self.expr = expr
        self.selectors = []
        self.grouping = set()
        self.reads = set()
        self.writes = set()
        self.errors = []
        self._parse(GRAFANA_INTERVALS.sub("5m", expr))

    def _tokens(self, text):
        out, pos = [], 0
        while pos < len(text):
            m = TOKEN.match(text, pos)
            if not m:
                self.errors.append(f"cannot read {text[pos:pos + 20]!r}")
                return out
            if m.lastgroup != "space":
                out.append((m.lastgroup, m.group()))
            pos = m.end()
        return out

    def _parse(self, text):
        outside = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', text)
        if "$" in outside:
            self.errors.append("a $variable outside a string")
            text = re.sub(r"\$\{?\w+\}?", "1", text)
        toks = self._tokens(text)
        frames = []  # [function name or None, argument index]
        aggregation = None  # `sum by (x) (...)`: the aggregation whose ( comes after by (...)
        i = 0
        while i < len(toks):
            kind, val = toks[i]
            nxt = toks[i + 1][1] if i + 1 < len(toks) else None
            if kind == "ident" and val in AGGREGATIONS and nxt in ("by", "without"):
                aggregation = val
                i += 1
                continue
            if kind == "ident" and val in GROUPING:
                i += 1
                if i < len(toks) and toks[i][1] == "(":
                    i += 1
                    while i < len(toks) and toks[i][1] != ")":
                        if toks[i][0] == "ident":
                            self.grouping.add(toks[i][1])
                        elif toks[i][1] != ",":
                            self.errors.append(f"{val} (...) holds {toks[i][1]!r}")
                        i += 1
                    i += 1
                elif val not in ("group_left", "group_right"):
                    self.errors.append(f"{val} without a label list")
                continue
            if kind == "ident" and nxt == "(":
                if val not in FUNCTIONS:
                    self.errors.append(f"unknown function {val}")
                frames.append([val, 0])
                i += 2
                continue
            if kind == "ident" and val in KEYWORDS:
                i += 1
                continue
            if kind == "ident" or (kind == "op" and val == "{"):
                name = val if kind == "ident" else None
                if kind == "ident":
                    i += 1
                matchers = []
                if i < len(toks) and toks[i][1] == "{":
                    i = self._matchers(toks, i + 1, matchers)
                if name is None:
                    names = [v for (l, op, v) in matchers if l == "__name__" and op == "="]
                    if not names:
                        self.errors.append("a selector without a metric name")
                        continue
                    name = names[0]
                self.selectors.append((name, matchers))
                continue
            if val == "[":
                while i < len(toks) and toks[i][1] != "]":
                    i += 1
            elif val == "(":
                frames.append([aggregation, 0])
                aggregation = None
            elif val == ")":
                if not frames:
                    self.errors.append("unbalanced )")
                else:
                    frames.pop()
            elif val == "," and frames:
                frames[-1][1] += 1
            elif kind == "str" and frames and frames[-1][0] in ("label_replace", "label_join",
                                                                  "count_values"):
                fn, arg = frames[-1]
                label = val[1:-1]
                if fn == "count_values" and arg == 0:
                    self.writes.add(label)
                elif fn != "count_values" and arg == 1:
                    self.writes.add(label)
                elif (fn == "label_replace" and arg == 3) or (fn == "label_join" and arg >= 3):
                    self.reads.add(label)
            i += 1
        if frames:
            self.errors.append("unbalanced (")

    def _matchers(self, toks, i, out):
        while i < len(toks) and toks[i][1] != "}":
            if (i + 2 < len(toks) and toks[i][0] == "ident" and
                    toks[i + 1][1] in ("=", "!=", "=~", "!~") and toks[i + 2][0] == "str"):
                out.append((toks[i][1], toks[i + 1][1], toks[i + 2][1][1:-1]))
                i += 3
                if i < len(toks) and toks[i][1] == ",":
                    i += 1
            else:
                self.errors.append(f"bad label matcher at {toks[i][1]!r}")
                return len(toks)
        return i + 1


# ---------------------------------------------------------------------------------------------
# /metrics: families, their series' labels, exemplars

class Exposition:
    """Families of a Prometheus text (0.0.4) exposition and the label names of their series."""

    SAMPLE = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s")

    def __init__(self, text):
        self.types = {}
        self.labels = {}
        self.samples = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(None, 3)
                self.types[name] = kind
                self.labels.setdefault(name, set())
                self.samples.setdefault(name, 0)
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            m = self.SAMPLE.match(line)
            family = self.family_of_sample(m.group(1)) if m else None
            if family is None:
                continue
            self.samples[family] += 1
            for label in re.findall(r'([A-Za-z_]\w*)="', m.group(2) or ""):
                if label != "le":
                    self.labels[family].add(label)

    def family_of_sample(self, name):
        if name in self.types and self.types[name] not in ("histogram", "summary"):
            return name
        for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                              ("_count", ("histogram", "summary"))):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and self.types.get(base) in kinds:
                return base
        return None


def openmetrics_exemplars(text):
    """{family: [{label: value}]} of the exemplars on histogram buckets."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"([A-Za-z_:][\w:]*)_bucket\{[^}]*\}\s+\S+\s+#\s+\{([^}]*)\}", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            out.setdefault(m.group(1), []).append(labels)
    return out


# Labels Prometheus adds to every series it scrapes.
SCRAPE_LABELS = {"job", "instance"}


def check_expression(expr, exposition, documented, legend=""):
    """Problems of one PromQL expression against a live exposition and the documented names."""
    q = PromQL(expr)
    problems = [f"{expr!r}: {e}" for e in q.errors]
    available = set(SCRAPE_LABELS) | q.writes
    families = []
    for name, matchers in q.selectors:
        family = exposition.family_of_sample(name)
        if family is None:
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            why = ("a histogram: use _bucket, _sum or _count"
                   if exposition.types.get(name) == "histogram" else
                   "not a family ordertrace's /metrics exports")
            problems.append(f"{name} in {expr!r}: {why}")
            if base != name and exposition.types.get(base) not in (None, "histogram"):
                problems.append(f"{name}: {base} is a {exposition.types[base]}, not a histogram")
            continue
        if name not in documented and family not in documented:
            problems.append(f"{name} is not listed in docs/metrics.md")
        families.append(family)
        own = exposition.labels[family] | SCRAPE_LABELS | {"__name__"}
        if name.endswith("_bucket"):
            own |= {"le"}
        available |= own
        for label, _, _ in matchers:
            if label not in own:
                if exposition.samples[family] == 0:
                    problems.append(f"{family} has no series to check label {label} against")
                else:
                    problems.append(f"{family} has no label {label} (it has "
                                    f"{sorted(exposition.labels[family])}) in {expr!r}")
    legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend or ""))
    for label in sorted(q.grouping | q.reads | legend_labels):
        if label not in available:
            empty = [f for f in families if exposition.samples[f] == 0]
            problems.append(f"label {label} is on none of {sorted(set(families))}"
                            + (f" ({empty} have no series)" if empty else "") + f" in {expr!r}")
    return problems, families


def documented_names():
    with open(METRICS_DOC) as f:
        return set(re.findall(r"`([a-z_:][a-z0-9_:]*)`", f.read()))


def dashboard_expressions(dashboard):
    """(where, expr, legend) of every PromQL expression: targets and template variables."""
    for p in all_panels(dashboard):
        for t in p.get("targets", []) or []:
            ds = t.get("datasource") or p.get("datasource") or {}
            if ds.get("type") == "prometheus":
                yield (f"panel {p.get('id')} {p.get('title')!r} {t.get('refId')}", t["expr"],
                       t.get("legendFormat", ""))
    for v in (dashboard.get("templating") or {}).get("list", []):
        if v.get("type") != "query":
            continue
        query = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query")
        m = re.fullmatch(r"\s*label_values\((?:(.*),)?\s*(\w+)\s*\)\s*", query, re.S)
        if m and m.group(1):
            # label_values(selector, label): the label must be on the selector's series.
            yield (f"variable {v['name']}", m.group(1), "{{" + m.group(2) + "}}")
        elif m:
            yield (f"variable {v['name']}", "{__name__=~\".+\"}", "")
        else:
            query = re.sub(r"^\s*query_result\((.*)\)\s*$", r"\1", query, flags=re.S)
            yield (f"variable {v['name']}", query, "")


def variable_samples(dashboard):
    """A value for each variable, so that the expressions can be read."""
    return {v["name"]: "x" for v in (dashboard.get("templating") or {}).get("list", [])}


def check_dashboard_metrics(dashboard, exposition, documented):
    problems, used = [], {}
    for where, expr, legend in dashboard_expressions(dashboard):
        found, families = check_expression(expr, exposition, documented, legend)
        problems += [f"{where}: {p}" for p in found]
        for f in families:
            used.setdefault(f, []).append(where)
    return problems, used


def promtool_problems(expressions):
    """Prometheus 2.42's own parser on each expression, as recording rules for `promtool check
    rules` (offline). None when promtool is not installed."""
    promtool = os.environ.get("PROMTOOL", "promtool")
    if subprocess.run(["sh", "-c", f"command -v {promtool}"], capture_output=True).returncode:
        return None
    rules = [{"record": f"grafana_check:expr_{i}", "expr": expr}
             for i, expr in enumerate(expressions)]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}, f)
    try:
        run = subprocess.run([promtool, "check", "rules", f.name], capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if run.returncode == 0:
        return []
    # promtool's line names the file position and quotes the expression.
    return [(run.stdout + run.stderr).strip()]


def promql_for_prometheus(expr, variables):
    """The expression as Grafana sends it: interval macros and the dashboard's $variables
    (which stand in regex matchers) replaced."""
    expr = GRAFANA_INTERVALS.sub("5m", expr)
    return VARIABLE_REF.sub(
        lambda m: ".+" if (m.group(1) or m.group(2) or m.group(3)) in variables else m.group(0),
        expr)


# ---------------------------------------------------------------------------------------------
# A real ordertrace, fed realistic orders

def request(port, method, path, headers=None, body=None):
    status, _, data = http_request(port, method, path, headers, body)
    return status, data


class Order:
    """The spans of one order (one trace), as the Alexandrite services would send them."""

    def __init__(self, trace_hex, order_id, partner=None):
        self.trace = trace_hex
        self.order_id = order_id
        self.partner = partner
        self.spans = {}  # service -> [span]
        self.n = 0

    def span(self, service, name, start_s, seconds, kind="internal", error=None, **attrs):
        self.n += 1
        attrs = {"order_id": self.order_id, **attrs}
        if self.partner:
            attrs["partner_id"] = self.partner
        s = otlp_span(self.trace, f"{self.n:016x}", name, int(start_s * 1e9), attrs,
                      end_ns=int((start_s + seconds) * 1e9), kind=kind,
                      parent_span_id=f"{1:016x}" if self.n > 1 else None,
                      status_code=2 if error else None, status_message=error)
        self.spans.setdefault(service, []).append(s)
        return s

    def status(self, service, name, at, new, prev=None, seconds=0.2, **attrs):
        if prev:
            attrs["prev_status"] = prev
        return self.span(service, name, at, seconds, "server", new_status=new, event_version=1,
                         **attrs)

    def message(self, publisher, consumer, queue, message_id, at, delay, kind):
        self.span(publisher, f"mq.publish.{kind}", at, 0.01, "producer", queue=queue,
                  message_id=message_id)
        self.span(consumer, f"mq.consume.{kind}", at + delay, 0.05, "consumer", queue=queue,
                  message_id=message_id)


def realistic_orders(now):
    """A partner order through to CLOSED, a direct order stuck after SUBMITTED with a failed
    price calculation, and a partner order that skipped FILE_UPLOADED."""
    h, m = 3600.0, 60.0
    a = Order("5b8efff798038103d269b633813fc60c", "A-1001", partner="P-7")
    t0 = now - 4 * h
    a.status("shop-api", "shop.init", t0, "INITIATED")
    a.status("shop-api", "shop.upload", t0 + 4 * m, "FILE_UPLOADED", "INITIATED")
    a.status("shop-api", "shop.submit", t0 + 9 * m, "SUBMITTED", "FILE_UPLOADED")
    a.message("shop-api", "mes-api", "price.requests", "msg-a-1", t0 + 9 * m, 1.7, "price")
    a.status("mes-api", "mes.price.start", t0 + 10 * m, "PRICE_CALCULATION_STARTED", "SUBMITTED")
    a.span("mes-api", "mes.price.calc", t0 + 10 * m, 14 * m, "internal", complexity_class="high",
           polygon_count=184000, new_status="PRICE_CALCULATED",
           prev_status="PRICE_CALCULATION_STARTED", event_version=1)
    a.message("mes-api", "crm-api", "order.status", "msg-a-2", t0 + 24 * m, 0.4, "status")
    a.status("crm-api", "crm.approve.manufacturing", t0 + 50 * m, "MANUFACTURING_APPROVED",
             "PRICE_CALCULATED", operator_id="op-17")
    a.status("mes-api", "mes.manufacturing.start", t0 + 70 * m, "MANUFACTURING_STARTED",
             "MANUFACTURING_APPROVED", operator_id="op-3")
    a.status("mes-api", "mes.manufacturing.complete", t0 + 3 * h, "MANUFACTURING_COMPLETED",
             "MANUFACTURING_STARTED", operator_id="op-3")
    a.status("mes-api", "mes.packaging", t0 + 3 * h + 20 * m, "PACKAGING",
             "MANUFACTURING_COMPLETED")
    a.status("mes-api", "mes.shipped", t0 + 3 * h + 40 * m, "SHIPPED", "PACKAGING")
    a.status("crm-api", "crm.close", t0 + 3 * h + 50 * m, "CLOSED", "SHIPPED")

    b = Order("0af7651916cd43dd8448eb211c80319c", "A-1002")
    t0 = now - 2 * h
    b.status("shop-api", "shop.init", t0, "INITIATED")
    b.status("shop-api", "shop.upload", t0 + 50 * m, "FILE_UPLOADED", "INITIATED")
    b.status("shop-api", "shop.submit", t0 + 52 * m, "SUBMITTED", "FILE_UPLOADED")
    b.message("shop-api", "mes-api", "price.requests", "msg-b-1", t0 + 52 * m, 35.0, "price")
    b.span("mes-api", "mes.price.calc", t0 + 53 * m, 30.0, "internal", error="calculator timed out",
           complexity_class="medium", error_code="CALC_TIMEOUT")

    c = Order("4bf92f3577b34da6a3ce929d0e0e4736", "A-1003", partner="P-8")
    t0 = now - 30 * m
    c.status("shop-api", "shop.init", t0, "INITIATED")
    c.status("shop-api", "shop.submit", t0 + 2 * m, "SUBMITTED", "INITIATED")
    c.span("shop-api", "db.orders.insert", t0 + 1, 0.004, "client", **{"db.system": "sqlite"})
    return [a, b, c]


def heartbeat(now):
    """A span per service that ends now: each service's watermark is current, so deadlines that
    passed are judged (docs/gaps.md)."""
    hb = Order("9" * 32, "")
    for service in ("shop-api", "crm-api", "mes-api"):
        s = hb.span(service, "mes.dashboard.orders" if service == "mes-api" else "health",
                    now - 0.5, 0.3, "client")
        s["attributes"] = []
    return hb


def export(otlp_port, orders):
    by_service = {}
    for o in orders:
        for service, spans in o.spans.items():
            by_service.setdefault(service, []).extend(spans)
    body = export_json(resource_spans(svc, spans, scope="grafana-test")
                       for svc, spans in by_service.items())
    status, _, data = post_otlp_json(otlp_port, body)
    return status, data


def start_ordertrace(binary, work):
    grpc, otlp, api, dead = free_ports(4)
    # Alertmanager on a closed port: the alertmanager_* families exist (posts fail).
    return Ordertrace(binary, work, f"data_dir: {work}/data\nlog_level: warn\n"
                      f"alertmanager:\n  url: http://{HOST}:{dead}\n",
                      ports=(grpc, otlp, api), ready_timeout=30, stop_timeout=15).start()


def scrape(api, openmetrics=False):
    headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
    status, body = request(api, "GET", "/metrics", headers)
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    return body.decode()


# ---------------------------------------------------------------------------------------------

def load_dashboards():
    out = {}
    for name in sorted(os.listdir(DASHBOARD_DIR)):
        if name.endswith(".json"):
            with open(os.path.join(DASHBOARD_DIR, name)) as f:
                out[name] = json.load(f)
    return out


def static_checks(c):
    with open(DATASOURCES_YAML) as f:
        datasources_doc = yaml.safe_load(f)
    problems, uids = check_datasources(datasources_doc)
    c.check("provisioning: data sources", not problems, "; ".join(problems))
    c.check("provisioning: uids ordertrace-prometheus and ordertrace-tempo",
            uids.get("ordertrace-prometheus") == "prometheus" and
            uids.get("ordertrace-tempo") == "tempo", f"{uids}")
    bogus = copy.deepcopy(datasources_doc)
    for ds in bogus["datasources"]:
        if ds["type"] == "prometheus":
            ds["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] = "no-such-uid"
        if ds["type"] == "tempo":
            ds["jsonData"]["tracesToMetrics"]["queries"][0]["query"] = "rate(x{$__tags}[5m])"
    problems = check_datasources(bogus)[0]
    c.check("self-test: exemplars to an unprovisioned uid, and an unescaped $, fail the check",
            any("no-such-uid" in p for p in problems) and
            any("environment variables ['__tags']" in p for p in problems), f"{problems}")
    with open(PROVIDERS_YAML) as f:
        problems = check_providers(yaml.safe_load(f))
    c.check("provisioning: dashboard provider", not problems, "; ".join(problems))

    dashboards = load_dashboards()
    c.check("dashboards: ordertrace-orders, -red and -self present",
            {"ordertrace-orders.json", "ordertrace-red.json",
             "ordertrace-self.json"} <= set(dashboards), f"{sorted(dashboards)}")
    seen_uids = {}
    for name, d in dashboards.items():
        problems = check_dashboard_structure(d, uids)
        c.check(f"dashboard {name}: JSON model", not problems, "; ".join(problems))
        c.check(f"dashboard {name}: uid unique", d.get("uid") not in seen_uids,
                f"also in {seen_uids.get(d.get('uid'))}")
        seen_uids[d.get("uid")] = name

    expressions = [promql_for_prometheus(expr, variable_names(d))
                   for d in dashboards.values() for _, expr, _ in dashboard_expressions(d)]
    tempo = next(ds for ds in datasources_doc["datasources"] if ds["type"] == "tempo")
    for q in expand_env(tempo["jsonData"]["tracesToMetrics"])["queries"]:
        expressions.append(q["query"].replace("$__tags", 'service_name="x"'))
    problems = promtool_problems(expressions)
    if problems is None:
        c.skip("promtool: Prometheus 2.42 parses every expression", "promtool not installed")
    else:
        c.check(f"promtool: Prometheus 2.42 parses every expression ({len(expressions)})",
                not problems, "; ".join(problems))
        problems = promtool_problems(["sum(rate(stage_duration_seconds_bucket[5m])"])
        c.check("self-test: promtool refuses an unbalanced expression", bool(problems))
    return datasources_doc, dashboards, uids


def self_test(c, dashboards, uids, exposition, documented):
    """The checks are able to fail."""
    orders = dashboards["ordertrace-orders.json"]

    def first_prom_target(d):
        for p in all_panels(d):
            for t in p.get("targets", []):
                if "expr" in t:
                    return t
        raise AssertionError("no PromQL target")

    bogus = copy.deepcopy(orders)
    first_prom_target(bogus)["expr"] = "sum(rate(stage_duration_secondz_bucket[5m]))"
    problems, _ = check_dashboard_metrics(bogus, exposition, documented)
    c.check("self-test: a bogus metric name fails the check",
            any("stage_duration_secondz_bucket" in p for p in problems), f"{problems}")

    bogus = copy.deepcopy(orders)
    first_prom_target(bogus)["expr"] = ("histogram_quantile(0.95, sum by (le, from_statuz) "
                                        "(rate(stage_duration_seconds_bucket[5m])))")
    problems, _ = check_dashboard_metrics(bogus, exposition, documented)
    c.check("self-test: a label the family lacks fails the check",
            any("from_statuz" in p for p in problems), f"{problems}")

    bogus = copy.deepcopy(orders)
    first_prom_target(bogus)["expr"] = 'sum(order_errors_total{servic="mes-api"})'
    problems, _ = check_dashboard_metrics(bogus, exposition, documented)
    c.check("self-test: a matcher on a missing label fails the check",
            any("servic" in p for p in problems), f"{problems}")

    bogus = copy.deepcopy(orders)
    first_prom_target(bogus)["expr"] = "histogram_quantile(0.9, stage_duration_seconds)"
    problems, _ = check_dashboard_metrics(bogus, exposition, documented)
    c.check("self-test: a histogram without _bucket fails the check",
            any("_bucket" in p for p in problems), f"{problems}")

    bogus = copy.deepcopy(orders)
    panels = [p for p in all_panels(bogus) if p["type"] != "row"]
    panels[1]["id"] = panels[0]["id"]
    panels[2]["gridPos"] = {"x": 20, "y": 500, "w": 8, "h": 4}
    panels[3]["datasource"] = {"type": "prometheus", "uid": "not-provisioned"}
    panels[4]["targets"].append(dict(panels[4]["targets"][0]))
    problems = check_dashboard_structure(bogus, uids)
    for what, needle in (("a duplicate panel id", "id used twice"),
                         ("a panel past column 24", "outside the 24 columns"),
                         ("an unprovisioned data source", "not a provisioned data source"),
                         ("a repeated refId", "missing or repeated")):
        c.check(f"self-test: {what} fails the structure check",
                any(needle in p for p in problems), f"{problems}")


def live_checks(c, binary, datasources_doc, dashboards, uids):
    documented = documented_names()
    work = tempfile.mkdtemp(prefix="grafana_test.")
    server = start_ordertrace(binary, work)
    otlp, api = server.otlp_http, server.api
    try:
        now = time.time()
        orders = realistic_orders(now)
        status, body = export(otlp, orders + [heartbeat(now)])
        c.check("live: the orders' spans are accepted", status == 200, f"{status} {body[:200]}")

        # Poll until each family whose labels a dashboard uses has series (the gaps need the
        # services' watermarks to pass their deadlines).
        deadline = time.time() + 30
        while True:
            exposition = Exposition(scrape(api))
            waiting = sorted({p for d in dashboards.values()
                              for p in check_dashboard_metrics(d, exposition, documented)[0]
                              if "no series" in p})
            if not waiting or time.time() > deadline:
                break
            export(otlp, [heartbeat(time.time())])
            time.sleep(1)
        print("INFO families without series after the feed: "
              f"{sorted(f for f, n in exposition.samples.items() if n == 0) or 'none'}",
              flush=True)

        for name, d in dashboards.items():
            problems, used = check_dashboard_metrics(d, exposition, documented)
            c.check(f"live: {name}: every PromQL metric and label is exported "
                    f"({len(used)} families)", not problems, "\n  " + "\n  ".join(problems))

        tempo = next(ds for ds in datasources_doc["datasources"] if ds["type"] == "tempo")
        t2m = expand_env(tempo["jsonData"]["tracesToMetrics"])
        tags = ", ".join(f'{t.get("value") or t["key"]}="mes-api"' for t in t2m["tags"])
        problems = []
        for q in t2m["queries"]:
            expr = q["query"].replace("${__tags}", tags).replace("$__tags", tags)
            problems += check_expression(expr, exposition, documented)[0]
        c.check("live: the Tempo data source's trace-to-metrics queries", not problems,
                "; ".join(problems))

        om = scrape(api, openmetrics=True)
        exemplars = openmetrics_exemplars(om)
        prom = next(ds for ds in datasources_doc["datasources"] if ds["type"] == "prometheus")
        label_names = [d["name"] for d in prom["jsonData"]["exemplarTraceIdDestinations"]]
        drawn = set()
        for d in dashboards.values():
            for p in all_panels(d):
                for t in p.get("targets", []):
                    if t.get("exemplar"):
                        drawn |= set(re.findall(r"(\w+)_bucket", t["expr"]))
        c.check("live: panels draw exemplars for histograms", bool(drawn))
        for family in sorted(drawn):
            found = [e for e in exemplars.get(family, []) if any(n in e for n in label_names)]
            if not c.check(f"live: {family} exemplars carry {label_names}", bool(found),
                           f"exemplars: {exemplars.get(family)}"):
                continue
            trace = found[-1][label_names[0]]
            status, _ = request(api, "GET", f"/api/traces/{trace}")
            c.check(f"live: {family}'s exemplar trace {trace} is served", status == 200,
                    f"{status}")
        c.check("live: /api/echo answers the Tempo data source's health check",
                request(api, "GET", "/api/echo")[0] == 200)

        values = {"order_id": "A-1002"}
        for name, d in dashboards.items():
            for p in all_panels(d):
                for t in p.get("targets", []):
                    if (t.get("datasource") or {}).get("type") != "tempo":
                        continue
                    q = traceql_of(t, values)
                    status, body = request(api, "GET", "/api/search?" + urllib.parse.urlencode(
                        {"q": q, "limit": t.get("limit", 20)}))
                    what = f"live: {name} panel {p['title']!r}: TraceQL {q}"
                    if status == 400 and b"not supported" in body:
                        c.skip(what, "ordertrace does not answer TraceQL yet")
                        continue
                    try:
                        traces = json.loads(body).get("traces", [])
                    except ValueError:
                        traces = None
                    c.check(what + " finds order A-1002's trace",
                            status == 200 and any(x.get("traceID", "").lstrip("0") ==
                                                  orders[1].trace.lstrip("0")
                                                  for x in traces or []),
                            f"{status} {body[:300]}")
        self_test(c, dashboards, uids, exposition, documented)
    finally:
        server.stop()
        if c.failed:
            print(f"server log in {work}", flush=True)
        else:
            subprocess.run(["rm", "-rf", work], check=False)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    c = Checks()
    datasources_doc, dashboards, uids = static_checks(c)
    live_checks(c, sys.argv[1], datasources_doc, dashboards, uids)
    print(c.summary("grafana_test"), flush=True)
    return c.exit_code()


if __name__ == "__main__":
    sys.exit(main())
