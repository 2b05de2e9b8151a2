package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

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
		h.limitBodyTime(w, r)
		h.oidc.ServeHTTP(w, r)
		return nil
	}
	if h.ownPath(r.URL.Path) {
		h.limitBodyTime(w, r)
		h.serveOwn(w, r)
		return nil
	}

	// Identity headers are deleted before anything else, so that no path
	// through this handler, including the ones that end in a redirect or a
	// 401, can leave a client-supplied value for the upstream: a client
	// must never be able to set an identity header itself.
	h.stripIdentityHeaders(r)
	markHandled(r, &h.identityHeaders)

	sess, cookie, err := h.session(r)
	if !errors.Is(err, errNoCredential) && !errors.Is(err, store.ErrUnavailable) {
		metrics.tokenChecks.WithLabelValues(tokenCheckResult(err)).Inc()
	}
	fromCookie := cookie != ""
	if err != nil && !fromCookie && len(h.trusted) > 0 && !errors.Is(err, errNoCredential) &&
		!errors.Is(err, token.ErrRevoked) && !errors.Is(err, store.ErrUnavailable) && !errors.Is(err, errSeveralAuthorizations) {
		sess, err = h.verifyTrusted(r.Context(), bearerToken(r))
	}
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) {
			return caddyhttp.Error(http.StatusServiceUnavailable, err)
		}
		if errors.Is(err, errNoCredential) {
			return h.unauthenticated(w, r, "")
		}
		return h.unauthenticated(w, r, `error="invalid_token"`)
	}
	if fromCookie {
		w = h.slide(w, r, sess, cookie)
	}
	if !h.allowed(sess) {
		// A person gets a page that says who is logged in and offers to
		// log in as someone else; an API client gets JSON.
		h.writeError(w, r, &apiError{status: http.StatusForbidden, code: "forbidden",
			message: "This account may not open this page.", account: accountName(sess)})
		return nil
	}
	if len(h.Headers) > 0 {
		dropConnectionOptions(r.Header, h.identityHeaders)
	}
	for _, hr := range h.Headers {
		if v, ok := sess.Values[hr.Claim]; ok && v != "" {
			if !validHeaderValue(v) {
				// A claim with a line break or other control character
				// (a trusted issuer can put anything in one) would break
				// or split the upstream request: refuse it, clearly.
				h.logger.Warn("refused: a claim sent in an identity header holds a control character",
					zap.String("claim", hr.Claim), zap.String("header", hr.Header), zap.String("issuer", sess.Issuer))
				return caddyhttp.Error(http.StatusForbidden, errors.New("idv: identity claim not valid in a header"))
			}
			r.Header.Set(hr.Header, v)
		}
	}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		// One lazy provider instead of a Set per claim: placeholders are
		// resolved only if something (a header, a log field) uses them.
		repl.Map(sess.Placeholders())
	}
	return next.ServeHTTP(w, r)
}

func (h *Handler) ownPath(p string) bool {
	return p == h.Prefix || (len(p) > len(h.Prefix) && p[len(h.Prefix)] == '/' && p[:len(h.Prefix)] == h.Prefix)
}

// errNoCredential is a request that presents no token at all.
var errNoCredential = errors.New("idv: no session token")

// errSeveralAuthorizations is a request with more than one Authorization
// header (a field that may appear once, RFC 9110 §11.6.2): the gate would
// check one while the upstream, which gets them all, might read another.
var errSeveralAuthorizations = fmt.Errorf("%w: more than one Authorization header", token.ErrInvalid)

// session returns r's verified session token of this site: the bearer
// token when r has an Authorization header, else the session cookie. It
// accepts session tokens only (see token.Sessions.Verify); the gate alone
// also tries trusted issuers. When r carries several session cookies (a
// sibling subdomain can set one on the parent domain to pin a person to
// the attacker's session), none is trusted unless exactly one verifies.
func (h *Handler) session(r *http.Request) (sess *token.Session, cookie string, err error) {
	if auth, ok := r.Header["Authorization"]; ok {
		if len(auth) > 1 {
			return nil, "", errSeveralAuthorizations
		}
		raw := bearerToken(r)
		if raw == "" {
			return nil, "", errNoCredential
		}
		sess, err = h.sessions.Verify(r.Context(), raw)
		return sess, "", err
	}
	var buf [4]string
	cookies := h.sessionCookies(r, buf[:])
	switch len(cookies) {
	case 0:
		return nil, "", errNoCredential
	case 1:
		sess, err = h.verifyCookie(r.Context(), cookies[0])
		return sess, cookies[0], err
	}
	verified := 0
	for _, v := range cookies {
		s, e := h.verifyCookie(r.Context(), v)
		if e == nil {
			sess, cookie, verified = s, v, verified+1
		} else if errors.Is(e, store.ErrUnavailable) {
			return nil, cookies[0], e
		}
	}
	if verified != 1 {
		return nil, cookies[0], fmt.Errorf("%w: %d of %d session cookies verify", token.ErrInvalid, verified, len(cookies))
	}
	return sess, cookie, nil
}

