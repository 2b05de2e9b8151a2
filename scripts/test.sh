#!/usr/bin/env bash
# Runs every test of caddy-idv. It installs what the tests need first
# (Debian's chromium for the browser tests, redis-server for the shared-store
# tests, axe-core from npm for the accessibility test) when they are missing, builds the Caddy binary once, and points every
# package's end-to-end tests at it.
#
#   scripts/test.sh            # everything
#   scripts/test.sh ./token/   # some packages (go test arguments)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing ${need[*]} (apt-get)"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	else
		echo "missing ${need[*]}: install them (Debian: apt-get install ${need[*]}); the tests that need them fail in CI and are skipped elsewhere" >&2
	fi
fi

# axe-core, for the accessibility test in test/browser: pinned, installed
# into an ignored directory, with no lockfile.
axe=test/browser/.axe/node_modules/axe-core/axe.min.js
if [ ! -f "$axe" ]; then
	if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing npm (apt-get)"
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
	fi
	if command -v npm >/dev/null 2>&1; then
		echo "installing axe-core (npm)"
		npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix test/browser/.axe axe-core@4.14.1 >/dev/null
	else
		echo "npm is missing: the accessibility test fails in CI and is skipped elsewhere" >&2
	fi
fi

bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
echo "building caddy with the idv module"
go build -o "$bin_dir/caddy" ./cmd/caddy
export IDV_CADDY_BIN="$bin_dir/caddy"

go vet ./...
echo "staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
if [ $# -eq 0 ]; then
	set -- ./...
fi
go test -count=1 -timeout 15m "$@"
