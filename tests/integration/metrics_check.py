#!/usr/bin/env python3
"""metrics_check.py: checks a GET /metrics answer (test_metrics.sh).

  metrics_check.py format FILE
      FILE is valid Prometheus text format 0.0.4: parsed by
      prometheus_client's parser (an implementation independent of ours),
      and by the strict checks below: every line a HELP, a TYPE or a
      sample; one HELP and one TYPE per family, before its samples; no
      series twice; histogram buckets sorted by le, cumulative, +Inf equal
      to _count; every route label a pattern ("/..." or "unmatched").
  metrics_check.py value FILE NAME [LABEL=VALUE...]
      prints the value of that exact series (0 when absent).
Exit 0 when fine; else the problems on stderr and exit 1.
"""
import math
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    r"^(%s)(?:\{(%s(?:,%s)*)?\})? (\S+)$" % (NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}


def unescape(v):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    return float(s)


def family_of(name, types):
    for fam, typ in types.items():
        for suf in SUFFIXES.get(typ, ("",)):
            if name == fam + suf:
                return fam
    return None


def strict(text):
    problems = []
    helps, types, seen = {}, {}, set()
    samples = []  # (family, name, labels dict, value)
    if not text.endswith("\n"):
        problems.append("the text does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP "):
            parts = line.split(" ", 3)
            if len(parts) < 4 or not re.fullmatch(NAME, parts[2]):
                problems.append("line %d: bad HELP" % n)
            elif parts[2] in helps:
                problems.append("line %d: second HELP for %s" % (n, parts[2]))
            else:
                helps[parts[2]] = parts[3]
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in SUFFIXES:
                problems.append("line %d: bad TYPE: %r" % (n, line))
            elif parts[2] in types:
                problems.append("line %d: second TYPE for %s" % (n, parts[2]))
            elif parts[2] not in helps:
                problems.append("line %d: TYPE of %s before its HELP" % (n, parts[2]))
            else:
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append("line %d: not a sample: %r" % (n, line))
            continue
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        fam = family_of(name, types)
        if fam is None:
            problems.append("line %d: sample %s has no TYPE before it" % (n, name))
            continue
        try:
            v = parse_value(value)
        except ValueError:
            problems.append("line %d: bad value %r" % (n, value))
            continue
        lab = {k: unescape(x) for k, x in LABEL_RE.findall(labels)}
        key = (name, tuple(sorted(lab.items())))
        if key in seen:
            problems.append("line %d: series %s%s twice" % (n, name, lab))
        seen.add(key)
        if types[fam] == "counter" and (v < 0 or math.isnan(v)):
            problems.append("line %d: counter %s is %s" % (n, name, value))
        if "route" in lab and not (lab["route"].startswith("/") or lab["route"] == "unmatched"):
            problems.append("line %d: route label %r is not a pattern" % (n, lab["route"]))
        samples.append((fam, name, lab, v))
    for fam in helps:
        if fam not in types:
            problems.append("family %s has a HELP but no TYPE" % fam)
    problems += check_histograms(samples, types)
    return problems


def check_histograms(samples, types):
    problems = []
    series = {}
    for fam, name, lab, v in samples:
        if types[fam] != "histogram":
            continue
        rest = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
        h = series.setdefault((fam, rest), {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            if "le" not in lab:
                problems.append("%s%s: bucket without le" % (fam, dict(rest)))
                continue
            h["buckets"].append((parse_value(lab["le"]), v))
        elif name == fam + "_sum":
            h["sum"] = v
        else:
            h["count"] = v
    for (fam, rest), h in series.items():
        where = "%s%s" % (fam, dict(rest))
        b = h["buckets"]
        if not b or b[-1][0] != math.inf:
            problems.append("%s: no +Inf bucket last" % where)
            continue
        if [le for le, _ in b] != sorted(le for le, _ in b) or len({le for le, _ in b}) != len(b):
            problems.append("%s: buckets not in increasing le order" % where)
        if any(b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            problems.append("%s: buckets not cumulative: %s" % (where, b))
        if h["count"] is None or h["sum"] is None:
            problems.append("%s: _sum or _count missing" % where)
        elif b[-1][1] != h["count"]:
            problems.append("%s: +Inf bucket %s != _count %s" % (where, b[-1][1], h["count"]))
        elif h["sum"] < 0:
            problems.append("%s: negative _sum" % where)
    return problems


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("format", "value"):
        sys.stderr.write(__doc__)
        return 2
    with open(sys.argv[2], encoding="utf-8") as f:
        text = f.read()
    if sys.argv[1] == "format":
        problems = strict(text)
        try:
            fams = list(text_string_to_metric_families(text))
            if not fams:
                problems.append("prometheus_client found no metric family")
        except Exception as e:  # the parser raises ValueError and friends
            problems.append("prometheus_client refuses it: %s" % e)
        for p in problems:
            sys.stderr.write(p + "\n")
        return 1 if problems else 0
    want = dict(a.split("=", 1) for a in sys.argv[4:])
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == sys.argv[3] and s.labels == want:
                print(int(s.value) if s.value == int(s.value) else s.value)
                return 0
    print(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
