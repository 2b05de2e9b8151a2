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
// family is issued (RFC 9700 §4.14.2).
//
// A consumed token presented again within the reuse grace after its first
// use is taken for a relying party refreshing from several requests at
// once: it gets a fresh pair of its family too, and nothing is revoked, so
// every refresh token handed out in the window stays usable. Presented
// again after the grace, it means the token was stolen (or the client is
// broken): that client's family is revoked (its refresh tokens and the
// access tokens issued from it), and nothing else; the person stays logged
// in, and every other grant stays valid.
func (p *Provider) refresh(ctx context.Context, c *client, t *tokenRequest) (*tokenResponse, *tokenError) {
	if t.RefreshToken == "" {
		return nil, errInvalidRequest("refresh_token is missing")
	}
	now := p.now()
	g, terr := p.liveRefresh(ctx, c, t.RefreshToken, now)
	if terr != nil {
		return nil, terr
	}
	scope, err := narrowScope(g.Scope, t.Scope)
	if err != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_scope", err.Error(), 0}
	}
	familyEnd := time.Unix(g.Expires, 0)
	usedKey := hashKey("refresh-used", t.RefreshToken)
	marker, _ := json.Marshal(usedMarker{SID: g.SID, Family: g.Family, Used: now.UnixNano()})
	fresh, err := p.store.SetIfAbsent(ctx, usedKey, marker, familyEnd.Sub(now))
	if err != nil {
		p.logger.Error("oidc: token: consuming the refresh token failed", zap.Error(err))
		return nil, errUnavailable
	}
	if !fresh {
		first, _, err := p.firstUse(ctx, usedKey)
		if err != nil {
			p.logger.Error("oidc: token: reading the refresh token's first use failed", zap.Error(err))
			return nil, errUnavailable
		}
		if p.grace <= 0 || now.Sub(first) > p.grace {
			p.logger.Warn("oidc: token: refresh token used again after the reuse grace; revoking its family",
				zap.String("client_id", c.ID), zap.Duration("since_first_use", now.Sub(first)))
			p.revokeFamily(ctx, g.Family)
			p.event(Event{Kind: EventRefreshReused, Endpoint: "token", ClientID: c.ID, Subject: p.subject(c, g.Subject), SID: p.clientSID(c, g.SID)})
			return nil, errInvalidGrant("the refresh token was already used")
		}
	}
	return p.respond(ctx, c, g, scope, false, now)
}

// errOtherClient is a refresh token presented by a client it was not
// issued to.
var errOtherClient = errInvalidGrant("the refresh token was issued to another client")

// liveRefresh returns the grant of a refresh token that c may use now: its
// own, not expired, its family not revoked, its session not ended. Whether
// it was used already is not checked here.
func (p *Provider) liveRefresh(ctx context.Context, c *client, rt string, now time.Time) (*grant, *tokenError) {
	raw, err := p.store.Get(ctx, hashKey("refresh", rt))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errInvalidGrant("the refresh token is invalid or expired")
	}
	if err != nil {
		p.logger.Error("oidc: token: reading the refresh token failed", zap.Error(err))
		return nil, errUnavailable
	}
	var g grant
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, errInvalidGrant("the refresh token is invalid or expired")
	}
	if g.ClientID != c.ID {
		return nil, errOtherClient
	}
	if !now.Before(time.Unix(g.Expires, 0)) {
		return nil, errInvalidGrant("the refresh token is invalid or expired")
	}
	if _, err := p.store.Get(ctx, familyRevokedKey(g.Family)); err == nil {
		return nil, errInvalidGrant("the refresh token was revoked")
	} else if !errors.Is(err, store.ErrNotFound) {
		p.logger.Error("oidc: token: reading the family's revocation failed", zap.Error(err))
		return nil, errUnavailable
	}
	// The session's end is kept as long as the family can live, so a
	// refresh token never outlives a logout (the revocation of the session
	// id itself lasts only as long as its session and access tokens).
	if p.revocations.Revoked(g.SID) {
		// Ended where the end was not recorded for the provider (another
		// handler sharing the sessions): the family ends with it for good.
		p.revokeFamily(ctx, g.Family)
		return nil, errInvalidGrant("the session has ended")
	}
	ended, err := p.sessionEnded(ctx, g.SID)
	if err != nil {
		p.logger.Error("oidc: token: reading the session's end failed", zap.Error(err))
		return nil, errUnavailable
	}
	if ended {
		return nil, errInvalidGrant("the session has ended")
	}
	return &g, nil
}

// firstUse is when a refresh token was first used; used is false when it
// was not used yet.
func (p *Provider) firstUse(ctx context.Context, usedKey string) (first time.Time, used bool, err error) {
	raw, err := p.store.Get(ctx, usedKey)
	if errors.Is(err, store.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("oidc: refresh: %w", err)
	}
	var m usedMarker
	if err := json.Unmarshal(raw, &m); err != nil || m.Used == 0 {
		// A marker without a time (written before the grace existed) is
		// taken for a use long ago.
		return time.Time{}, true, nil
	}
	return time.Unix(0, m.Used), true, nil
}
