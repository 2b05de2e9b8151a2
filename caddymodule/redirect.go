package caddymodule

import (
	"net/url"
	"strings"
)

// safeRedirect returns rd if it is a local path on this site, else "/".
//
// Browsers are lenient with what they treat as an absolute URL: "//host",
// "/\host", "/\t/host" (tabs and newlines are stripped), and encoded forms
// of those once a server or a browser decodes them. So rd is decoded
// repeatedly until it is stable, and every form must be a plain local path:
// it starts with exactly one '/', the next character is not '/' or '\', and
// it has no control characters, backslashes or whitespace anywhere. A
// scheme can then never appear, because the path starts with '/'.
// Tested against the open-redirect corpus in testdata.
func safeRedirect(rd string) string {
	if rd == "" || len(rd) > 2048 {
		return "/"
	}
	cur := rd
	for i := 0; i < 4; i++ {
		if !localPath(cur) {
			return "/"
		}
		next, err := url.PathUnescape(cur)
		if err != nil {
			return "/"
		}
		if next == cur {
			break
		}
		cur = next
	}
	if !localPath(cur) {
		return "/"
	}
	return rd
}

func localPath(p string) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	if len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < 0x21 || c == 0x7f || c == '\\' {
			return false
		}
	}
	// Non-ASCII characters that browsers normalise to '/' or '\' (fullwidth
	// solidus, ideographic full stop tricks) are refused outright.
	return !strings.ContainsAny(p, "\uff0f\uff3c\u2044\u2215\u3002")
}
