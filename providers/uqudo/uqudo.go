package uqudo

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/jwsverify"
	"github.com/caddy-idv/caddy-idv/store"
)

// tokenEarlyRefresh renews the access token this long before uqudo says it
// expires, so that no call goes out with a token that dies on the way.
const tokenEarlyRefresh = 2 * time.Minute

// Response size bounds: session answers are a few hundred bytes, results a
// few KiB (jwsverify refuses more than 256 KiB anyway).
const (
	maxSessionSize = 16 << 10
	maxResultSize  = 256 << 10
)

// sessionIDPattern is the only form of session id the Info API accepts
// (docs/providers/uqudo.md, step Q5); anything else must not reach a URL
// path.
var sessionIDPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Open implements providers.Config. It does not contact uqudo: a token is
// fetched on the first login.
func (c *Config) Open(env providers.Env) (providers.Provider, error) {
	if err := c.ValidateCommon(); err != nil {
		return nil, fmt.Errorf("uqudo: %w", err)
	}
	if env.Store == nil || env.Now == nil {
		return nil, errors.New("uqudo: incomplete environment")
	}
	repl := caddy.NewReplacer()
	clientID := repl.ReplaceKnown(c.ClientID, "")
	if clientID == "" {
		return nil, errors.New("uqudo: missing option client_id")
	}
	secret, err := providers.ResolveSecret("client_secret", c.ClientSecret)
	if err != nil {
		return nil, err // the module names the provider
	}
	data := c.Data
	if data == "" {
		data = base64.StdEncoding.EncodeToString([]byte(defaultData))
	}
	sc, err := decodeData(data)
	if err != nil {
		return nil, fmt.Errorf("uqudo: %w", err)
	}
	ep, err := c.resolve()
	if err != nil {
		return nil, fmt.Errorf("uqudo: %w", err)
	}
	lifetime := c.LifetimeOr(DefaultLifetime)
	if lifetime > maxLifetime {
		return nil, fmt.Errorf("uqudo: lifetime %s: at most %s", lifetime, maxLifetime)
	}
	issuer := c.Issuer
	if issuer == "" {
		issuer = DefaultIssuer
	}
	env = env.WithDefaults(c.CallTimeout())
	client, logger := env.HTTP, env.Logger
	allowed := c.Claims
	if len(allowed) == 0 {
		allowed = defaultClaims
	}
	p := &provider{
		env: env, http: client, logger: logger, ep: ep, data: data, cfg: sc,
		lifetime: lifetime, qrText: c.QR == "text", claims: allowed,
		oauth: &clientcredentials.Config{
			ClientID: clientID, ClientSecret: secret, TokenURL: ep.token,
			// docs/providers/uqudo.md, step Q1: credentials as form fields,
			// not HTTP Basic.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	p.keys = &remoteKeys{url: ep.jwks, client: client, now: env.Now}
	p.validator = &jwsverify.Validator{
		Algorithm: jwt.SigningMethodRS256.Alg(),
		Keys:      p.keys,
		Issuer:    issuer,
		Audience:  clientID,
		Store:     env.Store,
		Namespace: Kind,
		Now:       env.Now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.CallTimeout())
	defer cancel()
	subKey, err := providers.LoadSecret(ctx, env.Store, providers.SubjectSecretKey)
	if err != nil {
		return nil, fmt.Errorf("uqudo: %w", err)
	}
	p.subKey = subKey
	p.resetToken()
	return p, nil
}

type provider struct {
	env       providers.Env
	http      *http.Client
	logger    *zap.Logger
	ep        endpoints
	data      string
	cfg       *sessionConfig
	lifetime  time.Duration
	qrText    bool
	claims    []string
	oauth     *clientcredentials.Config
	keys      *remoteKeys
	validator *jwsverify.Validator
	subKey    []byte

	mu     sync.Mutex
	tokens oauth2.TokenSource
}

// Info implements providers.Provider.
func (p *provider) Info() providers.Info {
	return providers.Info{Kind: Kind, Label: "uqudo", Flow: "qr", FreeStart: true, DefaultClaims: defaultClaims}
}

// PollInterval implements providers.Poller: each poll is a round trip to
// uqudo, and the person needs a minute or more to scan a document.
func (p *provider) PollInterval() time.Duration { return 3 * time.Second }

// resetToken drops the cached access token. The token source keeps the
// context it was made with for later fetches, so it gets one that carries
// our HTTP client and is never cancelled; env.HTTP bounds each call.
func (p *provider) resetToken() {
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, p.http)
	ts := oauth2.ReuseTokenSourceWithExpiry(nil, p.oauth.TokenSource(ctx), tokenEarlyRefresh)
	p.mu.Lock()
	p.tokens = ts
	p.mu.Unlock()
}

func (p *provider) token() (string, error) {
	p.mu.Lock()
	ts := p.tokens
	p.mu.Unlock()
	t, err := ts.Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			// The error text may quote the response body; the status is enough.
			return "", fmt.Errorf("token: status %d", re.Response.StatusCode)
		}
		return "", fmt.Errorf("token: %w", err)
	}
	if !b64token(t.AccessToken) {
		// Not a bearer token (RFC 6750 §2.1 b64token): never sent on.
		return "", errors.New("token: the access token is not a bearer token's characters")
	}
	return t.AccessToken, nil
}

