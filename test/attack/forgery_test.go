package attack_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
)

// TestAttackTokenForgery forges and confuses tokens at every place one is
// accepted: the gate (bearer and cookie), /me, the OIDC authorization
// endpoint (which issues codes for a session), userinfo, introspection and
// end_session's id_token_hint. The forgeries are made with the real signing
// key read from the store, so that every check but the signature is tried
// on its own; each must be refused with the place's own answer, and the
// upstream must never be reached.
func TestAttackTokenForgery(t *testing.T) {
	s := newSuite(t, options{})
	f := newForge(t, s)
	var attacks []attack
	for _, fm := range forgeryForms() {
		attacks = append(attacks, attack{fm.name, func(t *testing.T) { f.refusedEverywhere(t, fm) }})
	}
	attacks = append(attacks, f.confusions()...)
	attacks = append(attacks, f.schemes()...)
	runClass(t, classForgery, attacks)
	if n := f.keyHits.Load(); n != 0 {
		t.Fatalf("the attacker's key server was asked %d times: a jku or x5u header was followed", n)
	}
}

// tokenKind is a kind of JWT the module accepts somewhere.
type tokenKind int

const (
	sessionKind tokenKind = iota // the gate, /me, OIDC authorize
	accessKind                   // OIDC userinfo, introspection
	idKind                       // OIDC end_session as id_token_hint
)

var allKinds = []tokenKind{sessionKind, accessKind, idKind}

func (k tokenKind) String() string { return [...]string{"session", "access", "id"}[k] }

// typ is the kind's own typ header.
func (k tokenKind) typ() string { return [...]string{"idv-session+jwt", "at+jwt", "JWT"}[k] }

// forge holds what an attacker who stole the signing key has, and a victim
// whose session a forged id_token_hint would end.
type forge struct {
	s           *suite
	app         *oidcApp
	key         *e2e.SigningKey
	ecJWK       json.RawMessage // our ES256 key as /jwks publishes it
	jwks        []byte
	rsaKID      string
	rsaPub      *rsa.PublicKey
	attacker    *ecdsa.PrivateKey
	attackerRSA *rsa.PrivateKey
	victim      *e2e.Browser
	victimSub   string
	victimSID   string
	session     string     // the victim's session token
	tokens      oidcTokens // the victim's OIDC tokens (client app)
	base        map[tokenKind]jwt.MapClaims
	keyHost     *httptest.Server // the attacker's key server, for jku and x5u
	keyHits     atomic.Int64
	n           atomic.Int64
}

func newForge(t *testing.T, s *suite) *forge {
	t.Helper()
	f := &forge{s: s, app: confidentialApp(s), key: s.signingKey(t)}
	var err error
	if f.attacker, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if f.attackerRSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	f.keyHost = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.keyHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{ecJWKOf(&f.attacker.PublicKey, "attacker-1")}})
	}))
	t.Cleanup(f.keyHost.Close)

	// The published keys: the ES256 one we stole, and the RS256 one.
	ans := send(t, plain(), request(t, http.MethodGet, s.url("/.idv/oidc/jwks"), nil, nil))
	want(t, ans, http.StatusOK)
	f.jwks = ans.body
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(ans.body, &set); err != nil {
		t.Fatal(err)
	}
	for _, raw := range set.Keys {
		var k struct{ Kid, Alg, N, E string }
		_ = json.Unmarshal(raw, &k)
		switch {
		case k.Kid == f.key.KID:
			f.ecJWK = raw
		case k.Alg == "RS256":
			n, _ := base64.RawURLEncoding.DecodeString(k.N)
			e, _ := base64.RawURLEncoding.DecodeString(k.E)
			f.rsaKID, f.rsaPub = k.Kid, &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		}
	}
	if f.ecJWK == nil || f.rsaPub == nil {
		t.Fatalf("jwks without our ES256 key or an RS256 key: %s", ans.body)
	}

	// The victim: a session, and the tokens an application got in it.
	f.victim = s.loggedIn(t)
	f.session = s.bearer(t, f.victim)
	sc := claimsOf(t, f.session)
	f.victimSub, _ = sc["sub"].(string)
	f.victimSID, _ = sc["sid"].(string)
	f.tokens = f.app.login(t, f.victim)

	// The claims every forgery starts from: a valid token of each kind.
	f.base = map[tokenKind]jwt.MapClaims{
		sessionKind: claimsOf(t, f.session),
		accessKind:  claimsOf(t, f.tokens.Access),
		idKind:      claimsOf(t, f.tokens.ID),
	}
	f.base[sessionKind]["sid"] = "forged-" + pkceVerifier()[:16]

	// Control: signed with the stolen key and left alone, each base is
	// accepted, so that every refusal below is the forgery's doing.
	t.Run("control: the stolen key signs valid tokens", func(t *testing.T) {
		raw := f.valid(sessionKind, nil)
		p := f.path()
		a := send(t, plain(), request(t, http.MethodGet, s.url(p), nil, map[string]string{"Authorization": "Bearer " + raw, "Accept": "application/json"}))
		if e := echoOf(t, a); e.Header.Get("X-User") != f.victimSub {
			t.Fatalf("control session token: X-User %q; want %q; echo %+v", e.Header.Get("X-User"), f.victimSub, e)
		}
		a = send(t, plain(), request(t, http.MethodGet, s.url(p), nil, map[string]string{"Cookie": "idv_session=" + raw, "Accept": "text/html"}))
		echoOf(t, a)
		f.app.wantUserinfoOK(t, f.valid(accessKind, nil))
		if !f.app.active(t, f.valid(accessKind, nil)) {
			t.Fatal("control access token is not active")
		}
		hint := f.valid(idKind, func(c jwt.MapClaims) { c["sid"] = "unknown-" + pkceVerifier()[:16] })
		a = f.hint(t, hint)
		if a.code != http.StatusOK || !strings.Contains(string(a.body), "logged out") {
			t.Fatalf("control id_token_hint: %v", a)
		}
	})
	return f
}

