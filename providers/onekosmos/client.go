package onekosmos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caddy-idv/caddy-idv/providers"
)

// DefaultCacheTTL is how long the tenant bootstrap and service keys are kept.
// The SDKs use 60 s (PHP) to 24 h (Java); ten minutes (Node) lets a key
// rotation or a moved service be noticed soon without a bootstrap per login.
const DefaultCacheTTL = 10 * time.Minute

// MaxBody bounds every response body read from a 1Kosmos service. An ID
// verification result with document and selfie images is several hundred
// KB; 8 MiB leaves room without letting a broken server exhaust memory.
const MaxBody = 8 << 20

// Client talks to one 1Kosmos tenant. It is safe for concurrent use.
type Client struct {
	// DNS is the tenant's host name, e.g. "acme.1kosmos.net".
	DNS string
	// Community is the community name, e.g. "default".
	Community string
	// LicenseKey is the licence key; it is sent only encrypted.
	LicenseKey string
	// BaseURL, when set, replaces the scheme and host of every address
	// (bootstrap and the URLs of service discovery), for fakes.
	BaseURL string
	// AppID is the caller id inside the requestid header.
	AppID string
	// Key is the caller's key pair, whose public half goes in the
	// publickey header.
	Key *KeyPair
	// HTTP is the client used for every call; its timeout bounds each call.
	HTTP *http.Client
	// Now is the clock.
	Now func() time.Time
	// CacheTTL is how long bootstrap answers are kept. Default DefaultCacheTTL.
	CacheTTL time.Duration

	mu       sync.Mutex
	tenant   *Tenant
	tenantAt time.Time
	keys     map[string]cachedKey
}

type cachedKey struct {
	key PublicKey
	at  time.Time
}

// Tenant is what the bootstrap learned about the tenant.
type Tenant struct {
	TenantID      string
	TenantTag     string
	CommunityID   string
	CommunityName string
	// CommunityKey encrypts admin-console calls (the account lookup).
	CommunityKey PublicKey
	// Services maps service names ("sessions", "docuverify", "adminconsole",
	// …) to base URLs, already rewritten by BaseURL.
	Services map[string]string
}

// Service returns the base URL of a service, without a trailing slash.
func (t *Tenant) Service(name string) (string, error) {
	u := strings.TrimRight(t.Services[name], "/")
	if u == "" {
		return "", fmt.Errorf("onekosmos: service discovery has no %q service", name)
	}
	return u, nil
}

// StatusError is a non-2xx answer of a 1Kosmos service.
type StatusError struct {
	Op     string
	Status int
	// Message is the server's message (plain-text body or the "message" of a
	// JSON body), cut to 200 bytes. It never holds personal data in the
	// documented answers, but callers show it to operators only.
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("onekosmos: %s: HTTP %d: %s", e.Op, e.Status, e.Message)
}

// Transient reports whether err is worth retrying later: transport errors,
// timeouts and 5xx answers. Everything else is an answer.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusTooManyRequests
	}
	var pe *ProtocolError
	return !errors.As(err, &pe)
}

// ProtocolError is an answer that does not follow the protocol (bad JSON, a
// missing field, a key that does not parse). It is not transient.
type ProtocolError struct {
	Op  string
	Err error
}

func (e *ProtocolError) Error() string { return fmt.Sprintf("onekosmos: %s: %v", e.Op, e.Err) }
func (e *ProtocolError) Unwrap() error { return e.Err }

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) ttl() time.Duration {
	if c.CacheTTL > 0 {
		return c.CacheTTL
	}
	return DefaultCacheTTL
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: providers.DefaultTimeout}
}

// Forget drops the cached bootstrap, so the next call fetches it again
// (after an answer that suggests a rotated key).
func (c *Client) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tenant = nil
	c.keys = nil
}

