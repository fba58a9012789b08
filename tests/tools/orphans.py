#!/usr/bin/env python3
"""orphans.py STORE N TAG [SIZE]: writes N blobs into the fs blob store
STORE (DATA/blobs/sha256), named by their digest, linked nowhere, written
two days ago: what a store left with orphans holds (test_gc.sh,
tests/bench/gc.sh). Blob i is "orphan i of TAG\\n", padded with random
bytes to SIZE bytes when SIZE is longer."""
import hashlib
import os
import sys
import time

store, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
size = int(sys.argv[4]) if len(sys.argv) > 4 else 0
old = time.time() - 2 * 86400
for i in range(n):
    data = b"orphan %d of %s\n" % (i, tag.encode())
    if size > len(data):
        data += os.urandom(size - len(data))
    hexd = hashlib.sha256(data).hexdigest()
    d = os.path.join(store, hexd[:2])
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hexd)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (old, old))
