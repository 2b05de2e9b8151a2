package caddymodule

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddy-idv/caddy-idv/login"
)

// maxCookieSize keeps the pending cookie within what every browser stores.
const maxCookieSize = 3800

// maxPending is how many logins in progress one browser may have: each
// has its own pending cookie, so that two tabs log in independently; a
// sixth login drops the oldest cookie.
const maxPending = 5

// pendingLogin is a login in progress. It travels sealed in its own pending
// cookie, which binds the login to the browser that started it (only that
// browser can read its state and receive its session cookie) and lets any
// instance answer its polls.
type pendingLogin struct {
	login.Pending
	// What POST /sessions answered, for GET /sessions after a reload.
	QR          string `json:"qr,omitempty"`
	DeepLink    string `json:"dl,omitempty"`
	ControlCode string `json:"cc,omitempty"`
}

// pendingCookiePrefix starts the name of every pending cookie; the login id's
// first characters end it.
func (h *Handler) pendingCookiePrefix() string { return h.sc.Cookie + "_login_" }

func (h *Handler) pendingCookieName(id string) string {
	return h.pendingCookiePrefix() + id[:min(len(id), 10)]
}

// errPendingTooLarge is a pending login whose sealed cookie would not fit
// in a browser's cookie.
var errPendingTooLarge = errors.New("idv: pending cookie too large")

func (h *Handler) setPendingCookie(w http.ResponseWriter, r *http.Request, pl *pendingLogin) error {
	plain, err := json.Marshal(pl)
	if err != nil {
		return err
	}
	name := h.pendingCookieName(pl.ID)
	value := h.sealer.seal(plain, h.pendingPurpose(name))
	if len(value) > maxCookieSize {
		return fmt.Errorf("%w: %d bytes", errPendingTooLarge, len(value))
	}
	// Keep the newest maxPending-1 others.
	others := h.pendingLogins(r)
	slices.SortFunc(others, func(a, b *pendingLogin) int { return b.Created.Compare(a.Created) })
	for i, old := range others {
		if i >= maxPending-1 || !old.Expires.After(h.now()) {
			h.clearPendingCookie(w, r, old.ID)
		}
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

func (h *Handler) clearPendingCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name:     h.pendingCookieName(id),
		Value:    "",
		Path:     h.Prefix + "/",
		MaxAge:   -1,
		HttpOnly: true,
		Secure:   h.secure(r),
		SameSite: http.SameSiteStrictMode,
	})
}

// pendingPurpose is the associated data a pending cookie is sealed with:
// its name and this handler's session audience, so that a pending cookie of
// another handler sharing the store (another prefix, other providers)
// opens nowhere but there.
func (h *Handler) pendingPurpose(name string) string { return name + "\x00" + h.pendingAAD }

// openPending opens one pending cookie's value.
func (h *Handler) openPending(name, value string) *pendingLogin {
	if len(value) > maxCookieSize {
		return nil
	}
	plain, err := h.sealer.open(value, h.pendingPurpose(name))
	if err != nil {
		return nil
	}
	var pl pendingLogin
	if err := json.Unmarshal(plain, &pl); err != nil || h.pendingCookieName(pl.ID) != name {
		return nil
	}
	return &pl
}

// pendingFor returns the login id that r's pending cookie binds, or nil when
// r has no such cookie, it does not verify, or it is for another login.
// Every cookie of the name is tried: one planted next to the real one (a
// sibling subdomain's with a longer Path is sent first) must not lock the
// browser out of its login.
func (h *Handler) pendingFor(r *http.Request, id string) *pendingLogin {
	for _, c := range r.CookiesNamed(h.pendingCookieName(id)) {
		pl := h.openPending(c.Name, c.Value)
		if pl != nil && subtle.ConstantTimeCompare([]byte(pl.ID), []byte(id)) == 1 {
			return pl
		}
	}
	return nil
}

// pendingLogins returns every login in progress r's pending cookies hold.
func (h *Handler) pendingLogins(r *http.Request) []*pendingLogin {
	prefix := h.pendingCookiePrefix()
	var out []*pendingLogin
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, prefix) {
			if pl := h.openPending(c.Name, c.Value); pl != nil {
				out = append(out, pl)
			}
		}
	}
	return out
}

// sameBrowser implements providers.Env.SameBrowser.
func (h *Handler) sameBrowser(r *http.Request, id string) bool {
	return h.pendingFor(r, id) != nil
}

// engineClock is the login engine's clock on the handler's (tests set
// h.now).
type engineClock struct{ now func() time.Time }

func (c engineClock) Now() time.Time { return c.now() }
func (c engineClock) AfterFunc(d time.Duration, f func()) login.Timer {
	return time.AfterFunc(d, f)
}

// engineSealer lets the login engine seal its records with the handler's
// key.
type engineSealer struct{ s *sealer }

func (e engineSealer) Seal(plain []byte, purpose string) string { return e.s.seal(plain, purpose) }
func (e engineSealer) Open(sealed, purpose string) ([]byte, error) {
	return e.s.open(sealed, purpose)
}
