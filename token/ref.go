package token

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"
)

// A session reference is the compact form of a session for browser
// cookies: 128 random bits (22 characters) that name a session token kept
// in the shared store. Every byte of a cookie is read, parsed and sent
// upstream on every request, and a session token with its claims is some
// 600 bytes; a reference is 22, and it shows nothing of the person to
// whoever sees the cookie. Bearer tokens for APIs stay JWTs.
//
// The reference is only a name: the session it names is verified like any
// session token (Verify), and revocation, expiry and idle renewal work on
// that token as they do for a bearer token.

// Refs keeps session tokens by reference, shared by every instance.
type Refs interface {
	Put(ctx context.Context, ref, raw string, expires time.Time) error
	// Get returns the token, or an error wrapping ErrInvalid when there is
	// none.
	Get(ctx context.Context, ref string) (string, error)
	Delete(ctx context.Context, ref string) error
}

// RefLength is the length of a session reference.
const RefLength = 22

// IsRef reports whether a cookie value has the shape of a session
// reference rather than a JWT.
func IsRef(v string) bool {
	if len(v) != RefLength {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// UseRefs makes the site keep sessions by reference in refs.
func (ss *Sessions) UseRefs(refs Refs) { ss.refs = refs }

// NewRef keeps raw, a session token this site issued, under a new
// reference and returns it.
func (ss *Sessions) NewRef(ctx context.Context, raw string, expires time.Time) (string, error) {
	if ss.refs == nil {
		return "", errors.New("token: no session references configured")
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	ref := base64.RawURLEncoding.EncodeToString(b)
	if err := ss.refs.Put(ctx, ref, raw, expires); err != nil {
		return "", fmt.Errorf("token: keep session: %w", err)
	}
	// The instance that hands out the cookie knows its session already:
	// its first request needs no store round trip.
	if sess, err := ss.Verify(ctx, raw); err == nil {
		ss.svc.refs.put(ref, sess, ss.svc.now())
	}
	return ref, nil
}

// VerifyRef returns the verified session that ref names: from the cache
// when this instance has seen it (every check but the signature repeated),
// else from the store, verified as a session token of this site.
func (ss *Sessions) VerifyRef(ctx context.Context, ref string) (*Session, error) {
	if ss.refs == nil || !IsRef(ref) {
		return nil, fmt.Errorf("%w: not a session reference", ErrInvalid)
	}
	now := ss.svc.now()
	if sess := ss.svc.refs.get(ref); sess != nil {
		if now.Before(sess.Expiry.Add(Leeway)) {
			return ss.accept(sess)
		}
		// It may have been renewed by another instance: look again.
		ss.svc.refs.remove(ref)
	}
	raw, err := ss.refs.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	sess, err := ss.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	ss.svc.refs.put(ref, sess, now)
	return sess, nil
}

// RenewRef renews the session ref names when its idle timeout is more than
// half used (see Renew), keeping the reference, and returns the new expiry;
// a zero time when no renewal was due.
func (ss *Sessions) RenewRef(ctx context.Context, ref string, sess *Session) (time.Time, error) {
	raw, exp, err := ss.Renew(sess)
	if err != nil || raw == "" {
		return time.Time{}, err
	}
	if err := ss.refs.Put(ctx, ref, raw, exp); err != nil {
		return time.Time{}, fmt.Errorf("token: keep renewed session: %w", err)
	}
	ss.svc.refs.remove(ref)
	return exp, nil
}

// DeleteRef forgets a reference (after logout).
func (ss *Sessions) DeleteRef(ctx context.Context, ref string) error {
	ss.svc.refs.remove(ref)
	if ss.refs == nil {
		return nil
	}
	return ss.refs.Delete(ctx, ref)
}