// ---- Building tokens ----

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jsonOf(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// jwsSigner signs a JWS signing input.
type jwsSigner func(in []byte) []byte

// compactJWS assembles header.payload.signature from raw JSON, signed by
// sign (nil: an empty signature).
func compactJWS(header, payload []byte, sign jwsSigner) string {
	in := b64url(header) + "." + b64url(payload)
	if sign == nil {
		return in + "."
	}
	return in + "." + b64url(sign([]byte(in)))
}

// es256 signs as RFC 7518 §3.4 says: R and S, 32 bytes each.
func es256(k *ecdsa.PrivateKey) jwsSigner {
	return func(in []byte) []byte {
		r, s := ecdsaSign(k, in)
		return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
}

func ecdsaSign(k *ecdsa.PrivateKey, in []byte) (*big.Int, *big.Int) {
	sum := sha256.Sum256(in)
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		panic(err)
	}
	return r, s
}

func rs256(k *rsa.PrivateKey) jwsSigner {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func hs256(secret []byte) jwsSigner {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

func ecJWKOf(pub *ecdsa.PublicKey, kid string) map[string]string {
	raw, _ := pub.Bytes()
	return map[string]string{"kty": "EC", "crv": "P-256", "x": b64url(raw[1:33]), "y": b64url(raw[33:]), "kid": kid, "alg": "ES256", "use": "sig"}
}

// ours signs with the stolen key.
func (f *forge) ours() jwsSigner { return es256(f.key.Private) }

// header is the valid header of kind k.
func (f *forge) header(k tokenKind) map[string]any {
	return map[string]any{"alg": "ES256", "kid": f.key.KID, "typ": k.typ()}
}

// claims is a copy of kind k's valid claims, fresh in time, changed by
// mutate.
func (f *forge) claims(k tokenKind, mutate func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{}
	for name, v := range f.base[k] {
		c[name] = v
	}
	now := time.Now()
	c["iat"] = now.Unix()
	c["exp"] = now.Add(10 * time.Minute).Unix()
	if k == sessionKind {
		c["nbf"] = now.Unix()
	}
	if k != idKind {
		c["jti"] = "forged-" + pkceVerifier()[:16]
	}
	if mutate != nil {
		mutate(c)
	}
	return c
}

// token signs claims under header with sign.
func (f *forge) token(header map[string]any, claims jwt.MapClaims, sign jwsSigner) string {
	return compactJWS(jsonOf(header), jsonOf(claims), sign)
}

// valid is a token of kind k that is valid in every way but mutate's.
func (f *forge) valid(k tokenKind, mutate func(jwt.MapClaims)) string {
	return f.token(f.header(k), f.claims(k, mutate), f.ours())
}

// withHeader is a token of kind k with valid claims under a header
// changed by mutate, signed with sign.
func (f *forge) withHeader(k tokenKind, mutate func(map[string]any), sign jwsSigner) string {
	h := f.header(k)
	mutate(h)
	return f.token(h, f.claims(k, nil), sign)
}

// real is the module's own token of kind k.
func (f *forge) real(k tokenKind) string {
	return [...]string{f.session, f.tokens.Access, f.tokens.ID}[k]
}

// ---- The places a token is accepted, and their refusals ----

// path is a protected path no other request uses.
func (f *forge) path() string { return fmt.Sprintf("/forged/%d", f.n.Add(1)) }

// wantGateRefusal fails t unless the gate answered an API request 401 with
// the given challenge, and the upstream did not see path.
func (f *forge) wantGateRefusal(t *testing.T, a answer, path, challenge string) {
	t.Helper()
	wantError(t, a, http.StatusUnauthorized, "unauthenticated")
	if got := a.header.Get("WWW-Authenticate"); got != challenge {
		t.Fatalf("WWW-Authenticate %q; want %q", got, challenge)
	}
	if f.s.up.reached(path) {
		t.Fatalf("the upstream saw %s", path)
	}
}

// gateAPI sends a protected API request with the given headers.
func (f *forge) gateAPI(t *testing.T, h map[string]string) (answer, string) {
	t.Helper()
	p := f.path()
	if h["Accept"] == "" {
		h["Accept"] = "application/json"
	}
	return send(t, plain(), request(t, http.MethodGet, f.s.url(p), nil, h)), p
}

// refusedAtGateBearer: a protected API request with the token as bearer.
func (f *forge) refusedAtGateBearer(t *testing.T, raw string) {
	t.Helper()
	a, p := f.gateAPI(t, map[string]string{"Authorization": "Bearer " + raw})
	f.wantGateRefusal(t, a, p, `Bearer error="invalid_token"`)
}

// refusedAtGateCookie: a navigation with the token as the session cookie
// is sent to the login page.
func (f *forge) refusedAtGateCookie(t *testing.T, raw string) {
	t.Helper()
	p := f.path()
	a := send(t, plain(), request(t, http.MethodGet, f.s.url(p), nil, map[string]string{"Cookie": "idv_session=" + raw, "Accept": "text/html"}))
	want(t, a, http.StatusFound)
	if loc, w := a.header.Get("Location"), "/.idv/login?rd="+url.QueryEscape(p); loc != w {
		t.Fatalf("Location %q; want %q", loc, w)
	}
	if f.s.up.reached(p) {
		t.Fatalf("the upstream saw %s", p)
	}
}

// refusedAtMe: GET /me with the token as bearer.
func (f *forge) refusedAtMe(t *testing.T, raw string) {
	t.Helper()
	a := send(t, plain(), request(t, http.MethodGet, f.s.url("/.idv/me"), nil, map[string]string{"Authorization": "Bearer " + raw}))
	wantError(t, a, http.StatusUnauthorized, "unauthenticated")
	if got := a.header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
		t.Fatalf("WWW-Authenticate %q", got)
	}
}

// refusedAtAuthorize: the authorization endpoint with the token as the
// session cookie sends the browser to log in, never back with a code.
func (f *forge) refusedAtAuthorize(t *testing.T, raw string) {
	t.Helper()
	q := f.app.authorizeQuery(pkceVerifier())
	a := send(t, plain(), request(t, http.MethodGet, f.s.url("/.idv/oidc/authorize?"+q.Encode()), nil, map[string]string{"Cookie": "idv_session=" + raw, "Accept": "text/html"}))
	want(t, a, http.StatusFound)
	if loc := a.header.Get("Location"); !strings.HasPrefix(loc, "/.idv/login?") || strings.Contains(loc, "code=") {
		t.Fatalf("authorize with a forged session redirected to %q; want the login page", loc)
	}
}

// refusedAsSession tries raw at every place a session token is accepted.
func (f *forge) refusedAsSession(t *testing.T, raw string) {
	t.Helper()
	f.refusedAtGateBearer(t, raw)
	f.refusedAtGateCookie(t, raw)
	f.refusedAtMe(t, raw)
	f.refusedAtAuthorize(t, raw)
}

// refusedAtUserinfo: in the Authorization header and in a POST form
// (RFC 6750 §2.1, §2.2).
func (f *forge) refusedAtUserinfo(t *testing.T, raw string) {
	t.Helper()
	f.app.wantUserinfoRefused(t, raw)
	a := send(t, plain(), request(t, http.MethodPost, f.s.url("/.idv/oidc/userinfo"), strings.NewReader(url.Values{"access_token": {raw}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"}))
	wantError(t, a, http.StatusUnauthorized, "invalid_token")
}

// refusedAtIntrospect: introspection says inactive (RFC 7662 §2.2).
func (f *forge) refusedAtIntrospect(t *testing.T, raw string) {
	t.Helper()
	if f.app.active(t, raw) {
		t.Fatal("introspection: a forged token is active")
	}
}

// refusedAsAccess tries raw at every place an access token is accepted.
func (f *forge) refusedAsAccess(t *testing.T, raw string) {
	t.Helper()
	f.refusedAtUserinfo(t, raw)
	f.refusedAtIntrospect(t, raw)
}

// hint sends raw as end_session's id_token_hint, without a cookie.
func (f *forge) hint(t *testing.T, raw string) answer {
	t.Helper()
	return send(t, plain(), request(t, http.MethodGet, f.s.url("/.idv/oidc/logout?"+url.Values{"id_token_hint": {raw}}.Encode()), nil, map[string]string{"Accept": "text/html"}))
}

// refusedAsHint: end_session refuses the hint with its error page (a
// parameter of more than 8 KiB as malformed, before it is read), and the
// victim's session, which a forged hint names, is still alive.
func (f *forge) refusedAsHint(t *testing.T, raw string) {
	t.Helper()
	a := f.hint(t, raw)
	want(t, a, http.StatusBadRequest)
	why := "not issued here"
	if len(raw) > 8<<10 {
		why = "malformed"
	}
	if !strings.Contains(string(a.body), why) {
		t.Fatalf("end_session refused the hint without saying %q: %v", why, a)
	}
	f.victimAlive(t)
}

// victimAlive fails t unless the victim's session still opens a
// protected page.
func (f *forge) victimAlive(t *testing.T) {
	t.Helper()
	p := f.path()
	a := do(t, f.victim, http.MethodGet, f.s.url(p), nil, map[string]string{"Accept": "application/json"})
	if e := echoOf(t, a); e.Header.Get("X-User") != f.victimSub {
		t.Fatalf("the victim's session answered as %q", e.Header.Get("X-User"))
	}
}

// refusedAs tries raw at every place of kind k.
func (f *forge) refusedAs(t *testing.T, k tokenKind, raw string) {
	t.Helper()
	switch k {
	case sessionKind:
		f.refusedAsSession(t, raw)
	case accessKind:
		f.refusedAsAccess(t, raw)
	case idKind:
		f.refusedAsHint(t, raw)
	}
}

// ---- The forms a forgery takes ----

// forgeryForm is one way of forging a token: for each kind, the tokens
// it makes (none when the form does not apply to the kind).
type forgeryForm struct {
	name   string
	tokens func(f *forge, k tokenKind) []string
}

// refusedEverywhere tries every token of the form at every place of its
// kind.
func (f *forge) refusedEverywhere(t *testing.T, fm forgeryForm) {
	tried := 0
	for _, k := range allKinds {
		for i, raw := range fm.tokens(f, k) {
			tried++
			t.Run(fmt.Sprintf("%s#%d", k, i+1), func(t *testing.T) { f.refusedAs(t, k, raw) })
		}
	}
	if tried == 0 {
		t.Fatal("the form made no token")
	}
}

// kindsOnly limits a form to some kinds.
func kindsOnly(kinds ...tokenKind) func(tokenKind) bool {
	return func(k tokenKind) bool {
		for _, o := range kinds {
			if o == k {
				return true
			}
		}
		return false
	}
}

// otherTyp is the form "the typ of another kind": every kind but the one
// whose typ it is.
func otherTyp(typ string) func(f *forge, k tokenKind) []string {
	return func(f *forge, k tokenKind) []string {
		if strings.EqualFold(typ, k.typ()) {
			return nil
		}
		return []string{f.withHeader(k, func(h map[string]any) {
			if typ == "" {
				delete(h, "typ")
			} else {
				h["typ"] = typ
			}
		}, f.ours())}
	}
}

// claimForm is a form that changes the claims, for the kinds in applies.
func claimForm(applies func(tokenKind) bool, mutations ...func(k tokenKind, c jwt.MapClaims)) func(f *forge, k tokenKind) []string {
	return func(f *forge, k tokenKind) []string {
		if !applies(k) {
			return nil
		}
		var out []string
		for _, m := range mutations {
			out = append(out, f.valid(k, func(c jwt.MapClaims) { m(k, c) }))
		}
		return out
	}
}

// claimSet is a claim mutation that sets one claim.
func claimSet(name string, v any) func(tokenKind, jwt.MapClaims) {
	return func(_ tokenKind, c jwt.MapClaims) { c[name] = v }
}

// claimWith sets one claim.
func claimWith(name string, v any) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) { c[name] = v }
}

// claimDel is a claim mutation that deletes one claim.
func claimDel(name string) func(tokenKind, jwt.MapClaims) {
	return func(_ tokenKind, c jwt.MapClaims) { delete(c, name) }
}

func forgeryForms() []forgeryForm {
	any3 := kindsOnly(allKinds...)
	timed := kindsOnly(sessionKind, accessKind) // an id_token_hint's time is not checked (RP-Initiated Logout §2)
	return []forgeryForm{
		{"alg none in any letter case, with and without a signature", func(f *forge, k tokenKind) []string {
			var out []string
			for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
				h := f.header(k)
				h["alg"] = alg
				c := f.claims(k, nil)
				out = append(out, f.token(h, c, nil), f.token(h, c, f.ours()))
			}
			return out
		}},
		{"HS256 keyed with the public key's bytes", func(f *forge, k tokenKind) []string {
			ecDER, _ := x509.MarshalPKIXPublicKey(&f.key.Private.PublicKey)
			point, _ := f.key.Private.PublicKey.Bytes()
			rsaDER, _ := x509.MarshalPKIXPublicKey(f.rsaPub)
			secrets := []struct {
				kid    string
				secret []byte
			}{
				{f.key.KID, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})},
				{f.key.KID, ecDER},
				{f.key.KID, point},
				{f.key.KID, f.ecJWK},
				{f.key.KID, f.jwks},
				{f.rsaKID, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaDER})},
				{f.rsaKID, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(f.rsaPub)})},
			}
			var out []string
			for _, sc := range secrets {
				out = append(out, f.withHeader(k, func(h map[string]any) { h["alg"], h["kid"] = "HS256", sc.kid }, hs256(sc.secret)))
			}
			return out
		}},
		{"RS256 header under the ES256 key's kid", func(f *forge, k tokenKind) []string {
			return []string{
				f.withHeader(k, func(h map[string]any) { h["alg"] = "RS256" }, rs256(f.attackerRSA)),
				f.withHeader(k, func(h map[string]any) { h["alg"] = "RS256" }, f.ours()),
			}
		}},
		{"ES256 signature under the RS256 key's kid", func(f *forge, k tokenKind) []string {
			return []string{f.withHeader(k, func(h map[string]any) { h["kid"] = f.rsaKID }, f.ours())}
		}},
		{"an algorithm other than the pinned ones", func(f *forge, k tokenKind) []string {
			var out []string
			for _, alg := range []string{"es256", "ES384", "ES512", "PS256", "EdDSA", "ES256K", "RS256 ", ""} {
				out = append(out, f.withHeader(k, func(h map[string]any) { h["alg"] = alg }, f.ours()))
			}
			return out
		}},
		{"kid missing, empty or unknown", func(f *forge, k tokenKind) []string {
			return []string{
				f.withHeader(k, func(h map[string]any) { delete(h, "kid") }, f.ours()),
				f.withHeader(k, func(h map[string]any) { h["kid"] = "" }, f.ours()),
				f.withHeader(k, func(h map[string]any) { h["kid"] = b64url(make([]byte, 32)) }, f.ours()),
				f.withHeader(k, func(h map[string]any) { h["kid"] = strings.ToUpper(f.key.KID) }, f.ours()),
				f.withHeader(k, func(h map[string]any) { h["kid"] = f.key.KID + " " }, f.ours()),
			}
		}},
		{"kid with path traversal", func(f *forge, k tokenKind) []string {
			var out []string
			for _, kid := range []string{"../../keys/signing", "keys/signing", "../keys/signing-rs256", "/etc/passwd", "file:///etc/passwd", f.key.KID + "/../" + f.key.KID, "..%2f..%2fkeys%2fsigning"} {
				out = append(out, f.withHeader(k, func(h map[string]any) { h["kid"] = kid }, f.ours()))
			}
			return out
		}},
		{"kid of 8 KiB", func(f *forge, k tokenKind) []string {
			return []string{
				f.withHeader(k, func(h map[string]any) { h["kid"] = strings.Repeat("A", 8<<10) }, f.ours()),
				f.withHeader(k, func(h map[string]any) { h["kid"] = f.key.KID + strings.Repeat(" ", 8<<10) }, f.ours()),
				f.withHeader(k, func(h map[string]any) { h["kid"] = f.key.KID + "\u0000" }, f.ours()),
			}
		}},
		{"kid that is not a string", func(f *forge, k tokenKind) []string {
			var out []string
			for _, kid := range []any{1234, []string{f.key.KID}, map[string]string{"kid": f.key.KID}, nil, true} {
				out = append(out, f.withHeader(k, func(h map[string]any) { h["kid"] = kid }, f.ours()))
			}
			return out
		}},
		{"jku and x5u headers pointing to the attacker's keys", func(f *forge, k tokenKind) []string {
			var out []string
			for _, hdr := range []string{"jku", "x5u"} {
				for _, kid := range []string{"attacker-1", f.key.KID} {
					out = append(out, f.withHeader(k, func(h map[string]any) { h[hdr], h["kid"] = f.keyHost.URL+"/keys", kid }, es256(f.attacker)))
				}
			}
			return out
		}},
		{"jwk or x5c header embedding the attacker's key", func(f *forge, k tokenKind) []string {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &f.attacker.PublicKey, f.attacker)
			if err != nil {
				panic(err)
			}
			var out []string
			for _, kid := range []string{"attacker-1", f.key.KID} {
				out = append(out,
					f.withHeader(k, func(h map[string]any) { h["jwk"], h["kid"] = ecJWKOf(&f.attacker.PublicKey, kid), kid }, es256(f.attacker)),
					f.withHeader(k, func(h map[string]any) { h["x5c"], h["kid"] = []string{base64.StdEncoding.EncodeToString(der)}, kid }, es256(f.attacker)))
			}
			return out
		}},
		{"typ at+jwt (an access token's) elsewhere", otherTyp("at+jwt")},
		{"typ JWT (an ID token's) elsewhere", otherTyp("JWT")},
		{"typ idv-session+jwt (a session token's) elsewhere", otherTyp("idv-session+jwt")},
		{"typ logout+jwt (a logout token's) anywhere", otherTyp("logout+jwt")},
		{"typ missing", otherTyp("")},
		{"typ jwt in lower case (an ID token's) elsewhere", otherTyp("jwt")},
		{"expired beyond the 30 s skew", claimForm(timed, func(_ tokenKind, c jwt.MapClaims) {
			now := time.Now()
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-45*time.Second).Unix()
			if _, ok := c["nbf"]; ok {
				c["nbf"] = c["iat"]
			}
		})},
		{"nbf in the future beyond the skew", claimForm(timed, claimSet("nbf", time.Now().Add(2*time.Minute).Unix()))},
		{"iat in the future beyond the skew", claimForm(timed, claimSet("iat", time.Now().Add(2*time.Minute).Unix()))},
		{"exp missing", claimForm(timed, claimDel("exp"))},
		{"iss of another issuer, or ours bent", claimForm(any3,
			claimSet("iss", "https://evil.example"),
			func(k tokenKind, c jwt.MapClaims) { c["iss"] = fmt.Sprint(c["iss"]) + "/" },
			func(k tokenKind, c jwt.MapClaims) { c["iss"] = strings.ToUpper(fmt.Sprint(c["iss"])) },
			claimSet("iss", ""),
			claimDel("iss"))},
		{"aud of another site or client", claimForm(any3, func(k tokenKind, c jwt.MapClaims) {
			switch k {
			case sessionKind:
				c["aud"] = "urn:caddy-idv:site:another"
			case accessKind:
				c["aud"] = []string{"app"} // not for this issuer
			case idKind:
				c["aud"], c["azp"] = "spa", "app"
			}
		}, func(k tokenKind, c jwt.MapClaims) {
			switch k {
			case sessionKind:
				c["aud"] = fmt.Sprint(c["iss"]) // the issuer is not the audience
			case accessKind:
				c["aud"] = []string{fmt.Sprint(c["iss"]), "spa"} // not for its client_id
			case idKind:
				c["aud"], c["azp"] = "app", "spa"
			}
		})},
		{"aud missing", claimForm(any3, claimDel("aud"))},
		{"idv naming a provider this handler does not have", claimForm(kindsOnly(sessionKind),
			claimSet("idv", "uqudo"), claimSet("idv", "DEMO"), claimSet("idv", "demo "), claimSet("idv", "https://evil.example"), claimSet("idv", ""), claimDel("idv"))},
		{"sub, sid or jti missing", claimForm(timed, claimDel("sub"), claimDel("sid"), claimDel("jti"), claimSet("sub", ""))},
		{"client_id of an application that is not registered", claimForm(kindsOnly(accessKind, idKind), func(k tokenKind, c jwt.MapClaims) {
			if k == accessKind {
				c["client_id"], c["aud"] = "evil", []string{"evil", fmt.Sprint(c["iss"])}
				return
			}
			c["aud"], c["azp"] = "evil", "evil"
		})},
		{"signature from another key under our kid", func(f *forge, k tokenKind) []string {
			return []string{f.token(f.header(k), f.claims(k, nil), es256(f.attacker))}
		}},
		{"signature stripped", func(f *forge, k tokenKind) []string {
			parts := strings.Split(f.valid(k, nil), ".")
			return []string{parts[0] + "." + parts[1] + ".", parts[0] + "." + parts[1], parts[0] + "." + parts[1] + ".."}
		}},
		{"signature of another token", func(f *forge, k tokenKind) []string {
			mine := strings.Split(f.valid(k, claimWith("sub", "someone-else")), ".")
			other := strings.Split(f.valid(k, nil), ".")
			return []string{mine[0] + "." + mine[1] + "." + other[2]}
		}},
		{"payload swapped under a valid signature", func(f *forge, k tokenKind) []string {
			parts := strings.Split(f.real(k), ".")
			c := claimsOfParts(parts[1])
			c["sub"] = "someone-else"
			c["exp"] = time.Now().Add(time.Hour).Unix()
			return []string{parts[0] + "." + b64url(jsonOf(c)) + "." + parts[2]}
		}},
		{"base64 with padding", func(f *forge, k tokenKind) []string {
			enc := base64.URLEncoding
			var out []string
			for i := 0; len(out) < 2 && i < 6; i++ {
				c := f.claims(k, claimWith("x", strings.Repeat("a", i)))
				in := enc.EncodeToString(jsonOf(f.header(k))) + "." + enc.EncodeToString(jsonOf(c))
				if strings.Contains(in, "=") {
					out = append(out, in+"."+enc.EncodeToString(f.ours()([]byte(in))))
				}
			}
			return out
		}},
		{"standard base64 alphabet", func(f *forge, k tokenKind) []string {
			enc := base64.RawStdEncoding
			for i := 0; i < 200; i++ {
				c := f.claims(k, claimWith("x", strings.Repeat("?", i)))
				in := enc.EncodeToString(jsonOf(f.header(k))) + "." + enc.EncodeToString(jsonOf(c))
				sig := enc.EncodeToString(f.ours()([]byte(in)))
				if strings.ContainsAny(in, "+/") {
					return []string{in + "." + sig}
				}
			}
			panic("no payload with + or / in standard base64")
		}},
		{"five segments (JWE-like) or a trailing segment", func(f *forge, k tokenKind) []string {
			jwe := jsonOf(map[string]string{"alg": "dir", "enc": "A256GCM", "kid": f.key.KID, "typ": k.typ()})
			valid := f.valid(k, nil)
			return []string{
				b64url(jwe) + ".." + b64url(make([]byte, 12)) + "." + b64url(jsonOf(f.claims(k, nil))) + "." + b64url(make([]byte, 16)),
				valid + "." + b64url([]byte("{}")),
				valid + "..",
			}
		}},
		{"duplicate claim: the lexically last one counts (RFC 7519 §4)", func(f *forge, k tokenKind) []string {
			payload := jsonOf(f.claims(k, nil))
			var out []string
			for _, dup := range []string{`"iss":"https://evil.example"`, `"aud":"urn:caddy-idv:site:another"`} {
				p := append(append(payload[:len(payload)-1:len(payload)-1], ','), dup+"}"...)
				out = append(out, compactJWS(jsonOf(f.header(k)), p, f.ours()))
			}
			return out
		}},
		{"duplicate header member: the last one counts", func(f *forge, k tokenKind) []string {
			payload := jsonOf(f.claims(k, nil))
			var out []string
			for _, dup := range []string{`"alg":"none"`, `"kid":"unknown"`, `"typ":"logout+jwt"`} {
				h := jsonOf(f.header(k))
				h = append(append(h[:len(h)-1:len(h)-1], ','), dup+"}"...)
				out = append(out, compactJWS(h, payload, f.ours()))
			}
			return out
		}},
		{"exp, nbf or iat of the wrong type", claimForm(timed,
			claimSet("exp", fmt.Sprint(time.Now().Add(time.Hour).Unix())), claimSet("exp", true), claimSet("exp", []int64{time.Now().Add(time.Hour).Unix()}),
			claimSet("nbf", "0"), claimSet("iat", "now"))},
		{"sub, aud, iss or client_id of the wrong type", func(f *forge, k tokenKind) []string {
			var out []string
			if k != idKind {
				out = append(out, f.valid(k, claimWith("sub", 12345)))
			}
			out = append(out,
				f.valid(k, func(c jwt.MapClaims) { c["aud"] = 12345 }),
				f.valid(k, func(c jwt.MapClaims) { c["iss"] = []any{c["iss"]} }),
				f.valid(k, func(c jwt.MapClaims) { c["aud"] = map[string]any{"aud": c["aud"]} }))
			switch k {
			case sessionKind:
				out = append(out, f.valid(k, claimWith("idv", []string{"demo"})))
			case accessKind:
				out = append(out, f.valid(k, claimWith("client_id", []string{"app"})))
			case idKind:
				out = append(out, f.valid(k, claimWith("azp", []string{"app"})))
			}
			return out
		}},
		{"malformed ECDSA signature (zeros, the curve order, DER, truncated)", func(f *forge, k tokenKind) []string {
			n := elliptic.P256().Params().N
			der := func(in []byte) []byte {
				r, s := ecdsaSign(f.key.Private, in)
				b, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
				return b
			}
			fixed := func(sig []byte) jwsSigner { return func([]byte) []byte { return sig } }
			h, c := f.header(k), f.claims(k, nil)
			valid := f.token(h, c, f.ours())
			return []string{
				f.token(h, c, fixed(make([]byte, 64))),
				f.token(h, c, fixed(append(n.FillBytes(make([]byte, 32)), n.FillBytes(make([]byte, 32))...))),
				f.token(h, c, der),
				valid[:len(valid)-2],
			}
		}},
	}
}