// b64token reports whether s may be sent as a bearer token: one or more
// of A-Z a-z 0-9 - . _ ~ + /, then any '=' (RFC 6750 §2.1).
func b64token(s string) bool {
	t := strings.TrimRight(s, "=")
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
	}
	return true
}

// state is what a login keeps in the sealed pending cookie: the uqudo
// session id (the result's jti) and the qrCodeText that deletes the session.
type state struct {
	Session string `json:"s"`
	QR      string `json:"q"`
}

// createAnswer is the answer of docs/providers/uqudo.md, step Q2.
type createAnswer struct {
	SessionID   string `json:"sessionId"`
	QRCodeText  string `json:"qrCodeText"`
	DynamicLink string `json:"qrCodeTextWithDynamicLink"`
}

// parseCreate decodes and checks a session-create answer.
func parseCreate(raw []byte) (*createAnswer, error) {
	var a createAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if !sessionIDPattern.MatchString(a.SessionID) {
		return nil, errors.New("sessionId is not a UUID")
	}
	if a.QRCodeText == "" || len(a.QRCodeText) > 2048 {
		return nil, errors.New("no usable qrCodeText")
	}
	if a.DynamicLink != "" {
		u, err := url.Parse(a.DynamicLink)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			// A link that is not http(s) is dropped rather than shown.
			a.DynamicLink = ""
		}
	}
	return &a, nil
}

// Start implements providers.Provider: it creates a QR session
// (docs/providers/uqudo.md, step Q2).
func (p *provider) Start(ctx context.Context, req providers.StartRequest) (*providers.Challenge, error) {
	body, _ := json.Marshal(map[string]string{"data": p.data})
	resp, err := p.call(ctx, http.MethodPost, p.ep.session, body)
	if err != nil {
		return nil, fmt.Errorf("uqudo: create session: %w", err)
	}
	defer drain(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("uqudo: create session: status %d", resp.StatusCode)
	}
	raw, err := readLimited(resp.Body, maxSessionSize)
	if err != nil {
		return nil, fmt.Errorf("uqudo: create session: %w", err)
	}
	a, err := parseCreate(raw)
	if err != nil {
		return nil, fmt.Errorf("uqudo: create session: %w", err)
	}
	st, _ := json.Marshal(state{Session: a.SessionID, QR: a.QRCodeText})
	ch := &providers.Challenge{
		QRText:    a.QRCodeText,
		DeepLink:  a.DynamicLink,
		ExpiresAt: p.env.Now().Add(p.lifetime),
		State:     st,
	}
	if !p.qrText && a.DynamicLink != "" {
		ch.QRText = a.DynamicLink
	}
	return ch, nil
}

func decodeState(raw []byte) (*state, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil || !sessionIDPattern.MatchString(st.Session) || st.QR == "" {
		return nil, errors.New("bad login state")
	}
	return &st, nil
}

// Messages shown to the person. They name no data of the result.
const (
	msgExpired  = "The identity check took too long. Start again."
	msgRejected = "uqudo's answer could not be verified. Start again."
	msgRefused  = "uqudo refused the request. Try again later or use another login method."
	msgMismatch = "The identity check did not meet this site's requirements."
)

