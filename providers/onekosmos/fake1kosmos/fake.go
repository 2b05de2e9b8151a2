// Package fake1kosmos is a faithful fake of a 1Kosmos tenant, for tests and
// for a local demo: the bootstrap (community info, service discovery,
// service keys), the BlockID UWL 2.0 sessions service with the account
// lookup of the admin console, and the document-verification (docuverify)
// service, speaking the wire formats of docs/providers/blockid.md and
// docs/providers/onekosmos_idv.md with their crypto.
//
// The phone is simulated by hooks: [Fake.Approve] with a [Wallet] answers a
// UWL session, and [Fake.Consent], [Fake.Submit], [Fake.Fail],
// [Fake.Decline] drive an ID-verification session. [Fake.InjectFault]
// breaks any endpoint (5xx, slow, malformed JSON, wrong key, replay, and the
// hostile answers of internal/hostile). The same hooks are reachable over
// HTTP under /_fake/ for the demo; they have no authentication, so serve
// the fake on loopback only.
package fake1kosmos

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
)

// Config configures a Fake. Zero values take the defaults noted.
type Config struct {
	// DNS is the tenant host name the fake answers for. Default "acme.1kosmos.net".
	DNS string
	// Community is the community name. Default "default".
	Community string
	// LicenseKey is the only licence accepted. Default "fake-license-key".
	LicenseKey string
	// DvcIDs are the known ID-verification workflows. Default ["fake_dvcid"].
	DvcIDs []string
	// TTL is the UWL session lifetime (docs/providers/blockid.md, "Expiry
	// and one-time use": 60 s or 120 s, depending on the page). Default 120s.
	TTL time.Duration
	// IDVTTL is the ID-verification session lifetime (undocumented).
	// Default 15m.
	IDVTTL time.Duration
	// Now is the fake's clock. Default time.Now.
	Now func() time.Time
	// StrictTS makes the fake refuse a requestid whose ts is more than 60 s
	// from its clock (the CaaS allowed_time_span hint).
	StrictTS bool
	// PII selects the ID-verification PII retention mode.
	// Default PIIOnce (pii_retention_ttl = -1).
	PII PIIMode
	// PIIRetention is the retention time for PIIFor (pii_retention_ttl > 0).
	PIIRetention time.Duration
	// InProgressSessionResult makes in-progress ID-verification answers use
	// the documented `{"sessionResult":"In Progress","sessionID":…}` shape
	// instead of the observed `{"responseStatus":"INPROGRESS","id":…}`.
	InProgressSessionResult bool
	// EncryptCreate makes the create answer `{"data": enc(…)}` as one doc
	// page says, instead of the plain JSON of the samples.
	EncryptCreate bool
	// UnknownDIDNotFound makes the account lookup answer 404 for an unknown
	// DID instead of 200 {}.
	UnknownDIDNotFound bool
	// JSONErrors makes UWL error answers `{"status":…,"message":…}` instead
	// of plain text.
	JSONErrors bool
}

// PIIMode is a PII retention setting (docs/providers/onekosmos_idv.md,
// "Personal data retention and one-time use").
type PIIMode int

// The retention modes.
const (
	PIIOnce PIIMode = iota // pii_retention_ttl = -1: returned on the first poll after completion only
	PIIKeep                // pii_retention_ttl = 0: returned for 7 days
	PIIFor                 // pii_retention_ttl > 0: returned for Config.PIIRetention
	PIIOff                 // pii_retention_off = true: never returned
)

// Op names an endpoint for fault injection.
type Op string

// The endpoints.
const (
	OpCommunityInfo Op = "community_info"
	OpDiscovery     Op = "caas_sd"
	OpPublicKeys    Op = "publickeys"
	OpSessionNew    Op = "session_new"
	OpSessionInfo   Op = "session_info"
	OpPoll          Op = "session_response"
	OpAuthenticate  Op = "session_authenticate"
	OpUserInfo      Op = "userinfo"
	OpEvent         Op = "event"
	OpIDVCreate     Op = "idv_create"
	OpIDVResult     Op = "idv_result"
)

