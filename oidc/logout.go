package oidc

import (
	"context"
	"net/http"
	"net/url"
	"slices"

	"go.uber.org/zap"
)

// logoutRequest is a parsed RP-initiated logout request (OpenID Connect
// RP-Initiated Logout 1.0 §2).
type logoutRequest struct {
	IDTokenHint string
	ClientID    string
	RedirectURI string // post_logout_redirect_uri
	State       string
	Confirm     bool
}

func parseLogout(v url.Values) (*logoutRequest, bool) {
	for _, vals := range v {
		if len(vals) > 1 {
			return nil, false
		}
		if len(vals[0]) > maxBody/2 {
			return nil, false
		}
	}
	return &logoutRequest{
		IDTokenHint: v.Get("id_token_hint"),
		ClientID:    v.Get("client_id"),
		RedirectURI: v.Get("post_logout_redirect_uri"),
		State:       v.Get("state"),
		Confirm:     v.Get("confirm") == "yes",
	}, true
}

// hint is what a valid id_token_hint tells.
type hint struct {
	client *client
	sid    string
	sub    string
}

// serveLogout is the end_session_endpoint (OpenID Connect RP-Initiated
// Logout 1.0). It ends a caddy-idv session, and with it every token issued
// from it (EndSession), then redirects to post_logout_redirect_uri when
// that URI is registered for the client, echoing state; otherwise it shows
// a "logged out" page.
//
// A valid id_token_hint proves that the caller is a relying party that
// received tokens in the session it names: that session ends at once,
// without asking, whether or not a browser with a cookie is there (the
// relying party's own back channel, such as zitadel's rp.EndSession or
// oauth2-proxy's backend_logout_url, has none). The browser's own session,
// when it is another one, ends only when the person confirms with a button
// (§2: "the OP SHOULD ask the End-User whether to log out"), which only a
// same-origin POST can press, since an RP may send the browser here from
// anywhere.
func (p *Provider) serveLogout(w http.ResponseWriter, r *http.Request) {
	var v url.Values
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			p.host.RenderError(w, r, http.StatusBadRequest, "The logout request is malformed.")
			return
		}
		v = r.PostForm
	} else {
		var err error
		if v, err = url.ParseQuery(r.URL.RawQuery); err != nil || len(r.URL.RawQuery) > maxBody {
			p.host.RenderError(w, r, http.StatusBadRequest, "The logout request is malformed.")
			return
		}
	}
	req, ok := parseLogout(v)
	if !ok {
		p.host.RenderError(w, r, http.StatusBadRequest, "The logout request is malformed.")
		return
	}
	var h *hint
	if req.IDTokenHint != "" {
		if h = p.parseHint(r.Context(), req.IDTokenHint); h == nil {
			p.host.RenderError(w, r, http.StatusBadRequest, "The logout request carries an ID token that was not issued here.")
			return
		}
	}
	c := p.clients[req.ClientID]
	if req.ClientID != "" && c == nil {
		p.host.RenderError(w, r, http.StatusBadRequest, "The logout request names an unknown application.")
		return
	}
	if h != nil {
		if c != nil && c != h.client {
			p.host.RenderError(w, r, http.StatusBadRequest, "The logout request's client_id does not match its ID token.")
			return
		}
		c = h.client
	}
	redirect := ""
	if req.RedirectURI != "" && c != nil && c.logouts[req.RedirectURI] {
		redirect = req.RedirectURI
	}

	ctx := r.Context()
	// The browser's session is read before the hinted one is ended, which
	// may be the same.
	sess := p.host.Session(r)
	hinted := ""
	if h != nil {
		sid, err := p.hintSession(ctx, h)
		if err != nil {
			p.logger.Error("oidc: logout: finding the hint's session failed", zap.Error(err))
			p.host.RenderError(w, r, http.StatusServiceUnavailable, "The session could not be ended. Try again.")
			return
		}
		hinted = sid
		if hinted != "" {
			if err := p.EndSession(ctx, hinted); err != nil {
				p.logger.Error("oidc: logout: ending the session failed", zap.Error(err))
				p.host.RenderError(w, r, http.StatusServiceUnavailable, "The session could not be ended. Try again.")
				return
			}
			p.event(Event{Kind: EventSessionEnded, Endpoint: "end_session", ClientID: req.ClientID, SID: hinted})
		}
	}
	if sess != nil {
		proven := hinted != "" && hinted == sess.SID
		confirmed := req.Confirm && r.Method == http.MethodPost && sameOrigin(r, p.origin)
		if !proven && !confirmed {
			form := map[string]string{"confirm": "yes"}
			for k, val := range map[string]string{"client_id": req.ClientID, "post_logout_redirect_uri": req.RedirectURI, "state": req.State, "id_token_hint": req.IDTokenHint} {
				if val != "" {
					form[k] = val
				}
			}
			writePage(w, r, http.StatusOK, pageData{
				Title:   "Log out?",
				Message: "An application asks to end your session.",
				Action:  p.prefix + "/oidc/logout",
				Form:    form,
			})
			return
		}
		if err := p.host.EndSession(w, r); err != nil {
			p.logger.Error("oidc: logout: ending the browser's session failed", zap.Error(err))
			p.host.RenderError(w, r, http.StatusServiceUnavailable, "The session could not be ended. Try again.")
			return
		}
		if err := p.EndSession(ctx, sess.SID); err != nil {
			p.logger.Error("oidc: logout: ending the session failed", zap.Error(err))
			p.host.RenderError(w, r, http.StatusServiceUnavailable, "The session could not be ended. Try again.")
			return
		}
	}
	if redirect != "" {
		u, _ := url.Parse(redirect) // registered, checked by Validate
		if req.State != "" {
			q := u.Query()
			q.Set("state", req.State)
			u.RawQuery = q.Encode()
		}
		noStore(w)
		w.Header().Set("Location", u.String())
		w.WriteHeader(http.StatusFound)
		return
	}
	writePage(w, r, http.StatusOK, pageData{Title: "Logged out", Message: "You have been logged out. You can close this window."})
}

// parseHint checks an id_token_hint with token/'s ID-token verifier (our
// signature and issuer, typ JWT, aud equal to azp; its expiry is not
// checked: RP-Initiated Logout §2 allows an expired ID token as a hint),
// then that its client is registered.
func (p *Provider) parseHint(ctx context.Context, raw string) *hint {
	h, err := p.tokens.VerifyIDTokenHint(ctx, raw, p.issuer)
	if err != nil {
		return nil
	}
	c := p.clients[h.ClientID]
	if c == nil {
		return nil
	}
	return &hint{client: c, sid: h.SID, sub: h.Subject}
}

// sameOrigin reports whether a POST came from the issuer's own origin
// (CSRF): browsers send Origin on cross-origin POSTs and Sec-Fetch-Site on
// every request.
func sameOrigin(r *http.Request, origin string) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == origin
	}
	return slices.Contains([]string{"", "same-origin"}, r.Header.Get("Sec-Fetch-Site"))
}
