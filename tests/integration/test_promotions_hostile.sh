#!/bin/sh
# Paged promotion and stage-history listings against the real server
# (docs/promotions-api.md): pages made small with ?limit= walk every entry
# exactly once in order, also while promotions go on; the default and the
# cap of a page; bad ?limit= / ?since= are a clear 400 naming the parameter;
# `mlreg status` follows the pages, so its output is the whole log.
. "$(dirname "$0")/lib.sh"

W=$TMP/work
mkdir -p "$W"
jqt() { jq -e "$@" >/dev/null; }
cat >"$W/config.json" <<EOF
{ "gates": { "staging": [ { "metric": "accuracy", "min": 0.85 } ] } }
EOF
start_server --config "$W/config.json" || finish

blob() {
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$1" \
        "$MLREG_URL/v2/demo/blobs/uploads/?digest=sha256:$(sha256_of "$1")")
    [ "$code" = 201 ] || not_ok "upload $1 (got $code)"
}
push() { # VERSION ACCURACY
    printf '{}' >"$W/cfg"
    printf 'weights of %s' "$1" >"$W/w$1"
    printf '{"dataset":"val","metrics":{"accuracy":%s}}' "$2" >"$W/e$1"
    for f in "$W/cfg" "$W/w$1" "$W/e$1"; do blob "$f"; done
    jq -cn --arg v "$1" --arg w "sha256:$(sha256_of "$W/w$1")" --arg e "sha256:$(sha256_of "$W/e$1")" \
        --argjson ws "$(wc -c <"$W/w$1")" --argjson es "$(wc -c <"$W/e$1")" '{schemaVersion:2,
        mediaType:"application/vnd.oci.image.manifest.v1+json",
        artifactType:"application/vnd.mlreg.release.v1+json",
        config:{mediaType:"application/vnd.oci.empty.v1+json",
                digest:"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", size:2},
        layers:[{mediaType:"application/vnd.mlreg.weights.v1", digest:$w, size:$ws,
                 annotations:{"org.opencontainers.image.title":"w.bin","org.mlreg.kind":"weights"}},
                {mediaType:"application/vnd.mlreg.eval-report.v1+json", digest:$e, size:$es,
                 annotations:{"org.opencontainers.image.title":"eval.json","org.mlreg.kind":"eval-report"}}],
        annotations:{"org.mlreg.model":"demo","org.mlreg.version":$v,
                     "org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}' >"$W/m$1.json"
    code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$W/m$1.json" "$MLREG_URL/v2/demo/manifests/$1")
    [ "$code" = 201 ] || not_ok "push demo@$1 (got $code)"
}
promote() { # VERSION STAGE -> HTTP status
    curl -s -o /dev/null -w '%{http_code}' -X POST \
        --data-binary "{\"version\":\"$1\",\"to\":\"$2\",\"reason\":\"paging test\"}" \
        "$MLREG_URL/api/v1/models/demo/promotions"
}
refusals() { # N: N refused promotions of 0.5 to staging (each one is recorded)
    k=0
    while [ $k -lt "$1" ]; do
        [ "$(promote 0.5 staging)" = 409 ] || not_ok "refused promotion $k"
        k=$((k + 1))
    done
}
push 0.5 0.5
push 1.0 0.9
push 2.0 0.91
push 3.0 0.92
# history of staging: 1.0, 2.0, 3.0, rollback to 2.0, 1.0 again, 3.0 again = 6 entries
for v in 1.0 2.0 3.0; do [ "$(promote $v staging)" = 200 ] || not_ok "promote $v"; done
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$MLREG_URL/api/v1/models/demo/stages/staging/rollback")
[ "$st" = 200 ] || not_ok "rollback (got $st)"
for v in 1.0 3.0; do [ "$(promote $v staging)" = 200 ] || not_ok "promote $v again"; done
refusals 100

# walk PATH FIELD LIMIT [BETWEEN]: follows "next" from since=0 with ?limit=LIMIT,
# concatenating the FIELD entries into $TMP/walk, pages into PAGES; runs the
# shell command BETWEEN after the first page. A page over LIMIT or a next that
# does not move forward is a failure.
walk() {
    since=0
    PAGES=0
    WALK_OK=1
    echo '[]' >"$TMP/walk"
    while [ -n "$since" ] && [ $PAGES -lt 500 ]; do
        st=$(http_status GET "$1?since=$since&limit=$3")
        [ "$st" = 200 ] || { WALK_OK=0; not_ok "page $1 since=$since (got $st)"; return 1; }
        [ "$(jq ".$2 | length <= $3" "$TMP/body")" = true ] || WALK_OK=0
        jq -c --slurpfile w "$TMP/walk" "\$w[0] + .$2" "$TMP/body" >"$TMP/walk.new" &&
            mv "$TMP/walk.new" "$TMP/walk"
        next=$(jq -r '.next // empty' "$TMP/body")
        [ -z "$next" ] || [ "$next" -gt "$since" ] || { WALK_OK=0; return 1; }
        since=$next
        PAGES=$((PAGES + 1))
        [ $PAGES = 1 ] && [ -n "${4:-}" ] && eval "$4"
    done
}
P=/api/v1/models/demo/promotions
H=/api/v1/models/demo/stages/staging/history

# ---- promotions ------------------------------------------------------------------------
expect_status "promotions in one page of 1000" 200 GET "$P?limit=1000"
jq -c .promotions "$TMP/body" >"$TMP/p.all"
N=$(jq length "$TMP/p.all")
check "106 promotions recorded, next is null" jqt '(.promotions | length) == 106 and .next == null' "$TMP/body"
walk "$P" promotions 7
check "pages of limit=7: 16 pages, none over 7 entries" [ "$PAGES/$WALK_OK" = 16/1 ]
check "walking the promotion pages yields every promotion exactly once, in order" \
    [ "$(cat "$TMP/walk")" = "$(cat "$TMP/p.all")" ]
check "promotion seqs increase" jqt '[.[].seq] as $s | $s == ($s | sort) and ($s | unique | length) == length' "$TMP/walk"
expect_status "the default page" 200 GET "$P"
check "the default page holds 100 and names the next" \
    jqt --argjson s "$(jq '.[100].seq' "$TMP/p.all")" '(.promotions | length) == 100 and .next == $s' "$TMP/body"
expect_status "limit=0 is the default page" 200 GET "$P?limit=0"
check "limit=0 holds 100" jqt '.promotions | length == 100' "$TMP/body"
expect_status "limit over the cap is clamped" 200 GET "$P?limit=99999999999999999"
check "a clamped page holds all 106" jqt '(.promotions | length) == 106 and .next == null' "$TMP/body"
expect_status "since past the end is an empty last page" 200 GET "$P?since=9223372036854775807"
check "... with no next" jqt '.promotions == [] and .next == null' "$TMP/body"
# promotions made while a client walks: each entry still once, the new ones at the end
walk "$P" promotions 40 "refusals 3"
check "a walk while 3 promotions arrive sees 109 entries" [ "$(jq length "$TMP/walk")" = 109 ]
check "... each exactly once, in order" jqt '[.[].seq] as $s | $s == ($s | sort) and ($s | unique | length) == 109' "$TMP/walk"
check "... the first 106 being the earlier log" \
    [ "$(jq -c '.[:106]' "$TMP/walk")" = "$(cat "$TMP/p.all")" ]

# ---- stage history -----------------------------------------------------------------------
expect_status "history in one page" 200 GET "$H?limit=1000"
jq -c .history "$TMP/body" >"$TMP/h.all"
check "history holds the 6 moves with their seqs" \
    jqt '(map(.version) == ["1.0","2.0","3.0","2.0","1.0","3.0"]) and all(.[]; .seq | type == "number")' "$TMP/h.all"
walk "$H" history 2
check "history pages of limit=2: 3 pages" [ "$PAGES/$WALK_OK" = 3/1 ]
check "walking the history pages yields every entry exactly once, in order" \
    [ "$(cat "$TMP/walk")" = "$(cat "$TMP/h.all")" ]
walk "$H" history 4 '[ "$(promote 2.0 staging)" = 200 ] || not_ok "promote during the walk"'
check "a history walk while staging moves sees the new entry last" \
    jqt 'length == 7 and .[6].version == "2.0" and ([.[].seq] | . == sort)' "$TMP/walk"

# ---- bad limits and cursors --------------------------------------------------------------
bad() { # NAME PATH PARAM
    got=$(http_status GET "$2")
    if [ "$got" = 400 ] && [ "$(jq -r '.errors[0].code' "$TMP/body")" = UNSUPPORTED ] &&
        grep -qF "?$3=" "$TMP/body"; then ok "$1: 400 naming ?$3="; else
        not_ok "$1: 400 naming ?$3= (got $got: $(head -c 200 "$TMP/body"))"; fi
}
for path in "$P" "$H"; do
    what=${path##*/}
    bad "$what limit=-1" "$path?limit=-1" limit
    bad "$what limit=abc" "$path?limit=abc" limit
    bad "$what limit= (empty)" "$path?limit=" limit
    bad "$what limit=1.5" "$path?limit=1.5" limit
    bad "$what limit=1%00" "$path?limit=1%00" limit
    bad "$what limit=2^64" "$path?limit=18446744073709551616" limit
    bad "$what since=-1" "$path?since=-1" since
    bad "$what since=0x10" "$path?since=0x10" since
    bad "$what since=%2B1" "$path?since=%2B1" since
    bad "$what since= (empty)" "$path?since=" since
    got=$(http_status GET "$path?since=9223372036854775808")
    if [ "$got" = 400 ] && grep -q "since .* is out of range" "$TMP/body"; then
        ok "$what since=2^63 (beyond a JSON integer): 400 out of range"; else
        not_ok "$what since=2^63: 400 (got $got: $(head -c 200 "$TMP/body"))"; fi
done
expect_status "history of an unknown stage is still 400" 400 GET \
    "/api/v1/models/demo/stages/nope/history?limit=2"

# ---- the CLI follows the pages -----------------------------------------------------------
curl -s "$MLREG_URL$P?limit=1000" | jq -c .promotions >"$TMP/p.all"
N=$(jq length "$TMP/p.all")
"$MLREG" status demo --json >"$TMP/status.json" 2>"$TMP/err"
check "status --json has every promotion of every page ($N), in order" \
    [ "$(jq -c .promotions "$TMP/status.json")" = "$(cat "$TMP/p.all")" ]
"$MLREG" status demo >"$TMP/status.txt" 2>"$TMP/err"
check "status counts every promotion" grep -q "^last promotions (10 of $N):" "$TMP/status.txt"
check "status ends with the last promotion" \
    sh -c "grep -A 11 '^last promotions' '$TMP/status.txt' | tail -n 1 | grep -q '^ *$(jq '.[-1].seq' "$TMP/p.all") '"

finish
