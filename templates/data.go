package templates

import "time"

// Page is what every page shares; the layout reads it.
type Page struct {
	// Title is the document title, shown through the template function
	// text (a message id, or an English text of the Go code that the
	// catalogue translates); each page has a default when it is "".
	Title string
	// Prefix is where the module serves its own pages and API, such as
	// "/.idv"; links to static assets and the API start with it.
	Prefix string
	// Lang is the page's language tag and Dir its direction ("ltr" or
	// "rtl"); Render sets both.
	Lang string
	Dir  string
	// Site is the name of the site that asks the person to log in, for the
	// header and the title (the `site_name` option, else its host name).
	Site string
	// Logo is the URL of the site's logo, on the same site, or "".
	Logo string
	// Theme is the URL of the stylesheet generated from the `accent`
	// option, or ""; Render sets it.
	Theme string
	// Languages are the choices of the language switcher; it is not shown
	// when there are fewer than two.
	Languages []Language
}

// Language is one choice of the language switcher.
type Language struct {
	Tag     string // BCP 47, as in lang="..."
	Name    string // the language's name in itself
	URL     string // this page in that language (?lang=<tag>)
	Current bool
}

// Field is one input of a "form" provider (providers.Field).
type Field struct {
	Name string // the key in the POST /sessions body
	// Label and Hint are shown through the template function text.
	Label        string
	Type         string // HTML input type; default "text"
	Autocomplete string
	// InputMode is the on-screen keyboard to offer ("tel", "numeric").
	InputMode string
	Pattern   string
	Hint      string
}

// Provider is one way to log in, as offered on the login page.
type Provider struct {
	Name string // sent as "provider" in POST /sessions
	// Label is the text of its choice button and Description the line under
	// it (default: what its kind asks the person to do), both shown through
	// the template function text.
	Label       string
	Description string
	// Qualifier tells two providers with the same label apart (their
	// names); "" when the label is unique.
	Qualifier string
	Kind      string
	Flow      string // "qr" or "form"
	// Autostart lets the page start a login with this provider as soon as
	// it is the only choice; otherwise the person presses its button.
	Autostart bool
	Fields    []Field
}

// Login is the data of the login page.
type Login struct {
	Page
	// RD is where to go after the login. The handler has already reduced it
	// to a local path; login.js still checks the redirect it finally gets.
	RD        string
	Providers []Provider
	// Client is the display name of the OpenID Connect application that
	// sent the person here, or "" when no application did.
	Client string
	// Account is who is logged in already (a name or subject), or "".
	Account string
}

// Error is the data of the error page. Heading and Message are shown
// through the template function text, so a text the catalogue knows is
// translated; they must hold no personal data, provider secrets or stack
// traces.
type Error struct {
	Page
	Status   int
	Heading  string
	Message  string
	RetryURL string // may be ""; the page then links to "/"
	// RetryAfter is, for a 429, the seconds after which the person may try
	// again; the page then says so instead of Message.
	RetryAfter int
	// Account is who is logged in (a name or subject), or "": the page
	// then says so and offers to log out, to log in as someone else.
	Account string
	// LogoutRD is where the logout form sends the person afterwards
	// (the login page), when Account is set.
	LogoutRD string
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
	// started the login (for a decided login: when it was decided there).
	SameDevice bool
	// ReturnURL is where a same-device answer takes the person back to:
	// the login page, which then finishes the login. "" otherwise.
	ReturnURL string
}