// Ops lists the endpoints, for tools that take an endpoint's name.
var Ops = []Op{OpCommunityInfo, OpDiscovery, OpPublicKeys, OpSessionNew, OpSessionInfo, OpPoll,
	OpAuthenticate, OpUserInfo, OpEvent, OpIDVCreate, OpIDVResult}

// Fault changes how an endpoint answers, for its next Times calls (0: until
// cleared).
type Fault struct {
	// Status answers with this status and Body instead of the real answer.
	Status int
	Body   string
	// Delay holds the answer back (or until the client gives up).
	Delay time.Duration
	// Malformed answers 200 with a body that is not JSON.
	Malformed bool
	// WrongKey encrypts the answer's data under a key the caller does not
	// share (the GCM check must fail).
	WrongKey bool
	// Truncate cuts the answer's encrypted data in half.
	Truncate bool
	// SessionID replaces the session id inside the answer: a replay of
	// another session's answer.
	SessionID string
	// Replay keeps serving a UWL answer after it was delivered once,
	// instead of "doesn't exist".
	Replay bool
	// Hostile spoils the answer (the real one, or Status and Body, or the
	// malformed one) in a hostile mode: huge, endless, truncated,
	// malformed, slow or hanging.
	Hostile hostile.Mode
	Times   int
}

// Fake is a 1Kosmos tenant. It is an http.Handler.
type Fake struct {
	cfg Config
	mux *http.ServeMux

	sessionsKey   *onekosmos.KeyPair
	docuverifyKey *onekosmos.KeyPair
	communityKey  *onekosmos.KeyPair
	eventsKey     *onekosmos.KeyPair
	demoWallet    *Wallet

	tenantID, tenantTag, communityID string

	mu       sync.Mutex
	uwl      map[string]*uwlSession
	idv      map[string]*idvSession
	accounts map[string]*Account
	faults   map[Op]*Fault
	events   []Event
	calls    map[Op]int
}

// Event is a login event the fake received (docs/providers/blockid.md,
// step B9).
type Event struct {
	Tenant, Community, Name string
	Data                    string
}

// New returns a fake tenant with fresh service keys and one enrolled demo
// wallet (see DemoWallet).
func New(cfg Config) *Fake {
	if cfg.DNS == "" {
		cfg.DNS = "acme.1kosmos.net"
	}
	if cfg.Community == "" {
		cfg.Community = "default"
	}
	if cfg.LicenseKey == "" {
		cfg.LicenseKey = "fake-license-key"
	}
	if len(cfg.DvcIDs) == 0 {
		cfg.DvcIDs = []string{"fake_dvcid"}
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 120 * time.Second
	}
	if cfg.IDVTTL <= 0 {
		cfg.IDVTTL = 15 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Fake{
		cfg:         cfg,
		tenantID:    "5f3d8d0cd866fa61019cf968",
		tenantTag:   strings.SplitN(cfg.DNS, ".", 2)[0],
		communityID: "5f3d8d0cd866fa61019cf969",
		uwl:         map[string]*uwlSession{},
		idv:         map[string]*idvSession{},
		accounts:    map[string]*Account{},
		faults:      map[Op]*Fault{},
		calls:       map[Op]int{},
	}
	f.sessionsKey = mustKey()
	f.docuverifyKey = mustKey()
	f.communityKey = mustKey()
	f.eventsKey = mustKey()
	f.demoWallet = NewWallet("demo.user@example.com")
	f.demoWallet.Data = map[string]any{"firstname": "Demo", "lastname": "User"}
	f.Enroll(f.demoWallet)
	f.routes()
	return f
}

func mustKey() *onekosmos.KeyPair {
	k, err := onekosmos.GenerateKey()
	if err != nil {
		panic(err) // only when the system has no randomness
	}
	return k
}

// Config returns the effective configuration.
func (f *Fake) Config() Config { return f.cfg }

// DemoWallet is the wallet the HTTP approve hook uses.
func (f *Fake) DemoWallet() *Wallet { return f.demoWallet }

// InjectFault makes op misbehave; a zero Fault clears it.
func (f *Fake) InjectFault(op Op, fl Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl == (Fault{}) {
		delete(f.faults, op)
		return
	}
	c := fl
	f.faults[op] = &c
}

// Calls reports how often op was called.
func (f *Fake) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Events returns the login events received so far.
func (f *Fake) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.events...)
}

