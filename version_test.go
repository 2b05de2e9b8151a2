package caddyidv_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	caddyidv "github.com/caddy-idv/caddy-idv"
	"github.com/caddy-idv/caddy-idv/caddymodule"
)

// TestVersionMatchesChangelog keeps the Version constant and CHANGELOG.md
// in step: a -dev version has an Unreleased section, a release version has
// a section of its own.
func TestVersionMatchesChangelog(t *testing.T) {
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`).MatchString(caddyidv.Version) {
		t.Fatalf("Version %q is not a semantic version without the leading v", caddyidv.Version)
	}
	raw, err := os.ReadFile("CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	want := "## [" + caddyidv.Version + "]"
	if strings.HasSuffix(caddyidv.Version, "-dev") {
		want = "## [Unreleased]"
	}
	if !strings.Contains(string(raw), want) {
		t.Errorf("CHANGELOG.md has no %q section for Version %q", want, caddyidv.Version)
	}
}

// The handler logs the version this package sets.
func TestVersionHandedToTheHandler(t *testing.T) {
	if caddymodule.Version != caddyidv.Version {
		t.Fatalf("caddymodule.Version = %q, want %q", caddymodule.Version, caddyidv.Version)
	}
}
