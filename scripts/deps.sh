#!/bin/sh
# Installs the Debian packages that mlreg's build and tests need.
# Idempotent: does nothing when every package is present; runs one
# `apt-get update` first when something is missing.
#   sh scripts/deps.sh        build, `make test`
#   sh scripts/deps.sh fuzz   the build's libraries plus clang and its libFuzzer
#                             runtime, for `make fuzz` only
#   sh scripts/deps.sh lint   the build's libraries plus clang-format and
#                             cppcheck, for `make lint`
# The default set also makes the dashboard's browser test runnable:
# Debian's chromium, node and npm (any installed node with npm counts, else
# Debian's nodejs and npm) and tests/browser/node_modules from its lock
# file (`npm ci`, only when playwright-core is not there yet), and
# tests/hf/node_modules (the Hugging Face Hub client of test_hf.sh) likewise.
set -eu
BUILD_PKGS="build-essential pkg-config liblmdb-dev libsodium-dev libmicrohttpd-dev
libjansson-dev libcurl4-openssl-dev libssl-dev libgnutls28-dev"
case ${1:-} in
"") PKGS="$BUILD_PKGS check libsubunit-dev
curl skopeo docker-registry minisign lmdb-utils jq bc iproute2 python3 python3-prometheus-client
ceph-mon ceph-osd radosgw ceph-common awscli nginx-light strace
wrk time
chromium" ;;
fuzz) PKGS="$BUILD_PKGS clang libclang-rt-dev" ;;
lint) PKGS="$BUILD_PKGS clang-format cppcheck" ;;
*) echo "deps.sh: unknown package set $1" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
if [ -z "${1:-}" ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
    echo "deps: installing:$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
if [ -z "${1:-}" ]; then
    browser=$(cd "$(dirname "$0")/../tests/browser" && pwd)
    if [ ! -f "$browser/node_modules/playwright-core/package.json" ]; then
        echo "deps: npm ci in tests/browser"
        (cd "$browser" && npm ci --no-audit --no-fund --ignore-scripts)
    fi
    hf=$(cd "$(dirname "$0")/../tests/hf" && pwd)
    if [ ! -f "$hf/node_modules/@huggingface/hub/package.json" ]; then
        echo "deps: npm ci in tests/hf"
        (cd "$hf" && npm ci --no-audit --no-fund --ignore-scripts)
    fi
fi
