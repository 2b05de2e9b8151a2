package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/token"
)

// The store keeps, per caddy-idv session, which clients received tokens in
// it (so that its end can reach them: back-channel logout, and the
// revocation of a pairwise client's own sid), the way back from a pairwise
// client's sid to the session's (for an id_token_hint), and the session's
// end (so that no refresh token outlives it).
//
//	oidc/session/<sid>/<client hash>-<o|s>   sessionClient
//	oidc/client-sid/<client sid>-<o|s>       the session's sid
//	oidc/ended/<sid>                         when it ended
//
// The suffix tells a grant with offline_access (kept as long as its refresh
// family can live) from one without (kept as long as a session lives): two
// keys, so that a later grant without offline_access never shortens what
// an earlier one needs.

// sessionClient is a client that received tokens in a session.
type sessionClient struct {
	ClientID string `json:"client_id"`
	// Subject and SID are as the client sees them.
	Subject string `json:"sub"`
	SID     string `json:"sid"`
}

func sessionPrefix(sid string) string { return "oidc/session/" + sid + "/" }

func flag(offline bool) string {
	if offline {
		return "-o"
	}
	return "-s"
}

func sessionClientKey(sid, clientID string, offline bool) string {
	sum := sha256.Sum256([]byte(clientID))
	return sessionPrefix(sid) + hex.EncodeToString(sum[:16]) + flag(offline)
}

func clientSIDKey(csid string, offline bool) string { return "oidc/client-sid/" + csid + flag(offline) }

func endedKey(sid string) string { return "oidc/ended/" + sid }

// endedFor is how long a session's end is kept: as long as a refresh token
// issued in it could live.
const endedFor = RefreshLifetime + AccessTokenLifetime

// recordTTL is how long the record of a grant is kept: as long as a token
// of it can live.
func (p *Provider) recordTTL(offline bool) time.Duration {
	if offline {
		return RefreshLifetime + AccessTokenLifetime
	}
	return p.sessionLifetime + AccessTokenLifetime
}

// recordClient records that client c receives tokens of grant g's session.
func (p *Provider) recordClient(ctx context.Context, c *client, g *grant, now time.Time) error {
	if !store.ValidSID(g.SID) {
		return errors.New("oidc: record client: invalid session id")
	}
	offline := g.has(scopeOffline)
	rec := sessionClient{ClientID: c.ID, Subject: p.subject(c, g.Subject), SID: p.clientSID(c, g.SID)}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("oidc: record client: %w", err)
	}
	ttl := p.recordTTL(offline)
	key := sessionClientKey(g.SID, c.ID, offline)
	if p.recorded.fresh(key, now) {
		// Recorded by an earlier exchange of this session and client; the
		// record lives longer than this memory of it.
		return nil
	}
	if err := p.store.Set(ctx, key, raw, ttl); err != nil {
		return fmt.Errorf("oidc: record client: %w", err)
	}
	if rec.SID != g.SID {
		if err := p.store.Set(ctx, clientSIDKey(rec.SID, offline), []byte(g.SID), ttl); err != nil {
			return fmt.Errorf("oidc: record client: %w", err)
		}
	}
	p.recorded.remember(key, now.Add(ttl/2))
	return nil
}

// memo remembers, until a time, which session records this instance has
// written, so that a session's every code exchange and refresh does not
// write the same record again (a file write on Caddy storage). Bounded: it
// forgets everything when full.
type memo struct {
	mu    sync.Mutex
	until map[string]time.Time
}

const memoMax = 100000

func (m *memo) fresh(key string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.until[key]
	return ok && now.Before(t)
}

func (m *memo) remember(key string, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.until == nil || len(m.until) >= memoMax {
		m.until = make(map[string]time.Time)
	}
	m.until[key] = until
}

