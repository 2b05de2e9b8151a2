#!/usr/bin/env bash
# Runs every fuzz target of caddy-idv for FUZZTIME each (default 3s; use
# FUZZTIME=5m for a real run) and prints a line per target with the
# executions it made. A failure leaves its input in the package's
# testdata/fuzz directory, as go test does, and fails the script.
#
#   scripts/fuzz.sh                 # every target, 3 s each
#   FUZZTIME=5m scripts/fuzz.sh     # what a release deserves
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-3s}
status=0
while read -r file target; do
	pkg=./$(dirname "$file")
	out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg" 2>&1) || {
		echo "$out"
		echo "FAIL $pkg $target"
		status=1
		continue
	}
	execs=$(printf '%s\n' "$out" | grep -o 'execs: [0-9]*' | tail -1 || true)
	echo "ok   $pkg $target ($fuzztime, ${execs:-execs: ?})"
done < <(git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(' -- '*_test.go' | sed -E 's/^([^:]*):[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*/\1 \2/')
exit $status