// fault returns the fault for op (consuming one use) and counts the call.
func (f *Fake) fault(op Op) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	fl := f.faults[op]
	if fl == nil {
		return nil
	}
	c := *fl
	if fl.Times > 0 {
		fl.Times--
		if fl.Times == 0 {
			delete(f.faults, op)
		}
	}
	return &c
}

type faultKey struct{}

// op counts a call of op and applies its fault: the faults that replace the
// whole answer here, the others (WrongKey, Truncate, SessionID, Replay) in
// h, which finds the fault with faultOf.
func (f *Fake) op(op Op, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fl := f.fault(op)
		if fl == nil {
			h(w, r)
			return
		}
		if fl.Delay > 0 {
			t := time.NewTimer(fl.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		next := func(w http.ResponseWriter, r *http.Request) {
			h(w, r.WithContext(context.WithValue(r.Context(), faultKey{}, fl)))
		}
		switch {
		case fl.Status != 0:
			next = func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(fl.Status)
				_, _ = io.WriteString(w, fl.Body)
			}
		case fl.Malformed:
			next = func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"sessionId": "x", "data": `)
			}
		}
		hostile.Serve(w, r, fl.Hostile, http.HandlerFunc(next))
	}
}

// faultOf is the fault op passed on to the handler, or nil.
func faultOf(r *http.Request) *Fault {
	fl, _ := r.Context().Value(faultKey{}).(*Fault)
	return fl
}

func (f *Fake) routes() {
	m := http.NewServeMux()
	m.HandleFunc("POST /api/r1/system/community_info/fetch", f.op(OpCommunityInfo, f.communityInfo))
	m.HandleFunc("GET /caas/sd", f.op(OpDiscovery, f.discovery))
	m.HandleFunc("GET /sessions/publickeys", f.op(OpPublicKeys, f.publicKey(f.sessionsKey)))
	m.HandleFunc("GET /docuverify/publickeys", f.op(OpPublicKeys, f.publicKey(f.docuverifyKey)))
	m.HandleFunc("GET /events/publickeys", f.op(OpPublicKeys, f.publicKey(f.eventsKey)))
	m.HandleFunc("PUT /sessions/session/new", f.op(OpSessionNew, f.sessionNew))
	sessionInfo := f.op(OpSessionInfo, f.sessionInfo)
	m.HandleFunc("GET /sessions/session/{id}", func(w http.ResponseWriter, r *http.Request) {
		// A person who opens the QR link in a browser gets the simulated
		// app; the protocol's callers ask for JSON.
		if strings.Contains(r.Header.Get("Accept"), "text/html") {
			f.walletPage(w, r, r.PathValue("id"))
			return
		}
		sessionInfo(w, r)
	})
	m.HandleFunc("GET /sessions/session/{id}/response", f.op(OpPoll, f.sessionResponse))
	m.HandleFunc("POST /sessions/session/{id}/authenticate", f.op(OpAuthenticate, f.sessionAuthenticate))
	m.HandleFunc("GET /api/r1/community/{community}/userdid/{did}/userinfo", f.op(OpUserInfo, f.userInfo))
	m.HandleFunc("PUT /events/tenant/{tenant}/community/{community}/event/{name}", f.op(OpEvent, f.event))
	m.HandleFunc("POST /docuverify/document_share_session/create", f.op(OpIDVCreate, f.idvCreate))
	m.HandleFunc("POST /docuverify/v3/document_share_session/result", f.op(OpIDVResult, f.idvResult))
	m.HandleFunc("POST /docuverify/document_share_session/result", f.op(OpIDVResult, f.idvResult))
	m.HandleFunc("GET /idproofing/session/{id}", f.capturePage)
	m.HandleFunc("GET /_fake/{$}", f.indexPage)
	m.HandleFunc("POST /_fake/blockid/{id}/{action}", f.uwlHook)
	m.HandleFunc("POST /_fake/idv/{id}/{action}", f.idvHook)
	f.mux = m
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Bound what a caller may send; the real service's limits are unknown.
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	f.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// codeError is the {code,message} envelope of docuverify and other services.
func codeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"code": status, "message": msg})
}

func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (f *Fake) communityInfo(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DNS           string `json:"dns"`
		TenantID      string `json:"tenantId"`
		CommunityName string `json:"communityName"`
		CommunityID   string `json:"communityId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Unable to load tenant/community"})
		return
	}
	tenantOK := req.DNS == f.cfg.DNS || (req.DNS == "" && req.TenantID == f.tenantID)
	commOK := req.CommunityName == f.cfg.Community || (req.CommunityName == "" && req.CommunityID == f.communityID)
	if !tenantOK || !commOK {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Unable to load tenant/community"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant": map[string]any{"id": f.tenantID, "tenanttype": "master", "tenanttag": f.tenantTag,
			"name": "Fake tenant", "otherDNS": []string{f.cfg.DNS}},
		"community": map[string]any{"id": f.communityID, "tenantid": f.tenantID, "name": f.cfg.Community,
			"publicKey": f.communityKey.Public().String()},
		"message": nil,
	})
}

