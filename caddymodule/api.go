package caddymodule

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/login"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/templates"
	"github.com/caddy-idv/caddy-idv/token"
)

// Limits on what the API reads.
const (
	maxStartBody  = 16 << 10
	maxLogoutBody = 8 << 10
	maxWait       = 30 * time.Second
)

// serveOwn serves the module's endpoints under Prefix (docs/reference.md,
// "Endpoints"). They are
// never gated and never passed to the next handler.
func (h *Handler) serveOwn(w http.ResponseWriter, r *http.Request) {
	rel := r.URL.Path[len(h.Prefix):]
	if r.Method == http.MethodPost && !h.sameOrigin(r) {
		h.writeError(w, r, errorf(http.StatusForbidden, "cross_origin", "This request came from another site and was refused."))
		return
	}
	switch {
	case rel == "/login":
		h.only(w, r, h.serveLogin, http.MethodGet, http.MethodHead)
	case rel == "/sessions":
		h.only(w, r, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				h.resumeLogin(w, r)
				return
			}
			h.startLogin(w, r)
		}, http.MethodPost, http.MethodGet)
	case strings.HasPrefix(rel, "/sessions/"):
		id, rest, _ := strings.Cut(rel[len("/sessions/"):], "/")
		switch rest {
		case "":
			h.only(w, r, func(w http.ResponseWriter, r *http.Request) { h.loginStatus(w, r, id) }, http.MethodGet)
		case "qr.svg":
			h.only(w, r, func(w http.ResponseWriter, r *http.Request) { h.serveQR(w, r, id) }, http.MethodGet, http.MethodHead)
		default:
			h.writeError(w, r, errorf(http.StatusNotFound, "not_found", "There is nothing here."))
		}
	case rel == "/health":
		h.only(w, r, h.serveHealth, http.MethodGet, http.MethodHead)
	case rel == "/me":
		h.only(w, r, h.serveMe, http.MethodGet, http.MethodHead)
	case rel == "/token":
		h.only(w, r, h.serveToken, http.MethodGet)
	case rel == "/jwks":
		h.only(w, r, h.serveJWKS, http.MethodGet, http.MethodHead)
	case rel == "/logout":
		h.only(w, r, func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet {
				h.logoutPage(w, r)
				return
			}
			h.logout(w, r)
		}, http.MethodPost, http.MethodGet)
	case strings.HasPrefix(rel, "/static/"):
		h.only(w, r, h.static.ServeHTTP, http.MethodGet, http.MethodHead)
	default:
		// A provider's routes see the path without the prefix. One that is
		// not canonical (dot segments, doubled or trailing slashes) would
		// make an http.ServeMux redirect to its cleaned form, which has
		// lost the prefix: a POST such as the wallet's approve would be
		// sent on to the protected application. Such a path is nothing.
		if path.Clean(rel) != rel {
			h.writeError(w, r, errorf(http.StatusNotFound, "not_found", "There is nothing here."))
			return
		}
		for route, handler := range h.routes {
			if strings.HasPrefix(rel, route) {
				r2 := r.Clone(r.Context())
				r2.URL.Path = rel
				r2.URL.RawPath = ""
				handler.ServeHTTP(w, r2)
				return
			}
		}
		h.writeError(w, r, errorf(http.StatusNotFound, "not_found", "There is nothing here."))
	}
}

func (h *Handler) only(w http.ResponseWriter, r *http.Request, fn http.HandlerFunc, methods ...string) {
	for _, m := range methods {
		if r.Method == m {
			fn(w, r)
			return
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	h.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "This method is not allowed here."))
}

// sameOrigin refuses cross-site state changes (CSRF). Browsers send Origin
// on every cross-origin POST and Sec-Fetch-Site on every request; a request
// with neither is not from a browser, where CSRF does not apply.
func (h *Handler) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == h.origin(r)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin":
		return true
	}
	return false
}

