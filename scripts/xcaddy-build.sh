#!/usr/bin/env bash
# Builds Caddy with caddy-idv from this working tree with xcaddy, the way
# README.md ("Install / build your own Caddy") tells users to, and proves the
# module is inside: `caddy list-modules` lists http.handlers.idv and every
# provider kind, and `caddy adapt` reads Caddyfile.example.
#
#   scripts/xcaddy-build.sh              # build into a temporary directory, check, delete
#   scripts/xcaddy-build.sh ./my-caddy   # keep the binary at ./my-caddy
#
# Pinned: xcaddy itself (XCADDY_VERSION) and the Caddy version, which is read
# from go.mod so that xcaddy neither picks a newer Caddy than the one tested
# nor an older one than go.mod requires.
#
# The module is passed as github.com/caddy-idv/caddy-idv@v<Version>=<dir>.
# Without the @version, xcaddy runs `go get github.com/caddy-idv/caddy-idv`,
# which asks the module proxy for the module's versions and fails where the
# proxy does not serve it (an unpublished module, a private proxy). With an
# explicit version the local replacement answers instead, and
# `caddy list-modules --versions` reports that version.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

XCADDY_VERSION=v0.4.5

caddy_version=$(go list -m -f '{{.Version}}' github.com/caddyserver/caddy/v2)
version=$(sed -n 's/^const Version = "\(.*\)"$/\1/p' caddyidv.go)
if [ -z "$version" ]; then
	echo "xcaddy-build: no Version constant in caddyidv.go" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${1:-$work/caddy}
case $out in
/*) ;;
*) out=$repo/$out ;;
esac

echo "xcaddy $XCADDY_VERSION: caddy $caddy_version with github.com/caddy-idv/caddy-idv@v$version=$repo"
start=$(date +%s)
# Run from an empty directory: xcaddy behaves differently inside a module.
(cd "$work" && go run "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION" build "$caddy_version" \
	--with "github.com/caddy-idv/caddy-idv@v$version=$repo" \
	--output "$out")
echo "xcaddy build took $(($(date +%s) - start)) s"

modules=$("$out" list-modules --versions)
for m in http.handlers.idv http.handlers.idv.providers.demo http.handlers.idv.providers.blockid \
	http.handlers.idv.providers.onekosmos_idv http.handlers.idv.providers.uqudo \
	http.handlers.idv.providers.marksign_mobileid; do
	if ! grep -q "^$m v$version\$" <<<"$modules"; then
		echo "xcaddy-build: $m v$version is not in list-modules --versions:" >&2
		grep idv <<<"$modules" >&2 || true
		exit 1
	fi
done
grep '^http.handlers.idv ' <<<"$modules"
json=$("$out" adapt --config Caddyfile.example)
if ! grep -q '"handler":"idv"' <<<"$json"; then
	echo "xcaddy-build: the adapted Caddyfile.example has no idv handler" >&2
	exit 1
fi
echo "xcaddy-build: ok ($out adapts Caddyfile.example)"
