#!/bin/sh
# test_cli_tokens.sh: API tokens end to end. `mlreg token new` makes the
# tokens and the config entries; the server admits them by hash; the CLI
# sends them from --token, --token-file or MLREG_TOKEN (a token file is read
# strictly: one line, bounded, a regular file; --token with --token-file is
# a usage error). Checks: 401 and 403 exit 1 with
# clear messages and move nothing; a push-only token cannot promote; the
# pusher's own approval does not count for an `approvals` gate, another
# approver's does; the token text never appears in any output of the CLI
# or in the server log.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

W=$TMP/work
mkdir -p "$W"
ALL=$TMP/all-output # every stdout and stderr of the CLI, for the leak check
: >"$ALL"

run() {
    "$@" >"$TMP/out" 2>"$TMP/err"
    RC=$?
    cat "$TMP/out" "$TMP/err" >>"$ALL"
}
err_has() {
    if grep -Eq -- "$2" "$TMP/err"; then ok "$1"; else
        not_ok "$1 (no line matching '$2' in stderr:)"; sed 's/^/  | /' "$TMP/err"; fi
}
jqt() { jq -e "$@" >/dev/null; }
stage_is() { # NAME STAGE WANT (read with the read-only token)
    got=$(MLREG_TOKEN=$T_READ "$MLREG" resolve "vision/clf:$2" 2>/dev/null | cut -d' ' -f1)
    [ -n "$got" ] || got=empty
    if [ "$got" = "$3" ]; then ok "$1"; else not_ok "$1 (want $3, got $got)"; fi
}

# ---- token new ---------------------------------------------------------------------
# newtok VAR NAME ROLE...: the token into $VAR, its config entry appended to
# $W/entries (one JSON object per line).
newtok() {
    var=$1; name=$2; shift 2
    args=""
    for r in "$@"; do args="$args --role $r"; done
    # shellcheck disable=SC2086
    "$MLREG" token new --name "$name" $args >"$W/tok.out" 2>"$W/tok.err" ||
        { not_ok "token new --name $name"; cat "$W/tok.err"; }
    eval "$var=\$(sed -n 1p \"\$W/tok.out\")"
    sed -n 2p "$W/tok.out" >>"$W/entries"
}
: >"$W/entries"
newtok T_CI ci-export push read approve:production
newtok T_ALICE alice approve:production read
newtok T_BOB bob "approve:production@vision" read
newtok T_PROMO promoter promote:staging "promote:production@vision" read
newtok T_READ reader read
newtok T_STAGING stager promote:staging read

check "token new prints mlreg_ and 43 base64url characters" \
    sh -c "echo '$T_CI' | grep -Eq '^mlreg_[A-Za-z0-9_-]{43}\$'"
check "two tokens differ" test "$T_CI" != "$T_ALICE"
check "the config entry has name, the token's sha256 and the roles" \
    jqt --arg h "$(printf '%s' "$T_CI" | sha256sum | cut -d' ' -f1)" \
    '.name == "ci-export" and .sha256 == $h and .roles == ["push","read","approve:production"]' "$(sed -n 1p "$W/entries" >"$W/e1"; echo "$W/e1")"
run "$MLREG" token new --name x --role pusher
expect_rc "token new with an unknown role is a usage error" 2
run "$MLREG" token new --name x --role promote:
expect_rc "token new with promote: and no stage is a usage error" 2
run "$MLREG" token new --name x --role "read@Vision/"
expect_rc "token new with an uppercase prefix is a usage error" 2
run "$MLREG" token new --name x --role "promote:production@vision/"
expect_rc "token new with a prefix that ends in '/' is a usage error" 2
check "... saying to write the model name instead" \
    grep -q "model prefix 'vision/' is not a model name; write 'vision': a prefix grants the model vision and every model under vision/" "$TMP/err"
run "$MLREG" token new --name x
expect_rc "token new without a role is a usage error" 2
run "$MLREG" token new --role read
expect_rc "token new without a name is a usage error" 2

{
    printf '{\n  "gates": { "production": [ { "require": "approvals", "min": 1 } ] },\n  "tokens": [\n'
    sed '$!s/$/,/' "$W/entries"
    printf '  ]\n}\n'
} >"$W/config.json"
check "the config built from token new output is valid JSON" jqt . "$W/config.json"
start_server --config "$W/config.json" || finish