// serveLogin is the login page. ?provider=<name> limits the choice to one
// provider (the OIDC provider's acr_values uses it); an unknown name is
// ignored.
func (h *Handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	view := h.loginView(safeRedirect(q.Get("rd")))
	if only := q.Get("provider"); only != "" {
		for _, p := range view.Providers {
			if p.Name == only {
				view.Providers = append(view.Providers[:0:0], p)
				break
			}
		}
	}
	if sess, _, err := h.session(r); err == nil {
		view.Account = accountName(sess)
	}
	h.renderPage(w, r, http.StatusOK, "login", view)
}

// clientAddress is the client IP as Caddy determined it (honouring the
// server's trusted_proxies), never a raw X-Forwarded-For.
func clientAddress(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// expiresFormat is RFC 3339 with milliseconds: a countdown to a time
// rounded down to the second would end the login on the page up to a
// second before it ends at the server, and an approval in that second would
// be lost.
const expiresFormat = "2006-01-02T15:04:05.000Z07:00"

type startResponse struct {
	ID          string `json:"id"`
	Provider    string `json:"provider"`
	ExpiresAt   string `json:"expires_at"`
	QRText      string `json:"qr_text,omitempty"`
	QRSVGURL    string `json:"qr_svg_url,omitempty"`
	DeepLink    string `json:"deep_link,omitempty"`
	ControlCode string `json:"control_code,omitempty"`
	StatusURL   string `json:"status_url"`
}

// startLogin is POST /sessions.
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request) {
	if ok, after, limit := h.limiter.allowLimit(clientAddress(r)); !ok {
		metrics.rateLimited.WithLabelValues(limit).Inc()
		h.audit.Info("rate_limited", zap.String("limit", limit), zap.String("client_ip", clientAddress(r)))
		h.tooMany(w, r, after)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		h.writeError(w, r, errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "Send a JSON body with Content-Type: application/json."))
		return
	}
	var body map[string]json.RawMessage
	limited := http.MaxBytesReader(w, r.Body, maxStartBody)
	dec := json.NewDecoder(limited)
	if err := dec.Decode(&body); err != nil || dec.More() {
		h.writeError(w, r, errorf(http.StatusBadRequest, "bad_request", "The request body is not a JSON object."))
		return
	}
	// The decoder stops at the object's end: the body must end there too,
	// as its length said. A body cut short (the client stopped sending or
	// closed its side) is no request, and it has cancelled the request's
	// context, on which the provider would be called.
	if _, err := io.Copy(io.Discard, limited); err != nil {
		h.writeError(w, r, errorf(http.StatusBadRequest, "bad_request", "The request body is not a JSON object."))
		return
	}
	str := func(key string) (string, bool) {
		raw, ok := body[key]
		if !ok {
			return "", true
		}
		var s string
		return s, json.Unmarshal(raw, &s) == nil
	}
	name, ok1 := str("provider")
	rd, ok2 := str("rd")
	if !ok1 || !ok2 {
		h.writeError(w, r, errorf(http.StatusBadRequest, "bad_request", "provider and rd must be strings."))
		return
	}
	if name == "" && len(h.providers) == 1 {
		name = h.providers[0].name
	}
	p := h.byName[name]
	if p == nil {
		h.writeError(w, r, errorf(http.StatusBadRequest, "unknown_provider", "Choose one of the offered login methods."))
		return
	}
	input := map[string]string{}
	for _, f := range p.form {
		v, ok := str(f.Name)
		if !ok {
			h.writeError(w, r, &apiError{status: http.StatusBadRequest, code: "invalid_input", message: f.Label + " must be text.", field: f.Name})
			return
		}
		input[f.Name] = v
	}
	if len(p.form) > 0 {
		// Each start prompts the person's phone: a few per window for one
		// person, from any address, then they wait.
		if ok, after := h.identities.allow(identityKey(p.name, input)); !ok {
			metrics.rateLimited.WithLabelValues("per_identity").Inc()
			h.audit.Info("rate_limited", zap.String("limit", "per_identity"), zap.String("provider", p.name), zap.String("client_ip", clientAddress(r)))
			h.tooMany(w, r, after)
			return
		}
	}
	id := token.NewID()
	metrics.loginsStarted.WithLabelValues(p.name).Inc()
	ch, err := h.engine.Start(r.Context(), p.src, providers.StartRequest{ID: id, BaseURL: h.baseURL(r), Input: input})
	if err != nil {
		var ie *providers.InputError
		switch {
		case errors.As(err, &ie):
			h.writeError(w, r, &apiError{status: http.StatusBadRequest, code: "invalid_input", message: ie.Message, field: ie.Field})
		case errors.Is(err, store.ErrUnavailable):
			h.logger.Error("starting login: store unavailable", zap.String("provider", p.name), zap.Error(err))
			h.writeError(w, r, errorf(http.StatusServiceUnavailable, "unavailable", "Logging in is unavailable right now. Try again shortly."))
		default:
			h.logger.Error("starting login", zap.String("provider", p.name), zap.Error(err))
			h.writeError(w, r, errorf(http.StatusBadGateway, "provider_error", "The identity provider could not start a login. Try again."))
		}
		return
	}
	now := h.now()
	pl := pendingLogin{Pending: login.Pending{ID: id, Provider: p.name, RD: safeRedirect(rd), Created: now, Expires: ch.ExpiresAt, State: ch.State},
		QR: ch.QRText, DeepLink: ch.DeepLink, ControlCode: ch.ControlCode}
	pl.Client = clientAddress(r)
	if pl.Expires.IsZero() || pl.Expires.Before(now) {
		pl.Expires = now.Add(5 * time.Minute)
	}
	err = h.setPendingCookie(w, r, &pl)
	if errors.Is(err, errPendingTooLarge) && pl.RD != "/" {
		// An rd of up to 2048 characters that the sealed JSON record
		// escapes ('<' becomes six bytes) does not fit: it gives way to
		// "/", as a longer rd does.
		pl.RD = "/"
		err = h.setPendingCookie(w, r, &pl)
	}
	if err != nil {
		h.logger.Error("starting login: pending cookie", zap.String("provider", p.name), zap.Error(err))
		h.writeError(w, r, errorf(http.StatusInternalServerError, "internal", "The login could not be started."))
		return
	}
	h.pending.add(id, p.name, pl.Expires)
	h.audit.Info("login_started", zap.String("provider", p.name), zap.String("login", id), zap.String("client_ip", pl.Client))
	writeJSON(w, http.StatusCreated, h.startAnswer(&pl))
}

