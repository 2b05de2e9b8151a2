package demo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/store"
	"github.com/caddy-idv/caddy-idv/templates"
)

// Routes implements providers.Router: the wallet page and its two buttons,
// which take no request body (413 when there is one).
//
//	GET  /demo/wallet/{id}
//	POST /demo/wallet/{id}/approve
//	POST /demo/wallet/{id}/decline
func (p *provider) Routes(host providers.RouteHost) (string, http.Handler) {
	p.host = host
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/wallet/{id}", p.page)
	mux.HandleFunc("HEAD /demo/wallet/{id}", p.page)
	mux.HandleFunc("POST /demo/wallet/{id}/approve", func(w http.ResponseWriter, r *http.Request) { p.decide(w, r, true) })
	mux.HandleFunc("POST /demo/wallet/{id}/decline", func(w http.ResponseWriter, r *http.Request) { p.decide(w, r, false) })
	return "/demo/", mux
}

// walletState is the state the wallet page shows for a login, and for a
// decided one whether it was decided in the browser that started it.
func (p *provider) walletState(ctx context.Context, id string) (rec record, state string, same bool, err error) {
	if !providers.ValidID(id) {
		return rec, "unknown", false, nil
	}
	raw, err := p.env.Store.Get(ctx, loginKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return rec, "unknown", false, nil
	}
	if err != nil {
		return rec, "", false, err
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, "", false, err
	}
	draw, err := p.env.Store.Get(ctx, decisionKey(id))
	switch {
	case err == nil:
		var dec decision
		if json.Unmarshal(draw, &dec) == nil && dec.Approved {
			return rec, "approved", dec.SameDevice, nil
		}
		return rec, "declined", dec.SameDevice, nil
	case !errors.Is(err, store.ErrNotFound):
		return rec, "", false, err
	case !p.env.Now().Before(rec.ExpiresAt):
		return rec, "expired", false, nil
	}
	return rec, "pending", false, nil
}

func (p *provider) page(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec, state, same, err := p.walletState(r.Context(), id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if state == "unknown" {
		status = http.StatusNotFound
	}
	p.render(w, r, status, id, rec, state, same)
}

// render shows the wallet page. decidedHere is true when the login was
// decided in the browser that started it.
func (p *provider) render(w http.ResponseWriter, r *http.Request, status int, id string, rec record, state string, decidedHere bool) {
	base := p.env.Prefix + "/demo/wallet/" + id
	data := templates.Wallet{
		Page:       templates.Page{Prefix: p.env.Prefix},
		ID:         id,
		User:       rec.User,
		ExpiresAt:  rec.ExpiresAt,
		State:      state,
		ApproveURL: base + "/approve",
		DeclineURL: base + "/decline",
	}
	switch state {
	case "pending":
		data.SameDevice = p.host.SameBrowser != nil && p.host.SameBrowser(r, id)
	case "approved", "declined":
		// Answered on the device that started the login: that login page
		// finishes it, so the person goes back there (login.js resumes the
		// login named in the fragment), not to "the other screen".
		data.SameDevice = decidedHere
		if decidedHere {
			data.ReturnURL = p.env.Prefix + "/login#idv-resume=" + id
		}
	}
	p.host.Pages.Render(w, r, status, "wallet", data)
}

// decide records Approve or Decline once. A second decision, a decision
// after expiry and a decision for an unknown login are refused, and so is
// a request with a body.
func (p *provider) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	// The buttons post an empty form. A body (of any size, announced or
	// chunked) is refused before a byte of it is read, so that a huge,
	// endless or trickling one costs nothing and decides nothing. The
	// connection is closed after the answer: otherwise the server would
	// read up to 256 KiB of the body before sending it.
	if r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
		const msg = "The demo wallet could not record your answer. Try again."
		if wantsJSON(r) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body_not_allowed", "message": msg})
			return
		}
		p.host.Pages.Render(w, r, http.StatusRequestEntityTooLarge, "error", templates.Error{
			Page:    templates.Page{Prefix: p.env.Prefix},
			Status:  http.StatusRequestEntityTooLarge,
			Message: msg,
		})
		return
	}
	ctx := r.Context()
	id := r.PathValue("id")
	rec, state, same, err := p.walletState(ctx, id)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	switch state {
	case "unknown":
		p.answer(w, r, http.StatusNotFound, id, rec, state, same, "unknown_login", "This login does not exist.")
		return
	case "expired":
		p.answer(w, r, http.StatusGone, id, rec, state, same, "expired", "This login has expired.")
		return
	case "approved", "declined":
		p.answer(w, r, http.StatusConflict, id, rec, state, same, "already_decided", "This login was already "+state+".")
		return
	}
	dec := decision{Approved: approve, SameDevice: p.host.SameBrowser != nil && p.host.SameBrowser(r, id)}
	if approve {
		dec.Result, err = p.sign(id, rec.User, dec.SameDevice)
		if err != nil {
			p.fail(w, r, err)
			return
		}
	}
	raw, err := json.Marshal(dec)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	ttl := rec.ExpiresAt.Sub(p.env.Now()) + resultLifetime
	first, err := p.env.Store.SetIfAbsent(ctx, decisionKey(id), raw, ttl)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if !first {
		_, state, same, _ = p.walletState(ctx, id)
		p.answer(w, r, http.StatusConflict, id, rec, state, same, "already_decided", "This login was already decided.")
		return
	}
	p.announce(id)
	state = "declined"
	if approve {
		state = "approved"
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]string{"state": state})
		return
	}
	// Post/Redirect/Get: the page then shows the outcome.
	http.Redirect(w, r, p.env.Prefix+"/demo/wallet/"+id, http.StatusSeeOther)
}

func (p *provider) answer(w http.ResponseWriter, r *http.Request, status int, id string, rec record, state string, same bool, code, msg string) {
	if wantsJSON(r) {
		writeJSON(w, status, map[string]string{"error": code, "message": msg, "state": state})
		return
	}
	p.render(w, r, status, id, rec, state, same)
}

func (p *provider) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.logger.Error("demo wallet", zap.String("provider", p.env.Name), zap.Error(err))
	status := http.StatusInternalServerError
	if errors.Is(err, store.ErrUnavailable) {
		status = http.StatusServiceUnavailable
	}
	if wantsJSON(r) {
		writeJSON(w, status, map[string]string{"error": "wallet_error", "message": "The demo wallet could not record your answer. Try again."})
		return
	}
	p.host.Pages.Render(w, r, status, "error", templates.Error{
		Page:    templates.Page{Prefix: p.env.Prefix},
		Status:  status,
		Message: "The demo wallet could not record your answer. Try again.",
	})
}

func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json") ||
		strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
