#!/bin/sh
# test_completion.sh: `mlreg completion bash` against the commands' own
# --help, read at test time (so a flag added to a command and its help but
# not to cli/completion.c's table fails here): for every command the
# completion knows, every flag its --help lists in the synopsis (from the
# usage: line to the first blank line) or as an option line (a line that
# starts with the flag) is offered when completing `mlreg CMD --`; every
# command of `mlreg --help` is completed. Then the script is used as bash
# uses it: `complete -p mlreg`, commands, subcommands, flag prefixes, file
# and directory names after flags that take them, fixed words (--log-format).
# No server: completion never talks to a registry.
. "${MLREG_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/integration/lib.sh"

if ! command -v bash >/dev/null 2>&1; then
    ok "bash is not installed: skipped"
    finish
fi
"$MLREG" completion bash >"$TMP/mlreg.bash"
RC=$?
expect_rc "completion bash exits 0" 0
check "the script is valid bash" bash -n "$TMP/mlreg.bash"

# comp WORD...: what the completion offers for `mlreg WORD...` (the last
# word is the one being completed), one per line.
comp() {
    bash -c '. "$1"; shift; COMP_WORDS=(mlreg "$@"); COMP_CWORD=$#; _mlreg; printf "%s\n" "${COMPREPLY[@]}"' \
        sh "$TMP/mlreg.bash" "$@"
}

# help_flags CMD: the flags `mlreg CMD --help` lists (synopsis and option
# lines), one per line. `mlreg --flag` (a top-level flag) is not CMD's.
help_flags() {
    "$MLREG" "$1" --help 2>&1 | sed 's/mlreg --[a-z-]*//g' | awk '
        /^usage:/ { syn = 1 }
        syn && /^[ \t]*$/ { syn = 0 }
        syn { print; next }
        /^[ \t]*(-[a-z] [A-Z_]+, )?--[a-z]/ {
            # the option names at the start of the line ("-o DIR, --output")
            if (match($0, /^[ \t]*(-[a-z] [A-Z_]+, )?--[a-z][a-z0-9-]*/))
                print substr($0, RSTART, RLENGTH)
        }' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

cmds=$(comp "" | grep -v '^-')
[ -n "$cmds" ] && ok "the first word completes to the commands" || not_ok "no commands completed"
for c in $("$MLREG" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }'); do
    if printf '%s\n' $cmds | grep -qx -- "$c"; then ok "command $c is completed"; else
        not_ok "command $c (from mlreg --help) is not completed"; fi
done
for c in $cmds; do
    offered=$(comp "$c" --)
    missing=""
    for f in $(help_flags "$c"); do
        printf '%s\n' $offered | grep -qx -- "$f" || missing="$missing $f"
    done
    if [ -z "$missing" ]; then ok "every flag of mlreg $c --help is completed"; else
        not_ok "mlreg $c --help lists flags the completion lacks:$missing"; fi
done

# ---- as bash uses it ---------------------------------------------------------
check "complete -p mlreg names the function" \
    sh -c "bash -c '. \"$TMP/mlreg.bash\"; complete -p mlreg' | grep -q -- '-F _mlreg mlreg'"
check "'mlreg ver' completes to verify, version, versions" \
    test "$(comp ver | sort | tr '\n' ' ')" = "verify version versions "
check "'mlreg key ' completes to its subcommands" \
    test "$(comp key '' | tr '\n' ' ')" = "generate trust revoke list "
check "'mlreg versions --l' completes to --limit" test "$(comp versions --l)" = "--limit"
check "'mlreg diff --st' completes to --stage" test "$(comp diff --st)" = "--stage"
check "'mlreg serve --log-format ' offers text and json" \
    test "$(comp serve --log-format '' | tr '\n' ' ')" = "text json "
mkdir -p "$TMP/cwd/somedir"
: >"$TMP/cwd/conf.json"
check "'mlreg serve --config co' completes the file name" \
    sh -c "cd '$TMP/cwd' && bash -c '. \"$TMP/mlreg.bash\"; COMP_WORDS=(mlreg serve --config co); COMP_CWORD=3; _mlreg; printf \"%s\n\" \"\${COMPREPLY[@]}\"' | grep -qx conf.json"
check "'mlreg pull M@1 -o so' completes the directory" \
    sh -c "cd '$TMP/cwd' && bash -c '. \"$TMP/mlreg.bash\"; COMP_WORDS=(mlreg pull m@1 -o so); COMP_CWORD=4; _mlreg; printf \"%s\n\" \"\${COMPREPLY[@]}\"' | grep -qx somedir"
check "the value of --reason is not completed" test -z "$(comp withdraw --reason '')"
check "an unknown command completes nothing" test -z "$(comp frobnicate --)"
check "sign's --key is offered once (the signing key)" test "$(comp sign --key | grep -cx -- --key)" = 1

# ---- usage -------------------------------------------------------------------
run "$MLREG" completion
expect_rc "completion without a shell is a usage error" 2
run "$MLREG" completion zsh
expect_rc "completion zsh is a usage error (bash only)" 2
run "$MLREG" completion bash extra
expect_rc "completion with an extra argument is a usage error" 2
run "$MLREG" completion --help
expect_rc "completion --help exits 0" 0
check "completion --help has an example" grep -q 'source <(mlreg completion bash)' "$TMP/out"

# ---- every command's --help has an example ----------------------------------
for c in serve reindex backup status key sign token rollback withdraw unwithdraw purge resolve gc \
    audit scrub version bundle ls versions search diff completion; do
    if "$MLREG" "$c" --help 2>&1 | grep -qE '^(e\.g\.|examples?:)'; then ok "mlreg $c --help has an example"; else
        not_ok "mlreg $c --help has no example line"; fi
done
finish