func (h *Handler) startAnswer(pl *pendingLogin) startResponse {
	resp := startResponse{
		ID: pl.ID, Provider: pl.Provider, ExpiresAt: pl.Expires.UTC().Format(expiresFormat),
		QRText: pl.QR, DeepLink: pl.DeepLink, ControlCode: pl.ControlCode,
		StatusURL: h.Prefix + "/sessions/" + pl.ID,
	}
	if pl.QR != "" {
		resp.QRSVGURL = resp.StatusURL + "/qr.svg"
	}
	return resp
}

// resumeLogin is GET /sessions[?provider=<name>]: the newest login this
// browser started (with that provider) that is still in progress, in the
// shape of POST /sessions' answer, so that a reloaded page shows it again
// instead of starting (and paying for) another; 204 when there is none.
func (h *Handler) resumeLogin(w http.ResponseWriter, r *http.Request) {
	want := r.URL.Query().Get("provider")
	var best *pendingLogin
	now := h.now()
	for _, pl := range h.pendingLogins(r) {
		if (want != "" && pl.Provider != want) || h.byName[pl.Provider] == nil || !pl.Expires.After(now.Add(5*time.Second)) {
			continue
		}
		if best == nil || pl.Created.After(best.Created) {
			best = pl
		}
	}
	if best == nil {
		// 204, not an error: a page asks this on every load, and a 404
		// would show in the browser's console as a failed request.
		securityHeaders(w)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, h.startAnswer(best))
}

