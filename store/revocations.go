package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

const (
	// revokedPrefix is where revocations live in the store; the value of
	// "revoked/<sid>" is the RFC 3339 time until which sid stays revoked.
	revokedPrefix = "revoked/"
	// RevokedChannel is the [Notifier] channel on which [Revocations]
	// publishes each revoked session id.
	RevokedChannel = "idv:revoked"
	// maxSIDLen bounds session ids; ours are base64url of 16–32 bytes.
	maxSIDLen = 128
	// notifiedFallback is how long a session announced on RevokedChannel
	// stays revoked when the store cannot tell its real end. Longer is safe:
	// a revoked session never becomes valid again, and the entry in memory
	// costs a few bytes.
	notifiedFallback = 24 * time.Hour
	// rereadBefore is how long before its end Sync reads a known
	// revocation again; it must exceed the sync interval.
	rereadBefore = time.Minute
	// resubscribeDelay is the pause before subscribing again after the
	// subscription failed.
	resubscribeDelay = time.Second
)

// Revocations answers, on the request path, whether a session was revoked,
// from a copy of the revoked sessions held in memory. The copy is refreshed
// from the store by [Revocations.Sync] (called periodically by
// [Revocations.Run]) and, on a store that is a [Notifier], at once whenever
// any instance revokes a session.
//
// Revocations is safe for concurrent use.
type Revocations struct {
	store  Store
	logger *zap.Logger
	now    func() time.Time

	// synced is what the last Sync read from the store, sid → until. The
	// map is never modified once published, so readers need no lock.
	synced atomic.Pointer[map[string]time.Time]
	// recent (sid → until, a time.Time) holds what this instance learnt
	// after the last Sync started, its own revocations and announcements,
	// until a Sync finds them in the store. sync.Map reads take no lock
	// and insertions cost the same however many revocations arrive between
	// two Syncs.
	recent sync.Map
	// mu serialises the writers of recent; syncMu serialises Syncs, so that
	// a slower one cannot publish an older view over a newer one.
	mu, syncMu sync.Mutex
}

