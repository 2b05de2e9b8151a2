package token

import (
	"errors"
	"time"
)

// BackchannelLogoutEvent is the event a logout token carries (OpenID
// Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutTokenLifetime is the exp of a logout token: long enough for a
// delivery and its retries to be verified, short enough that a leaked one
// is soon useless (Back-Channel Logout 1.0 §2.4 recommends at most two
// minutes).
const LogoutTokenLifetime = 2 * time.Minute

// Logout is who a logout token tells a relying party has logged out.
type Logout struct {
	Issuer   string
	ClientID string
	// Subject and SID are as the client saw them in its ID tokens (its own
	// for a pairwise client).
	Subject string
	SID     string
}

// IssueLogout signs a logout token (OpenID Connect Back-Channel Logout 1.0
// §2.4) with alg, the client's ID token algorithm, since relying parties
// verify it as they verify ID tokens (§2.6): typ logout+jwt (§2.4, so that
// it can never pass as an ID token), iss, aud the client, iat, exp, a
// fresh jti, sub, sid and the back-channel logout event; never a nonce
// (§2.4: "A nonce Claim MUST NOT be present").
func (s *Service) IssueLogout(l Logout, alg string) (string, error) {
	if l.Issuer == "" || l.ClientID == "" || l.SID == "" || l.Subject == "" {
		return "", errors.New("token: logout: issuer, client, sub and sid are required")
	}
	now := s.now()
	return s.signWith(map[string]any{
		"iss":    l.Issuer,
		"aud":    l.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(LogoutTokenLifetime).Unix(),
		"jti":    NewID(),
		"sub":    l.Subject,
		"sid":    l.SID,
		"events": map[string]any{BackchannelLogoutEvent: map[string]any{}},
	}, TypLogout, alg)
}