type statusResponse struct {
	State    providers.State `json:"state"`
	Error    string          `json:"error,omitempty"`
	Notice   string          `json:"notice,omitempty"`
	Redirect string          `json:"redirect,omitempty"`
}

// loginStatus is GET /sessions/{id}[?wait=<seconds>]. The login engine
// answers; this only checks that the browser started the login and hands
// the session cookie of a completed login to it once.
func (h *Handler) loginStatus(w http.ResponseWriter, r *http.Request, id string) {
	pl := h.pendingFor(r, id)
	if pl == nil {
		h.writeError(w, r, errorf(http.StatusForbidden, "forbidden", "This login was not started in this browser."))
		return
	}
	var wait time.Duration
	if ws := r.URL.Query().Get("wait"); ws != "" {
		n, err := strconv.Atoi(ws)
		if err != nil || n < 0 {
			h.writeError(w, r, errorf(http.StatusBadRequest, "bad_request", "wait must be a number of seconds."))
			return
		}
		// Capped before it becomes a duration: n seconds in nanoseconds
		// overflows int64 from n = 9223372037 on, and a negative wait
		// answers at once.
		wait = time.Duration(min(n, int(maxWait/time.Second))) * time.Second
	}
	p := h.byName[pl.Provider]
	if p == nil {
		h.writeError(w, r, errorf(http.StatusGone, "unknown_provider", "This login's method is no longer offered. Start again."))
		return
	}
	if wait > 0 {
		release, ok := h.held.take(clientAddress(r), id)
		if ok {
			defer release()
		} else {
			wait = 0 // over the limit: answered at once, not held
		}
	}
	st, err := h.engine.Wait(r.Context(), p.src, &pl.Pending, wait)
	if err != nil {
		h.logger.Error("login status", zap.String("provider", p.name), zap.String("login", id), zap.Error(err))
		h.writeError(w, r, errorf(http.StatusServiceUnavailable, "unavailable", "The login state could not be read right now. Try again shortly."))
		return
	}
	resp := statusResponse{State: st.State, Notice: st.Notice}
	switch st.State {
	case providers.Completed:
		resp.Redirect = pl.RD
		first, err := h.engine.Deliver(r.Context(), &pl.Pending)
		if err != nil {
			h.logger.Error("login status: recording delivery", zap.String("login", id), zap.Error(err))
			h.writeError(w, r, errorf(http.StatusServiceUnavailable, "unavailable", "The login state could not be read right now. Try again shortly."))
			return
		}
		// The session cookie is handed out once; the pending cookie that
		// asked for it is cleared. The cookie names the session (a
		// reference): a 22-character value on every request instead of
		// the whole token.
		if first {
			ref, err := h.sessions.NewRef(r.Context(), st.Token, st.Expires)
			if err != nil {
				h.logger.Error("login status: keeping the session", zap.String("login", id), zap.Error(err))
				h.writeError(w, r, errorf(http.StatusServiceUnavailable, "unavailable", "The login state could not be read right now. Try again shortly."))
				return
			}
			h.setSessionCookie(w, r, ref, st.Expires)
		}
		h.clearPendingCookie(w, r, id)
	case providers.Pending:
	default:
		resp.Error = st.Message
		h.clearPendingCookie(w, r, id) // the login is over
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) serveQR(w http.ResponseWriter, r *http.Request, id string) {
	pl := h.pendingFor(r, id)
	if pl == nil {
		h.writeError(w, r, errorf(http.StatusForbidden, "forbidden", "This login was not started in this browser."))
		return
	}
	if pl.QR == "" {
		h.writeError(w, r, errorf(http.StatusNotFound, "not_found", "This login has no QR code."))
		return
	}
	svg, err := qrSVG(pl.QR)
	if err != nil {
		h.writeError(w, r, errorf(http.StatusInternalServerError, "internal", "The QR code could not be drawn."))
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if r.Method != http.MethodHead {
		_, _ = w.Write(svg)
	}
}

func (h *Handler) serveMe(w http.ResponseWriter, r *http.Request) {
	sess, _, err := h.session(r)
	if err != nil {
		if !errors.Is(err, errNoCredential) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		}
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated", "login": h.Prefix + "/login"})
		return
	}
	writeJSON(w, http.StatusOK, sess.Claims)
}

// serveToken is GET /token: the session token (a JWT) of the browser's
// session cookie, for a page's script to call an API with
// "Authorization: Bearer". Only for the site's own pages: a cross-site
// request gets 403, and the answer is never cached.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	// The POST rule (Origin, else Sec-Fetch-Site) for a GET: the answer
	// is a bearer credential.
	if !h.sameOrigin(r) {
		h.writeError(w, r, errorf(http.StatusForbidden, "cross_origin", "This request came from another site and was refused."))
		return
	}
	if _, bearer := r.Header["Authorization"]; bearer {
		h.writeError(w, r, errorf(http.StatusBadRequest, "bad_request", "Ask with the session cookie."))
		return
	}
	sess, _, err := h.session(r)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthenticated", "login": h.Prefix + "/login"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": sess.Raw, "expires_at": sess.Expiry.UTC().Format(time.RFC3339)})
}

