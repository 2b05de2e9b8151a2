package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/store"
)

// Sealer encrypts and authenticates values kept in the store; the purpose
// (the store key) is bound to the sealed value.
type Sealer interface {
	Seal(plain []byte, purpose string) string
	Open(sealed, purpose string) ([]byte, error)
}

// Record is the final outcome of a login.
type Record struct {
	State   providers.State `json:"state"`
	Message string          `json:"message,omitempty"`
	// Token and Expires are the session of a completed login.
	Token   string    `json:"token,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// Keys never nest under another key: a file system storage cannot hold
// "login/<id>" as a file and a directory at once.
func recordKey(id string) string    { return "login/" + id }
func leaseKey(id string) string     { return "lease/" + id }
func deliveredKey(id string) string { return "delivered/" + id }

// RecordGrace is how long a login's outcome is kept after the login
// expired, so that a late poll learns the outcome instead of "unknown".
const RecordGrace = 10 * time.Minute

func (e *Engine) loadRecord(ctx context.Context, id string) (*Record, error) {
	sealed, err := e.store.Get(ctx, recordKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	plain, err := e.seal.Open(string(sealed), recordKey(id))
	if err != nil {
		return nil, fmt.Errorf("login: record of %s: %w", id, err)
	}
	var rec Record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return nil, fmt.Errorf("login: record of %s: %w", id, err)
	}
	return &rec, nil
}

// saveRecord records rec as the login's outcome unless another poller
// recorded one first, and returns whichever won.
func (e *Engine) saveRecord(ctx context.Context, p *Pending, rec *Record) (*Record, error) {
	plain, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	ttl := max(p.Expires.Sub(e.clock.Now())+RecordGrace, RecordGrace)
	first, err := e.store.SetIfAbsent(ctx, recordKey(p.ID), []byte(e.seal.Seal(plain, recordKey(p.ID))), ttl)
	if err != nil {
		return nil, err
	}
	if first {
		return rec, nil
	}
	won, err := e.loadRecord(ctx, p.ID)
	if err != nil || won == nil {
		return nil, errors.Join(errors.New("login: the recorded outcome vanished"), err)
	}
	return won, nil
}
