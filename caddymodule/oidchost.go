package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/templates"
	"github.com/caddy-idv/caddy-idv/token"
)

// oidcHost is the module as the OpenID Connect provider sees it (oidc.Host).
type oidcHost struct{ h *Handler }

// Session returns r's verified caddy-idv session (cookie or bearer), or
// nil. Only this site's session tokens count: never an access or ID token,
// never a token of a trusted issuer.
func (o oidcHost) Session(r *http.Request) *token.Session {
	sess, _, err := o.h.session(r)
	if err != nil {
		return nil
	}
	return sess
}

// LoginURL sends the browser to the login page, limited to provider when
// one is named, and back to returnTo afterwards.
func (o oidcHost) LoginURL(returnTo, provider string) string {
	q := url.Values{"rd": {safeRedirect(returnTo)}}
	if provider != "" {
		q.Set("provider", provider)
	}
	return o.h.Prefix + "/login?" + q.Encode()
}

// EndSession revokes r's session and clears its cookie.
func (o oidcHost) EndSession(w http.ResponseWriter, r *http.Request) error {
	return o.h.endSession(w, r)
}

// ProviderForACR maps an acr value to a provider: a provider's own name, or
// an acr naming a kind ("urn:caddy-idv:demo", "urn:idv:uqudo:chip").
func (o oidcHost) ProviderForACR(acr string) (string, bool) {
	if p, ok := o.h.byName[acr]; ok {
		return p.name, true
	}
	for _, p := range o.h.providers {
		kind := p.info.Kind
		if strings.HasSuffix(acr, ":"+kind) || strings.Contains(acr, ":"+kind+":") {
			return p.name, true
		}
	}
	return "", false
}

// ACRValues are the acr values ProviderForACR maps: each provider's name and
// urn:caddy-idv:<kind>.
func (o oidcHost) ACRValues() []string {
	var out []string
	for _, p := range o.h.providers {
		out = append(out, p.name, "urn:caddy-idv:"+p.info.Kind)
	}
	return out
}

// RenderError shows the module's error page.
func (o oidcHost) RenderError(w http.ResponseWriter, r *http.Request, status int, message string) {
	o.h.renderPage(w, r, status, "error", templates.Error{
		Page:    o.h.page(http.StatusText(status)),
		Status:  status,
		Heading: http.StatusText(status),
		Message: message,
	})
}

// endSession revokes the session r carries (cookie or bearer), so it is
// refused at once here and within seconds on every instance sharing the
// store, and clears the session cookie. With an OpenID Connect provider, it
// also ends every token the provider issued from the session, refresh
// tokens included, and sends back-channel logout tokens (oidc.Provider
// EndSession). When the store cannot record the revocation, the session is
// still refused here and its cookie cleared, and the error tells the caller
// to ask the person to try again, so that the other instances learn of it
// too.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) error {
	h.clearSessionCookie(w, r)
	sess, cookie, err := h.session(r)
	if err != nil {
		return nil
	}
	h.sessions.Forget(sess.Raw)
	if token.IsRef(cookie) {
		if err := h.sessions.DeleteRef(r.Context(), cookie); err != nil {
			h.logger.Warn("ending session: forgetting its reference", zap.Error(err))
		}
	}
	if err := h.revoked.Revoke(r.Context(), sess.SID, sess.Expiry.Add(time.Minute)); err != nil {
		h.logger.Error("ending session: recording the revocation", zap.Error(err))
		return err
	}
	metrics.logouts.Inc()
	h.auditSession("logout", clientAddress(r), sess)
	if h.oidc != nil {
		if err := h.oidc.EndSession(r.Context(), sess.SID); err != nil {
			h.logger.Error("ending session: ending its OpenID Connect tokens", zap.Error(err))
			return err
		}
	}
	return nil
}