func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) {
	body, etag := h.tokens.Keys().JWKS()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/jwk-set+json")
	hdr.Set("Cache-Control", "public, max-age=300")
	hdr.Set("ETag", etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// logout is POST /logout: the session is revoked (refused at once here, and
// within seconds on every instance sharing the store) and its cookie cleared.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	rd := r.URL.Query().Get("rd")
	if rd == "" && isFormPost(r) {
		r.Body = http.MaxBytesReader(w, r.Body, maxLogoutBody)
		if err := r.ParseForm(); err == nil {
			rd = r.PostForm.Get("rd")
		}
	}
	if err := h.endSession(w, r); err != nil {
		h.writeError(w, r, errorf(http.StatusServiceUnavailable, "unavailable", "Logging out failed; try again."))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", safeRedirect(rd))
	w.WriteHeader(http.StatusSeeOther)
}

// logoutPage is GET /logout: a page with a button that logs out (a POST,
// which the CSRF check guards), saying who is logged in; a link cannot log
// anyone out.
func (h *Handler) logoutPage(w http.ResponseWriter, r *http.Request) {
	data := templates.Error{Page: h.page(""), Heading: "Log out of this site?", Message: "You are not logged in.", RetryURL: h.Prefix + "/login"}
	if sess, _, err := h.session(r); err == nil {
		data.Message = ""
		data.Account = accountName(sess)
		data.LogoutRD = safeRedirect(r.URL.Query().Get("rd"))
	}
	h.renderPage(w, r, http.StatusOK, "error", data)
}

// accountName is how a page names the person who is logged in: their name
// when the session has one, else the subject.
func accountName(sess *token.Session) string {
	if n := sess.Values["name"]; n != "" {
		return n
	}
	return sess.Subject
}

// identityValue is one input of a form login as the per-identity limit
// counts it: letters and digits only, in upper case, without an
// international call prefix, so that one phone number or code written in
// other ways ("+372 5123 4567", "0037251234567", "+372-5123-4567") is one
// person. Merging more than the provider would is harmless: it only limits
// sooner.
func identityValue(v string) string {
	v = strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'A' && r <= 'Z':
			return r
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return -1
	}, v)
	return strings.TrimPrefix(v, "00")
}

// identityKey names the person a form login is for (a phone number and a
// personal code) for the per-identity limit: a hash, kept in memory only,
// never logged.
func identityKey(provider string, input map[string]string) string {
	names := make([]string, 0, len(input))
	for k := range input {
		names = append(names, k)
	}
	slices.Sort(names)
	h := sha256.New()
	h.Write([]byte(provider))
	for _, k := range names {
		h.Write([]byte{0})
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(identityValue(input[k])))
	}
	return "id:" + hex.EncodeToString(h.Sum(nil)[:16])
}
