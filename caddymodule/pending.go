package caddymodule

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// maxCookieSize keeps the pending cookie within what every browser stores.
const maxCookieSize = 3800

// pendingLogin is a login in progress. It travels sealed in the pending
// cookie, which binds the login to the browser that started it (only that
// browser can read its state and receive its session cookie) and lets any
// instance answer its polls.
type pendingLogin struct {
	ID       string    `json:"id"`
	Provider string    `json:"p"`
	RD       string    `json:"rd"`
	Created  time.Time `json:"c"`
	Expires  time.Time `json:"e"`
	QR       string    `json:"qr,omitempty"`
	State    []byte    `json:"s,omitempty"`
}

func (h *Handler) pendingCookieName() string { return h.sc.Cookie + "_login" }

func (h *Handler) setPendingCookie(w http.ResponseWriter, r *http.Request, pl *pendingLogin) error {
	plain, err := json.Marshal(pl)
	if err != nil {
		return err
	}
	name := h.pendingCookieName()
	value := h.sealer.seal(plain, name)
	if len(value) > maxCookieSize {
		return fmt.Errorf("idv: pending cookie would be %d bytes", len(value))
	}
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     h.Prefix + "/",
		MaxAge:   int(pl.Expires.Sub(h.now()).Seconds()) + 60,
		HttpOnly: true,
		Secure:   h.secure(r),
		SameSite: http.SameSiteStrictMode,
	})
	return nil
}

func (h *Handler) clearPendingCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name:     h.pendingCookieName(),
		Value:    "",
		Path:     h.Prefix + "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   h.secure(r),
		SameSite: http.SameSiteStrictMode,
	})
}

// pendingFor returns the login id that r's pending cookie binds, or nil when
// r has no such cookie, it does not verify, or it is for another login.
func (h *Handler) pendingFor(r *http.Request, id string) *pendingLogin {
	c, err := r.Cookie(h.pendingCookieName())
	if err != nil || len(c.Value) > maxCookieSize {
		return nil
	}
	plain, err := h.sealer.open(c.Value, h.pendingCookieName())
	if err != nil {
		return nil
	}
	var pl pendingLogin
	if err := json.Unmarshal(plain, &pl); err != nil {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(pl.ID), []byte(id)) != 1 {
		return nil
	}
	return &pl
}

// sameBrowser implements providers.Env.SameBrowser.
func (h *Handler) sameBrowser(r *http.Request, id string) bool {
	return h.pendingFor(r, id) != nil
}

// keyedMutex serialises work per key (one login's polls) on this instance.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = make(map[string]*keyedEntry)
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