// claimsOfParts decodes a payload segment.
func claimsOfParts(seg string) map[string]any {
	raw, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		panic(err)
	}
	c := map[string]any{}
	if err := json.Unmarshal(raw, &c); err != nil {
		panic(err)
	}
	return c
}

// ---- Tokens of one kind used as another ----

func (f *forge) confusions() []attack {
	return []attack{
		{"aud array naming us and another audience: only an ID token hint needs exactly one", func(t *testing.T) {
			// RFC 7519 §4.1.3: a recipient accepts a token whose aud
			// array contains it; the ID token hint's verifier requires
			// exactly one audience, equal to azp.
			other := "https://other.example"
			sess := f.valid(sessionKind, func(c jwt.MapClaims) { c["aud"] = []any{c["aud"], other} })
			a, _ := f.gateAPI(t, map[string]string{"Authorization": "Bearer " + sess})
			if e := echoOf(t, a); e.Header.Get("X-User") != f.victimSub {
				t.Fatalf("X-User %q", e.Header.Get("X-User"))
			}
			f.app.wantUserinfoOK(t, f.valid(accessKind, func(c jwt.MapClaims) { c["aud"] = append(c["aud"].([]any), other) }))
			f.refusedAsHint(t, f.valid(idKind, func(c jwt.MapClaims) { c["aud"] = []any{"app", "spa"} }))
			f.refusedAsHint(t, f.valid(idKind, func(c jwt.MapClaims) { c["aud"] = []any{"app", other} }))
		}},
		{"token of 64 KiB, and one just over the 16 KiB the module parses", func(t *testing.T) {
			for _, k := range allKinds {
				// Just over token/'s bound, within Caddy's 16 KiB of
				// headers (plus Go's slack): the module refuses it.
				raw := f.valid(k, claimWith("pad", strings.Repeat("A", 12<<10+512)))
				if len(raw) <= 16<<10 || len(raw) > 18<<10 {
					t.Fatalf("token of %d bytes", len(raw))
				}
				switch k {
				case accessKind:
					// (A form of that size is more than a body may be.)
					f.app.wantUserinfoRefused(t, raw)
				default:
					f.refusedAs(t, k, raw)
				}
			}
			for _, k := range allKinds {
				raw := f.valid(k, claimWith("pad", strings.Repeat("A", 48<<10)))
				if len(raw) < 64<<10 {
					t.Fatalf("token of %d bytes", len(raw))
				}
				// In a header, Caddy refuses it before the module sees it.
				tooLarge := func(a answer, p string) {
					t.Helper()
					want(t, a, http.StatusRequestHeaderFieldsTooLarge)
					if p != "" && f.s.up.reached(p) {
						t.Fatalf("the upstream saw %s", p)
					}
				}
				switch k {
				case sessionKind:
					a, p := f.gateAPI(t, map[string]string{"Authorization": "Bearer " + raw})
					tooLarge(a, p)
					a, p = f.gateAPI(t, map[string]string{"Cookie": "idv_session=" + raw, "Accept": "text/html"})
					tooLarge(a, p)
					tooLarge(send(t, plain(), request(t, http.MethodGet, f.s.url("/.idv/me"), nil, map[string]string{"Authorization": "Bearer " + raw})), "")
				case accessKind:
					tooLarge(f.app.userinfo(t, raw), "")
					// In a form it is more than the body may be.
					a := send(t, plain(), request(t, http.MethodPost, f.s.url("/.idv/oidc/userinfo"), strings.NewReader(url.Values{"access_token": {raw}}.Encode()),
						map[string]string{"Content-Type": "application/x-www-form-urlencoded"}))
					wantError(t, a, http.StatusUnauthorized, "invalid_request")
					wantError(t, f.app.post(t, "introspect", url.Values{"token": {raw}}), http.StatusBadRequest, "invalid_request")
				case idKind:
					tooLarge(f.hint(t, raw), "")
					a := send(t, plain(), request(t, http.MethodPost, f.s.url("/.idv/oidc/logout"), strings.NewReader(url.Values{"id_token_hint": {raw}}.Encode()),
						map[string]string{"Content-Type": "application/x-www-form-urlencoded"}))
					want(t, a, http.StatusBadRequest)
					if !strings.Contains(string(a.body), "malformed") {
						t.Fatalf("end_session: %v", a)
					}
					f.victimAlive(t)
				}
			}
		}},
		{"OIDC access token used as a session (bearer and cookie)", func(t *testing.T) {
			f.refusedAsSession(t, f.tokens.Access)
		}},
		{"OIDC ID token used as a session and at userinfo", func(t *testing.T) {
			f.refusedAsSession(t, f.tokens.ID)
			f.refusedAsAccess(t, f.tokens.ID)
		}},
		{"session token used at userinfo, introspection and as id_token_hint", func(t *testing.T) {
			f.refusedAsAccess(t, f.session)
			f.refusedAsHint(t, f.session)
		}},
		{"OIDC access token used as id_token_hint", func(t *testing.T) {
			f.refusedAsHint(t, f.tokens.Access)
		}},
		{"logout token used anywhere", func(t *testing.T) {
			// What Back-Channel Logout 1.0 §2.4 sends an application
			// (ES256 for a client that registered it), for the victim's
			// session.
			now := time.Now()
			claims := jwt.MapClaims{
				"iss": f.s.inst.URL, "aud": "app", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
				"jti": "lt-" + pkceVerifier()[:16], "sub": f.victimSub, "sid": f.victimSID,
				"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
			}
			raw := f.token(map[string]any{"alg": "ES256", "kid": f.key.KID, "typ": "logout+jwt"}, claims, f.ours())
			f.refusedAsSession(t, raw)
			f.refusedAsAccess(t, raw)
			f.refusedAsHint(t, raw)
		}},
		{"refresh token or authorization code used as a bearer token", func(t *testing.T) {
			v := pkceVerifier()
			q := f.app.authorizeQuery(v)
			code := f.app.code(t, f.victim, q)
			for _, raw := range []string{f.tokens.Refresh, code} {
				f.refusedAsSession(t, raw)
				f.app.wantUserinfoRefused(t, raw)
				f.refusedAsHint(t, raw)
			}
			// None of it consumed the code.
			tokensOf(t, f.app.exchange(t, code, f.app.redirect, v))
		}},
		{"revoked session's claims re-signed with a fresh jti and exp", func(t *testing.T) {
			b := f.s.loggedIn(t)
			old := f.s.bearer(t, b)
			h := f.s.sameOrigin()
			h["Content-Type"] = "application/x-www-form-urlencoded"
			want(t, do(t, b, http.MethodPost, f.s.url("/.idv/logout"), nil, h), http.StatusSeeOther)
			c := claimsOf(t, old)
			now := time.Now()
			c["jti"], c["iat"], c["nbf"], c["exp"] = "forged-"+pkceVerifier()[:16], now.Unix(), now.Unix(), now.Add(time.Hour).Unix()
			f.refusedAsSession(t, old)
			f.refusedAsSession(t, f.token(f.header(sessionKind), c, f.ours()))
		}},
	}
}