// Poll implements providers.Provider: it reads the result from the Info API
// (docs/providers/uqudo.md, step Q5); 404 means the person has not finished.
func (p *provider) Poll(ctx context.Context, login providers.Login) (*providers.Result, error) {
	st, err := decodeState(login.State)
	if err != nil {
		p.logger.Error("uqudo: poll: login state unreadable", zap.String("login", login.ID))
		return &providers.Result{State: providers.Failed, Message: msgRejected}, nil
	}
	resp, err := p.call(ctx, http.MethodGet, p.ep.info+"/"+st.Session, nil)
	if err != nil {
		return nil, fmt.Errorf("uqudo: poll: %w", err)
	}
	defer drain(resp.Body)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		if !p.env.Now().Before(login.ExpiresAt) {
			p.cleanup(ctx, st)
			return &providers.Result{State: providers.Expired, Message: msgExpired}, nil
		}
		return &providers.Result{State: providers.Pending}, nil
	case resp.StatusCode == http.StatusUnauthorized:
		// uqudo may end a token before its expires_in; fetch a new one
		// next time and keep the login pending.
		p.resetToken()
		return nil, errors.New("uqudo: poll: access token refused (401)")
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("uqudo: poll: status %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		p.logger.Error("uqudo: poll: Info API refused the request", zap.String("login", login.ID), zap.Int("status", resp.StatusCode))
		return &providers.Result{State: providers.Failed, Message: msgRefused}, nil
	}
	raw, err := readLimited(resp.Body, maxResultSize)
	if err != nil {
		return nil, fmt.Errorf("uqudo: poll: read result: %w", err)
	}
	compact := strings.TrimSpace(string(raw))
	// A JWKS that cannot be fetched is uqudo being unreachable, not a bad
	// result: try again on the next poll.
	if kid := headerKid(compact); kid != "" {
		if _, err := p.keys.Key(ctx, kid); errors.Is(err, errFetch) || errors.Is(err, errThrottled) {
			return nil, fmt.Errorf("uqudo: poll: %w", err)
		}
	}
	claims, err := p.validator.Validate(ctx, compact, st.Session)
	if err != nil {
		if errors.Is(err, store.ErrUnavailable) || errors.Is(err, errFetch) {
			return nil, fmt.Errorf("uqudo: poll: %w", err)
		}
		if errors.Is(err, jwsverify.ErrReplay) {
			// Another poller of this login consumed the result first and
			// records the outcome; deleting the result here could only
			// race it.
			return nil, providers.ErrConsumed
		}
		// The result is deleted at uqudo either way: a bad one must not be
		// served again.
		p.cleanup(ctx, st)
		if errors.Is(err, jwsverify.ErrExpired) {
			return nil, &providers.Reject{State: providers.Expired, Message: msgExpired, Reason: reason(err)}
		}
		return nil, &providers.Reject{State: providers.Failed, Message: msgRejected, Reason: reason(err)}
	}
	p.cleanup(ctx, st)
	res, why := p.identity(claims)
	if why != "" {
		return nil, &providers.Reject{State: providers.Failed, Message: msgMismatch, Reason: "result does not meet the configuration: " + why}
	}
	return res, nil
}

// reason names a validation failure for the operator log without quoting
// anything from the token.
func reason(err error) string {
	for _, e := range []error{jwsverify.ErrMalformed, jwsverify.ErrAlgorithm, jwsverify.ErrKey, jwsverify.ErrSignature,
		jwsverify.ErrExpired, jwsverify.ErrSession, jwsverify.ErrReplay, jwsverify.ErrClaims} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "invalid result"
}

// headerKid reads the kid of a compact JWS without trusting it.
func headerKid(compact string) string {
	head, _, ok := strings.Cut(compact, ".")
	if !ok || len(head) > 4096 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return h.Kid
}

// Cancel implements providers.Canceler: when a login expires, its QR
// session (whose text yields an SDK token to whoever holds it) and any
// cached result are deleted at uqudo.
func (p *provider) Cancel(ctx context.Context, login providers.Login) error {
	st, err := decodeState(login.State)
	if err != nil {
		return fmt.Errorf("uqudo: cancel: %w", err)
	}
	return p.cleanup(ctx, st)
}

// cleanup deletes the cached result and the QR session
// (docs/providers/uqudo.md, steps Q6 and Q4).
// Failures are logged and returned; they never change a login's outcome.
func (p *provider) cleanup(ctx context.Context, st *state) error {
	var errs []error
	for _, target := range []struct{ what, url string }{
		{"result", p.ep.info + "/" + st.Session},
		{"session", p.ep.session + "/" + url.PathEscape(st.QR)},
	} {
		resp, err := p.call(ctx, http.MethodDelete, target.url, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("uqudo: delete %s: %w", target.what, err))
			continue
		}
		drain(resp.Body)
		if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
			errs = append(errs, fmt.Errorf("uqudo: delete %s: status %d", target.what, resp.StatusCode))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		p.logger.Warn("uqudo: cleanup at uqudo failed", zap.Error(err))
	}
	return err
}

// call sends one authenticated request. Transport errors never carry the
// URL, which for a session deletion holds the qrCodeText.
func (p *provider) call(ctx context.Context, method, target string, body []byte) (*http.Response, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, errors.New("bad request address")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := p.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("%s: %w", method, ue.Err)
		}
		return nil, err
	}
	return resp, nil
}

// readLimited reads at most max bytes and fails on more.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > max {
		return nil, fmt.Errorf("answer larger than %d bytes", max)
	}
	return raw, nil
}

var (
	_ providers.Config      = (*Config)(nil)
	_ caddyfile.Unmarshaler = (*Config)(nil)
	_ providers.Provider    = (*provider)(nil)
	_ providers.Poller      = (*provider)(nil)
	_ providers.Canceler    = (*provider)(nil)
)
