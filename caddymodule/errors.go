package caddymodule

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-idv/caddy-idv/templates"
)

// apiError is an error answer: JSON {"error","message"} for API calls, a
// readable page for browser navigations. Messages are for people: they never
// carry stack traces, provider secrets or personal data.
type apiError struct {
	status  int
	code    string
	message string
	field   string // for invalid_input: the form field at fault
	// account is who is logged in, for a page that offers to log in as
	// someone else (a refusal by a require rule).
	account string
}

func errorf(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

// contentSecurityPolicy keeps the module's pages to their own origin: no
// inline script or style, no framing, forms only to the site itself.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(w http.ResponseWriter) {
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "same-origin")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	securityHeaders(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// isNavigation reports whether r is a browser navigation: a GET or HEAD
// whose Accept includes text/html (docs/reference.md, "Protected requests").
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	if isNavigation(r) || isFormSubmission(r) {
		// The heading is the page's own for the status, and the message is
		// shown translated (or, when the catalogue does not know it, as a
		// generic text in another language than English).
		data := templates.Error{
			Page:     h.page(""),
			Status:   e.status,
			Message:  e.message,
			RetryURL: h.Prefix + "/login",
		}
		if e.account != "" {
			data.Account = e.account
			data.LogoutRD = h.Prefix + "/login?rd=" + url.QueryEscape(safeRedirect(r.URL.RequestURI()))
		}
		if e.status == http.StatusTooManyRequests {
			data.RetryAfter, _ = strconv.Atoi(w.Header().Get("Retry-After"))
		}
		h.renderPage(w, r, e.status, "error", data)
		return
	}
	body := map[string]string{"error": e.code, "message": e.message}
	if e.field != "" {
		body["field"] = e.field
	}
	writeJSON(w, e.status, body)
}

// isFormSubmission reports whether r is a browser submitting an HTML form
// (logout, the demo wallet's buttons), which should get a page, not JSON.
func isFormSubmission(r *http.Request) bool {
	return r.Method == http.MethodPost && isFormPost(r) &&
		(r.Header.Get("Sec-Fetch-Mode") == "navigate" || strings.Contains(r.Header.Get("Accept"), "text/html"))
}

func isFormPost(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") || strings.HasPrefix(ct, "multipart/form-data")
}

func (h *Handler) tooMany(w http.ResponseWriter, r *http.Request, after time.Duration) {
	secs := int(after.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	h.writeError(w, r, errorf(http.StatusTooManyRequests, "rate_limited", "Too many login attempts. Try again in "+strconv.Itoa(secs)+" seconds."))
}

// pageRenderer lets providers render the module's templates.
type pageRenderer struct{ h *Handler }

func (p pageRenderer) Render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	p.h.renderPage(w, r, status, name, data)
}

// renderPage sends a page in the person's language: ?lang= (remembered in a
// cookie), the cookie, Accept-Language, or the default.
func (h *Handler) renderPage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	lang, chosen := h.pages.Negotiate(r)
	var buf strings.Builder
	if err := h.pages.Render(&buf, name, lang, h.localize(r, lang, data)); err != nil {
		h.logger.Error("rendering page", zapString("page", name), zapError(err))
		securityHeaders(w)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("The page could not be shown.\n"))
		return
	}
	securityHeaders(w)
	if chosen {
		http.SetCookie(w, h.languageCookie(r, lang))
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Language", lang.Tag)
	hdr.Set("Content-Security-Policy", contentSecurityPolicy)
	hdr.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(buf.String()))
	}
}
