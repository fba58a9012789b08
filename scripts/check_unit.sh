#!/bin/sh
# check_unit.sh (make lint): installs mlreg with `make install` into a
# scratch DESTDIR and checks the systemd unit it installed: the binary's
# path filled in, `systemd-analyze verify` silent, and `systemd-analyze
# security` rating its exposure "OK" (2.0 or less). Skipped, saying so,
# where systemd-analyze is not installed.
set -eu
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check_unit: systemd-analyze is not installed here; conf/mlreg.service not checked"
    exit 0
fi
d=$(mktemp -d "${TMPDIR:-/tmp}/mlreg-unit.XXXXXX")
trap 'rm -rf "$d"' EXIT INT TERM
make --no-print-directory install DESTDIR="$d" PREFIX=/usr/local >"$d/install.log" 2>&1 ||
    { cat "$d/install.log"; echo "check_unit: make install failed" >&2; exit 1; }
unit=$d/usr/local/lib/systemd/system/mlreg.service
[ -x "$d/usr/local/bin/mlreg" ] || { echo "check_unit: make install put no binary in bin/" >&2; exit 1; }
[ -f "$unit" ] || { echo "check_unit: make install put no unit in lib/systemd/system/" >&2; exit 1; }
grep -q '^ExecStart=/usr/local/bin/mlreg serve ' "$unit" ||
    { echo "check_unit: the installed unit does not start /usr/local/bin/mlreg" >&2; exit 1; }
# verify looks for the binary the unit names: name the one in DESTDIR
sed "s|^ExecStart=/usr/local/bin/mlreg|ExecStart=$d/usr/local/bin/mlreg|" "$unit" >"$d/mlreg.service"
# verify only warns about a value it cannot parse: any word from it fails
if ! systemd-analyze verify "$d/mlreg.service" >"$d/verify.txt" 2>&1 || [ -s "$d/verify.txt" ]; then
    cat "$d/verify.txt"
    echo "check_unit: systemd-analyze verify does not accept conf/mlreg.service" >&2
    exit 1
fi
if ! systemd-analyze security --offline=true --threshold=20 "$d/mlreg.service" >"$d/security.txt" 2>&1; then
    cat "$d/security.txt"
    echo "check_unit: conf/mlreg.service is more exposed than 2.0 (systemd-analyze security)" >&2
    exit 1
fi
echo "check_unit: conf/mlreg.service $(grep -o 'Overall exposure level.*' "$d/security.txt")"
