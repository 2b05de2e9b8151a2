package browser_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axePath finds axe-core's browser build: $AXE_JS, or where scripts/test.sh
// installs it (npm, pinned, into test/browser/.axe). Without it the test
// skips, or fails when CI is set, since CI installs it.
func axePath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AXE_JS"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), ".axe", "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("axe-core is not installed at %s (scripts/test.sh installs it with npm): %v", p, err)
		}
		t.Skipf("axe-core is not installed (%s); scripts/test.sh installs it with npm", p)
	}
	return p
}

// checkA11y runs axe-core in the tab against WCAG 2.1 A and AA and fails
// the test for every violation: missing labels and names, contrast below
// AA, landmarks, language, focusable hidden elements, and so on. axe is
// added through the DevTools protocol, which the page's CSP does not cover.
func checkA11y(t *testing.T, ctx context.Context, axe, what string) {
	t.Helper()
	violations := axeViolations(t, ctx, axe)
	for _, v := range violations {
		t.Errorf("%s: %s", what, v)
	}
	if len(violations) == 0 {
		t.Logf("%s: no WCAG 2.1 A/AA violations", what)
	}
}

func axeViolations(t *testing.T, ctx context.Context, axe string) []string {
	t.Helper()
	eval[bool](t, ctx, axe+";true")
	expr := `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(function (r) {
			return JSON.stringify(r.violations.map(function (v) {
				return v.id + " (" + v.impact + "): " + v.help + " — " + v.nodes.map(function (n) { return n.target.join(" "); }).join(", ");
			}));
		})`
	raw := eval[string](t, ctx, expr, chromedp.EvalAwaitPromise)
	var violations []string
	if err := json.Unmarshal([]byte(raw), &violations); err != nil {
		t.Fatalf("axe result: %v: %s", err, raw)
	}
	return violations
}

// loadAxe reads axe-core's browser build (or skips, see axePath).
func loadAxe(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile(axePath(t))
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// axeControl checks that axe reports a violation when there is one (an
// unlabelled input), or its silence on the views means nothing.
func axeControl(t *testing.T, ctx context.Context, axe string) {
	t.Helper()
	eval[bool](t, ctx, `document.querySelector("main").appendChild(document.createElement("input")) && true`)
	if v := axeViolations(t, ctx, axe); len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), "label") {
		t.Fatalf("axe did not report an unlabelled input: %v", v)
	}
}
