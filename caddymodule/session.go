package caddymodule

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/token"
)

// mint issues a session token for a verified identity, with only the
// identity claims the operator allowed for that provider. What the token
// says beyond that (iss, aud, lifetime) is decided by token.Sessions.
func (h *Handler) mint(p *provider, id *providers.Identity) (string, time.Time, error) {
	claims := make(map[string]any, len(id.Claims))
	for name, v := range id.Claims {
		if p.claims[name] {
			claims[name] = v
		}
	}
	return h.sessions.Issue(token.Login{
		Subject:  id.Subject,
		Provider: p.name,
		ACR:      id.ACR,
		AMR:      id.AMR,
		AuthTime: id.AuthTime,
		Claims:   claims,
	})
}

// slide renews a browser session whose idle timeout is more than half used
// (see token.Sessions.Renew) and sends its cookie again with the new
// expiry. A cookie that holds a session token (set by an earlier version)
// is replaced by a reference. The response then carries a session cookie,
// so it must never be stored by a shared cache, whatever the upstream says:
// w is wrapped so that its Cache-Control is no-store.
func (h *Handler) slide(w http.ResponseWriter, r *http.Request, sess *token.Session, cookie string) http.ResponseWriter {
	var exp time.Time
	var err error
	ref := cookie
	if token.IsRef(cookie) {
		exp, err = h.sessions.RenewRef(r.Context(), cookie, sess)
	} else {
		var raw string
		raw, exp, err = h.sessions.Renew(sess)
		if err == nil && raw != "" {
			ref, err = h.sessions.NewRef(r.Context(), raw, exp)
		}
	}
	if err != nil {
		h.logger.Warn("re-issuing session", zap.Error(err))
		return w
	}
	if exp.IsZero() {
		return w
	}
	h.setSessionCookie(w, r, ref, exp)
	return &noStoreWriter{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
}

// noStoreWriter forces Cache-Control: no-store on a response that sets a
// session cookie, overriding whatever the upstream set.
type noStoreWriter struct {
	*caddyhttp.ResponseWriterWrapper
	wrote bool
}

func (n *noStoreWriter) WriteHeader(status int) {
	if !n.wrote {
		n.wrote = true
		n.Header().Set("Cache-Control", "no-store")
		n.Header().Del("Expires")
	}
	n.ResponseWriterWrapper.WriteHeader(status)
}

func (n *noStoreWriter) Write(b []byte) (int, error) {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriterWrapper.Write(b)
}

// ReadFrom is the path file_server and reverse_proxy take to copy a body;
// it would write the header without passing through WriteHeader.
func (n *noStoreWriter) ReadFrom(r io.Reader) (int64, error) {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriterWrapper.ReadFrom(r)
}

// FlushError lets a flush (streaming, server-sent events) through after
// the header is fixed; http.ResponseController finds it.
func (n *noStoreWriter) FlushError() error {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(n.ResponseWriterWrapper.ResponseWriter).Flush()
}

func (h *Handler) sameSite() http.SameSite {
	switch h.sc.SameSite {
	case "strict":
		return http.SameSiteStrictMode
	case "none":
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}

// cookieName is the session cookie's name on r's site. An explicit
// `session cookie` is used as given. The default is "__Host-idv_session" on
// https sites without `session domain`: browsers accept a __Host- cookie
// only from a secure origin, for Path=/ and without a Domain, so a sibling
// subdomain cannot plant one (cookie tossing); else "idv_session".
func (h *Handler) cookieName(r *http.Request) string {
	if h.Session != nil && h.Session.Cookie != "" {
		return h.Session.Cookie
	}
	if h.sc.Domain == "" && h.secure(r) {
		return "__Host-" + DefaultCookie
	}
	return DefaultCookie
}

// setSessionCookie sets the session cookie: HttpOnly, SameSite as
// configured, Secure whenever the site is served over https, and a
// Cache-Control of no-store on the response that carries it.
func (h *Handler) setSessionCookie(w http.ResponseWriter, r *http.Request, raw string, exp time.Time) {
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, &http.Cookie{
		Name:     h.cookieName(r),
		Value:    raw,
		Path:     "/",
		Domain:   h.sc.Domain,
		Expires:  exp,
		MaxAge:   int(exp.Sub(h.now()).Seconds()),
		HttpOnly: true,
		Secure:   h.secure(r),
		SameSite: h.sameSite(),
	})
}

func (h *Handler) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, &http.Cookie{
		Name:     h.cookieName(r),
		Value:    "",
		Path:     "/",
		Domain:   h.sc.Domain,
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   h.secure(r),
		SameSite: h.sameSite(),
	})
}

// sessionCookies returns every distinct value of the session cookie r
// carries. A request may carry several (a sibling subdomain can set one for
// the parent domain); see session. The common case, one cookie, allocates
// nothing: buf is the caller's.
func (h *Handler) sessionCookies(r *http.Request, buf []string) []string {
	name := h.cookieName(r)
	out := buf[:0]
	for _, line := range r.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			n, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if v = strings.Trim(v, `"`); ok && n == name && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}
