package providers_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

// The login engine through the real binary, against the Mobile-ID fake,
// which counts the status calls it receives.

func marksignSite(t *testing.T, fake *fakemarksign.Server, extra string) (string, []string) {
	t.Helper()
	block, env := marksignBlock(t, fake, "claims name\n\t\t\t"+extra)
	return idvSite(block), env
}

// TestOneProviderCallPerIntervalWith200Polls: 200 parallel long-polls of
// one Mobile-ID login make the calls one poll would (before: 2,200 calls in
// 30 s against 11).
func TestOneProviderCallPerIntervalWith200Polls(t *testing.T) {
	fake, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	site, env := marksignSite(t, fake, "")
	inst := e2e.Start(t, site, e2e.Options{Env: env})
	ee := fakemarksign.DefaultAccounts[0]
	b := e2e.NewBrowser()
	b.Transport = &http.Transport{MaxIdleConnsPerHost: 250}
	s := b.StartLogin(t, inst.URL, map[string]string{"provider": "marksign_mobileid", "phone": ee.Phone, "personal_code": ee.Code})
	before := fake.Count(fakemarksign.RouteStatus)
	const window = 9 * time.Second
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < window {
				url := fmt.Sprintf("%s%s?wait=%d", inst.URL, s.StatusURL, 2)
				resp, err := b.Get(url)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	calls := fake.Count(fakemarksign.RouteStatus) - before
	// Marksign is polled every 3 s: at most one call per interval, plus the
	// first one at once.
	if limit := int(elapsed/(3*time.Second)) + 2; calls > limit {
		t.Fatalf("%d status calls in %v with 200 parallel polls; want at most %d", calls, elapsed.Round(time.Second), limit)
	}
	t.Logf("%d status calls in %v with 200 parallel polls", calls, elapsed.Round(time.Millisecond))
	if err := fake.Approve(fake.LastToken(), fakemarksign.Outcome{}); err != nil {
		t.Fatal(err)
	}
	if st := b.Poll(t, inst.URL, s, 10); st.State != "completed" {
		t.Fatalf("after approval: %+v", st)
	}
}

// TestSameLoginPolledOnTwoInstances: a login polled on two instances at
// once (two tabs behind a round-robin balancer) completes; before, the
// instance that lost the race for the one-time result could record failed.
func TestSameLoginPolledOnTwoInstances(t *testing.T) {
	fake, err := fakemarksign.New(fakemarksign.Options{RepeatFinal: true})
	if err != nil {
		t.Fatal(err)
	}
	site, env := marksignSite(t, fake, "")
	storage := t.TempDir()
	a := e2e.Start(t, site, e2e.Options{Env: env, Storage: storage})
	bInst := e2e.Start(t, site, e2e.Options{Env: env, Storage: storage})
	ee := fakemarksign.DefaultAccounts[0]
	for round := 0; round < 3; round++ {
		br := e2e.NewBrowser()
		s := br.StartLogin(t, a.URL, map[string]string{"provider": "marksign_mobileid", "phone": ee.Phone, "personal_code": ee.Code})
		states := make(chan string, 8)
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			inst := a
			if i%2 == 1 {
				inst = bInst
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, _, body := br.Do(t, http.MethodGet, inst.URL+s.StatusURL+"?wait=10", nil, nil)
				if code != http.StatusOK {
					states <- fmt.Sprintf("status %d", code)
					return
				}
				switch {
				case strings.Contains(string(body), `"completed"`):
					states <- "completed"
				default:
					states <- string(body)
				}
			}()
		}
		time.Sleep(300 * time.Millisecond) // let every poll reach its instance
		if err := fake.Approve(fake.LastToken(), fakemarksign.Outcome{}); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(states)
		for st := range states {
			if st != "completed" {
				t.Fatalf("round %d: a poll answered %s", round, st)
			}
		}
	}
}

// TestProviderThatFailsIsReported: a provider answering 503 on every poll
// gives the page a notice at once and ends the login as failed after
// give_up (before: "waiting" until the login expired).
func TestProviderThatFailsIsReported(t *testing.T) {
	fake, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	site, env := marksignSite(t, fake, "give_up 4s")
	inst := e2e.Start(t, site, e2e.Options{Env: env})
	ee := fakemarksign.DefaultAccounts[0]
	b := e2e.NewBrowser()
	s := b.StartLogin(t, inst.URL, map[string]string{"provider": "marksign_mobileid", "phone": ee.Phone, "personal_code": ee.Code})
	fake.Inject(fakemarksign.RouteStatus, fakemarksign.Fault{Status: http.StatusServiceUnavailable, Body: "down"})
	code, _, body := b.Do(t, http.MethodGet, inst.URL+s.StatusURL, nil, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"notice":"The identity provider is slow to answer; still trying."`) {
		t.Fatalf("first poll of a failing provider: %d %s", code, body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := b.Poll(t, inst.URL, s, 5)
		if st.State == "failed" {
			if !strings.Contains(st.Error, "not answering") {
				t.Fatalf("failed with %q", st.Error)
			}
			break
		}
		if st.State != "pending" || time.Now().After(deadline) {
			t.Fatalf("a provider down for %v: %+v", 15*time.Second, st)
		}
	}
}

// TestMobileIDPromptsPerPersonAreLimited: one client could make 15 PIN
// prompts reach one phone in 2 s; now a person gets a few starts per
// window, from any address, then 429.
func TestMobileIDPromptsPerPersonAreLimited(t *testing.T) {
	fake, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	site, env := marksignSite(t, fake, "")
	inst := e2e.Start(t, strings.Replace(site, "\tidv {\n", "\tidv {\n\t\tlimit {\n\t\t\tper_address 100 1m\n\t\t}\n", 1), e2e.Options{Env: env})
	ee := fakemarksign.DefaultAccounts[0]
	before := fake.Count(fakemarksign.RouteLogin)
	created, limited := 0, 0
	for i := 0; i < 15; i++ {
		body := `{"provider":"marksign_mobileid","phone":"` + ee.Phone + `","personal_code":"` + ee.Code + `"}`
		code, hdr, _ := e2e.NewBrowser().Do(t, http.MethodPost, inst.URL+"/.idv/sessions", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
		switch code {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
			if hdr.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			limited++
		default:
			t.Fatalf("start %d: %d", i, code)
		}
	}
	if created != 3 || limited != 12 || fake.Count(fakemarksign.RouteLogin)-before != 3 {
		t.Fatalf("%d started, %d refused, %d prompts sent; want 3, 12, 3", created, limited, fake.Count(fakemarksign.RouteLogin)-before)
	}
	// Another person is not held back by the first one's limit.
	lt := fakemarksign.DefaultAccounts[1]
	body := `{"provider":"marksign_mobileid","phone":"` + lt.Phone + `","personal_code":"` + lt.Code + `"}`
	if code, _, _ := e2e.NewBrowser().Do(t, http.MethodPost, inst.URL+"/.idv/sessions", strings.NewReader(body), map[string]string{"Content-Type": "application/json"}); code != http.StatusCreated {
		t.Fatalf("another person: %d", code)
	}
}
