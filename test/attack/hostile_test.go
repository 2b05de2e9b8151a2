package attack_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

// providerTimeout is the Mobile-ID provider's call timeout in the hostile
// suite: every hostile answer must be given up within it.
const providerTimeout = 2 * time.Second

// TestAttackHostileProviders: a Mobile-ID gateway that answers the start
// and the status calls in every hostile mode (huge, endless, truncated,
// malformed, slow, hanging) and trusted issuers whose discovery document
// and key set are hostile. A start is refused with the documented 502
// provider_error within the call timeout; a status poll stays pending or
// fails, and never completes; a trusted issuer's bearer token is refused
// with 401 within the fetch bound; Caddy goes on serving.
func TestAttackHostileProviders(t *testing.T) {
	iss := newIssuers(t)
	var trust []string
	for _, name := range iss.names() {
		trust = append(trust, "trust_issuer "+iss.url(name)+" api://attack")
	}
	s := newSuite(t, options{
		mobile: "timeout " + providerTimeout.String() + "\n\t\t\tgive_up 30s",
		limits: "limit {\n\t\t\tper_address 100000 1m\n\t\t\ttotal 1000000 1m\n\t\t\tper_identity 100000 1m\n\t\t}",
		idv:    strings.Join(trust, "\n\t\t"),
	})
	ee := fakemarksign.DefaultAccounts[0]
	var attacks []attack
	for _, m := range hostile.Modes {
		attacks = append(attacks, attack{"Mobile-ID gateway answers the start " + m.String(), func(t *testing.T) {
			s.gateway.Inject(fakemarksign.RouteLogin, fakemarksign.Fault{Hostile: m})
			defer s.gateway.ClearFaults()
			start := time.Now()
			a := doUpstream(t, e2e.NewBrowser(), http.MethodPost, s.url("/.idv/sessions"), jsonBody(mobileID(ee.Phone, ee.Code)), s.sameOrigin())
			if took := time.Since(start); took > providerTimeout+5*time.Second {
				t.Fatalf("the start took %v; the provider's timeout is %v", took, providerTimeout)
			}
			wantError(t, a, http.StatusBadGateway, "provider_error")
			if len(a.header.Values("Set-Cookie")) != 0 {
				t.Fatalf("a failed start set cookies")
			}
		}})
		attacks = append(attacks, attack{"Mobile-ID gateway answers the status poll " + m.String(), func(t *testing.T) {
			b := e2e.NewBrowser()
			st := s.startMobileID(t, b)
			s.gateway.Inject(fakemarksign.RouteStatus, fakemarksign.Fault{Hostile: m})
			calls := s.gateway.Count(fakemarksign.RouteStatus)
			a, out := s.poll(t, b, st, 3)
			s.gateway.ClearFaults()
			want(t, a, http.StatusOK)
			if s.gateway.Count(fakemarksign.RouteStatus) == calls {
				t.Fatalf("the gateway was not asked during the poll")
			}
			switch out.State {
			case "failed":
				if out.Error == "" {
					t.Fatalf("failed without a message: %v", a)
				}
			case "pending":
				// Given up for now, asked again later: once the gateway
				// answers properly, the login completes.
				if err := s.gateway.Approve(s.gateway.LastToken(), fakemarksign.Outcome{}); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(20 * time.Second)
				for out.State == "pending" && time.Now().Before(deadline) {
					a, out = s.poll(t, b, st, 5)
					want(t, a, http.StatusOK)
				}
				if out.State != "completed" {
					t.Fatalf("after the gateway recovered: %v", a)
				}
			default:
				t.Fatalf("a hostile status answer ended the login %q: %v", out.State, a)
			}
		}})
	}
	// Trusted issuers: every hostile mode on the discovery document and on
	// the key set, each on an issuer of its own (a failed discovery is
	// retried only after 10 s). Each is refused within the 10 s fetch
	// bound; they run side by side.
	group := []attack{}
	for _, name := range iss.names() {
		if name == "good" {
			continue
		}
		group = append(group, attack{"trusted issuer's " + strings.Replace(name, "-", " answers ", 1), func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/api/hostile"), nil, map[string]string{"Authorization": "Bearer " + iss.token(t, name, nil)})
			if took := time.Since(start); took > 15*time.Second {
				t.Fatalf("the gate took %v", took)
			}
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
			if s.up.reached("/api/hostile") {
				t.Fatalf("the upstream was reached")
			}
		}})
	}
	attacks = append(attacks, attack{"trusted issuers in every hostile mode at once", func(t *testing.T) {
		for _, a := range group {
			t.Run(a.name, a.run)
		}
	}})
	attacks = append(attacks, iss.attacks(s)...)
	runClass(t, classHostile, attacks)
	// The group's cases count as cases too.
	tally.Lock()
	tally.cases[classHostile] += len(group) - 1
	tally.Unlock()
	// And Caddy still serves a login.
	s.loggedIn(t)
}

