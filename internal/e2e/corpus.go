package e2e

import (
	"bufio"
	"os"
	"testing"
)

// RedirectCorpus is the repository's copy of oauth2-proxy's open-redirect
// corpus (MIT licence; see templates/testdata/README.md): 559 payloads, one
// a line, the empty one included (an empty rd).
func RedirectCorpus(t testing.TB) []string {
	t.Helper()
	f, err := os.Open(RepoPath("templates", "testdata", "openredirects.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil || len(out) != 559 {
		t.Fatalf("corpus: %d payloads, %v; want 559", len(out), err)
	}
	return out
}