// Tenant returns the bootstrap (docs/providers/blockid.md, steps B1
// community info and B2 service discovery), from the cache while it is
// fresh.
func (c *Client) Tenant(ctx context.Context) (*Tenant, error) {
	c.mu.Lock()
	if c.tenant != nil && c.now().Sub(c.tenantAt) < c.ttl() {
		t := c.tenant
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()
	t, err := c.bootstrap(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tenant, c.tenantAt = t, c.now()
	c.mu.Unlock()
	return t, nil
}

func (c *Client) bootstrap(ctx context.Context) (*Tenant, error) {
	root, err := providers.RewriteBase("https://"+c.DNS, c.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("onekosmos: bootstrap: %w", err)
	}
	root = strings.TrimRight(root, "/")
	body, _ := json.Marshal(map[string]string{"dns": c.DNS, "communityName": c.Community})
	st, raw, err := c.do(ctx, "community info", http.MethodPost, root+"/api/r1/system/community_info/fetch", body, nil)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, statusError("community info", st, raw)
	}
	var ci struct {
		Tenant *struct {
			ID        string `json:"id"`
			TenantTag string `json:"tenanttag"`
		} `json:"tenant"`
		Community *struct {
			ID        string `json:"id"`
			Name      string `json:"name"`
			PublicKey string `json:"publicKey"`
		} `json:"community"`
	}
	if err := json.Unmarshal(raw, &ci); err != nil {
		return nil, &ProtocolError{"community info", err}
	}
	if ci.Tenant == nil || ci.Community == nil {
		return nil, &ProtocolError{"community info", errors.New("answer lacks tenant or community")}
	}
	t := &Tenant{TenantID: ci.Tenant.ID, TenantTag: ci.Tenant.TenantTag, CommunityID: ci.Community.ID, CommunityName: ci.Community.Name}
	if t.CommunityName == "" {
		t.CommunityName = c.Community
	}
	if ci.Community.PublicKey != "" {
		if t.CommunityKey, err = ParsePublicKey(ci.Community.PublicKey); err != nil {
			return nil, &ProtocolError{"community info", err}
		}
	}

	st, raw, err = c.do(ctx, "service discovery", http.MethodGet, root+"/caas/sd", nil, nil)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		return nil, statusError("service discovery", st, raw)
	}
	var sd map[string]any
	if err := json.Unmarshal(raw, &sd); err != nil {
		return nil, &ProtocolError{"service discovery", err}
	}
	t.Services = map[string]string{}
	for name, v := range sd {
		s, ok := v.(string)
		if !ok || s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			continue
		}
		if t.Services[name], err = providers.RewriteBase(s, c.BaseURL); err != nil {
			return nil, &ProtocolError{"service discovery", err}
		}
	}
	return t, nil
}

// ServiceKey returns the public key of a service (docs/providers/blockid.md,
// step B3: GET {service}/publickeys),
// from the cache while it is fresh.
func (c *Client) ServiceKey(ctx context.Context, service string) (PublicKey, error) {
	t, err := c.Tenant(ctx)
	if err != nil {
		return PublicKey{}, err
	}
	base, err := t.Service(service)
	if err != nil {
		return PublicKey{}, err
	}
	c.mu.Lock()
	if k, ok := c.keys[base]; ok && c.now().Sub(k.at) < c.ttl() {
		c.mu.Unlock()
		return k.key, nil
	}
	c.mu.Unlock()
	op := service + " public key"
	st, raw, err := c.do(ctx, op, http.MethodGet, base+"/publickeys", nil, nil)
	if err != nil {
		return PublicKey{}, err
	}
	if st != http.StatusOK {
		return PublicKey{}, statusError(op, st, raw)
	}
	var pk struct {
		PublicKey string `json:"publicKey"`
	}
	if err := json.Unmarshal(raw, &pk); err != nil {
		return PublicKey{}, &ProtocolError{op, err}
	}
	if pk.PublicKey == "" {
		return PublicKey{}, &ProtocolError{op, errors.New("no public key found")}
	}
	key, err := ParsePublicKey(pk.PublicKey)
	if err != nil {
		return PublicKey{}, &ProtocolError{op, err}
	}
	c.mu.Lock()
	if c.keys == nil {
		c.keys = map[string]cachedKey{}
	}
	c.keys[base] = cachedKey{key, c.now()}
	c.mu.Unlock()
	return key, nil
}

