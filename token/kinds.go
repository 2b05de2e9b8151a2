package token

// The kinds of token this package signs. Each kind carries its own JWS "typ"
// header, which is covered by the signature, and each has exactly one
// verifier that insists on it, so that a token handed out for one purpose is
// never accepted for another: an OAuth access token given to a relying party
// cannot be replayed as a browser session, a session cookie cannot be passed
// off as an id_token_hint, and so on.
//
//	kind          typ                 issued by            accepted by
//	session       idv-session+jwt     Sessions.Issue       Sessions.Verify (gate, /me, OIDC authorize and logout)
//	access token  at+jwt (RFC 9068)   Service.IssueAccess  Service.VerifyAccess (OIDC userinfo, introspection)
//	ID token      JWT                 Service.IssueID      Service.VerifyIDTokenHint (OIDC end_session)
//	logout token  logout+jwt          Service.IssueLogout  none here: relying parties (Back-Channel Logout 1.0)
//
// Session and access tokens are always ES256. ID and logout tokens are
// signed with the client's id_token_signed_response_alg, RS256 by default
// (OpenID Connect Core §15.1, Registration §2) or ES256.
//
// Refresh tokens and authorization codes are opaque random strings kept in
// the store, never JWTs, so no verifier here can mistake them for one.
const (
	TypSession = "idv-session+jwt"
	TypAccess  = "at+jwt"
	// TypID is the typ of OpenID Connect ID tokens. "JWT" is what relying
	// parties expect there; session and access tokens never carry it.
	TypID = "JWT"
	// TypLogout is the typ of back-channel logout tokens (OpenID Connect
	// Back-Channel Logout 1.0 §2.4).
	TypLogout = "logout+jwt"
)
