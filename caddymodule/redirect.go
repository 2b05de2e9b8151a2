package caddymodule

import (
	"net/url"
	"strings"
)

// safeRedirect returns rd, canonicalised, if it is a local path on this
// site, else "/".
//
// Browsers are lenient with what they treat as an absolute URL: "//host",
// "/\host", "/\t/host" (tabs and newlines are stripped), and encoded forms
// of those once a server or a browser decodes them. They also remove dot
// segments before they use a path, so "/.//host", "/a/..//host" and
// "/%2e//host" become "//host" in a page's script that rebuilds a URL from
// its parts. So the path's dot segments are removed first (a segment that
// decodes to "." or ".." counts), and then rd is decoded repeatedly until
// it is stable (at most four times: an rd encoded deeper is refused), and
// every form must be a plain local path: it starts with
// exactly one '/', the next character is not '/' or '\', and it has no
// control characters, backslashes or whitespace anywhere. A scheme can
// then never appear, because the path starts with '/'. The login page
// navigates to exactly the string returned here. Tested against the
// open-redirect corpus in testdata.
func safeRedirect(rd string) string {
	if rd == "" || len(rd) > 2048 {
		return "/"
	}
	rd = removeDotSegments(rd)
	cur := rd
	for i := 0; ; i++ {
		if !localPath(cur) || !localPath(removeDotSegments(cur)) {
			return "/"
		}
		next, err := url.PathUnescape(cur)
		if err != nil {
			return "/"
		}
		if next == cur {
			return rd
		}
		if i == maxDecodings {
			// Still not stable: encoded deeper than any real path is.
			return "/"
		}
		cur = next
	}
}

// maxDecodings is how often safeRedirect percent-decodes rd looking for a
// form that is not a local path; rd that still changes after that is
// refused.
const maxDecodings = 4

// removeDotSegments applies RFC 3986 §5.2.4 to the path of ref (the part
// before '?' or '#'), treating a segment whose percent-decoded value is "."
// or ".." as a dot segment, as browsers do. The query and fragment are kept
// as they are.
func removeDotSegments(ref string) string {
	path, rest := ref, ""
	if i := strings.IndexAny(ref, "?#"); i >= 0 {
		path, rest = ref[:i], ref[i:]
	}
	if !strings.HasPrefix(path, "/") || !strings.Contains(path, ".") && !strings.Contains(strings.ToLower(path), "%2e") {
		return ref
	}
	segs := strings.Split(path[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch dotSegment(s) {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/") + rest
}

func dotSegment(s string) string {
	if len(s) > 6 {
		return ""
	}
	d, err := url.PathUnescape(s)
	if err != nil {
		return ""
	}
	if d == "." || d == ".." {
		return d
	}
	return ""
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
