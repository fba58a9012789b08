#!/bin/sh
# test_cluster_lb.sh: three nodes on one bucket prefix behind nginx (Debian
# nginx-light) as a round-robin load balancer, driven only through it, as a
# team's clients would be: the CLI pushes (each file a POST of the whole
# blob, or POST + PATCH + PUT), pulls, promotes, approves, signs, binds an
# image and resolves; skopeo copies an OCI layout in (POST, PATCH, PUT of an
# upload session whose requests land on different nodes: they are forwarded
# to the node holding the session, with the client's X-Request-Id, which both
# nodes log) and back out. Then a node dies and the
# balancer's other nodes carry on.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"
. "$MLREG_ROOT/tests/cluster/lib_cluster.sh"

command -v nginx >/dev/null 2>&1 || { not_ok "nginx is installed (make deps installs nginx-light)"; cluster_finish; }
command -v skopeo >/dev/null 2>&1 || { not_ok "skopeo is installed (make deps installs it)"; cluster_finish; }

make_log_key log || cluster_finish
new_prefix P
GIT=0123456789abcdef0123456789abcdef01234567
ADMIN=$(tok); PUSHER=$(tok); APPROVER=$(tok)
write_node_config "$TMP/c.json" "$P" "$TMP/log.key" ",
  \"gates\":{\"production\":[{\"metric\":\"accuracy\",\"max_drop\":0.02},
                            {\"require\":\"approvals\",\"min\":1}]},
  \"tokens\":[{\"name\":\"admin\",\"sha256\":\"$(hash "$ADMIN")\",\"roles\":[\"admin\"]},
             {\"name\":\"ci\",\"sha256\":\"$(hash "$PUSHER")\",\"roles\":[\"push\",\"read\"]},
             {\"name\":\"reviewer\",\"sha256\":\"$(hash "$APPROVER")\",
              \"roles\":[\"read\",\"approve:production\"]}]"
for n in 1 2 3; do start_node $n "$TMP/c.json" || cluster_finish; done
CLUSTER_TOKEN=$PUSHER # what lib_cluster.sh's reads of the nodes carry

# ---- nginx: round robin over the three nodes, bodies streamed ---------------
NG=$TMP/nginx
mkdir -p "$NG"
LBPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$NG/nginx.conf" <<EOF
daemon off;
pid $NG/nginx.pid;
error_log $NG/error.log;
events {}
http {
    access_log $NG/access.log;
    client_body_temp_path $NG/body; proxy_temp_path $NG/proxy;
    fastcgi_temp_path $NG/fcgi; uwsgi_temp_path $NG/uwsgi; scgi_temp_path $NG/scgi;
    upstream mlreg {
        server $(node_url 1 | sed 's#http://##') max_fails=1 fail_timeout=30s;
        server $(node_url 2 | sed 's#http://##') max_fails=1 fail_timeout=30s;
        server $(node_url 3 | sed 's#http://##') max_fails=1 fail_timeout=30s;
    }
    server {
        listen 127.0.0.1:$LBPORT;
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        location / {
            proxy_pass http://mlreg;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_next_upstream error timeout;
        }
    }
}
EOF
nginx -c "$NG/nginx.conf" -p "$NG" >"$NG/out.log" 2>&1 &
NGINX_PID=$!
LB=http://127.0.0.1:$LBPORT
i=0
until curl -s -o /dev/null "$LB/v2/"; do
    i=$((i + 1)); [ $i -gt 100 ] && { not_ok "nginx answers on $LB"; kill $NGINX_PID; cluster_finish; }
    sleep 0.05
done
ok "nginx balances $LB over the three nodes"
lb_stop() { kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; }

# served_by TEXT N: how many requests naming TEXT node N logged
served_by() { grep -c "$1" "$(node_log "$2")"; }

W=$TMP/work
mkdir -p "$W"
head -c 12582912 /dev/urandom >"$W/model.bin"   # 12 MiB: the CLI's upload crosses a part
head -c 4096 /dev/urandom >"$W/tokenizer.json"
printf '{"metrics":{"accuracy":0.910}}' >"$W/eval1.json"
printf '{"metrics":{"accuracy":0.880}}' >"$W/eval2.json"

# ---- the CLI through the balancer ---------------------------------------------
export MLREG_URL=$LB
run env MLREG_TOKEN="$PUSHER" "$MLREG" push team/lb@1.0.0 --weights "$W/model.bin" \
    --tokenizer "$W/tokenizer.json" --eval-report "$W/eval1.json" --git-sha $GIT
expect_rc "push through the balancer exits 0" 0
run env MLREG_TOKEN="$PUSHER" "$MLREG" push team/lb@1.1.0 --weights "$W/model.bin" \
    --tokenizer "$W/tokenizer.json" --eval-report "$W/eval2.json" --git-sha $GIT
expect_rc "a second push (the weights already there) exits 0" 0
for n in 1 2 3; do
    check "node $n served part of the pushes" [ "$(served_by 'team/lb' $n)" -gt 0 ]
done
run env MLREG_TOKEN="$PUSHER" "$MLREG" pull team/lb@1.1.0 -o "$W/pulled"
expect_rc "pull through the balancer exits 0" 0
check "... byte-identical weights" cmp -s "$W/model.bin" "$W/pulled/model.bin"
check "... and eval report" cmp -s "$W/eval2.json" "$W/pulled/eval2.json"

run env MLREG_TOKEN="$ADMIN" "$MLREG" promote team/lb@1.0.0 --to dev
expect_rc "promote 1.0.0 to dev through the balancer" 0
run env MLREG_TOKEN="$ADMIN" "$MLREG" promote team/lb@1.0.0 --to staging
expect_rc "... then to staging" 0
run env MLREG_TOKEN="$ADMIN" "$MLREG" promote team/lb@1.0.0 --to production
expect_rc "... production without an approval is refused (exit 1)" 1
run env MLREG_TOKEN="$APPROVER" "$MLREG" approve team/lb@1.0.0 --for production
expect_rc "approve through the balancer" 0
run env MLREG_TOKEN="$ADMIN" "$MLREG" promote team/lb@1.0.0 --to production
expect_rc "... then production passes" 0
# resolving right after, through whichever node the balancer picks
for i in 1 2 3; do
    run env MLREG_TOKEN="$PUSHER" "$MLREG" resolve team/lb:production
    expect_rc "resolve team/lb:production right after the promotion (try $i)" 0
    check "... names 1.0.0" grep -q "1.0.0" "$TMP/out"
done
run env MLREG_TOKEN="$APPROVER" "$MLREG" approve team/lb@1.1.0 --for production
expect_rc "approve 1.1.0" 0
run env MLREG_TOKEN="$ADMIN" "$MLREG" promote team/lb@1.1.0 --to production
expect_rc "1.1.0 to production is refused: 0.030 below the baseline 1.0.0, over max_drop 0.02" 1
check "... the refusal names the drop against 1.0.0" grep -q "1.0.0" "$TMP/out" "$TMP/err"
same_answers "production's history is the same on every node" 1 2 \
    /api/v1/models/team/lb/stages/production/history
same_answers "... and on node 3" 1 3 /api/v1/models/team/lb/stages/production/history

# ---- skopeo through the balancer -------------------------------------------------
printf '{"default":[{"type":"insecureAcceptAnything"}]}' >"$TMP/policy.json"
sk() { skopeo --policy "$TMP/policy.json" copy --quiet "$@" 2>>"$TMP/skopeo.log"; }
L=$TMP/layout
oci_release_layout "$L" team/skopeo 6291456
check "skopeo copies an OCI layout in through the balancer" \
    sk --dest-tls-verify=false --dest-creds "ci:$PUSHER" "oci:$L:1.0.0" \
    "docker://127.0.0.1:$LBPORT/team/skopeo:1.0.0"
check "... its upload sessions' requests went to more than one node" \
    [ "$(for n in 1 2 3; do grep -c 'blobs/uploads/[0-9a-f-]\{36\} ' "$(node_log $n)" | sed "s/^[1-9].*/$n/;/^0$/d"; done | wc -l)" -gt 1 ]
check "skopeo copies it back out through the balancer" \
    sk --src-tls-verify=false --src-creds "ci:$PUSHER" \
    "docker://127.0.0.1:$LBPORT/team/skopeo:1.0.0" "oci:$TMP/back:1.0.0"
check "... with the weights byte-identical" \
    cmp -s "$TMP/weights.bin" "$TMP/back/blobs/sha256/$(sha256_of "$TMP/weights.bin")"

# ---- a chunked upload by hand: POST on node 1, PATCH on node 2, PUT on node 3
head -c 3000000 /dev/urandom >"$W/chunk.bin"
D=$(sha256_of "$W/chunk.bin")
loc=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $PUSHER" -X POST \
    "$(node_url 1)/v2/team/chunks/blobs/uploads/" | tr -d '\r' | sed -n 's/^Location: //p')
check "a session opened on node 1 has a Location" [ -n "$loc" ]
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUSHER" -X PATCH \
    -H 'X-Request-Id: lb-forward-1' \
    -H 'Content-Type: application/octet-stream' --data-binary @"$W/chunk.bin" "$(node_url 2)$loc")
check "... takes a PATCH through node 2 (got $st)" [ "$st" = 202 ]
# the request id goes with the forwarded request: both nodes log it
for n in 2 1; do
    i=0
    while ! grep -q "^mlreg: PATCH /v2/team/chunks/blobs/uploads/.* 202 .* id=lb-forward-1$" "$(node_log $n)" &&
        [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
    check "... node $n logs the PATCH with the client's request id" \
        grep -q "^mlreg: PATCH /v2/team/chunks/blobs/uploads/.* 202 .* id=lb-forward-1$" "$(node_log $n)"
done
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUSHER" "$(node_url 3)$loc")
check "... its status through node 3 (got $st)" [ "$st" = 204 ]
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" -X PATCH \
    --data-binary x "$(node_url 3)$loc")
check "... another token's PATCH through node 3 is refused by the owner (got $st)" \
    [ "$st" = 404 ] || [ "$st" = 403 ]
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $PUSHER" -X PUT \
    "$(node_url 3)$loc?digest=sha256:$D")
check "... and is completed by a PUT through node 3 (got $st)" [ "$st" = 201 ]
curl -s -H "Authorization: Bearer $PUSHER" -o "$W/chunk.back" \
    "$(node_url 2)/v2/team/chunks/blobs/sha256:$D"
check "... the blob reads back byte-identical through node 2" cmp -s "$W/chunk.bin" "$W/chunk.back"

# ---- a node dies: the balancer's others carry on -----------------------------------
kill_node 2
run env MLREG_TOKEN="$PUSHER" "$MLREG" push team/lb@1.2.0 --weights "$W/model.bin" \
    --tokenizer "$W/tokenizer.json" --eval-report "$W/eval2.json" --git-sha $GIT
expect_rc "with node 2 killed, a push through the balancer still exits 0" 0
run env MLREG_TOKEN="$PUSHER" "$MLREG" pull team/lb@1.2.0 -o "$W/pulled2"
expect_rc "... and its pull" 0
start_node 2 "$TMP/c.json" "$TMP/node2" || cluster_finish
# the restarted node listens on a new port; ask it directly
wait_applied 2 "$(cluster_json 1 | jq .applied)" 20 ||
    not_ok "the restarted node catches up with node 1"
same_answers "the restarted node answers as node 1" 1 2 /api/v1/models/team/lb \
    /api/v1/models/team/lb/versions/1.2.0 /api/v1/audit/checkpoint

lb_stop
cluster_finish
