// Package fakeuqudo is an in-memory fake of uqudo's QR onboarding service
// (docs/providers/uqudo.md, "The fake"): the OAuth2 token endpoint,
// QR sessions, the phone's session read, the Info API with RS256 result
// JWSs, deletion, images and the JWKS, on one http.Handler so that a single
// base_url stands in for all of uqudo's hosts.
//
// Tests drive the phone with Complete and inject faults with Fail (transport
// faults and the hostile answers of internal/hostile) and the fields of
// Result. It does not implement uqudo's web socket (docs/providers/uqudo.md,
// step Q3): the provider polls the Info API instead.
package fakeuqudo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/internal/faults"
)

// Options configures a fake. Zero values take the defaults shown.
type Options struct {
	ClientID     string        // default "fake-client"
	ClientSecret string        // default "fake-secret"
	Issuer       string        // iss of results; default "https://id.uqudo.io"
	TokenTTL     time.Duration // expires_in of access tokens; default 1800s
	SessionTTL   time.Duration // life of a QR session; default 30m
	ResultTTL    time.Duration // exp − iat of results; default 7200s
	// KeepResults makes DELETE of a result answer 204 without deleting it,
	// so that the same JWS is delivered twice (a replay).
	KeepResults bool
	// Now is the fake's clock; default time.Now.
	Now func() time.Time
	// Key is the result signing key; default a fresh RSA 2048 key. Tests
	// that make many fakes share one, as making it is slow.
	Key *rsa.PrivateKey
}

// Person is whose document the phone reads.
type Person struct {
	GivenName, FamilyName string
	DateOfBirth           string // MRZ YYMMDD
	DateOfExpiry          string // MRZ YYMMDD
	Sex                   string // M or F
	Nationality, Issuer   string // ISO 3166 alpha-3
	DocumentNumber        string
	IdentityNumber        string // national ID number, for ID cards
}

// DefaultPerson is the person of the documented example
// (docs/providers/uqudo.md, "The result payload").
var DefaultPerson = Person{
	GivenName: "MARIO", FamilyName: "CASOLA", DateOfBirth: "800825", DateOfExpiry: "320315",
	Sex: "M", Nationality: "ITA", Issuer: "ITA", DocumentNumber: "YA1234567",
}

// Result describes the result the phone produces. The zero value is a
// valid passport scan with chip read and face match of DefaultPerson; the
// other fields are the negative scenarios of docs/providers/uqudo.md, "The
// fake".
type Result struct {
	Person       *Person
	DocumentType string // default "PASSPORT"
	NoChip       bool   // OCR only, no reading section
	FaceMismatch bool   // face.match false

	JTI        string        // default: the session id
	Audience   string        // default: the client id
	Issuer     string        // default: Options.Issuer
	IssuedAt   time.Time     // default: now
	Lifetime   time.Duration // default: Options.ResultTTL; negative for an expired JWS
	Alg        string        // "RS256" (default), "none" or "HS256"
	UnknownKid bool          // sign with a new key not yet in the JWKS (see PublishKeys)
	WrongKey   bool          // sign with a new key but claim the published kid
	Tamper     bool          // change the payload after signing
	Raw        string        // serve this body instead of a JWS (malformed)
}

// Fault makes requests to one route misbehave (see internal/faults).
type Fault = faults.Fault

// Routes that Fail and Count name.
const (
	RouteToken         = "token"
	RouteCreate        = "create"
	RoutePhone         = "phone"
	RouteDeleteSession = "delete-session"
	RouteInfo          = "info"
	RouteDeleteInfo    = "delete-info"
	RouteImage         = "image"
	RouteJWKS          = "jwks"
)

// Routes lists the routes, for tools that take a route's name.
var Routes = []string{RouteToken, RouteCreate, RoutePhone, RouteDeleteSession, RouteInfo, RouteDeleteInfo, RouteImage, RouteJWKS}

// Server is the fake. Its zero value is not usable; call New.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu        sync.Mutex
	key       *rsa.PrivateKey
	kid       string
	published map[string]*rsa.PublicKey
	pending   map[string]*rsa.PublicKey // keys used by UnknownKid, published by PublishKeys
	tokens    map[string]time.Time
	sessions  map[string]*session
	byQR      map[string]*session
	results   map[string]string
	images    map[string]time.Time
	faults    faults.Table
	last      *session
}

