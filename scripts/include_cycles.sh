#!/bin/sh
# include_cycles.sh: checks the `#include "..."` structure of mlreg's C code;
# run by `make lint`. Exits 0 when every check passes; otherwise prints one
# line per problem ("include cycle: ...", "layer: ...", "file cycle: ...",
# "unresolved include: ...") and exits 1.
#
# Files: every .c and .h under core/ storage/ signing/ registry/ cli/ and
# include/mlreg/ (tests/ may include anything and is not checked).
#
# Edges: `#include "X"` in a file of directory D resolves to D/X when that
# file exists, else to include/X (the -Iinclude of the Makefile); one that
# resolves to neither is reported. <...> includes are system headers and
# ignored. Comments and string literals are stripped first, so an include
# inside a comment does not count.
#
# What it checks:
#
# 1. No include cycle, through any mix of headers and .c files (a.h includes
#    b.h includes a.h): the cycle is printed file by file.
#
# 2. Layers. Ranks: core 0, storage 1, signing 2, registry 3, cli 4. A file
#    under one of those folders has that folder's rank. A public header
#    include/mlreg/X.h has the highest rank among the .c files that define a
#    function it declares (a function is declared in a header when `name(`
#    appears in its code outside comments and preprocessor lines; a .c file
#    defines `name` when a line at column 0, not `static`, not ending in
#    `;`, reads `<type> name(`). A header that declares no function defined
#    in a .c file (constants, types, inline helpers) takes the highest rank
#    of what it includes, or 0. No file may include one of higher rank:
#    core/ includes nothing of storage/, signing/, registry/ or cli/;
#    storage/ nothing of signing/, registry/ or cli/; signing/ nothing of
#    registry/ or cli/; registry/ nothing of cli/.
#
# 3. No cycle between .c files. The .c files that define the functions of
#    one header are one unit (sign.h is implemented by keys.c, sig.c and
#    password.c; units sharing a file are merged). Unit X depends on unit Y
#    when a file of X includes directly a header that declares a function
#    a file of Y defines. A cycle X -> Y -> ... -> X (x.c includes y.h,
#    y.c includes x.h) is reported once, each step as "x.c includes y.h of
#    y.c". Module-internal headers (<dir>/*_internal.h, which by STYLE.md
#    share helpers among the files of one module) neither join units nor
#    make dependencies.
set -eu

cd "$(dirname "$0")/.."

files=$(find core storage signing registry cli include/mlreg -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | LC_ALL=C sort)
[ -n "$files" ] || { echo "include_cycles: no sources found" >&2; exit 1; }

