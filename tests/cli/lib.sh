# Sourced by the tests/cli scripts that repeated this boilerplate word for word (right after
# reading their arguments): $work, a temp dir removed at exit, and fail(), which prints a failed
# check and counts it into $failures (each script ends by testing $failures). Scripts whose exit
# trap does more (kill a server, KEEP=1 keeps $work) still set up their own.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