func (f *Fake) discovery(w http.ResponseWriter, r *http.Request) {
	o := origin(r)
	writeJSON(w, http.StatusOK, map[string]string{
		"sessions":        o + "/sessions",
		"licenses":        o + "/licenses",
		"adminconsole":    o,
		"events":          o + "/events",
		"docuverify":      o + "/docuverify",
		"global_caas":     o + "/caas",
		"authn":           o + "/authn",
		"user_management": o + "/user_management",
	})
}

func (f *Fake) publicKey(k *onekosmos.KeyPair) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"publicKey": k.Public().String()})
	}
}

// errAuth is a refused licence, requestid or publickey header.
var errAuth = errors.New("unauthorized")

// authenticate checks the publickey, licensekey and requestid headers of a
// call to the service holding svc, and returns the caller's key and the
// shared key. Header names are case-insensitive in net/http already.
func (f *Fake) authenticate(r *http.Request, svc *onekosmos.KeyPair, needLicence bool) (onekosmos.PublicKey, [32]byte, error) {
	caller, err := onekosmos.ParsePublicKey(r.Header.Get("publickey"))
	if err != nil {
		return onekosmos.PublicKey{}, [32]byte{}, fmt.Errorf("%w: publickey: %v", errAuth, err)
	}
	shared := svc.SharedKey(caller)
	if needLicence {
		lic, err := onekosmos.Decrypt(shared, r.Header.Get("licensekey"))
		if err != nil || subtle.ConstantTimeCompare(lic, []byte(f.cfg.LicenseKey)) != 1 {
			return onekosmos.PublicKey{}, [32]byte{}, fmt.Errorf("%w: licensekey", errAuth)
		}
	}
	rid, err := onekosmos.Decrypt(shared, r.Header.Get("requestid"))
	if err != nil {
		return onekosmos.PublicKey{}, [32]byte{}, fmt.Errorf("%w: requestid", errAuth)
	}
	var req struct {
		TS    json.Number `json:"ts"`
		UUID  any         `json:"uuid"`
		AppID string      `json:"appid"`
		AppId string      `json:"appId"` //nolint:revive // the PHP SDK's spelling
	}
	if err := json.Unmarshal(rid, &req); err != nil {
		return onekosmos.PublicKey{}, [32]byte{}, fmt.Errorf("%w: requestid json", errAuth)
	}
	if f.cfg.StrictTS {
		ts, err := req.TS.Int64()
		if err != nil || abs(f.cfg.Now().Unix()-ts) > 60 {
			return onekosmos.PublicKey{}, [32]byte{}, fmt.Errorf("%w: requestid ts", errAuth)
		}
	}
	return caller, shared, nil
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