// ---- How a token is presented ----

func (f *forge) schemes() []attack {
	forged := func() string { return f.token(f.header(sessionKind), f.claims(sessionKind, nil), es256(f.attacker)) }
	return []attack{
		{"bearer scheme in other letter case names the same token, and no forged one", func(t *testing.T) {
			// RFC 7235 §2.1: the scheme is case-insensitive.
			for _, scheme := range []string{"bearer", "BEARER", "BeArEr"} {
				a, _ := f.gateAPI(t, map[string]string{"Authorization": scheme + " " + f.session})
				if e := echoOf(t, a); e.Header.Get("X-User") != f.victimSub {
					t.Fatalf("%s: X-User %q", scheme, e.Header.Get("X-User"))
				}
				a, p := f.gateAPI(t, map[string]string{"Authorization": scheme + " " + forged()})
				f.wantGateRefusal(t, a, p, `Bearer error="invalid_token"`)
			}
			a := send(t, plain(), request(t, http.MethodGet, f.s.url("/.idv/oidc/userinfo"), nil, map[string]string{"Authorization": "bearer " + f.tokens.Access}))
			want(t, a, http.StatusOK)
		}},
		{"two Authorization headers", func(t *testing.T) {
			for _, pair := range [][2]string{{f.session, forged()}, {forged(), f.session}, {f.session, f.session}} {
				p := f.path()
				req := request(t, http.MethodGet, f.s.url(p), nil, map[string]string{"Accept": "application/json"})
				req.Header.Add("Authorization", "Bearer "+pair[0])
				req.Header.Add("Authorization", "Bearer "+pair[1])
				f.wantGateRefusal(t, send(t, plain(), req), p, `Bearer error="invalid_token"`)
			}
			for _, pair := range [][2]string{{f.tokens.Access, "forged"}, {"forged", f.tokens.Access}} {
				req := request(t, http.MethodGet, f.s.url("/.idv/oidc/userinfo"), nil, nil)
				req.Header.Add("Authorization", "Bearer "+pair[0])
				req.Header.Add("Authorization", "Bearer "+pair[1])
				wantError(t, send(t, plain(), req), http.StatusBadRequest, "invalid_request")
			}
		}},
		{"Bearer followed by two spaces names the same token, and no forged one", func(t *testing.T) {
			// RFC 6750 §2.1: "Bearer" 1*SP b64token.
			a, _ := f.gateAPI(t, map[string]string{"Authorization": "Bearer  " + f.session})
			echoOf(t, a)
			a, p := f.gateAPI(t, map[string]string{"Authorization": "Bearer  " + forged()})
			f.wantGateRefusal(t, a, p, `Bearer error="invalid_token"`)
		}},
		{"Basic auth carrying a session token", func(t *testing.T) {
			for _, v := range []string{
				"Basic " + base64.StdEncoding.EncodeToString([]byte(f.session)),
				"Basic " + base64.StdEncoding.EncodeToString([]byte("user:"+f.session)),
				"Basic " + f.session,
			} {
				// The Authorization header decides, even beside a valid
				// session cookie.
				a, p := f.gateAPI(t, map[string]string{"Authorization": v, "Cookie": "idv_session=" + f.s.sessionCookie(f.victim)})
				f.wantGateRefusal(t, a, p, "Bearer")
				a = send(t, plain(), request(t, http.MethodGet, f.s.url("/.idv/me"), nil, map[string]string{"Authorization": v}))
				wantError(t, a, http.StatusUnauthorized, "unauthenticated")
				a = send(t, plain(), request(t, http.MethodGet, f.s.url("/.idv/oidc/userinfo"), nil, map[string]string{"Authorization": v}))
				wantError(t, a, http.StatusUnauthorized, "invalid_request")
			}
		}},
		{"token in the query string", func(t *testing.T) {
			for _, name := range []string{"access_token", "token", "id_token", "idv_session"} {
				p := f.path()
				a := send(t, plain(), request(t, http.MethodGet, f.s.url(p+"?"+name+"="+f.session), nil, map[string]string{"Accept": "application/json"}))
				f.wantGateRefusal(t, a, p, "Bearer")
			}
			// RFC 6750 §2.3 is not supported: never from the query.
			a := send(t, plain(), request(t, http.MethodGet, f.s.url("/.idv/oidc/userinfo?access_token="+f.tokens.Access), nil, nil))
			wantError(t, a, http.StatusUnauthorized, "invalid_request")
		}},
		{"other authorization schemes", func(t *testing.T) {
			for _, v := range []string{"Token " + f.session, "JWT " + f.session, "DPoP " + f.session, "Bearer" + f.session, "Bearer", "Bearer\t" + f.session} {
				a, p := f.gateAPI(t, map[string]string{"Authorization": v})
				f.wantGateRefusal(t, a, p, "Bearer")
			}
		}},
		{"quoted or comma-joined bearer tokens", func(t *testing.T) {
			for _, v := range []string{
				`Bearer "` + f.session + `"`,
				"Bearer " + f.session + ", Bearer " + forged(),
				"Bearer " + f.session + "," + f.session,
				"Bearer " + f.session + " " + f.session,
			} {
				a, p := f.gateAPI(t, map[string]string{"Authorization": v})
				f.wantGateRefusal(t, a, p, `Bearer error="invalid_token"`)
			}
		}},
	}
}

