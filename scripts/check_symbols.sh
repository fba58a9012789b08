#!/bin/sh
# check_symbols.sh LIB: every symbol the library LIB (build/libmlreg.a)
# defines for other object files carries the project prefix: `mlreg_<module>_…`
# for the public API of include/mlreg/, `mlreg_<module>__…` (libgit2's double
# underscore) for helpers shared between the files of one module. Anything
# else must be static. Run by `make lint`; prints each offending symbol with
# its object file and exits 1, or exits 0.
set -eu
lib=${1:?usage: check_symbols.sh LIB}
[ -f "$lib" ] || { echo "check_symbols: $lib not built" >&2; exit 1; }
nm -g --defined-only "$lib" | awk '
    /^.*\.o:$/ { obj = substr($0, 1, length($0) - 1); next }
    NF == 3 && $3 !~ /^mlreg_/ { print "symbol without the mlreg_ prefix: " $3 " (" obj ")"; bad = 1 }
    END { exit bad }
'
