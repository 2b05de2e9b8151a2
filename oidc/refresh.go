package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/store"
)

// storeRefresh issues a refresh token of g's family, stored under its hash
// until the family ends.
func (p *Provider) storeRefresh(ctx context.Context, g *grant, now time.Time) (string, error) {
	rec := *g
	rec.RedirectURI, rec.Challenge, rec.Nonce = "", "", ""
	if rec.Expires == 0 || rec.Family == "" {
		return "", errors.New("oidc: refresh: grant without family")
	}
	ttl := time.Unix(rec.Expires, 0).Sub(now)
	if ttl <= 0 {
		return "", errors.New("oidc: refresh: family expired")
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("oidc: refresh: %w", err)
	}
	rt := randomToken()
	if err := p.store.Set(ctx, hashKey("refresh", rt), raw, ttl); err != nil {
		return "", fmt.Errorf("oidc: refresh: %w", err)
	}
	return rt, nil
}

// refresh redeems a refresh token (RFC 6749 §6) with rotation: the token is
// consumed with SetIfAbsent on a "used" marker and a new one of the same
// family is issued. A consumed token presented again means it was stolen
// (or the client is broken): the whole family and its session id are
// revoked (RFC 9700 §4.14.2).
func (p *Provider) refresh(ctx context.Context, c *client, t *tokenRequest) (*tokenResponse, *tokenError) {
	if t.RefreshToken == "" {
		return nil, errInvalidRequest("refresh_token is missing")
	}
	raw, err := p.store.Get(ctx, hashKey("refresh", t.RefreshToken))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidGrant("the refresh token is invalid or expired")
	}
	if err != nil {
		p.logger.Error("oidc: token: reading the refresh token failed", zap.Error(err))
		return nil, &tokenError{http.StatusServiceUnavailable, "temporarily_unavailable", "try again later"}
	}
	var g grant
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, errInvalidGrant("the refresh token is invalid or expired")
	}
	now := p.now()
	if g.ClientID != c.ID {
		return nil, errInvalidGrant("the refresh token was issued to another client")
	}
	familyEnd := time.Unix(g.Expires, 0)
	if !now.Before(familyEnd) {
		return nil, errInvalidGrant("the refresh token is invalid or expired")
	}
	if _, err := p.store.Get(ctx, "oidc/family-revoked/"+g.Family); err == nil {
		return nil, errInvalidGrant("the refresh token was revoked")
	} else if !errors.Is(err, store.ErrNotFound) {
		p.logger.Error("oidc: token: reading the family's revocation failed", zap.Error(err))
		return nil, &tokenError{http.StatusServiceUnavailable, "temporarily_unavailable", "try again later"}
	}
	until := p.revokeUntil(now)
	if p.revocations.Revoked(g.SID) {
		// The session was ended (logout, or a reused code): the family
		// ends with it, also after the session's revocation expires.
		p.revokeGrant(ctx, "", g.Family, until)
		return nil, errInvalidGrant("the session has ended")
	}
	scope, err := narrowScope(g.Scope, t.Scope)
	if err != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_scope", err.Error()}
	}
	marker, _ := json.Marshal(usedMarker{SID: g.SID, Family: g.Family, Expires: until.Unix()})
	fresh, err := p.store.SetIfAbsent(ctx, hashKey("refresh-used", t.RefreshToken), marker, familyEnd.Sub(now))
	if err != nil {
		p.logger.Error("oidc: token: consuming the refresh token failed", zap.Error(err))
		return nil, &tokenError{http.StatusServiceUnavailable, "temporarily_unavailable", "try again later"}
	}
	if !fresh {
		p.logger.Warn("oidc: token: refresh token used twice; revoking its family", zap.String("client_id", c.ID))
		p.revokeGrant(ctx, g.SID, g.Family, until)
		return nil, errInvalidGrant("the refresh token was already used")
	}
	g.Scope = scope
	return p.respond(ctx, c, &g, false, now)
}