// ---- An application of the OpenID Connect provider ----

// oidcApp is a relying party of the suite's OpenID Connect provider: the
// confidential client "app" (or, with secret "", the public client
// "spa"), driving the authorization code flow as a real application does.
type oidcApp struct {
	s        *suite
	id       string
	secret   string
	redirect string
}

// confidentialApp is the registered confidential client "app".
func confidentialApp(s *suite) *oidcApp {
	return &oidcApp{s: s, id: "app", secret: s.secret, redirect: s.rp + "/callback"}
}

// publicApp is the registered public client "spa".
func publicApp(s *suite) *oidcApp {
	return &oidcApp{s: s, id: "spa", redirect: s.rp + "/spa"}
}

// oidcTokens is a token response.
type oidcTokens struct {
	Access  string `json:"access_token"`
	ID      string `json:"id_token"`
	Refresh string `json:"refresh_token"`
	Scope   string `json:"scope"`
}

// pkceVerifier is a fresh PKCE code verifier (RFC 7636 §4.1).
func pkceVerifier() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pkceChallenge is the S256 challenge of a verifier.
func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeQuery is an authorization request of the client with the
// offline_access scope and, when verifier is not "", its PKCE challenge.
func (a *oidcApp) authorizeQuery(verifier string) url.Values {
	q := url.Values{
		"client_id":     {a.id},
		"response_type": {"code"},
		"scope":         {"openid profile offline_access"},
		"state":         {"st-" + pkceVerifier()[:8]},
		"nonce":         {"n-" + pkceVerifier()[:8]},
		"redirect_uri":  {a.redirect},
	}
	if verifier != "" {
		q.Set("code_challenge", pkceChallenge(verifier))
		q.Set("code_challenge_method", "S256")
	}
	return q
}

