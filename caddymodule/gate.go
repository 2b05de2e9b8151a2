package caddymodule

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/token"
)

// ServeHTTP serves the module's own endpoints under Prefix and gates every
// other request (docs/reference.md, "Protected requests").
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The OIDC endpoints come first: discovery lives at the issuer's path,
	// which may be outside the prefix, and the token endpoint is called by
	// other servers, not by this site's pages.
	if h.oidc != nil && h.oidc.Handles(r.URL.Path) {
		h.oidc.ServeHTTP(w, r)
		return nil
	}
	if h.ownPath(r.URL.Path) {
		h.serveOwn(w, r)
		return nil
	}

	// Identity headers are deleted before anything else, so that no path
	// through this handler, including the ones that end in a redirect or a
	// 401, can leave a client-supplied value for the upstream: a client
	// must never be able to set an identity header itself.
	h.stripIdentityHeaders(r)

	raw, fromCookie := h.credential(r)
	if raw == "" {
		return h.unauthenticated(w, r, "")
	}
	sess, err := h.tokens.Verify(r.Context(), raw, h.expect(r))
	if err != nil && !fromCookie && len(h.trusted) > 0 && !errors.Is(err, token.ErrRevoked) {
		sess, err = h.verifyTrusted(r.Context(), raw)
	}
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return caddyhttp.Error(http.StatusServiceUnavailable, err)
		}
		return h.unauthenticated(w, r, `error="invalid_token"`)
	}
	if fromCookie {
		h.slide(w, r, sess)
	}
	if !h.allowed(sess) {
		return caddyhttp.Error(http.StatusForbidden, errors.New("idv: session does not meet a require rule"))
	}
	for _, hr := range h.Headers {
		if v, ok := sess.Values[hr.Claim]; ok && v != "" {
			r.Header.Set(hr.Header, v)
		}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// One lazy provider instead of a Set per claim: placeholders are
		// resolved only if something (a header, a log field) uses them.
		repl.Map(placeholders{sess}.get)
	}
	return next.ServeHTTP(w, r)
}

// placeholders resolves Caddy's authentication placeholders from a session:
// {http.auth.user.id} is the subject, {http.auth.user.<claim>} any other
// claim, as basic_auth and forward_auth do.
type placeholders struct{ sess *token.Session }

func (p placeholders) get(key string) (any, bool) {
	const prefix = "http.auth.user."
	if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
		return nil, false
	}
	claim := key[len(prefix):]
	if claim == "id" {
		return p.sess.Subject, true
	}
	v, ok := p.sess.Values[claim]
	return v, ok
}

func (h *Handler) ownPath(p string) bool {
	return p == h.Prefix || (len(p) > len(h.Prefix) && p[len(h.Prefix)] == '/' && p[:len(h.Prefix)] == h.Prefix)
}

// credential returns the session token of r: a bearer token if the
// Authorization header carries one, else the session cookie.
func (h *Handler) credential(r *http.Request) (raw string, fromCookie bool) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			return strings.TrimSpace(auth[7:]), false
		}
		return "", false
	}
	if v := cookieValue(r, h.sc.Cookie); v != "" {
		return v, true
	}
	return "", false
}

// cookieValue returns the value of the named cookie without parsing the
// others (r.Cookie allocates for every cookie on every request). A value
// that is not a well-formed token fails verification anyway.
func cookieValue(r *http.Request, name string) string {
	for _, line := range r.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			part = strings.TrimSpace(part)
			n, v, ok := strings.Cut(part, "=")
			if ok && n == name {
				return strings.Trim(v, `"`)
			}
		}
	}
	return ""
}

// expect is what a token must say to be valid on the site r is for.
func (h *Handler) expect(r *http.Request) token.Expect {
	sc := h.Session
	origin := siteOrigin(r)
	e := token.Expect{Audience: origin, Issuer: origin}
	if sc != nil {
		if sc.Domain != "" {
			e.Audience, e.Issuer, e.IssuerDomain = sc.Domain, "", sc.Domain
		}
		if sc.Audience != "" {
			e.Audience = sc.Audience
		}
	}
	if h.OIDC != nil {
		e.Issuer, e.IssuerDomain = h.OIDC.Issuer, ""
	}
	return e
}

// allowed applies the require rules: every rule must hold.
func (h *Handler) allowed(sess *token.Session) bool {
	for _, req := range h.Require {
		if !claimMatches(sess.Claims[req.Claim], req.Values) {
			return false
		}
	}
	return true
}

func claimMatches(v any, values []string) bool {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if claimMatches(e, values) {
				return true
			}
		}
		return false
	}
	if v == nil {
		return false
	}
	s := token.Stringify(v)
	for _, want := range values {
		if s == want {
			return true
		}
	}
	return false
}

// stripIdentityHeaders deletes every header a `header` rule sets, in every
// spelling a server could read as the same name: any letter case, and '_'
// for '-' (CGI-style servers such as PHP map both to HTTP_X_USER).
func (h *Handler) stripIdentityHeaders(r *http.Request) {
	if len(h.Headers) == 0 {
		return
	}
	for name := range r.Header {
		for _, hr := range h.Headers {
			if sameHeader(name, hr.Header) {
				delete(r.Header, name)
				break
			}
		}
	}
}

func sameHeader(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c + ('a' - 'A')
	case c == '_':
		return '-'
	}
	return c
}

// unauthenticated answers a request without a valid session: browser
// navigations go to the login page, everything else gets 401.
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request, bearerErr string) error {
	login := h.Prefix + "/login"
	if isNavigation(r) {
		rd := safeRedirect(r.URL.RequestURI())
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, login+"?rd="+url.QueryEscape(rd), http.StatusFound)
		return nil
	}
	challenge := "Bearer"
	if bearerErr != "" {
		challenge += " " + bearerErr
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated", "login": login})
	return nil
}