// startMobileID starts a Mobile-ID login of the fake's registered person.
func (s *suite) startMobileID(t *testing.T, b *e2e.Browser) e2e.Started {
	t.Helper()
	ee := fakemarksign.DefaultAccounts[0]
	a := do(t, b, http.MethodPost, s.url("/.idv/sessions"), jsonBody(mobileID(ee.Phone, ee.Code)), s.sameOrigin())
	want(t, a, http.StatusCreated)
	return startedOf(t, a)
}

// doUpstream is do for a request whose documented answer may be the 502
// that says the identity provider failed: any other 5xx still fails t.
func doUpstream(t *testing.T, b *e2e.Browser, method, rawURL string, body io.Reader, header map[string]string) answer {
	t.Helper()
	req := request(t, method, rawURL, body, header)
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	data := readSome(resp.Body)
	a := answer{code: resp.StatusCode, header: resp.Header, body: data}
	if a.code >= 500 && !(a.code == http.StatusBadGateway && strings.Contains(string(data), `"error":"provider_error"`)) {
		t.Fatalf("%s %s: %v", method, rawURL, a)
	}
	return a
}

// issuers serves OpenID Connect issuers for trust_issuer: "good", and one
// per hostile mode and document ("discovery-huge", "jwks-hang", ...), all
// signing with one RSA key. It counts the key-set fetches per issuer.
type issuers struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	mu   sync.Mutex
	jwks map[string]int
}

func newIssuers(t *testing.T) *issuers {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuers{key: key, jwks: map[string]int{}}
	is.srv = httptest.NewServer(http.HandlerFunc(is.serve))
	t.Cleanup(is.srv.Close)
	return is
}

// names are the issuers: "good", then <document>-<mode>.
func (is *issuers) names() []string {
	out := []string{"good"}
	for _, doc := range []string{"discovery", "jwks"} {
		for _, m := range hostile.Modes {
			out = append(out, doc+"-"+m.String())
		}
	}
	return out
}

func (is *issuers) url(name string) string { return is.srv.URL + "/" + name }

func (is *issuers) serve(w http.ResponseWriter, r *http.Request) {
	name, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	mode := hostile.None
	doc, modeName, _ := strings.Cut(name, "-")
	if m, err := hostile.ParseMode(modeName); err == nil {
		mode = m
	}
	switch rest {
	case ".well-known/openid-configuration":
		if doc != "discovery" {
			mode = hostile.None
		}
		hostile.Serve(w, r, mode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"issuer": is.url(name), "jwks_uri": is.url(name) + "/jwks",
				"authorization_endpoint": is.url(name) + "/authorize", "token_endpoint": is.url(name) + "/token",
				"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
				"id_token_signing_alg_values_supported": []string{"RS256"},
			})
		}))
	case "jwks":
		is.mu.Lock()
		is.jwks[name]++
		is.mu.Unlock()
		if doc != "jwks" {
			mode = hostile.None
		}
		hostile.Serve(w, r, mode, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			e := big.NewInt(int64(is.key.E)).Bytes()
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
				"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
				"n": base64.RawURLEncoding.EncodeToString(is.key.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(e),
			}}})
		}))
	default:
		http.NotFound(w, r)
	}
}

// fetches is how often issuer name's key set was fetched.
func (is *issuers) fetches(name string) int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.jwks[name]
}