// code sends logged-in browser b to the authorization endpoint with q and
// returns the code it is sent back to the client with.
func (a *oidcApp) code(t *testing.T, b *e2e.Browser, q url.Values) string {
	t.Helper()
	ans := do(t, b, http.MethodGet, a.s.url("/.idv/oidc/authorize?"+q.Encode()), nil, map[string]string{"Accept": "text/html"})
	want(t, ans, http.StatusFound)
	loc, err := url.Parse(ans.header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), q.Get("redirect_uri")+"?") || loc.Query().Get("code") == "" ||
		loc.Query().Get("state") != q.Get("state") {
		t.Fatalf("authorize: redirected to %q; want %s with a code", ans.header.Get("Location"), q.Get("redirect_uri"))
	}
	return loc.Query().Get("code")
}

// post sends a form to an OIDC endpoint, authenticated as the client
// (client_secret_basic, or client_id alone for a public client).
func (a *oidcApp) post(t *testing.T, endpoint string, form url.Values) answer {
	t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if a.secret != "" {
		h["Authorization"] = "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(a.id)+":"+url.QueryEscape(a.secret)))
	} else {
		form.Set("client_id", a.id)
	}
	return send(t, plain(), request(t, http.MethodPost, a.s.url("/.idv/oidc/"+endpoint), strings.NewReader(form.Encode()), h))
}