// NewRevocations returns an empty set of revocations kept in s. logger may be
// nil; now is time.Now when nil. Call Sync or Run to load what s holds.
func NewRevocations(s Store, logger *zap.Logger, now func() time.Time) *Revocations {
	if logger == nil {
		logger = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	r := &Revocations{store: s, logger: logger, now: now}
	r.synced.Store(&map[string]time.Time{})
	return r
}

// ValidSID reports whether sid is a session id as the module makes them:
// 1 to 128 characters of the base64url alphabet ([A-Za-z0-9_-]). Only such
// ids are put into store keys.
func ValidSID(sid string) bool {
	if len(sid) == 0 || len(sid) > maxSIDLen {
		return false
	}
	for i := 0; i < len(sid); i++ {
		c := sid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Revoke revokes session sid until the time until (the expiry of its last
// token; the entry is useless after it, and an until that has passed
// already is nothing to do). It takes effect on this instance
// at once, even when the store cannot be written, in which case the error
// says so and other instances will not learn of it. On a [Notifier] store it
// also announces sid to every instance; a failed announcement is only
// logged, since the others still find it at their next Sync.
func (r *Revocations) Revoke(ctx context.Context, sid string, until time.Time) error {
	if !ValidSID(sid) {
		return errors.New("store: revoke: invalid session id")
	}
	// A revocation is never shortened: the store's value is replaced, so
	// an end earlier than one known here would let the session back in
	// elsewhere before its last token expires.
	until = r.addRecent(sid, until)
	ttl := until.Sub(r.now())
	if ttl <= 0 {
		return nil
	}
	value, err := until.UTC().MarshalText()
	if err != nil {
		return fmt.Errorf("store: revoke: %w", err)
	}
	if err := r.store.Set(ctx, revokedPrefix+sid, value, ttl); err != nil {
		return fmt.Errorf("store: revoke: %w", err)
	}
	if n, ok := r.store.(Notifier); ok {
		if err := n.Publish(ctx, RevokedChannel, []byte(sid)); err != nil {
			r.logger.Warn("store: revoke: announcing the revocation failed; other instances learn of it at their next sync",
				zap.Error(err))
		}
	}
	return nil
}

// addRecent records sid as revoked until until, keeping a later end known
// here (in recent or in the synced set), and returns the end it keeps.
func (r *Revocations) addRecent(sid string, until time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if known, ok := (*r.synced.Load())[sid]; ok && known.After(until) {
		until = known
	}
	if old, ok := r.recent.Load(sid); ok && !until.After(old.(time.Time)) {
		return old.(time.Time)
	}
	r.recent.Store(sid, until)
	return until
}

// Revoked reports whether session sid is revoked now. It reads only the set
// in memory, never the store, takes no lock and does not allocate; its cost
// does not depend on the number of revoked sessions. The clock is read only
// for a sid that is in the set, the rare case.
func (r *Revocations) Revoked(sid string) bool {
	if until, ok := (*r.synced.Load())[sid]; ok && r.now().Before(until) {
		return true
	}
	until, ok := r.recent.Load(sid)
	return ok && r.now().Before(until.(time.Time))
}

// Sync reads the revocations in the store into the set in memory, and
// writes back to the store those it knows that the store has lost.
//
// Nothing is ever un-revoked, so a revocation known here that has not ended
// yet and that the store no longer holds (or holds with an earlier end) was
// lost by the store: a Redis restarted without persistence, or a write that
// failed during an outage. Sync keeps it in memory, so this instance never
// accepts the session again, and writes it back, so that every other
// instance, new ones included, refuses it too. Instances that rewrite the
// same revocation converge on its latest end.
//
// When the store cannot be read, the set is left as it was and the error
// returned; when writing back fails, the set in memory keeps the
// revocations, the error is returned and the next Sync tries again.
func (r *Revocations) Sync(ctx context.Context) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	keys, err := r.store.List(ctx, revokedPrefix)
	if err != nil {
		return fmt.Errorf("store: sync revocations: %w", err)
	}
	now := r.now()
	previous := *r.synced.Load()
	stored := make(map[string]time.Time, len(keys))
	for _, key := range keys {
		sid := strings.TrimPrefix(key, revokedPrefix)
		if !ValidSID(sid) {
			continue
		}
		// Known revocations are not read again until they near their end,
		// when a later revocation of the same sid may have moved it.
		if until, ok := previous[sid]; ok && until.Sub(now) > rereadBefore {
			stored[sid] = until
			continue
		}
		until, err := r.load(ctx, sid)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: sync revocations: %w", err)
		}
		if now.Before(until) {
			stored[sid] = until
		}
	}

	// What this instance knows beyond the store: the previous set and
	// what it learnt since, later ends winning.
	synced := maps.Clone(stored)
	known := func(sid string, until time.Time) {
		if now.Before(until) && until.After(synced[sid]) {
			synced[sid] = until
		}
	}
	for sid, until := range previous {
		known(sid, until)
	}
	r.recent.Range(func(sid, v any) bool {
		known(sid.(string), v.(time.Time))
		return true
	})
	var lost []string
	for sid, until := range synced {
		if until.After(stored[sid]) {
			lost = append(lost, sid)
		}
	}

	r.synced.Store(&synced)
	// Only now that synced is visible may recent let go of what it holds.
	r.mu.Lock()
	r.recent.Range(func(sid, v any) bool {
		if until := v.(time.Time); !now.Before(until) || !synced[sid.(string)].Before(until) {
			r.recent.Delete(sid)
		}
		return true
	})
	r.mu.Unlock()

	if len(lost) == 0 {
		return nil
	}
	var failed error
	restored := 0
	for _, sid := range lost {
		if err := r.restore(ctx, sid, synced[sid], now); err != nil {
			failed = err
			continue
		}
		restored++
	}
	if restored > 0 {
		r.logger.Warn("store: revocations that had not ended were missing from the store (lost by it, or not written during an outage); they were written back",
			zap.Int("revocations", restored))
	}
	if failed != nil {
		return fmt.Errorf("store: sync revocations: writing back %d lost revocations: %w", len(lost)-restored, failed)
	}
	return nil
}

// restore writes back the revocation of sid until until, which the store
// lost. SetIfAbsent, where the store lacks it, cannot shorten a revocation
// that another instance writes meanwhile with a later end; Set, where the
// store holds an earlier end, can, but that instance writes its end back in
// turn at its next Sync.
func (r *Revocations) restore(ctx context.Context, sid string, until, now time.Time) error {
	value, err := until.UTC().MarshalText()
	if err != nil {
		return err
	}
	key, ttl := revokedPrefix+sid, until.Sub(now)
	if _, err := r.store.Get(ctx, key); errors.Is(err, ErrNotFound) {
		_, err = r.store.SetIfAbsent(ctx, key, value, ttl)
		return err
	}
	return r.store.Set(ctx, key, value, ttl)
}

// load reads the end of sid's revocation from the store.
func (r *Revocations) load(ctx context.Context, sid string) (time.Time, error) {
	value, err := r.store.Get(ctx, revokedPrefix+sid)
	if err != nil {
		return time.Time{}, err
	}
	var until time.Time
	if err := until.UnmarshalText(value); err != nil {
		return time.Time{}, fmt.Errorf("read revocation: %w", err)
	}
	return until, nil
}

// Run keeps the set in memory current until ctx is done, and returns then:
// it calls Sync at once and then every every (which must be positive), and
// on a [Notifier] store it also adds each session announced on
// [RevokedChannel] as it arrives. Errors are logged once when a run of
// failures starts (later ones at debug level) and once when it ends; the
// set keeps its last good state.
func (r *Revocations) Run(ctx context.Context, every time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	if n, ok := r.store.(Notifier); ok {
		wg.Go(func() { r.subscribe(ctx, n) })
	}
	failing := false
	repeat(ctx, every, func() {
		err := r.Sync(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil && !failing:
			failing = true
			r.logger.Warn("store: syncing revocations failed; retrying, and logging again when it works", zap.Error(err))
		case err != nil:
			r.logger.Debug("store: syncing revocations failed again", zap.Error(err))
		case failing:
			failing = false
			r.logger.Info("store: syncing revocations works again")
		}
	})
}

// establishedAfter is how long a Subscribe call must have run to count as a
// subscription that was made: a store's Subscribe returns at once when it
// cannot subscribe.
const establishedAfter = time.Second

// subscribe adds the announced sessions until ctx is done, subscribing again
// when the subscription fails. A run of failed attempts is logged once.
func (r *Revocations) subscribe(ctx context.Context, n Notifier) {
	failing := false
	for {
		started := r.now()
		err := n.Subscribe(ctx, RevokedChannel, func(msg []byte) { r.notified(ctx, string(msg)) })
		if ctx.Err() != nil {
			return
		}
		if r.now().Sub(started) >= establishedAfter {
			failing = false
		}
		if !failing {
			r.logger.Warn("store: subscription to revocations ended; subscribing again until it works (the periodic sync still runs)", zap.Error(err))
			failing = true
		} else {
			r.logger.Debug("store: subscribing to revocations failed again", zap.Error(err))
		}
		t := time.NewTimer(resubscribeDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// notified adds a session announced by some instance. The announcement
// carries only the id, so the end is read from the store; when that fails
// the announcement alone is enough to refuse the session (fail closed) for
// notifiedFallback.
func (r *Revocations) notified(ctx context.Context, sid string) {
	if !ValidSID(sid) {
		r.logger.Warn("store: ignoring an invalid session id announced on the revocation channel")
		return
	}
	until, err := r.load(ctx, sid)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			r.logger.Warn("store: reading an announced revocation failed; revoking the session for a day", zap.Error(err))
		}
		until = r.now().Add(notifiedFallback)
	}
	r.addRecent(sid, until)
}
