package providers

import (
	"strings"
	"testing"
)

func TestResolveSecret(t *testing.T) {
	t.Setenv("IDV_TEST_SECRET", " s3cret\n")
	t.Setenv("IDV_TEST_EMPTY", "")
	cases := []struct{ raw, want, err string }{
		{"{env.IDV_TEST_SECRET}", "s3cret", ""},
		{"lit{eral}", "lit{eral}", ""}, // unknown placeholders stay: a literal secret may hold braces
		{"{env.IDV_TEST_EMPTY}", "", "client_secret: {env.IDV_TEST_EMPTY} is empty"},
		{" {env.IDV_TEST_EMPTY} ", "", "client_secret: {env.IDV_TEST_EMPTY} is empty"},
		{"  ", "", "missing option client_secret"},
		{"", "", "missing option client_secret"},
	}
	for _, tc := range cases {
		got, err := ResolveSecret("client_secret", tc.raw)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("ResolveSecret(%q) = %q, %v; want %q, %q", tc.raw, got, err, tc.want, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error shows the value: %v", err)
		}
	}
}