printf '{"metrics":{"accuracy":0.93}}\n' >"$W/eval.json"
head -c 2048 /dev/urandom >"$W/weights.bin"
PUSH="push vision/clf@1.0 --weights $W/weights.bin --eval-report $W/eval.json --git-sha 0123456789abcdef"

# ---- 401: no token, wrong token ------------------------------------------------------
# shellcheck disable=SC2086
run env -u MLREG_TOKEN "$MLREG" $PUSH
expect_rc "push without a token exits 1" 1
err_has "the 401 message says how to authenticate" 'authentication required \(set MLREG_TOKEN or --token-file\)'
# shellcheck disable=SC2086
run "$MLREG" $PUSH --token mlreg_wrongwrongwrong
expect_rc "push with a wrong token exits 1" 1
err_has "a wrong token gets the same message" 'authentication required \(set MLREG_TOKEN or --token-file\)'
run "$MLREG" status vision/clf --token "two words"
expect_rc "a token with a space is refused locally (exit 2)" 2
check "the refusal does not echo the token" sh -c "! grep -q 'two words' '$TMP/err'"

# ---- --token and MLREG_TOKEN both work -------------------------------------------------
# shellcheck disable=SC2086
run "$MLREG" $PUSH --token "$T_CI"
expect_rc "push with --token exits 0" 0
D1=$(tail -n 1 "$TMP/out")
run env MLREG_TOKEN="$T_CI" "$MLREG" push vision/clf@1.1 --weights "$W/weights.bin" \
    --eval-report "$W/eval.json" --git-sha 0123456789abcdef
expect_rc "push with MLREG_TOKEN exits 0" 0
run "$MLREG" status vision/clf --token="$T_READ"
expect_rc "--token=VALUE works too" 0
run env MLREG_TOKEN=mlreg_wrongwrongwrong "$MLREG" status vision/clf --token "$T_READ"
expect_rc "--token wins over MLREG_TOKEN" 0

# ---- --token-file ----------------------------------------------------------------------
TF=$W/tokens
mkdir -p "$TF"
(umask 077
printf '%s\n' "$T_READ" >"$TF/read"
printf '%s' "$T_READ" >"$TF/read-no-newline"
printf '%s\n' "$T_CI" >"$TF/ci"
printf '%s\n' "$T_READ" >"$TF/open"
: >"$TF/empty"
printf '\n' >"$TF/newline-only"
printf '%s\n%s\n' "$T_READ" "$T_CI" >"$TF/two-lines"
printf '%s\n\n' "$T_READ" >"$TF/blank-second-line"
head -c 5000 /dev/zero | tr '\0' a >"$TF/huge"
printf 'two words\n' >"$TF/spaces"
printf '%s\r\n' "$T_READ" >"$TF/crlf")
chmod 644 "$TF/open"
run "$MLREG" status vision/clf --token-file "$TF/read"
expect_rc "--token-file FILE (token and a newline) works" 0
check "... without a warning for a 0600 file" test ! -s "$TMP/err"
run "$MLREG" status vision/clf --token-file="$TF/read-no-newline"
expect_rc "--token-file=FILE without a trailing newline works" 0
run "$MLREG" push vision/clf@1.2 --weights "$W/weights.bin" --eval-report "$W/eval.json" \
    --git-sha 0123456789abcdef --token-file "$TF/ci"
