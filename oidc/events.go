package oidc

// Event is something the provider did, for the idv handler's metrics and
// audit log (Options.Events). It never carries a token, a code, a secret
// or a claim: only the client, the subject and session id as that client
// sees them (pairwise where configured), and OAuth error codes.
type Event struct {
	Kind EventKind
	// Endpoint is "authorize", "token", "revocation", "introspection".
	Endpoint string
	// ClientID is the client's id; for a failed client authentication,
	// what the request claimed, cut to 64 bytes.
	ClientID string
	// GrantType is the token request's grant type (EventTokenIssued).
	GrantType string
	// Error is the OAuth error code (EventError).
	Error string
	// Subject and SID are as the client sees them.
	Subject string
	SID     string
}

// EventKind names an Event.
type EventKind string

// Kinds of Event.
const (
	EventCodeIssued       EventKind = "code_issued"
	EventTokenIssued      EventKind = "token_issued"
	EventRefreshReused    EventKind = "refresh_reused"
	EventClientAuthFailed EventKind = "client_auth_failed"
	// EventSessionEnded is a session ended by an id_token_hint at the
	// end_session endpoint, without the browser's own session in hand.
	EventSessionEnded EventKind = "session_ended"
	// EventRateLimited is a client authentication refused, before its
	// secret is looked at, for too many failures.
	EventRateLimited EventKind = "rate_limited"
	// EventError is an error answer of an endpoint.
	EventError EventKind = "error"
)

func (p *Provider) event(e Event) {
	if p.events != nil {
		p.events(e)
	}
}
