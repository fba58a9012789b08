#!/usr/bin/env python3
"""The table of `make bench`: the nine performance targets, from the samples the
bench scripts wrote (tests/bench/run.sh runs them).

usage: report.py SAMPLES JSON_OUT TEXT_OUT

SAMPLES holds one measurement a line, "KEY<TAB>VALUE" (fs.sh, s3.sh,
http.sh, promote.sh, rss.sh; KEYs starting with "meta." are run facts, not
numbers). Each target is one or more checks; a check compares the median of
its samples, or the ratio of its median to the median of its peer measured
in the same run, with the target, and says PASS or MISS (or "info" for
figures the issue asks to report without a target). A check whose samples
are missing (a part skipped with BENCH_PARTS) says "n/a". Prints the table,
writes it to TEXT_OUT and the same as JSON to JSON_OUT (docs/performance.md
describes its fields). Exits 0 whatever the figures: a missed target is a
result, not a failure.
"""
import datetime
import json
import statistics
import sys

MIB = 1024 * 1024


def checks(meta):
    """The checks of each target; SIZE and BIG in MiB from the run."""
    size = meta.get("size_mib", "?")
    big = meta.get("big_mib", "?")
    pif = meta.get("s3.parts_in_flight")
    part = meta.get("s3.part_size_kib")
    s3_bound = None
    s3_bound_text = "parts in flight x part size + 16 MiB (not known: s3 part not run)"
    if pif is not None and part is not None:
        s3_bound = pif * part / 1024 + 16
        s3_bound_text = "<= %d x %.0f MiB + 16 MiB = %.0f MiB" % (pif, part / 1024, s3_bound)
    g = "%s MiB" % size
    c = []

    def add(target, cid, measure, value, kind, op=None, threshold=None, peer=None,
            peer_label=None, target_text=None, unit="s", rate=False):
        c.append(dict(target=target, id=cid, measure=measure, value=value, kind=kind, op=op,
                      threshold=threshold, peer=peer, peer_label=peer_label,
                      target_text=target_text, unit=unit, rate=rate))

    add(1, "1a", "curl monolithic PUT %s -> mlreg serve (fs), time" % g, "fs.curl_put_s",
        "ratio", "<=", 1.15, "fs.cp_s", "durable copy (cp + sync)", "<= 1.15x durable copy",
        rate=True)
    add(1, "1b", "same PUT, speed against docker-registry (its time / mlreg's)",
        "fs.curl_put_s", "speedup", ">=", 3.5, "fs.docker_put_s",
        "curl PUT -> docker-registry 2.8", ">= 3.5x faster", rate=True)
    add(2, "2", "mlreg push of a new %s file, end to end" % g, "fs.push_s", "ratio", "<=", 1.3,
        "fs.cp_s", "durable copy (cp + sync)", "<= 1.3x durable copy", rate=True)
    add(3, "3", "mlreg push again, files unchanged", "fs.push_again_s", "ratio", "<=", 0.05,
        "fs.push_s", "the first push", "<= 0.05x first push")
    add(4, "4", "mlreg pull %s (download, verify, fsync)" % g, "fs.pull_s", "ratio", "<=", 1.3,
        "fs.cp_s", "durable copy (cp + sync)", "<= 1.3x durable copy", rate=True)
    add(5, "5", "curl GET %s -> /dev/null from mlreg serve (fs), rate" % g,
        "fs.curl_get_s", "speedup", ">=", 1.5, "fs.docker_get_s", "curl GET <- docker-registry 2.8",
        ">= 1.5x docker-registry's rate", rate=True)
    add(6, "6a", "mlreg push %s into RGW (s3 backend), end to end" % g, "s3.push_s", "ratio", "<=",
        0.7, "s3.aws_up_s", "aws s3 cp file -> same bucket", "<= 0.7x aws s3 cp", rate=True)
    add(6, "6b", "mlreg pull %s from RGW (s3 backend)" % g, "s3.pull_s", "ratio", "<=", 0.8,
        "s3.aws_down_s", "aws s3 cp bucket -> file", "<= 0.8x aws s3 cp", rate=True)
    add(6, "6c", "curl POST ?digest= %s -> mlreg serve -> RGW (no CLI)" % g, "s3.curl_post_s",
        "ratio", None, None, "s3.aws_up_s", "aws s3 cp file -> same bucket", "reported",
        rate=True)
    add(6, "6d", "mlreg pull %s, storage.redirect_downloads (ranges from RGW)" % g,
        "s3.pull_redirect_s", "ratio", None, None, "s3.aws_down_s", "aws s3 cp bucket -> file",
        "reported", rate=True)
    for proto, info in (("plain", False), ("tls", True)):
        tag = "HTTP" if proto == "plain" else "HTTPS"
        for n, (path, what) in enumerate((("manifest", "manifest GET"),
                                          ("stage", "stage resolve GET"))):
            letter = "abcdefgh"[(4 if info else 0) + 2 * n]
            add(7, "7" + letter, "%s, %s, wrk -t2 -c32" % (what, tag),
                "http.%s.mlreg.%s.rps" % (proto, path), "rate_ratio", None if info else ">=",
                None if info else 0.9, "http.%s.nginx.%s.rps" % (proto, path),
                "nginx-light, 2 workers, same bytes (%s)" % tag,
                "reported" if info else ">= 0.9x nginx", unit="req/s")
            letter = "abcdefgh"[(4 if info else 0) + 2 * n + 1]
            add(7, "7" + letter, "%s p99 latency, %s" % (what, tag),
                "http.%s.mlreg.%s.p99_ms" % (proto, path), "abs", None if info else "<",
                None if info else 2.0, "http.%s.nginx.%s.p99_ms" % (proto, path),
                "nginx p99 (%s)" % tag, "reported" if info else "< 2 ms", unit="ms")
    add(8, "8", "durable gated promotions per second (fs), 16 keep-alive clients",
        "promo.per_second", "abs", ">=", 500.0, "promo.fsync_per_second",
        "4 KiB write + fdatasync per second, 1 thread", ">= 500/s", unit="/s")
    for label, bound, bound_text in (("fs", 16.0, "<= 16 MiB"), ("s3", s3_bound, s3_bound_text)):
        for op_ in ("push", "pull"):
            add(9, "9", "server VmHWM growth, %s %s MiB (%s)" % (op_, big, label),
                "rss.%s.server_%s_growth_kib" % (label, op_), "bound", "<=", bound,
                "rss.%s.server_%s_base_kib" % (label, op_), "server VmHWM when idle",
                bound_text, unit="KiB")
            add(9, "9", "CLI peak RSS growth, %s %s MiB (%s)" % (op_, big, label),
                "rss.%s.cli_%s_growth_kib" % (label, op_), "bound", "<=", 16.0,
                "rss.%s.cli_%s_base_kib" % (label, op_), "CLI peak RSS, same command, 4 KiB file",
                "<= 16 MiB", unit="KiB")
    # number the checks of row 9 (9a, 9b, ...)
    n = 0
    for x in c:
        if x["id"] == "9":
            x["id"] = "9" + "abcdefgh"[n]
            n += 1
    return c


