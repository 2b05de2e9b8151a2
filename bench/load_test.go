// Package bench drives load through the real Caddy binary on loopback, to
// measure what the idv gate costs a whole request: one Caddy serves the same
// response on an open route and on an idv-protected route, and both are
// loaded in the same run, so the ratio is meaningful on a noisy machine.
//
//	go test -run '^$' -bench . -benchtime 5s ./bench/
//
// Requests are bounded by -benchtime and go only to 127.0.0.1.
package bench

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

const site = `
	@protected path /private* /.idv/*
	handle @protected {
		idv {
			provider demo {
				user "Load Test"
			}
			limit {
				per_address 100000 1m
				total 100000 1m
			}
		}
		respond "ok {http.auth.user.id}"
	}
	respond "ok"
`

func BenchmarkThroughCaddy(b *testing.B) {
	inst := e2e.Start(b, site, e2e.Options{})
	br := e2e.NewBrowser()
	s := br.StartLogin(b, inst.URL, map[string]string{"provider": "demo"})
	if code, _, _ := e2e.NewBrowser().Do(b, http.MethodPost, s.QRText+"/approve", nil, nil); code != http.StatusSeeOther {
		b.Fatalf("approve: %d", code)
	}
	if st := br.Poll(b, inst.URL, s, 10); st.State != "completed" {
		b.Fatalf("login: %+v", st)
	}
	cookie := "idv_session=" + br.Cookie(inst.URL, "idv_session")

	run := func(b *testing.B, path string) {
		tr := &http.Transport{MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodGet, inst.URL+path, nil)
				req.Header.Set("Cookie", cookie)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("%s: %d", path, resp.StatusCode)
					return
				}
			}
		})
	}
	b.Run("open", func(b *testing.B) { run(b, "/open") })
	b.Run("idv", func(b *testing.B) { run(b, "/private") })
}