// exchange redeems a code at the token endpoint.
func (a *oidcApp) exchange(t *testing.T, code, redirect, verifier string) answer {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	return a.post(t, "token", form)
}

// refresh redeems a refresh token.
func (a *oidcApp) refresh(t *testing.T, rt string) answer {
	t.Helper()
	return a.post(t, "token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// revoke revokes a token (RFC 7009).
func (a *oidcApp) revoke(t *testing.T, tok string) answer {
	t.Helper()
	return a.post(t, "revoke", url.Values{"token": {tok}})
}

// active asks the introspection endpoint (RFC 7662) whether tok is active.
func (a *oidcApp) active(t *testing.T, tok string) bool {
	t.Helper()
	ans := a.post(t, "introspect", url.Values{"token": {tok}})
	want(t, ans, http.StatusOK)
	var out struct {
		Active *bool `json:"active"`
	}
	if err := json.Unmarshal(ans.body, &out); err != nil || out.Active == nil {
		t.Fatalf("introspection: %v", ans)
	}
	return *out.Active
}

// tokens parses a successful token response.
func tokensOf(t *testing.T, ans answer) oidcTokens {
	t.Helper()
	want(t, ans, http.StatusOK)
	var out oidcTokens
	if err := json.Unmarshal(ans.body, &out); err != nil || out.Access == "" || out.ID == "" {
		t.Fatalf("token response: %v", ans)
	}
	return out
}

// login runs the whole code flow with logged-in browser b and returns the
// tokens (with a refresh token: the scope has offline_access).
func (a *oidcApp) login(t *testing.T, b *e2e.Browser) oidcTokens {
	t.Helper()
	v := pkceVerifier()
	q := a.authorizeQuery(v)
	out := tokensOf(t, a.exchange(t, a.code(t, b, q), a.redirect, v))
	if out.Refresh == "" {
		t.Fatalf("no refresh token for scope %q", out.Scope)
	}
	return out
}

// userinfo asks the UserInfo endpoint with an access token in the
// Authorization header.
func (a *oidcApp) userinfo(t *testing.T, access string) answer {
	t.Helper()
	return send(t, plain(), request(t, http.MethodGet, a.s.url("/.idv/oidc/userinfo"), nil, map[string]string{"Authorization": "Bearer " + access}))
}

// wantUserinfoRefused fails t unless userinfo refused the access token as
// invalid (RFC 6750 §3.1).
func (a *oidcApp) wantUserinfoRefused(t *testing.T, access string) {
	t.Helper()
	ans := a.userinfo(t, access)
	wantError(t, ans, http.StatusUnauthorized, "invalid_token")
	if got, w := ans.header.Get("WWW-Authenticate"), `Bearer realm="`+a.s.inst.URL+`", error="invalid_token"`; got != w {
		t.Fatalf("WWW-Authenticate %q; want %q", got, w)
	}
}

// wantUserinfoOK fails t unless userinfo answered the access token.
func (a *oidcApp) wantUserinfoOK(t *testing.T, access string) {
	t.Helper()
	ans := a.userinfo(t, access)
	want(t, ans, http.StatusOK)
	var out map[string]any
	if json.Unmarshal(ans.body, &out) != nil || out["sub"] == nil {
		t.Fatalf("userinfo: %v", ans)
	}
}