// verifyCookie verifies a session cookie's value: a session reference (what
// this module sets) or a session token (a cookie set by an earlier version,
// or by hand).
func (h *Handler) verifyCookie(ctx context.Context, v string) (*token.Session, error) {
	if token.IsRef(v) {
		return h.sessions.VerifyRef(ctx, v)
	}
	return h.sessions.Verify(ctx, v)
}

// bearerToken is the token of an "Authorization: Bearer" header, or "".
func bearerToken(r *http.Request) string {
	auth := r.Header.Get("Authorization")
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

// allowed applies the require rules. A rule without an issuer is about
// this site's own sessions: every one must hold for them, and a token of a
// trusted issuer can never satisfy it (its idv, acr and amr are that
// issuer's word, not ours). A rule naming an issuer applies to that
// issuer's tokens only. So a foreign token passes when every rule naming
// its issuer holds, and, where rules for local sessions exist, at least one
// rule names its issuer.
func (h *Handler) allowed(sess *token.Session) bool {
	localRules, named := false, false
	for _, req := range h.Require {
		switch {
		case req.Issuer == "" && !sess.External, req.Issuer != "" && sess.External && req.Issuer == sess.Issuer:
			named = named || req.Issuer != ""
			if !claimMatches(sess.Claims[req.Claim], req.Values) {
				return false
			}
		case req.Issuer == "":
			localRules = true
		}
	}
	return !sess.External || !localRules || named
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
//
// Trailers are scrubbed too: an HTTP/1.1 chunked body may end with trailer
// fields, which a proxy passes upstream after the headers it checked.
func (h *Handler) stripIdentityHeaders(r *http.Request) {
	if len(h.identityHeaders) == 0 {
		return
	}
	stripHeaders(r, h.identityHeaders)
}

// stripHeaders deletes names, in every spelling, from r's headers and
// trailers (those declared now and those that arrive with the body).
func stripHeaders(r *http.Request, names []string) {
	scrub(r.Header, names)
	if r.Trailer != nil || r.Header.Get("Trailer") != "" || len(r.TransferEncoding) > 0 {
		scrub(r.Trailer, names)
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &trailerScrubber{ReadCloser: r.Body, r: r, names: names}
		}
	}
}

func scrub(hdr http.Header, names []string) {
	for name := range hdr {
		for _, n := range names {
			if sameHeader(name, n) {
				delete(hdr, name)
				break
			}
		}
	}
}

// trailerScrubber deletes identity headers from the request's trailers
// once the body has been read to its end, which is when net/http fills
// them in.
type trailerScrubber struct {
	io.ReadCloser
	r     *http.Request
	names []string
}

func (t *trailerScrubber) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if err == io.EOF {
		scrub(t.r.Trailer, t.names)
	}
	return n, err
}

// dropConnectionOptions removes names, in every spelling, from hdr's
// Connection header. A proxy deletes every field its request's Connection
// header lists (reverse_proxy does), so a client that listed X-User there
// would have the value its session set deleted on the way upstream.
func dropConnectionOptions(hdr http.Header, names []string) {
	vals, ok := hdr["Connection"]
	if !ok {
		return
	}
	listed := func(opt string) bool {
		opt = strings.TrimSpace(opt)
		return opt != "" && slices.ContainsFunc(names, func(n string) bool { return sameHeader(n, opt) })
	}
	// Browsers send "Connection: keep-alive" on every request: leave a
	// header that names none of ours as it is, without allocating.
	found := false
	for _, v := range vals {
		for opt := range strings.SplitSeq(v, ",") {
			found = found || listed(opt)
		}
	}
	if !found {
		return
	}
	out := vals[:0:0]
	for _, v := range vals {
		var keep []string
		for _, opt := range strings.Split(v, ",") {
			opt = strings.TrimSpace(opt)
			if opt != "" && !slices.ContainsFunc(names, func(n string) bool { return sameHeader(n, opt) }) {
				keep = append(keep, opt)
			}
		}
		if len(keep) > 0 {
			out = append(out, strings.Join(keep, ", "))
		}
	}
	if len(out) == 0 {
		delete(hdr, "Connection")
		return
	}
	hdr["Connection"] = out
}

// validHeaderValue reports whether v can be sent as a header value as it
// is: no control characters (CR, LF, NUL and the rest) but tab.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
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

// bodyTimeout bounds how long the module's own endpoints wait for a
// request body: theirs are a few KiB at most, so a client that sends one
// byte a second is holding a connection, not uploading.
const bodyTimeout = 10 * time.Second

// limitBodyTime sets a read deadline for r's body when it has one. Caddy's
// server `timeouts { read_body }` does the same for every request, and is
// recommended in the README.
func (h *Handler) limitBodyTime(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	d := h.bodyTimeout
	if d <= 0 {
		d = bodyTimeout
	}
	// Not every writer supports deadlines (a test recorder does not);
	// then the server's own timeouts are all there is.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
}
