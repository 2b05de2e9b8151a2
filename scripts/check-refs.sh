#!/usr/bin/env bash
# Fails when a tracked file points outside the repository: an absolute path
# of a development machine (a home, root, scratch or workspace directory), a
# document that is not in the repository (an interface contract and its
# section numbers, a sibling directory of shared notes, protocol notes under
# the names they had outside), or a docs/*.md file that does not exist. The
# repository must explain itself: comments cite docs/.
#
# testdata directories are not checked (fixtures may hold any text), nor is
# this script. Its patterns are built from parts, so that a plain search of
# the tree for such references does not find this file.
#
#   scripts/check-refs.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scope=(-- . ':(exclude)**/testdata/**' ':(exclude)testdata/**' ':(exclude)scripts/check-refs.sh')
fail=0

report() {
	echo "check-refs: $1:" >&2
	sed 's/^/  /' >&2
	fail=1
}

# An absolute path of a machine: one of the directories below as the first
# component, not preceded by anything that makes it part of a URL or a
# longer path (a URL's path, $dir/..., ./... are fine), and followed by the
# end of the name. /data, /config, /usr/bin, /etc are legitimate in a
# Dockerfile and are not matched.
dirs="wo""rk|ro""ot|ho""me|Us""ers|t""mp"
paths='(^|[^[:alnum:]_.~/$-])/('"$dirs"')([^[:alnum:]_.-]|$)'
if hits=$(git grep -nIE "$paths" "${scope[@]}"); then
	report "absolute paths of a development machine" <<<"$hits"
fi

# Documents outside the repository.
contract="CONT""RACT"
shared="\.\./sha""red\b|sha""red/providers"
outside="$contract"'\.md|'"$contract"' §|'"$shared"'|blockid-uwl\.md|onekosmos-idv\.md|marksign-mobileid\.md|\bmarksign\.md|\.md §|\b[a-z_-]+\.md [BMQV][0-9]'
if hits=$(git grep -nIE "$outside" "${scope[@]}"); then
	report "references to documents outside the repository (cite docs/reference.md or docs/providers/*.md)" <<<"$hits"
fi

# docs/ files that comments and documents cite must exist.
missing=$(git grep -hoIE 'docs/[A-Za-z0-9_/-]+\.md' "${scope[@]}" | sort -u | while read -r f; do
	[ -f "$f" ] || echo "$f"
done)
if [ -n "$missing" ]; then
	report "cited docs that do not exist" <<<"$missing"
fi

if [ "$fail" -ne 0 ]; then
	exit 1
fi
echo "check-refs: ok"