TITLES = {
    1: "curl monolithic PUT to mlreg serve (fs)",
    2: "mlreg push of a new file, end to end",
    3: "mlreg push again, files unchanged",
    4: "mlreg pull (download, verify, fsync)",
    5: "curl GET to /dev/null",
    6: "push and pull through mlreg into Ceph RGW",
    7: "manifest GET and stage resolve against nginx, wrk 2 threads 32 connections",
    8: "durable gated promotions per second (fs)",
    9: "server and CLI peak RSS pushing and pulling a large file",
}


def stats(xs):
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs),
            "samples": xs}


def compare(op, a, b):
    return {"<=": a <= b, "<": a < b, ">=": a >= b, ">": a > b}[op]


def evaluate(chk, samples, size_mib):
    v = stats(samples.get(chk["value"], []))
    p = stats(samples.get(chk["peer"], [])) if chk["peer"] else None
    out = {"id": chk["id"], "measure": chk["measure"], "unit": chk["unit"],
           "value": v, "peer": None, "ratio": None, "ratio_of": None,
           "target": {"op": chk["op"], "value": chk["threshold"], "text": chk["target_text"]},
           "status": "n/a"}
    if p is not None:
        out["peer"] = dict(p, label=chk["peer_label"], unit=chk["unit"])
    if chk["rate"] and size_mib:
        for s in (out["value"], out["peer"]):
            if s is not None and s["median"] > 0:
                s["mib_per_s"] = size_mib / s["median"]
    kind = chk["kind"]
    if v is None or (kind in ("ratio", "speedup", "rate_ratio") and p is None):
        return out
    if kind == "ratio":
        out["ratio"] = v["median"] / p["median"]
        out["ratio_of"] = "value / peer (time)"
        x = out["ratio"]
    elif kind == "speedup":
        out["ratio"] = p["median"] / v["median"]
        out["ratio_of"] = "peer / value (time): how many times faster"
        x = out["ratio"]
    elif kind == "rate_ratio":
        out["ratio"] = v["median"] / p["median"]
        out["ratio_of"] = "value / peer (requests per second)"
        x = out["ratio"]
    elif kind == "bound":
        x = v["median"] / 1024
        if chk["threshold"]:
            out["ratio"] = x / chk["threshold"]
            out["ratio_of"] = "growth / bound"
    else:
        x = v["median"]
        if p is not None and p["median"] > 0:
            out["ratio"] = v["median"] / p["median"]
            out["ratio_of"] = "value / peer"
    if chk["op"] is None:
        out["status"] = "info"
    elif chk["threshold"] is None:
        out["status"] = "n/a"
    else:
        out["status"] = "PASS" if compare(chk["op"], x, chk["threshold"]) else "MISS"
    return out


