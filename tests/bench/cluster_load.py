#!/usr/bin/env python3
"""Promotion load against mlreg nodes sharing one log (tests/bench/cluster.sh).

usage: cluster_load.py N_PROMOTIONS WORKERS N_TARGETS URL [URL...]

Worker w promotes, alternately, two releases of its own model bench/m<w>
(pushed beforehand by cluster.sh) into the stage "dev" through node
URL[w mod N_TARGETS] (the first N_TARGETS URLs take the load; every URL
is watched), one request at a time; every promotion moves the
stage, so every one is a log entry. Meanwhile a sampler reads every node's
applied count (GET /api/v1/cluster?nodes=false, no store request) every
few milliseconds and records when each node first showed each count.

Prints one line of key=value pairs: promotions, seconds, per_second,
lag_p50_ms, lag_p99_ms (replication lag: for each log entry, the time from
the first node showing it to the last one showing it), conflicts (409s,
should be 0), errors.
"""
import bisect
import json
import sys
import threading
import time
import urllib.error
import urllib.request


ERRORS = []


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        body = e.read()
        if e.code not in (409,) and len(ERRORS) < 5:
            ERRORS.append("%d %s" % (e.code, body[:300].decode(errors="replace")))
        return e.code


def applied(url):
    with urllib.request.urlopen(url + "/api/v1/cluster?nodes=false", timeout=10) as r:
        return json.load(r)["applied"]


def main():
    total, workers, ntargets = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    urls = sys.argv[4:]
    per = total // workers
    counts = {"ok": 0, "conflict": 0, "error": 0}
    lock = threading.Lock()

    def work(w):
        base = urls[w % ntargets]
        for i in range(per):
            version = "1.0.%d" % (i % 2)
            st = post("%s/api/v1/models/bench/m%d/promotions" % (base, w),
                      {"version": version, "to": "dev", "reason": "bench"})
            with lock:
                if st in (200, 201):
                    counts["ok"] += 1
                elif st == 409:
                    counts["conflict"] += 1
                else:
                    counts["error"] += 1

    first_seen = [dict() for _ in urls]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for n, u in enumerate(urls):
                t = time.monotonic()
                try:
                    a = applied(u)
                except OSError:
                    continue
                seen = first_seen[n]
                if a not in seen:
                    seen[a] = t
            time.sleep(0.005)

    start_applied = max(applied(u) for u in urls)
    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    # let every node catch up, then stop sampling
    deadline = time.monotonic() + 30
    end = max(applied(u) for u in urls)
    while time.monotonic() < deadline and min(applied(u) for u in urls) < end:
        time.sleep(0.01)
    time.sleep(0.05)
    stop.set()
    sampler.join()

    lags = []
    if len(urls) > 1:
        # per node: the counts it showed, in order, and when it first did
        series = [sorted(seen.items()) for seen in first_seen]
        for a in range(start_applied + 1, end + 1):
            times = []
            for ser in series:
                # the first sample at which the node had a or more entries
                i = bisect.bisect_left(ser, (a, -1.0))
                if i < len(ser):
                    times.append(ser[i][1])
            if len(times) == len(urls):
                lags.append((max(times) - min(times)) * 1000)
    lags.sort()

    def pct(p):
        if not lags:
            return 0.0
        return lags[min(len(lags) - 1, int(p / 100.0 * len(lags)))]

    print("promotions=%d seconds=%.2f per_second=%.1f lag_p50_ms=%.1f lag_p99_ms=%.1f "
          "lag_samples=%d conflicts=%d errors=%d" %
          (counts["ok"], secs, counts["ok"] / secs, pct(50), pct(99), len(lags),
           counts["conflict"], counts["error"]))
    for e in ERRORS:
        print("  error: " + e, file=sys.stderr)


if __name__ == "__main__":
    main()