type session struct {
	id, qr, data, sdkToken string
	created                time.Time
	deleted                bool
}

// New returns a fake with a fresh RSA signing key.
func New(opts Options) (*Server, error) {
	if opts.ClientID == "" {
		opts.ClientID = "fake-client"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "fake-secret"
	}
	if opts.Issuer == "" {
		opts.Issuer = "https://id.uqudo.io"
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = 1800 * time.Second
	}
	if opts.SessionTTL == 0 {
		opts.SessionTTL = 30 * time.Minute
	}
	if opts.ResultTTL == 0 {
		opts.ResultTTL = 7200 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	key := opts.Key
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("fakeuqudo: key: %w", err)
		}
	}
	s := &Server{
		opts: opts, key: key, kid: kidOf(&key.PublicKey),
		published: map[string]*rsa.PublicKey{}, pending: map[string]*rsa.PublicKey{},
		tokens: map[string]time.Time{}, sessions: map[string]*session{}, byQR: map[string]*session{},
		results: map[string]string{}, images: map[string]time.Time{},
	}
	s.published[s.kid] = &key.PublicKey
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/oauth/token", s.route(RouteToken, s.token))
	mux.HandleFunc("POST /api/v1/session", s.route(RouteCreate, s.create))
	mux.HandleFunc("GET /api/v1/session", s.route(RoutePhone, s.phone))
	mux.HandleFunc("GET /api/v1/session/{qr}", s.route(RoutePhone, s.phone))
	mux.HandleFunc("DELETE /api/v1/session/{qr}", s.route(RouteDeleteSession, s.deleteSession))
	mux.HandleFunc("GET /api/v1/info", s.route(RouteInfo, s.info))
	mux.HandleFunc("GET /api/v1/info/{id}", s.route(RouteInfo, s.info))
	mux.HandleFunc("DELETE /api/v1/info/{id}", s.route(RouteDeleteInfo, s.deleteInfo))
	mux.HandleFunc("GET /api/v1/info/img/{id}", s.route(RouteImage, s.image))
	mux.HandleFunc("GET /api/.well-known/jwks.json", s.route(RouteJWKS, s.jwks))
	mux.HandleFunc("GET /fake/phone/{qr}", s.phonePage)
	mux.HandleFunc("POST /fake/phone/{qr}/complete", s.phoneComplete)
	s.mux = mux
	return s, nil
}

// ClientID and ClientSecret are the credentials the fake accepts.
func (s *Server) ClientID() string     { return s.opts.ClientID }
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Fail injects f into route until it has applied f.Times times.
func (s *Server) Fail(route string, f Fault) {
	s.faults.Inject(route, f)
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faults.Clear()
}

// Count reports how many requests route has received.
func (s *Server) Count(route string) int {
	return s.faults.Count(route)
}

// LastSession returns the id and qrCodeText of the newest QR session.
func (s *Server) LastSession() (id, qrCodeText string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return "", ""
	}
	return s.last.id, s.last.qr
}

// SessionAlive reports whether a QR session exists and is neither deleted
// nor past its 30 minutes.
func (s *Server) SessionAlive(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[id]
	return ss != nil && s.alive(ss)
}

// HasResult reports whether a result is cached for the session id.
func (s *Server) HasResult(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.results[id]
	return ok
}

// ResultJWS returns the cached result of a session, for replaying it.
func (s *Server) ResultJWS(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results[id]
}

// SetResult makes the Info API serve body for session id (a replayed or
// foreign JWS).
func (s *Server) SetResult(id, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results[id] = body
}

// PublishKeys adds every key used by a Result with UnknownKid to the JWKS,
// as a key rotation at uqudo would.
func (s *Server) PublishKeys() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.pending {
		s.published[k] = v
	}
	s.pending = map[string]*rsa.PublicKey{}
}

// Complete makes the phone finish the session id with result r: the Info
// API then serves the signed result.
func (s *Server) Complete(id string, r Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[id]
	if ss == nil || !s.alive(ss) {
		return errors.New("fakeuqudo: no live session " + id)
	}
	body, err := s.sign(ss, r)
	if err != nil {
		return err
	}
	s.results[id] = body
	return nil
}

func (s *Server) alive(ss *session) bool {
	return !ss.deleted && s.opts.Now().Before(ss.created.Add(s.opts.SessionTTL))
}