// sessionClients lists the clients that received tokens in session sid,
// each once.
func (p *Provider) sessionClients(ctx context.Context, sid string) ([]sessionClient, error) {
	keys, err := p.store.List(ctx, sessionPrefix(sid))
	if err != nil {
		return nil, fmt.Errorf("oidc: session clients: %w", err)
	}
	var out []sessionClient
	for _, k := range keys {
		raw, err := p.store.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("oidc: session clients: %w", err)
		}
		var rec sessionClient
		if err := json.Unmarshal(raw, &rec); err != nil || rec.ClientID == "" {
			continue
		}
		if !slices.ContainsFunc(out, func(o sessionClient) bool { return o.ClientID == rec.ClientID }) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// endedBefore reports whether a session whose end is recorded needs
// nothing more: its id is still revoked here, or it ended longer ago than
// any of its session or access tokens live. Otherwise (the first EndSession
// recorded the end but failed to revoke) the revocations are made again.
func (p *Provider) endedBefore(ctx context.Context, sid string, now time.Time) bool {
	if p.revocations.Revoked(sid) {
		return true
	}
	raw, err := p.store.Get(ctx, endedKey(sid))
	if err != nil {
		return false
	}
	at, err := time.Parse(time.RFC3339, string(raw))
	return err == nil && now.Sub(at) > p.sessionLifetime+time.Minute
}

// sessionEnded reports whether session sid was ended (EndSession).
func (p *Provider) sessionEnded(ctx context.Context, sid string) (bool, error) {
	_, err := p.store.Get(ctx, endedKey(sid))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("oidc: session end: %w", err)
}

// hintSession is the caddy-idv session id an id_token_hint names: its sid,
// or for a pairwise client the session that sid was derived from; "" when
// that is no longer known.
func (p *Provider) hintSession(ctx context.Context, h *hint) (string, error) {
	if h.client.Subject != SubjectPairwise {
		if !store.ValidSID(h.sid) {
			return "", nil
		}
		return h.sid, nil
	}
	if !store.ValidSID(h.sid) {
		return "", nil
	}
	for _, offline := range []bool{true, false} {
		raw, err := p.store.Get(ctx, clientSIDKey(h.sid, offline))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("oidc: hint: %w", err)
		}
		// The derivation is checked, so that a stored value can never
		// redirect a hint to another session.
		if sid := string(raw); store.ValidSID(sid) && p.clientSID(h.client, sid) == h.sid {
			return sid, nil
		}
	}
	return "", nil
}

// EndSession ends caddy-idv session sid and every token issued from it, for
// as long as any of them could live, and tells every client that received
// tokens in it and registered a backchannel_logout_uri (OpenID Connect
// Back-Channel Logout 1.0 §2.5). It is called for every way a session ends:
// POST <prefix>/logout (through the module), end_session with the browser's
// cookie, and end_session with only an id_token_hint.
//
//   - the session id is revoked for SessionLifetime: its session tokens and
//     the access tokens of public-subject clients are refused at once here
//     and within seconds on every instance;
//   - each pairwise client's own sid is revoked for as long as its access
//     tokens live;
//   - the session's end is kept as long as a refresh family can live, and
//     every refresh and code exchange checks it.
//
// Logout tokens are sent in the background: EndSession returns without
// waiting for any relying party. It may be called more than once for the
// same session; logout tokens are sent only the first time. An error means
// the end could not be recorded in the store; the caller should ask the
// person to try again.
func (p *Provider) EndSession(ctx context.Context, sid string) error {
	if !store.ValidSID(sid) {
		return errors.New("oidc: end session: invalid session id")
	}
	now := p.now()
	// The end is recorded before the clients are listed; a code exchange
	// records its client before it reads the end (exchangeCode), so one of
	// the two always sees the other.
	first, err := p.store.SetIfAbsent(ctx, endedKey(sid), []byte(now.UTC().Format(time.RFC3339)), endedFor)
	if err != nil {
		return fmt.Errorf("oidc: end session: %w", err)
	}
	if !first && p.endedBefore(ctx, sid, now) {
		// Ended already, and its revocation still holds or is no longer
		// needed: a hint presented again (or old) costs no store writes.
		return nil
	}
	var errs []error
	if err := p.revocations.Revoke(ctx, sid, now.Add(p.sessionLifetime+time.Minute)); err != nil {
		errs = append(errs, err)
	}
	clients, err := p.sessionClients(ctx, sid)
	if err != nil {
		return fmt.Errorf("oidc: end session: %w", errors.Join(append(errs, err)...))
	}
	for _, rec := range clients {
		if rec.SID != sid && store.ValidSID(rec.SID) {
			if err := p.revocations.Revoke(ctx, rec.SID, now.Add(AccessTokenLifetime+token.Leeway+time.Minute)); err != nil {
				errs = append(errs, err)
			}
		}
		c := p.clients[rec.ClientID]
		if !first || c == nil || c.BackchannelLogoutURI == "" {
			continue
		}
		p.backchannel.send(logoutJob{
			uri: c.BackchannelLogoutURI,
			alg: c.idTokenAlg(),
			logout: token.Logout{
				Issuer: p.issuer, ClientID: c.ID, Subject: rec.Subject, SID: rec.SID,
			},
		})
	}
	if len(errs) > 0 {
		return fmt.Errorf("oidc: end session: %w", errors.Join(errs...))
	}
	p.logger.Debug("oidc: session ended", zap.Int("clients", len(clients)), zap.Bool("first", first))
	return nil
}
