package faults

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTable: a fault with Times applies that often and then the real
// answer comes back; Count counts every request, faulted or not; Clear
// ends a fault without Times.
func TestTable(t *testing.T) {
	var tab Table
	h := tab.Route("r", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "real") })
	get := func() (int, string) {
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(http.MethodGet, "/", nil))
		return w.Code, w.Body.String()
	}
	if c, b := get(); c != 200 || b != "real" {
		t.Fatalf("no fault: %d %q", c, b)
	}
	tab.Inject("r", Fault{Status: 503, Body: `{"e":1}`, Times: 2})
	for i := 0; i < 2; i++ {
		if c, b := get(); c != 503 || b != `{"e":1}` {
			t.Fatalf("fault %d: %d %q", i+1, c, b)
		}
	}
	if c, b := get(); c != 200 || b != "real" {
		t.Fatalf("after Times: %d %q", c, b)
	}
	tab.Inject("r", Fault{Body: "replaced"})
	for i := 0; i < 3; i++ {
		if _, b := get(); b != "replaced" {
			t.Fatalf("until cleared, %d: %q", i, b)
		}
	}
	tab.Clear()
	if _, b := get(); b != "real" {
		t.Fatalf("after Clear: %q", b)
	}
	if n, other := tab.Count("r"), tab.Count("other"); n != 8 || other != 0 {
		t.Fatalf("counts %d, %d; want 8, 0", n, other)
	}
}
