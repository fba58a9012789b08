#!/usr/bin/env python3
"""Gated promotions per second against one `mlreg serve` (tests/bench/promote.sh).

usage: promote_load.py URL WORKERS SECONDS
       promote_load.py --fsync DIR SECONDS

Worker w holds one keep-alive connection and promotes, alternately, the
releases 1.0.0 and 1.0.1 of its own model bench/p<w> (pushed beforehand,
each with an eval report) into the stage "dev", one request at a time, for
SECONDS, starting with the one the stage does not hold. Every promotion moves the stage past its gates, so every one is an
audit entry committed before the answer. An answer other than 200 is an
error: the first few are printed on stderr and the exit status is 1.

Prints one line of key=value pairs: promotions, seconds, per_second,
p50_ms, p99_ms, errors.

With --fsync: the floor the disk sets on one-at-a-time durable commits,
4 KiB written at offset 0 of a file in DIR then fdatasync, in a loop for
SECONDS; prints per_second.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def fsync_rate(directory, seconds):
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = os.urandom(4096)
    n = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            n += 1
    finally:
        os.close(fd)
        os.unlink(path)
    print("per_second=%.1f" % (n / (time.monotonic() - t0)))


def main():
    if sys.argv[1] == "--fsync":
        fsync_rate(sys.argv[2], float(sys.argv[3]))
        return 0
    url = urllib.parse.urlsplit(sys.argv[1])
    workers, seconds = int(sys.argv[2]), float(sys.argv[3])
    lock = threading.Lock()
    latencies = []
    errors = []
    start = threading.Barrier(workers + 1)
    deadline = [0.0]

    def work(w):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        mine = []
        path = "/api/v1/models/bench/p%d/promotions" % w
        # start with the release the stage does not hold (an earlier run
        # may have left either one there)
        conn.request("GET", "/api/v1/models/bench/p%d/stages/dev" % w)
        r = conn.getresponse()
        data = r.read()
        held = json.loads(data).get("version") if r.status == 200 else None
        i = 1 if held == "1.0.0" else 0
        start.wait()
        while time.monotonic() < deadline[0]:
            body = json.dumps({"version": "1.0.%d" % (i % 2), "to": "dev", "reason": "bench"})
            t = time.monotonic()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
                status, data = 0, str(e).encode()
            if status == 200:
                mine.append(time.monotonic() - t)
                i += 1
            else:
                with lock:
                    errors.append("%d %s" % (status, data[:300].decode(errors="replace")))
                if status == 0:
                    time.sleep(0.01)
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    deadline[0] = t0 + seconds
    start.wait()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    latencies.sort()

    def pct(p):
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(p / 100.0 * len(latencies)))] * 1000

    print("promotions=%d seconds=%.3f per_second=%.1f p50_ms=%.2f p99_ms=%.2f errors=%d" %
          (len(latencies), secs, len(latencies) / secs, pct(50), pct(99), len(errors)))
    for e in errors[:5]:
        print("  error: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