// route counts requests and applies faults before h.
func (s *Server) route(name string, h http.HandlerFunc) http.HandlerFunc {
	return s.faults.Route(name, h)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func uuid4() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// token is docs/providers/uqudo.md, step Q1: credentials as form fields only.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	if r.PostForm.Get("client_id") != s.opts.ClientID || r.PostForm.Get("client_secret") != s.opts.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	// JWS-looking, as uqudo's are; its content means nothing to clients.
	tok := random(12) + "." + random(48) + "." + random(32)
	s.mu.Lock()
	s.tokens[tok] = s.opts.Now().Add(s.opts.TokenTTL)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "bearer", "expires_in": int(s.opts.TokenTTL / time.Second),
		"scope": "KYC_SCAN_API KYC_INFO_SDK KYC_SCAN_SDK", "jti": uuid4(),
	})
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, known := s.tokens[tok]
	s.mu.Unlock()
	if !ok || !known || !s.opts.Now().Before(exp) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
		return false
	}
	return true
}

// create is docs/providers/uqudo.md, step Q2.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	var body struct {
		Data *string `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil || body.Data == nil || *body.Data == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "data is required"})
		return
	}
	ss := &session{id: uuid4(), qr: random(32), data: *body.Data, sdkToken: random(32), created: s.opts.Now()}
	s.mu.Lock()
	s.sessions[ss.id], s.byQR[ss.qr], s.last = ss, ss, ss
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{
		"sessionId": ss.id, "qrCodeText": ss.qr,
		// The real one is an https dynamic link; this one opens the fake
		// phone page on the fake itself, for the local demo.
		"qrCodeTextWithDynamicLink": "http://" + r.Host + "/fake/phone/" + ss.qr,
	})
}

func (s *Server) liveByQR(qr string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byQR[qr]
	if ss == nil || !s.alive(ss) {
		return nil
	}
	return ss
}

// phone is docs/providers/uqudo.md, step Q4: what the reader app gets for a
// scanned QR code.
func (s *Server) phone(w http.ResponseWriter, r *http.Request) {
	qr := r.PathValue("qr")
	if qr == "" {
		qr = r.Header.Get("Authorization")
	}
	ss := s.liveByQR(qr)
	if ss == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Session not found"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"sessionId": ss.id, "token": ss.sdkToken, "data": ss.data})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	if ss := s.byQR[r.PathValue("qr")]; ss != nil {
		ss.deleted = true
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// info is docs/providers/uqudo.md, step Q5.
func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	id := r.PathValue("id")
	if id == "" {
		id = r.Header.Get("UQ-Session-ID")
	}
	if !uuidPattern.MatchString(id) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Invalid session id"})
		return
	}
	s.mu.Lock()
	body, ok := s.results[id]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Resource not found or expired"})
		return
	}
	w.Header().Set("Content-Type", "application/jwt")
	_, _ = io.WriteString(w, body)
}

// deleteInfo is docs/providers/uqudo.md, step Q6: 204 for any id.
func (s *Server) deleteInfo(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	if !s.opts.KeepResults {
		s.mu.Lock()
		delete(s.results, r.PathValue("id"))
		s.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

// jpeg is the smallest thing with JPEG's start and end markers.
var jpeg = []byte{0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xff, 0xd9}

func (s *Server) image(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	s.mu.Lock()
	exp, ok := s.images[r.PathValue("id")]
	s.mu.Unlock()
	if !ok || !s.opts.Now().Before(exp) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Resource not found or expired"})
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(jpeg)
}

func (s *Server) jwks(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	keys := []map[string]string{}
	for kid, k := range s.published {
		keys = append(keys, map[string]string{
			"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

func kidOf(k *rsa.PublicKey) string {
	sum := sha256.Sum256(k.N.Bytes())
	return hex.EncodeToString(sum[:16])
}

// sign builds the result (docs/providers/uqudo.md, "The result payload")
// for ss; s.mu is held.
func (s *Server) sign(ss *session, r Result) (string, error) {
	if r.Raw != "" {
		return r.Raw, nil
	}
	p := DefaultPerson
	if r.Person != nil {
		p = *r.Person
	}
	now := s.opts.Now()
	iat := r.IssuedAt
	if iat.IsZero() {
		iat = now
	}
	life := r.Lifetime
	if life == 0 {
		life = s.opts.ResultTTL
	}
	docType := r.DocumentType
	if docType == "" {
		docType = "PASSPORT"
	}
	faceID, frontID := uuid4(), uuid4()
	s.images[faceID], s.images[frontID] = iat.Add(life), iat.Add(life)
	front := map[string]any{
		"documentCode": "P<", "primaryId": p.FamilyName, "secondaryId": p.GivenName,
		"dateOfBirth": p.DateOfBirth, "dateOfExpiry": p.DateOfExpiry, "sex": p.Sex,
		"nationality": p.Nationality, "issuer": p.Issuer, "documentNumber": p.DocumentNumber,
		"mrzVerified": true,
	}
	if p.IdentityNumber != "" {
		front["identityNumber"] = p.IdentityNumber
	}
	doc := map[string]any{
		"documentType": docType,
		"scan":         map[string]any{"front": front, "back": map[string]any{}, "faceImageId": faceID, "frontImageId": frontID},
		"face":         map[string]any{"auditTrailImageId": faceID, "matchLevel": 4, "match": !r.FaceMismatch},
	}
	if !r.NoChip {
		doc["reading"] = map[string]any{"data": map[string]any{"mrz": map[string]any{
			"primaryIdentifier": p.FamilyName, "secondaryIdentifier": p.GivenName, "dateOfBirth": p.DateOfBirth,
			"gender": map[string]string{"M": "MALE", "F": "FEMALE"}[p.Sex], "nationality": p.Nationality,
			"documentNumber": p.DocumentNumber, "issuingState": p.Issuer, "dateOfExpiry": p.DateOfExpiry,
		}}}
	}
	claims := jwt.MapClaims{
		"aud": or(r.Audience, s.opts.ClientID), "iss": or(r.Issuer, s.opts.Issuer),
		"iat": iat.Unix(), "exp": iat.Add(life).Unix(), "jti": or(r.JTI, ss.id),
		"data": map[string]any{
			"documents":     []any{doc},
			"verifications": []any{map[string]any{"idScreenDetection": map[string]int{"score": 0}}},
			"source":        map[string]string{"sdkType": "FAKE", "deviceModel": "fake-phone"},
		},
	}
	var out string
	var err error
	switch r.Alg {
	case "none":
		out, err = jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	case "HS256":
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		t.Header["kid"] = s.kid
		out, err = t.SignedString([]byte(s.opts.ClientSecret))
	default:
		key, kid := s.key, s.kid
		if r.UnknownKid || r.WrongKey {
			if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				return "", err
			}
			if r.UnknownKid {
				kid = kidOf(&key.PublicKey)
				s.pending[kid] = &key.PublicKey
			}
		}
		t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		t.Header["kid"] = kid
		delete(t.Header, "typ") // uqudo sends no typ (docs/providers/uqudo.md, "Result validation")
		out, err = t.SignedString(key)
	}
	if err != nil {
		return "", fmt.Errorf("fakeuqudo: sign: %w", err)
	}
	if r.Tamper {
		parts := strings.Split(out, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		raw = []byte(strings.Replace(string(raw), p.FamilyName, "MALLORY", 1))
		parts[1] = base64.RawURLEncoding.EncodeToString(raw)
		out = strings.Join(parts, ".")
	}
	return out, nil
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// phonePage is the local demo's stand-in for uqudo's app: the dynamic link
// opens it, and its button completes the session with DefaultPerson.
func (s *Server) phonePage(w http.ResponseWriter, r *http.Request) {
	qr := r.PathValue("qr")
	if s.liveByQR(qr) == nil {
		http.Error(w, "This session is unknown or over.", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><title>fake uqudo app</title><h1>fake uqudo app</h1>
<p>Pretend to scan a passport of %s %s and take a selfie.</p>
<form method="post" action="/fake/phone/%s/complete"><button>Scan document and face</button></form>`,
		html.EscapeString(DefaultPerson.GivenName), html.EscapeString(DefaultPerson.FamilyName), html.EscapeString(qr))
}

func (s *Server) phoneComplete(w http.ResponseWriter, r *http.Request) {
	ss := s.liveByQR(r.PathValue("qr"))
	if ss == nil {
		http.Error(w, "This session is unknown or over.", http.StatusNotFound)
		return
	}
	if err := s.Complete(ss.id, Result{}); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, `<!doctype html><title>fake uqudo app</title><p>Done. Go back to the login page.</p>`)
}
