package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/login"
	"github.com/caddy-idv/caddy-idv/oidc"
	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/token"
)

// The audit log is the logger "http.handlers.idv.audit" (docs/metrics.md):
// one INFO event per login outcome, logout and OpenID Connect grant, with
// provider names, login ids, client addresses, subjects, session ids and
// client ids. Never a name, birth date, phone number, personal code,
// document number, token, code or secret: a subject that would show an
// identifier in clear (a provider configured for plain subjects) is
// logged keyed (auditSubject).

// observer is the handler as the login engine's login.Observer.
type observer struct{ h *Handler }

func (o observer) ProviderCall(provider, op, result string, d time.Duration) {
	metrics.providerRequests.WithLabelValues(provider, op, result).Inc()
	metrics.providerDuration.WithLabelValues(provider, op).Observe(d.Seconds())
}

func (o observer) LoginSeen(p *login.Pending, _ providers.State) { o.h.pending.done(p.ID) }

func (o observer) LoginFinished(f login.Finished) {
	h, p := o.h, f.Pending
	state := string(f.State)
	metrics.loginsFinished.WithLabelValues(p.Provider, state).Inc()
	metrics.loginDuration.WithLabelValues(p.Provider, state).Observe(f.Duration.Seconds())
	h.pending.done(p.ID)
	fields := []zap.Field{zap.String("provider", p.Provider), zap.String("login", p.ID), zap.String("client_ip", p.Client),
		zap.Duration("duration", f.Duration)}
	switch f.State {
	case providers.Completed:
		var claims struct {
			SID string   `json:"sid"`
			ACR string   `json:"acr"`
			AMR []string `json:"amr"`
		}
		jwtPayload(f.Token, &claims)
		var sub string
		var vals []string
		if f.Identity != nil {
			sub = f.Identity.Subject
			for name, v := range f.Identity.Claims {
				if s, ok := v.(string); ok && !token.Reserved(name) {
					vals = append(vals, s)
				}
			}
		}
		fields = append(fields, zap.String("sub", h.auditSubject(sub, vals)),
			zap.String("sid", claims.SID), zap.String("acr", claims.ACR), zap.Strings("amr", claims.AMR))
		h.audit.Info("login_completed", fields...)
	case providers.Declined:
		h.audit.Info("login_declined", fields...)
	case providers.Expired:
		h.audit.Info("login_expired", fields...)
	default:
		h.audit.Info("login_failed", append(fields, zap.String("reason", f.Reason))...)
	}
}

// jwtPayload reads the claims of a token this handler just signed; it is
// not a verification.
func jwtPayload(raw string, v any) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err == nil {
		_ = json.Unmarshal(b, v)
	}
}

// auditSubject is sub as the audit log shows it: as is when it is opaque
// (the providers' default, a keyed hash), keyed with the handler's
// subject secret when it holds a claim's value or a run of digits (a
// provider configured for plain subjects puts a personal code there), so
// that the log still tells one person's events apart without showing who.
func (h *Handler) auditSubject(sub string, claimValues []string) string {
	plain := digitRun(sub, 6)
	for _, s := range claimValues {
		if len(s) >= 4 && strings.Contains(sub, s) {
			plain = true
		}
	}
	if !plain {
		return sub
	}
	return providers.KeyedSubject(h.auditKey, "keyed:", sub)
}

func digitRun(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// auditSession logs a logout or revocation of sess.
func (h *Handler) auditSession(event, clientIP string, sess *token.Session) {
	var vals []string
	for name, v := range sess.Values {
		if !token.Reserved(name) {
			vals = append(vals, v)
		}
	}
	h.audit.Info(event, zap.String("provider", sess.Provider), zap.String("sid", sess.SID),
		zap.String("sub", h.auditSubject(sess.Subject, vals)), zap.String("client_ip", clientIP))
}

// tokenCheckResult is the result label of caddy_idv_token_checks_total.
func tokenCheckResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, token.ErrRevoked):
		return "revoked"
	case errors.Is(err, token.ErrWrongAudience):
		return "wrong_audience"
	case errors.Is(err, token.ErrExpired):
		return "expired"
	}
	return "invalid"
}

// oidcEvent is oidc.Options.Events: metrics and audit events of the
// OpenID Connect provider.
func (h *Handler) oidcEvent(e oidc.Event) {
	f := []zap.Field{zap.String("client_id", e.ClientID)}
	if e.Subject != "" {
		f = append(f, zap.String("sub", h.auditSubject(e.Subject, nil)))
	}
	if e.SID != "" {
		f = append(f, zap.String("sid", e.SID))
	}
	switch e.Kind {
	case oidc.EventCodeIssued:
		h.audit.Info("oidc_code_issued", f...)
	case oidc.EventTokenIssued:
		metrics.oidcTokens.WithLabelValues(h.oidcClientLabel(e.ClientID), e.GrantType).Inc()
		h.audit.Info("oidc_token_issued", append(f, zap.String("grant_type", e.GrantType))...)
	case oidc.EventRefreshReused:
		h.audit.Info("oidc_refresh_reused", f...)
	case oidc.EventClientAuthFailed:
		h.audit.Info("oidc_client_auth_failed", append(f, zap.String("endpoint", e.Endpoint))...)
	case oidc.EventSessionEnded:
		h.audit.Info("session_revoked", append(f, zap.String("via", "id_token_hint"))...)
	case oidc.EventError:
		metrics.oidcErrors.WithLabelValues(e.Endpoint, oauthErrorLabel(e.Error)).Inc()
	case oidc.EventRateLimited:
		metrics.rateLimited.WithLabelValues("oidc_client_auth").Inc()
		h.audit.Info("rate_limited", append(f, zap.String("limit", "oidc_client_auth"), zap.String("endpoint", e.Endpoint))...)
	}
}

// oidcClientLabel keeps a client_id label to the configured clients, so a
// request cannot make up series.
func (h *Handler) oidcClientLabel(id string) string {
	if h.OIDC != nil {
		for _, c := range h.OIDC.Clients {
			if c.ID == id {
				return id
			}
		}
	}
	return "other"
}

// oauthErrorLabel keeps the error label to the codes of RFC 6749 and
// OpenID Connect.
func oauthErrorLabel(code string) string {
	switch code {
	case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type",
		"invalid_scope", "access_denied", "unsupported_response_type", "server_error", "temporarily_unavailable",
		"login_required", "interaction_required", "consent_required", "account_selection_required",
		"invalid_request_uri", "invalid_request_object", "request_not_supported", "request_uri_not_supported",
		"registration_not_supported", "unsupported_token_type":
		return code
	}
	return "other"
}