def fmt(s, unit, rate=False):
    if s is None:
        return "not measured"
    if unit == "KiB":
        return "%.1f MiB [%.1f-%.1f]" % (s["median"] / 1024, s["min"] / 1024, s["max"] / 1024)
    if unit == "s":
        txt = "%.3f s [%.3f-%.3f]" % (s["median"], s["min"], s["max"])
        if rate and "mib_per_s" in s:
            txt += " %.0f MiB/s" % s["mib_per_s"]
        return txt
    if unit == "ms":
        return "%.2f ms [%.2f-%.2f]" % (s["median"], s["min"], s["max"])
    return "%.0f %s [%.0f-%.0f]" % (s["median"], unit, s["min"], s["max"])


def main():
    samples_path, json_path, text_path = sys.argv[1:4]
    samples, meta = {}, {}
    with open(samples_path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            key, _, val = line.partition("\t")
            if key.startswith("meta."):
                meta[key[5:]] = val
            else:
                samples.setdefault(key, []).append(float(val))
    for k, val in meta.items():
        for conv in (int, float):
            try:
                meta[k] = conv(val)
                break
            except ValueError:
                pass
    for k in ("s3.parts_in_flight", "s3.part_size_kib"):
        if k in samples:
            meta[k] = int(samples[k][-1])
    size = meta.get("size_mib")

    results = [evaluate(chk, samples, size) for chk in checks(meta)]
    chk_by_id = {chk["id"]: chk for chk in checks(meta)}
    targets = []
    for t in range(1, 10):
        rows = [r for r, chk in zip(results, checks(meta)) if chk["target"] == t]
        judged = [r["status"] for r in rows if r["status"] != "info"]
        if any(s == "n/a" for s in judged) or not judged:
            status = "n/a"
        elif all(s == "PASS" for s in judged):
            status = "PASS"
        else:
            status = "MISS"
        targets.append({"target": t, "title": TITLES[t], "status": status, "checks": rows})

    lines = []
    head = "== performance targets: %s MiB files (row 9: %s MiB), medians of %s (row 9: %s), %s ==" % (
        meta.get("size_mib", "?"), meta.get("big_mib", "?"), meta.get("reps", "?"),
        meta.get("big_reps", "?"), meta.get("date", ""))
    lines.append(head)
    lines.append("%-4s %-62s %9s  %-34s %s" % ("#", "measure", "ratio", "target", "status"))
    lines.append("       value: median [min-max] of the run | the peer measured in the same run")
    for t in targets:
        lines.append("-- %d. %s: %s" % (t["target"], t["title"], t["status"]))
        for r in t["checks"]:
            chk = chk_by_id[r["id"]]
            ratio = "%.3fx" % r["ratio"] if r["ratio"] is not None else "-"
            lines.append("%-4s %-62s %9s  %-34s %s" % (
                r["id"], chk["measure"], ratio, chk["target_text"], r["status"]))
            detail = "       value: " + fmt(r["value"], chk["unit"], chk["rate"])
            if chk["peer"]:
                detail += " | %s: %s" % (chk["peer_label"],
                                         fmt(r["peer"], chk["unit"], chk["rate"]))
            lines.append(detail)
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    tcounts = {}
    for t in targets:
        tcounts[t["status"]] = tcounts.get(t["status"], 0) + 1
    lines.append("targets: %s; checks: %s" % (
        ", ".join("%d %s" % (n, s) for s, n in sorted(tcounts.items())),
        ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items()))))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(text_path, "w") as f:
        f.write(text)

    doc = {
        "schema": "mlreg-bench/1",
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run": meta,
        "targets": targets,
        "summary": {"targets": tcounts, "checks": counts},
    }
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