# shellcheck disable=SC2086
exec awk '
function rank_of_dir(f) {
    if (f ~ /^core\//) return 0
    if (f ~ /^storage\//) return 1
    if (f ~ /^signing\//) return 2
    if (f ~ /^registry\//) return 3
    if (f ~ /^cli\//) return 4
    return -1
}
function dirname(f,    i) {
    i = match(f, /\/[^\/]*$/)
    return i ? substr(f, 1, i - 1) : "."
}
# Strips comments and the contents of string and char literals from one
# line, keeping the quotes (so #include "x" keeps its name: see below).
function strip(line,    out, i, c, n, q) {
    out = ""; n = length(line); i = 1
    while (i <= n) {
        c = substr(line, i, 1)
        if (incomment) {
            if (c == "*" && substr(line, i + 1, 1) == "/") { incomment = 0; i += 2; continue }
            i++; continue
        }
        if (c == "/" && substr(line, i + 1, 1) == "*") { incomment = 1; i += 2; out = out " "; continue }
        if (c == "/" && substr(line, i + 1, 1) == "/") break
        if (c == "\"" || c == "\047") {
            q = c; out = out c; i++
            while (i <= n && substr(line, i, 1) != q) {
                if (substr(line, i, 1) == "\\") i++
                i++
            }
            out = out q; i++; continue
        }
        out = out c; i++
    }
    return out
}
FNR == 1 { incomment = 0; nfiles++; file[nfiles] = FILENAME; isfile[FILENAME] = 1 }
{
    raw = $0
    if (raw ~ /^[ \t]*#[ \t]*include[ \t]*"/ && !incomment) {
        t = raw; sub(/^[ \t]*#[ \t]*include[ \t]*"/, "", t); sub(/".*$/, "", t)
        ninc[FILENAME]++; inc[FILENAME, ninc[FILENAME]] = t
        next
    }
    line = strip(raw)
    if (line ~ /^[ \t]*#/) next
    if (FILENAME ~ /\.c$/) {
        if (line ~ /^[A-Za-z_]/ && line !~ /^(static|typedef|extern)[ \t]/ && line !~ /;[ \t]*$/ &&
            line ~ /[A-Za-z_0-9]\(/) {
            d = line; gsub(/__attribute__[ \t]*\(\(.*\)\)/, "", d)
            sub(/\(.*$/, "", d); sub(/^.*[^A-Za-z_0-9]/, "", d)
            if (d != "" && d !~ /^__/ && !(d in def)) def[d] = FILENAME
        }
    } else {
        rest = line
        while (match(rest, /[A-Za-z_][A-Za-z_0-9]*\(/)) {
            id = substr(rest, RSTART, RLENGTH - 1)
            nd[FILENAME]++; decl[FILENAME, nd[FILENAME]] = id
            rest = substr(rest, RSTART + RLENGTH)
        }
    }
}
function resolve(f, t,    p) {
    p = dirname(f) "/" t
    while (p ~ /\/\.\//) sub(/\/\.\//, "/", p)
    if (p in isfile) return p
    p = "include/" t
    if (p in isfile) return p
    return ""
}
# Rank of a file (memoised): its folder, or for a public header the rank
# described in the comment above.
function rank(f,    r, k, y, rr) {
    if (f in rk) return rk[f]
    r = rank_of_dir(f)
    if (r < 0) {
        rk[f] = 0
        for (k = 1; k <= nd[f]; k++) {
            y = def[decl[f, k]]
            if (y != "" && rank_of_dir(y) > r) { r = rank_of_dir(y); owner[f] = y }
        }
        if (r < 0) {
            r = 0
            for (k = 1; k <= nedge[f]; k++) {
                rr = rank(edge[f, k])
                if (rr > r) r = rr
            }
        }
    }
    rk[f] = r
    return r
}
function dfs_inc(f,    k, t, i, path) {
    color[f] = 1; sp++; stack[sp] = f
    for (k = 1; k <= nedge[f]; k++) {
        t = edge[f, k]
        if (color[t] == 1) {
            path = ""
            for (i = sp; i >= 1 && stack[i] != t; i--) ;
            for (; i <= sp; i++) path = path stack[i] " -> "
            print "include cycle: " path t
            bad = 1
        } else if (color[t] == 0) dfs_inc(t)
    }
    sp--; color[f] = 2
}
function find(x) {
    while (parent[x] != "" && parent[x] != x) x = parent[x]
    return x
}
function dfs_c(u,    k, t, i, path) {
    ccolor[u] = 1; csp++; cstack[csp] = u
    for (k = 1; k <= ncdep[u]; k++) {
        t = cdep[u, k]
        if (ccolor[t] == 1) {
            if (!(t in reported)) {
                for (i = csp; i >= 1 && cstack[i] != t; i--) ;
                path = ""
                for (; i <= csp; i++) {
                    path = path (path == "" ? "" : "; ") cvia[cstack[i], (i < csp ? cstack[i + 1] : t)]
                    reported[cstack[i]] = 1
                }
                print "file cycle: " path
                bad = 1
            }
        } else if (ccolor[t] == 0) dfs_c(t)
    }
    csp--; ccolor[u] = 2
}
END {
    names[0] = "core"; names[1] = "storage"; names[2] = "signing"; names[3] = "registry"; names[4] = "cli"
    for (n = 1; n <= nfiles; n++) {
        f = file[n]
        for (k = 1; k <= ninc[f]; k++) {
            t = resolve(f, inc[f, k])
            if (t == "") { print "unresolved include: " f " includes \"" inc[f, k] "\""; bad = 1; continue }
            nedge[f]++; edge[f, nedge[f]] = t
        }
    }
    # 1. include cycles
    for (n = 1; n <= nfiles; n++) if (color[file[n]] == 0) dfs_inc(file[n])
    if (bad) exit 1
    # 2. layers
    for (n = 1; n <= nfiles; n++) {
        f = file[n]
        for (k = 1; k <= nedge[f]; k++) {
            t = edge[f, k]
            if (rank(t) > rank(f)) {
                print "layer: " f " (" names[rank(f)] ") includes " t " (" names[rank(t)] \
                      (t in owner ? ", declares functions of " owner[t] : "") ")"
                bad = 1
            }
        }
    }
    # 3. cycles between .c files: the implementers of one header are one unit
    for (n = 1; n <= nfiles; n++) {
        h = file[n]
        if (h !~ /\.h$/ || h ~ /_internal\.h$/) continue
        first = ""
        for (j = 1; j <= nd[h]; j++) {
            y = def[decl[h, j]]
            if (y == "") continue
            if (parent[y] == "") parent[y] = y
            if (first == "") first = y
            else if (find(y) != find(first)) parent[find(y)] = find(first)
        }
    }
    for (n = 1; n <= nfiles; n++) {
        f = file[n]
        if (f !~ /\.c$/) continue
        if (parent[f] == "") parent[f] = f
    }
    for (n = 1; n <= nfiles; n++) {
        f = file[n]
        if (f !~ /\.c$/) continue
        u = find(f)
        for (k = 1; k <= nedge[f]; k++) {
            h = edge[f, k]
            if (h !~ /\.h$/ || h ~ /_internal\.h$/) continue
            for (j = 1; j <= nd[h]; j++) {
                y = def[decl[h, j]]
                if (y == "") continue
                v = find(y)
                if (v == u || (u, v) in seen) continue
                seen[u, v] = 1; cvia[u, v] = f " includes " h " of " y
                ncdep[u]++; cdep[u, ncdep[u]] = v
            }
        }
    }
    for (n = 1; n <= nfiles; n++) {
        u = find(file[n])
        if (file[n] ~ /\.c$/ && ccolor[u] == 0) dfs_c(u)
    }
    exit bad
}' $files