// token is an access token of issuer name for the trusted audience, signed
// with its key, with edit applied to the claims.
func (is *issuers) token(t *testing.T, name string, edit func(jwt.MapClaims, map[string]any)) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": is.url(name), "aud": "api://attack", "sub": "robot", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
	tok.Header["kid"] = "k1"
	if edit != nil {
		edit(c, tok.Header)
	}
	raw, err := tok.SignedString(is.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// attacks are the cases about a trusted issuer that behaves but whose
// tokens are bent: each is refused, and none makes Caddy fetch the key set
// again (except an unknown kid, at most once per 10 s).
func (is *issuers) attacks(s *suite) []attack {
	gate := func(t *testing.T, tok string) answer {
		t.Helper()
		return do(t, e2e.NewBrowser(), http.MethodGet, s.url("/api/issuer"), nil, map[string]string{"Authorization": "Bearer " + tok})
	}
	// ensureFetched makes Caddy discover the good issuer and fetch its
	// key set once, with a valid token.
	ensureFetched := func(t *testing.T) {
		t.Helper()
		a := gate(t, is.token(t, "good", nil))
		e := echoOf(t, a)
		if got := e.Header.Get("X-User"); got != is.url("good")+"#robot" {
			t.Fatalf("the good issuer's subject upstream is %q: %s", got, a.body)
		}
	}
	refused := func(t *testing.T, tok string) {
		t.Helper()
		ensureFetched(t)
		before := is.fetches("good")
		for i := 0; i < 20; i++ {
			wantError(t, gate(t, tok), http.StatusUnauthorized, "unauthenticated")
		}
		if n := is.fetches("good") - before; n != 0 {
			t.Fatalf("20 refused tokens made %d key-set fetches; want none", n)
		}
	}
	sigOf := func(t *testing.T, tok string) string { return tok[strings.LastIndex(tok, ".")+1:] }
	return []attack{
		{"a well-behaved trusted issuer's token is accepted (control)", ensureFetched},
		{"trusted issuer token with a bad signature, twenty times", func(t *testing.T) {
			tok := is.token(t, "good", nil)
			refused(t, tok[:strings.LastIndex(tok, ".")+1]+sigOf(t, is.token(t, "good", func(c jwt.MapClaims, _ map[string]any) { c["sub"] = "other" })))
		}},
		{"trusted issuer token signed with HS256", func(t *testing.T) {
			c := jwt.MapClaims{"iss": is.url("good"), "aud": "api://attack", "sub": "robot", "exp": time.Now().Add(time.Hour).Unix()}
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
			tok.Header["kid"] = "k1"
			raw, err := tok.SignedString(is.key.N.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			refused(t, raw)
		}},
		{"trusted issuer token with alg none", func(t *testing.T) {
			c := jwt.MapClaims{"iss": is.url("good"), "aud": "api://attack", "sub": "robot", "exp": time.Now().Add(time.Hour).Unix()}
			raw, err := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			refused(t, raw)
		}},
		{"trusted issuer token with a signature of the wrong size for its keys", func(t *testing.T) {
			tok := is.token(t, "good", nil)
			refused(t, tok[:strings.LastIndex(tok, ".")+1]+base64.RawURLEncoding.EncodeToString(make([]byte, 64)))
		}},
		{"trusted issuer token for another audience", func(t *testing.T) {
			refused(t, is.token(t, "good", func(c jwt.MapClaims, _ map[string]any) { c["aud"] = "api://other" }))
		}},
		{"trusted issuer token that expired", func(t *testing.T) {
			refused(t, is.token(t, "good", func(c jwt.MapClaims, _ map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))
		}},
		{"token naming an issuer that is not trusted", func(t *testing.T) {
			refused(t, is.token(t, "good", func(c jwt.MapClaims, _ map[string]any) { c["iss"] = is.srv.URL + "/untrusted" }))
		}},
		{"trusted issuer token with an identity header's CR LF in its subject", func(t *testing.T) {
			ensureFetched(t)
			tok := is.token(t, "good", func(c jwt.MapClaims, _ map[string]any) { c["sub"] = "robot\r\nX-Admin: yes" })
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/api/issuer-crlf"), nil, map[string]string{"Authorization": "Bearer " + tok})
			want(t, a, http.StatusForbidden)
			if s.up.reached("/api/issuer-crlf") {
				t.Fatal("reached the upstream")
			}
		}},
		{"trusted issuer token as the session cookie", func(t *testing.T) {
			ensureFetched(t)
			a := do(t, e2e.NewBrowser(), http.MethodGet, s.url("/api/issuer"), nil, map[string]string{"Cookie": "idv_session=" + is.token(t, "good", nil)})
			wantError(t, a, http.StatusUnauthorized, "unauthenticated")
		}},
		{"unknown kids fetch the key set at most once per ten seconds", func(t *testing.T) {
			ensureFetched(t)
			before := is.fetches("good")
			for i := 0; i < 20; i++ {
				tok := is.token(t, "good", func(_ jwt.MapClaims, h map[string]any) { h["kid"] = fmt.Sprintf("unknown-%d", i) })
				wantError(t, gate(t, tok), http.StatusUnauthorized, "unauthenticated")
			}
			if n := is.fetches("good") - before; n > 1 {
				t.Fatalf("20 tokens with unknown kids made %d key-set fetches; want at most one", n)
			}
		}},
	}
}