expect_rc "push with --token-file exits 0" 0
run env MLREG_TOKEN=mlreg_wrongwrongwrong "$MLREG" status vision/clf --token-file "$TF/read"
expect_rc "--token-file wins over MLREG_TOKEN" 0
run "$MLREG" status vision/clf --token-file "$TF/open"
expect_rc "a token file other users may read still works" 0
err_has "... with a warning to chmod it" 'warning: --token-file .*open is readable by every user'
run "$MLREG" status vision/clf --token-file "$TF/read" --token "$T_READ"
expect_rc "--token-file with --token is a usage error (exit 2)" 2
err_has "... saying to give the token one way" '--token and --token-file'
run "$MLREG" status vision/clf --token "$T_READ" --token-file "$TF/read"
expect_rc "--token with --token-file, the other way round, exits 2 too" 2
run "$MLREG" status vision/clf --token-file "$TF/read" --token-file "$TF/read"
expect_rc "--token-file twice is a usage error" 2
run "$MLREG" status vision/clf --token-file
expect_rc "--token-file without a value is a usage error" 2
# argv_after_error NAME ARGS...: a --token value later in argv than a usage
# error is zeroed all the same. mlreg's stderr is a pipe already full, so it
# blocks writing its message, after the token pass, while its command line
# (/proc/PID/cmdline: the argv strings as they are now) is read.
argv_after_error() {
    name=$1
    shift
    rm -f "$W/full-pipe"
    mkfifo "$W/full-pipe"
    exec 3<>"$W/full-pipe"
    head -c 65536 /dev/zero >&3
    "$MLREG" status vision/clf "$@" --token "$T_READ" >/dev/null 2>&3 &
    pid=$!
    i=0
    until case $(cat "/proc/$pid/wchan" 2>/dev/null) in *pipe_write*) true ;; *) false ;; esac ||
        [ $i -gt 100 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    if tr '\0' '\n' <"/proc/$pid/cmdline" | grep -q "$T_READ"; then
        not_ok "$name: a later --token is zeroed in argv"
    else ok "$name: a later --token is zeroed in argv"; fi
    kill "$pid"
    wait "$pid" 2>/dev/null
    exec 3<&-
}
argv_after_error "--token-file twice" --token-file "$TF/read" --token-file "$TF/read"
argv_after_error "an unusable --token" --token=
# bad FILE WANT-MESSAGE: refused with exit 2, nothing sent, the token not echoed
bad_file() {
    run "$MLREG" status vision/clf --token-file "$1"
    expect_rc "--token-file $(basename "$1") is refused (exit 2)" 2
    err_has "... saying why" "$2"
}
bad_file "$TF/empty" 'is empty'
bad_file "$TF/newline-only" 'is empty'
bad_file "$TF/two-lines" 'more than one line'
bad_file "$TF/blank-second-line" 'more than one line'
bad_file "$TF/huge" 'larger than a token'
bad_file "$TF/spaces" 'does not hold a usable token'
check "... without echoing what the file holds" sh -c "! grep -q 'two words' '$TMP/err'"
bad_file "$TF/crlf" 'does not hold a usable token'
bad_file "$TF/missing" 'No such file'
bad_file "$TF" 'not a regular file'
bad_file /dev/null 'not a regular file'
# A FIFO with no writer: opening it must not wait for one.
mkfifo "$TF/fifo"
run timeout 5 "$MLREG" status vision/clf --token-file "$TF/fifo"
expect_rc "--token-file on a FIFO without a writer is refused at once (exit 2, not a hang)" 2
err_has "... saying it is not a regular file" 'fifo is not a regular file'
check "the token files are left as they were" sh -c \
    "test \"\$(cat '$TF/read')\" = '$T_READ' && test \"\$(cat '$TF/read-no-newline')\" = '$T_READ'"
run "$MLREG" --help
check "mlreg --help shows --token-file and MLREG_TOKEN" \
    sh -c "grep -q -- '--token-file FILE' '$TMP/out' && grep -q MLREG_TOKEN '$TMP/out'"

# ---- 403: a valid token without the role -------------------------------------------------
run env MLREG_TOKEN="$T_CI" "$MLREG" promote vision/clf@1.0 --to staging
expect_rc "a push-only token cannot promote: exit 1" 1
err_has "the 403 message says forbidden and names the role" 'forbidden: .*promote:staging'
stage_is "the forbidden promotion moved nothing" staging empty
run env MLREG_TOKEN="$T_CI" "$MLREG" promote vision/clf@1.0 --to staging --dry-run
expect_rc "a push-only token cannot even dry-run a promotion" 1
run env MLREG_TOKEN="$T_READ" "$MLREG" approve vision/clf@1.0 --for production
expect_rc "a read-only token cannot approve: exit 1" 1
err_has "the approve refusal names approve:production" 'forbidden: .*approve:production'
run env MLREG_TOKEN="$T_STAGING" "$MLREG" promote vision/clf@1.0 --to production
expect_rc "a promote:staging token cannot promote to production" 1
stage_is "production is still empty" production empty

