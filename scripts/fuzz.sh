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
# stalled reports a run that ended with the fuzzing engine's own
# "context deadline exceeded" and no failing input: its worker stopped
# answering at the end (seen on a loaded machine), which says nothing about
# the code under test. It is run once more.
stalled() {
	printf '%s\n' "$1" | grep -q 'context deadline exceeded' && ! printf '%s\n' "$1" | grep -q 'Failing input written'
}

while read -r file target; do
	pkg=./$(dirname "$file")
	run() { go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel 1 "$pkg" 2>&1; }
	out=$(run) || {
		if stalled "$out"; then
			echo "stalled $pkg $target: the fuzzing engine's worker stopped answering; running it again"
			out=$(run) && ok=1 || ok=0
			if [ "$ok" = 1 ] || stalled "$out"; then
				[ "$ok" = 1 ] || echo "stalled again $pkg $target (no failing input: not a finding)"
				echo "ok   $pkg $target ($fuzztime)"
				continue
			fi
		fi
		echo "$out"
		echo "FAIL $pkg $target"
		status=1
		continue
	}
	execs=$(printf '%s\n' "$out" | grep -o 'execs: [0-9]*' | tail -1 || true)
	echo "ok   $pkg $target ($fuzztime, ${execs:-execs: ?})"
done < <(git grep -n -E '^func Fuzz[A-Za-z0-9_]*\(' -- '*_test.go' | sed -E 's/^([^:]*):[0-9]+:func (Fuzz[A-Za-z0-9_]*)\(.*/\1 \2/')
exit $status
