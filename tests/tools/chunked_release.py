#!/usr/bin/env python3
"""chunked_release.py: a release with a chunk index, for the pull tests.

    chunked_release.py URL MODEL FROM_VERSION NEW_VERSION FILE CHUNK_SIZE [MODE]

Takes the manifest of MODEL@FROM_VERSION (pushed by `mlreg push`), finds the
layer whose digest is FILE's, uploads a chunk index of FILE (the format of
include/mlreg/chunk_index.h) and PUTs MODEL@NEW_VERSION: the same layers plus
the index layer, the file layer annotated with the index digest. Prints the
new manifest's digest.

MODE makes a hostile index instead (the manifest still names it by its true
digest, so only its contents are wrong):
  good          (default) the index of FILE
  count         one chunk digest too few
  chunksize     chunkSize 2 GiB (over the format's maximum), chunks to match
  oddsize       chunkSize 3 * 65536 (not a power of two)
  size          "size" one byte more than FILE's
  lie:PATH      chunk digests of the file at PATH (same length as FILE),
                file digest and size still FILE's
"""
import hashlib
import json
import sys
import urllib.request

MT_INDEX = "application/vnd.mlreg.chunk-index.v1+json"


def req(method, url, body=None, headers=None):
    r = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(r) as resp:
        return resp.status, dict(resp.headers), resp.read()


def chunks_of(path, cs):
    out = []
    with open(path, "rb") as f:
        while True:
            b = f.read(cs)
            if not b:
                break
            out.append(hashlib.sha256(b).hexdigest())
    return out


def main():
    url, model, src, dst, path, cs = sys.argv[1:7]
    mode = sys.argv[7] if len(sys.argv) > 7 else "good"
    cs = int(cs)
    data = open(path, "rb").read()
    fdig = "sha256:" + hashlib.sha256(data).hexdigest()
    size = len(data)
    chunks = chunks_of(path, cs)
    if mode == "count":
        chunks = chunks[:-1]
    elif mode == "chunksize":
        cs = 1 << 31
        chunks = chunks_of(path, cs)
    elif mode == "oddsize":
        cs = 3 * 65536
        chunks = chunks_of(path, cs)
    elif mode == "size":
        size += 1
    elif mode.startswith("lie:"):
        chunks = chunks_of(mode[4:], cs)
    elif mode != "good":
        sys.exit("unknown mode " + mode)
    ix = ('{"mediaType":"%s","digest":"%s","size":%d,"chunkSize":%d,"chunks":[%s]}'
          % (MT_INDEX, fdig, size, cs, ",".join('"%s"' % c for c in chunks))).encode()
    idig = "sha256:" + hashlib.sha256(ix).hexdigest()
    st, _, _ = req("POST", "%s/v2/%s/blobs/uploads/?digest=%s" % (url, model, idig), ix,
                   {"Content-Type": "application/octet-stream"})
    assert st == 201, st
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    _, _, body = req("GET", "%s/v2/%s/manifests/%s" % (url, model, src), headers=accept)
    m = json.loads(body)
    m["annotations"]["org.mlreg.version"] = dst
    layers = []
    for layer in m["layers"]:
        layers.append(layer)
        if layer["digest"] == fdig:
            layer["annotations"]["org.mlreg.chunk-index"] = idig
            title = layer["annotations"]["org.opencontainers.image.title"]
            layers.append({"mediaType": MT_INDEX, "digest": idig, "size": len(ix),
                           "annotations": {"org.opencontainers.image.title": title + ".chunks",
                                           "org.mlreg.kind": "chunk-index",
                                           "org.mlreg.chunks-of": fdig}})
    m["layers"] = layers
    out = json.dumps(m, separators=(",", ":")).encode()
    st, h, _ = req("PUT", "%s/v2/%s/manifests/%s" % (url, model, dst), out,
                   {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert st == 201, st
    print("sha256:" + hashlib.sha256(out).hexdigest())


if __name__ == "__main__":
    main()
