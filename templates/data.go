package templates

import "time"

// Page is what every page shares; the layout reads it.
type Page struct {
	// Title is the document title; each page has a default when it is "".
	Title string
	// Prefix is where the module serves its own pages and API, such as
	// "/.idv"; links to static assets and the API start with it.
	Prefix string
	// Lang is the page's language tag. Default: "en".
	Lang string
}

// Field is one input of a "form" provider (providers.Field).
type Field struct {
	Name         string // the key in the POST /sessions body
	Label        string
	Type         string // HTML input type; default "text"
	Autocomplete string
	Pattern      string
	Hint         string
}

// Provider is one way to log in, as offered on the login page.
type Provider struct {
	Name   string // sent as "provider" in POST /sessions
	Label  string // the text of its choice button
	Kind   string
	Flow   string // "qr" or "form"
	Fields []Field
}

// Login is the data of the login page.
type Login struct {
	Page
	// RD is where to go after the login. The handler has already reduced it
	// to a local path; login.js still checks the redirect it finally gets.
	RD        string
	Providers []Provider
}

// Error is the data of the error page. Message is shown as it is, so it must
// hold no personal data, provider secrets or stack traces.
type Error struct {
	Page
	Status   int
	Heading  string
	Message  string
	RetryURL string // may be ""; the page then links to "/"
}

// Wallet is the data of the demo provider's simulated wallet page.
type Wallet struct {
	Page
	ID        string
	User      string
	ExpiresAt time.Time
	// State is "pending", "approved", "declined", "expired" or "unknown";
	// only "pending" shows the Approve and Decline buttons.
	State      string
	ApproveURL string
	DeclineURL string
	// SameDevice is true when the wallet is opened in the browser that
	// started the login.
	SameDevice bool
}