// Call is an authenticated request to a 1Kosmos service.
type Call struct {
	Op     string // names the step in errors, e.g. "create session"
	Method string
	URL    string
	// Peer is the service key the licence headers are encrypted to.
	Peer PublicKey
	// Body is sent as JSON when not nil.
	Body any
	// Header adds headers (addsessioninfo, X-TenantTag).
	Header map[string]string
}

// Do sends an authenticated call with the publickey, licensekey and
// requestid headers and returns the status and the body (at most MaxBody
// bytes). Transport errors are returned as errors, and so are a body over
// MaxBody and a 2xx body that is not UTF-8 (as *ProtocolError); every HTTP
// status is an answer for the caller to judge.
func (c *Client) Do(ctx context.Context, call Call) (int, []byte, error) {
	if c.Key == nil || call.Peer.IsZero() {
		return 0, nil, fmt.Errorf("onekosmos: %s: no key", call.Op)
	}
	shared := c.Key.SharedKey(call.Peer)
	lic, err := Encrypt(shared, []byte(c.LicenseKey))
	if err != nil {
		return 0, nil, err
	}
	rid, err := json.Marshal(RequestID{TS: c.now().Unix(), UUID: NewUUID(), AppID: c.AppID})
	if err != nil {
		return 0, nil, err
	}
	encRID, err := Encrypt(shared, rid)
	if err != nil {
		return 0, nil, err
	}
	h := map[string]string{
		"publickey":  c.Key.Public().String(),
		"licensekey": lic,
		"requestid":  encRID,
	}
	for k, v := range call.Header {
		h[k] = v
	}
	var body []byte
	if call.Body != nil {
		if body, err = json.Marshal(call.Body); err != nil {
			return 0, nil, fmt.Errorf("onekosmos: %s: %w", call.Op, err)
		}
	}
	return c.do(ctx, call.Op, call.Method, call.URL, body, h)
}

// RequestID is the plaintext of the requestid header.
type RequestID struct {
	TS    int64  `json:"ts"`
	UUID  string `json:"uuid"`
	AppID string `json:"appid"`
}

func (c *Client) do(ctx context.Context, op, method, u string, body []byte, h map[string]string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("onekosmos: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	// Every SDK sends this non-standard header; servers ignore it.
	req.Header.Set("charset", "utf-8")
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("onekosmos: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > MaxBody {
		// Announced too large: refused before reading a byte of it.
		return 0, nil, &ProtocolError{op, fmt.Errorf("answer of %d bytes is larger than %d", resp.ContentLength, MaxBody)}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return 0, nil, fmt.Errorf("onekosmos: %s: read answer: %w", op, err)
	}
	if len(raw) > MaxBody {
		return 0, nil, &ProtocolError{op, fmt.Errorf("answer larger than %d bytes", MaxBody)}
	}
	// JSON is UTF-8 (RFC 8259). encoding/json would quietly turn bad bytes
	// into U+FFFD and carry on with, say, a mangled service URL. Error
	// bodies are only quoted, and Message makes them valid.
	if resp.StatusCode/100 == 2 && !utf8.Valid(raw) {
		return 0, nil, &ProtocolError{op, errors.New("answer is not valid UTF-8")}
	}
	return resp.StatusCode, raw, nil
}

func statusError(op string, status int, body []byte) error {
	return &StatusError{Op: op, Status: status, Message: Message(body)}
}

// Message extracts the server's message from an error body: the "message"
// of a JSON object, or the plain text (1Kosmos sends both), cut to 200 bytes.
func Message(body []byte) string {
	var m struct {
		Message any `json:"message"`
	}
	s := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &m) == nil {
		if str, ok := m.Message.(string); ok {
			s = str
		}
	} else {
		var str string
		if json.Unmarshal(body, &str) == nil {
			s = str
		}
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "?")
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Get sends an unauthenticated GET (the session document,
// docs/providers/blockid.md, step B5) and returns
// the status and the bounded body.
func (c *Client) Get(ctx context.Context, op, u string) (int, []byte, error) {
	return c.do(ctx, op, http.MethodGet, u, nil, nil)
}

// ValidSessionID reports whether id is safe to put into a URL path and a
// store key: 1 to 128 characters of [A-Za-z0-9_-]. Every 1Kosmos session id
// seen is a UUID.
func ValidSessionID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