# ---- promotions with the promoter's token ----------------------------------------------------
run env MLREG_TOKEN="$T_PROMO" "$MLREG" promote vision/clf@1.0 --to staging
expect_rc "the promoter promotes 1.0 to staging" 0
stage_is "staging holds 1.0" staging 1.0
run env MLREG_TOKEN="$T_READ" "$MLREG" resolve vision/clf:staging --json
check "the promoter's token name is recorded as who moved the stage" jqt '.by == "promoter"' "$TMP/out"

# ---- approvals: the pusher's own does not count -------------------------------------------
run env MLREG_TOKEN="$T_PROMO" "$MLREG" promote vision/clf@1.0 --to production
expect_rc "production without approvals is refused" 1
grep -E '^  .*approvals.* FAIL ' "$TMP/out" >/dev/null && ok "the approvals rule line says FAIL" ||
    not_ok "the approvals rule line says FAIL ($(cat "$TMP/out"))"

# ci-export pushed 1.0: its own approval would not count, so it is refused.
run env MLREG_TOKEN="$T_CI" "$MLREG" approve vision/clf@1.0 --for production
expect_rc "the pusher's own approval is refused: exit 1" 1
err_has "the refusal says why" 'you pushed vision/clf@1.0; an approval must come from someone else'
check "the refusal prints nothing on stdout" [ ! -s "$TMP/out" ]
run env MLREG_TOKEN="$T_PROMO" "$MLREG" promote vision/clf@1.0 --to production
expect_rc "the pusher's own approval does not count: still refused" 1
grep -E '^  .*approvals.* FAIL ' "$TMP/out" >/dev/null && ok "the approvals rule still says FAIL" ||
    not_ok "the approvals rule still says FAIL ($(cat "$TMP/out"))"
stage_is "production is still empty after the pusher's approval" production empty
run env MLREG_TOKEN="$T_ALICE" "$MLREG" approve vision/clf@1.0 --for production --comment "looks good"
expect_rc "alice approves 1.0 for production" 0
check "approve prints the approver" grep -q 'approved vision/clf@1.0 .* for production as alice' "$TMP/out"
run env MLREG_TOKEN="$T_ALICE" "$MLREG" approve vision/clf@1.0 --for production
expect_rc "approving twice is fine" 0
check "the second approval says already approved" grep -q '^already approved' "$TMP/out"
run env MLREG_TOKEN="$T_PROMO" "$MLREG" promote vision/clf@1.0 --to production --reason "approved"
expect_rc "with alice's approval production passes" 0
stage_is "production holds 1.0" production 1.0

# ---- role prefixes: @vision covers vision/… only -------------------------------------------
run env MLREG_TOKEN="$T_CI" "$MLREG" push other/x@1.0 --weights "$W/weights.bin" \
    --eval-report "$W/eval.json" --git-sha 0123456789abcdef
expect_rc "push of another model" 0
run env MLREG_TOKEN="$T_BOB" "$MLREG" approve other/x@1.0 --for production
expect_rc "approve:production@vision cannot approve other/x" 1
run env MLREG_TOKEN="$T_BOB" "$MLREG" approve vision/clf@1.1 --for production
expect_rc "approve:production@vision approves vision/clf" 0
run env MLREG_TOKEN="$T_PROMO" "$MLREG" promote other/x@1.0 --to staging
expect_rc "promote:staging (no prefix) promotes other/x to staging" 0
run env MLREG_TOKEN="$T_PROMO" "$MLREG" promote other/x@1.0 --to production
expect_rc "promote:production@vision cannot promote other/x" 1
check "other/x production is still empty" sh -c \
    "! MLREG_TOKEN='$T_READ' '$MLREG' resolve other/x:production >/dev/null 2>&1"

# ---- the tokens never show up anywhere -------------------------------------------------------
leaked=""
for t in "$T_CI" "$T_ALICE" "$T_BOB" "$T_PROMO" "$T_READ" "$T_STAGING" mlreg_wrongwrongwrong; do
    grep -qF -- "$t" "$ALL" && leaked="$leaked cli:${t%"${t#??????????}"}"
    grep -qF -- "$t" "$TMP/server.log" && leaked="$leaked log:${t%"${t#??????????}"}"
done
check "no token appears in any CLI output or in the server log" test -z "$leaked"
check "the leak check looked at a non-empty server log" test -s "$TMP/server.log"

finish
