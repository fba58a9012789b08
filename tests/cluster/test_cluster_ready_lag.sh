#!/bin/sh
# test_cluster_ready_lag.sh: cluster.ready_max_lag (docs/operations.md,
# "Health and readiness probes"). Two nodes on one prefix; node 2 has a
# metadata map of the smallest size (limits.map_size 1 MiB) and
# ready_max_lag 1. Releases with large manifests pushed through node 1 fill
# node 2's map: node 2 reads the entries from the store but cannot apply
# them, so it is behind by what it read. Its /readyz answers 503 naming the
# lag and the setting, its /metrics shows the lag, its /healthz stays 200,
# and node 1 stays ready. Restarted with a larger map, node 2 applies the
# log and answers 200 again. The lag is made by the map, not by timing:
# nothing here depends on how fast the follower polls.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

W=$TMP/work
mkdir -p "$W"
jqt() { jq -e "$@" >/dev/null 2>&1; }
# readyz N: the status of node N's GET /readyz, its body in $TMP/readyN.
readyz() { curl -s -o "$TMP/ready$1.json" -w '%{http_code}' "$(node_url "$1")/readyz"; }
# until_readyz N WANT SECONDS: polls until node N's /readyz answers WANT.
until_readyz() {
    _end=$(($(date +%s) + $3))
    while :; do
        ST=$(readyz "$1")
        [ "$ST" = "$2" ] && return 0
        [ "$(date +%s)" -ge "$_end" ] && return 1
        sleep 0.2
    done
}

make_log_key log || cluster_finish
new_prefix PREFIX
write_node_config "$TMP/c1.json" "$PREFIX" "$TMP/log.key"
write_node_config "$TMP/c2.json" "$PREFIX" "$TMP/log.key" ',"limits":{"map_size":1048576}'
sed -i 's/"heartbeat_ms":500}/"heartbeat_ms":500,"ready_max_lag":1}/' "$TMP/c2.json"
grep -q '"ready_max_lag":1' "$TMP/c2.json" || not_ok "node 2's config sets ready_max_lag"
start_node 1 "$TMP/c1.json" || cluster_finish
start_node 2 "$TMP/c2.json" || cluster_finish
check "node 2 is ready at first" [ "$(readyz 2)" = 200 ]

# push_big V: a release whose manifest carries a 200 KiB annotation, through node 1.
printf '{}' >"$W/cfg"
head -c 1024 /dev/urandom >"$W/w"
for f in cfg w; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$W/$f" \
        "$(node_url 1)/v2/big/blobs/uploads/?digest=sha256:$(sha256_of "$W/$f")")
    [ "$code" = 201 ] || not_ok "upload $f through node 1 (got $code)"
done
head -c 150000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 200000 >"$W/pad"
push_big() {
    jq -cn --arg w "sha256:$(sha256_of "$W/w")" --arg v "$1" --rawfile pad "$W/pad" \
        '{schemaVersion:2, mediaType:"application/vnd.oci.image.manifest.v1+json",
          artifactType:"application/vnd.mlreg.release.v1+json",
          config:{mediaType:"application/vnd.oci.empty.v1+json",
                  digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
          layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:1024,
                   annotations:{"org.opencontainers.image.title":"w.bin","org.mlreg.kind":"weights"}}],
          annotations:{"org.mlreg.model":"big","org.mlreg.version":$v, "pad":$pad,
                       "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$W/m.json"
    curl -s -o "$TMP/body" -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$W/m.json" "$(node_url 1)/v2/big/manifests/$1"
}
i=0
behind=0
while [ $i -lt 12 ]; do
    i=$((i + 1))
    code=$(push_big "1.$i")
    [ "$code" = 201 ] || { not_ok "push big@1.$i through node 1 (got $code: $(head -c 200 "$TMP/body"))"; break; }
    if until_readyz 2 503 3; then behind=1; break; fi
done
echo "# node 2 not ready after $i pushes; cluster: $(cluster_json 2 | jq -c '{applied,head,lag}')"
check "node 2 falls behind once its map is full (503 after $i pushes)" [ "$behind" = 1 ]
check "... the reason names the lag and cluster.ready_max_lag ($(cat "$TMP/ready2.json"))" \
    jqt '.status == "not ready" and (.reason | test("entries behind \\(more than cluster.ready_max_lag 1\\)"))' \
    "$TMP/ready2.json"
lag=$(cluster_json 2 | jq -r '.lag')
check "... GET /api/v1/cluster of node 2 has lag $lag > 1" [ "$lag" -gt 1 ]
curl -s "$(node_url 2)/metrics" >"$W/metrics2"
check "... /metrics of node 2 shows the same lag" \
    grep -qx "mlreg_cluster_log_lag_entries $lag" "$W/metrics2"
check "... and ready_max_lag" grep -qx 'mlreg_cluster_ready_max_lag 1' "$W/metrics2"
check "... and mlreg_ready 0" grep -qx 'mlreg_ready 0' "$W/metrics2"
check "... and that it still follows the log" grep -qx 'mlreg_cluster_log_following 1' "$W/metrics2"
check "... while its /healthz stays 200" [ "$(curl -s -o /dev/null -w '%{http_code}' "$(node_url 2)/healthz")" = 200 ]
check "... and node 1 stays ready" [ "$(readyz 1)" = 200 ]
check "node 2's log says it is not ready, once" sh -c \
    "[ \"\$(grep -c '^mlreg: not ready: shared log: ' '$(node_log 2)')\" = 1 ]"

# a larger map: node 2 applies what it was missing and is ready again
stop_node 2 || not_ok "node 2 stops"
sed -i 's/"map_size":1048576/"map_size":268435456/' "$TMP/c2.json"
start_node 2 "$TMP/c2.json" || cluster_finish
if until_readyz 2 200 20; then ok "with a larger map node 2 catches up and is ready again"; else
    not_ok "with a larger map node 2 catches up and is ready again (last $ST: $(cat "$TMP/ready2.json"))"; fi
want=$(cluster_json 1 | jq -r '.applied')
check "... having applied all $want entries" wait_applied 2 "$want" 20
check "... lag 0" [ "$(cluster_json 2 | jq -r '.lag')" = 0 ]
cluster_finish
