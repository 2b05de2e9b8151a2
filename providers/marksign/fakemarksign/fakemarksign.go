// Package fakemarksign is an in-memory fake of the Marksign gateway's
// Mobile-ID authentication (docs/providers/marksign_mobileid.md, "The
// fake"): initialise, status and remove, with and without the /en
// prefix, issuing certificates from a test CA it generates.
//
// Tests make the phone act with Approve, Refuse, Expire and Error, and
// inject transport faults and hostile answers (internal/hostile) with
// Inject. The local demo can approve on its own (Options.AutoApprove) or
// through the page at /fake/.
package fakemarksign

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
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

	"github.com/caddy-idv/caddy-idv/internal/faults"
)

// Account is a Mobile-ID user: a phone number bound to a personal code.
type Account struct {
	Phone, Code, Country string
	GivenName, Surname   string
	NotQualified         bool // answer 40403 at initialise
}

// DefaultAccounts are the documented test persons
// (docs/providers/marksign_mobileid.md, step M1).
var DefaultAccounts = []Account{
	{Phone: "+37269000366", Code: "60001017705", Country: "EE", GivenName: "TEN", Surname: "TESTNUMBER"},
	{Phone: "+37060000666", Code: "50001018865", Country: "LT", GivenName: "JONAS", Surname: "TESTAS"},
}

// Options configures a fake. Zero values take the defaults shown.
type Options struct {
	AccessToken string        // default "fake-access-token"
	Accounts    []Account     // default DefaultAccounts
	Timeout     time.Duration // a waiting session answers 40021 after this; default 120s
	Hold        time.Duration // a status call waits up to this long for a change; default 0
	RepeatFinal bool          // repeat the final answer on later status calls (default: 40402)
	AutoApprove time.Duration // approve sessions this long after initialise; 0 = never
	EscapeSlash bool          // write "/" as "\/" in JSON, as the gateway sometimes does
	Now         func() time.Time
}

// Outcome tweaks an approval for negative tests.
type Outcome struct {
	CertificateOf *Account // put another person's certificate in the answer
	Code          string   // answer with this personal code instead
	ExpiredCert   bool     // a certificate whose validity ended yesterday
	UntrustedCA   bool     // a certificate from a CA other than CAPEM's
	Token         string   // answer with this session token instead
	SingleBase64  bool     // certificate.value with one base64 layer
}

// Fault makes requests to one route misbehave (see internal/faults).
type Fault = faults.Fault

// Routes that Inject and Count name.
const (
	RouteLogin  = "login"
	RouteStatus = "status"
	RouteRemove = "remove"
)

// Routes lists the routes, for tools that take a route's name.
var Routes = []string{RouteLogin, RouteStatus, RouteRemove}

// Server is the fake; create it with New.
type Server struct {
	opts   Options
	mux    *http.ServeMux
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	other  *x509.Certificate // the untrusted CA
	oKey   *ecdsa.PrivateKey
	caPEM  []byte
	mu     sync.Mutex
	byTok  map[string]*session
	faults faults.Table
	last   string
}

type session struct {
	acct        Account
	controlCode string
	created     time.Time
	final       map[string]any // the final answer, nil while waiting
	status      int
	served      bool
	removed     bool
	changed     chan struct{}
}

// New returns a fake with a fresh test CA.
func New(opts Options) (*Server, error) {
	if opts.AccessToken == "" {
		opts.AccessToken = "fake-access-token"
	}
	if opts.Accounts == nil {
		opts.Accounts = DefaultAccounts
	}
	if opts.Timeout == 0 {
		opts.Timeout = 120 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, byTok: map[string]*session{}}
	var err error
	if s.ca, s.caKey, err = newCA("TEST of ESTEID-SK 2015", opts.Now()); err != nil {
		return nil, err
	}
	if s.other, s.oKey, err = newCA("Untrusted Test CA", opts.Now()); err != nil {
		return nil, err
	}
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ca.Raw})
	mux := http.NewServeMux()
	for _, prefix := range []string{"", "/en"} {
		mux.HandleFunc("POST "+prefix+"/mobile/login.json", s.route(RouteLogin, s.login))
		mux.HandleFunc("POST "+prefix+"/mobile/status/{file}", s.route(RouteStatus, s.status))
		mux.HandleFunc("DELETE "+prefix+"/api/mobile/session/{token}", s.route(RouteRemove, s.remove))
	}
	mux.HandleFunc("GET /fake/{$}", s.page)
	mux.HandleFunc("POST /fake/{token}/{action}", s.act)
	s.mux = mux
	return s, nil
}

func newCA(cn string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Country: []string{"EE"}, Organization: []string{"AS Sertifitseerimiskeskus"}, CommonName: cn},
		NotBefore: now.AddDate(-5, 0, 0), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("fakemarksign: CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// AccessToken is the token the fake accepts.
func (s *Server) AccessToken() string { return s.opts.AccessToken }

// CAPEM is the PEM of the CA that issues the fake's certificates, for
// trusted_ca.
func (s *Server) CAPEM() []byte { return s.caPEM }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Inject makes route misbehave as f says.
func (s *Server) Inject(route string, f Fault) {
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

// LastToken returns the session token of the newest session.
func (s *Server) LastToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Removed reports whether the session was removed by the client.
func (s *Server) Removed(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byTok[token]
	return ss != nil && ss.removed
}

// Approve makes the phone confirm with the PIN.
func (s *Server) Approve(token string, o Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byTok[token]
	if ss == nil {
		return errors.New("fakemarksign: unknown token")
	}
	ans, err := s.okAnswer(token, ss, o)
	if err != nil {
		return err
	}
	s.finish(ss, http.StatusOK, ans)
	return nil
}

// Refuse makes the person press cancel on the phone (40020).
func (s *Server) Refuse(token string) error { return s.Error(token, 40020) }

// Expire makes the session time out at Mobile-ID (40021).
func (s *Server) Expire(token string) error { return s.Error(token, 40021) }

// Error ends the session with any gateway error code.
func (s *Server) Error(token string, code int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byTok[token]
	if ss == nil {
		return errors.New("fakemarksign: unknown token")
	}
	s.finish(ss, code/100, errorBody(code, messages[code]))
	return nil
}

// finish records the final answer; s.mu is held.
func (s *Server) finish(ss *session, status int, body map[string]any) {
	if status < 200 {
		status = http.StatusBadRequest
	}
	ss.final, ss.status = body, status
	close(ss.changed)
	ss.changed = make(chan struct{})
}

var messages = map[int]string{
	40001: "Some request parameter is invalid", 40003: "Invalid access token", 40004: "Phone number format is incorrect",
	40005: "Personal code format is incorrect", 40020: "User refused", 40021: "Session has expired (user confirmation was not found before the timeout)",
	40401: "Invalid user", 40402: "Session for given token was not found", 40403: "Account not qualified",
	40801: "Timeout while acquiring certificate", 50000: "Provider issues processing the request", 50001: "Technical error in service",
	50002: "Cannot establish a connection", 50003: "Not authorized to use the service", 50004: "Client side configuration is incorrect",
}

func errorBody(code int, msg string) map[string]any {
	if msg == "" {
		msg = "Error"
	}
	return map[string]any{"status": "error", "message": msg, "error_code": code}
}

// route counts requests and applies faults before h.
func (s *Server) route(name string, h http.HandlerFunc) http.HandlerFunc {
	return s.faults.Route(name, h)
}

func (s *Server) write(w http.ResponseWriter, status int, v any) {
	raw, _ := json.Marshal(v)
	if s.opts.EscapeSlash {
		raw = []byte(strings.ReplaceAll(string(raw), "/", `\/`))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
}

func (s *Server) fail(w http.ResponseWriter, code int) {
	s.write(w, code/100, errorBody(code, messages[code]))
}

func (s *Server) body(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	var m map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&m); err != nil {
		s.write(w, http.StatusBadRequest, errorBody(40001, "Invalid JSON"))
		return nil, false
	}
	if tok, _ := m["access_token"].(string); tok != s.opts.AccessToken {
		s.fail(w, 40003)
		return nil, false
	}
	return m, true
}

var (
	phonePattern = regexp.MustCompile(`^\+37[02][0-9]{7,8}$`)
	codePattern  = regexp.MustCompile(`^[0-9]{11}$`)
)

// login is docs/providers/marksign_mobileid.md, step M1.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	m, ok := s.body(w, r)
	if !ok {
		return
	}
	phone, _ := m["phone"].(string)
	code, _ := m["code"].(string)
	if !phonePattern.MatchString(phone) {
		s.fail(w, 40004)
		return
	}
	if !codePattern.MatchString(code) {
		s.fail(w, 40005)
		return
	}
	format, _ := m["message_format"].(string)
	if format != "" && format != "GSM-7" && format != "UCS-2" {
		s.write(w, http.StatusBadRequest, errorBody(40001, "Invalid parameter [message_format]: Invalid message format"))
		return
	}
	if lang, ok := m["language"].(string); ok && lang != "LIT" && lang != "ENG" && lang != "RUS" && lang != "EST" {
		s.write(w, http.StatusBadRequest, errorBody(40001, "Invalid parameter [language]: Invalid language"))
		return
	}
	if msg, _ := m["message"].(string); len([]rune(msg)) > 40 || format == "UCS-2" && len([]rune(msg)) > 20 {
		s.write(w, http.StatusBadRequest, errorBody(40001, "Invalid parameter [message]: Message is too long"))
		return
	}
	var acct *Account
	for i := range s.opts.Accounts {
		if a := &s.opts.Accounts[i]; a.Phone == phone && a.Code == code {
			acct = a
		}
	}
	if acct == nil {
		s.fail(w, 40401)
		return
	}
	if acct.NotQualified {
		s.fail(w, 40403)
		return
	}
	tok := uuid4()
	n, _ := rand.Int(rand.Reader, big.NewInt(10000))
	ss := &session{acct: *acct, controlCode: fmt.Sprintf("%04d", n.Int64()), created: s.opts.Now(), changed: make(chan struct{})}
	s.mu.Lock()
	s.byTok[tok], s.last = ss, tok
	cert, err := s.certificate(*acct, Outcome{})
	s.mu.Unlock()
	if err != nil {
		s.fail(w, 50001)
		return
	}
	s.write(w, http.StatusOK, map[string]any{
		"status": "ok", "certificate": cert, "code": acct.Code, "token": tok, "control_code": ss.controlCode,
	})
}

// status is docs/providers/marksign_mobileid.md, step M2.
func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if _, ok := s.body(w, r); !ok {
		return
	}
	deadline := time.Now().Add(s.opts.Hold)
	for {
		s.mu.Lock()
		ss := s.byTok[tok]
		if ss == nil || ss.removed || ss.served && !s.opts.RepeatFinal {
			s.mu.Unlock()
			s.fail(w, 40402)
			return
		}
		now := s.opts.Now()
		if ss.final == nil && s.opts.AutoApprove > 0 && now.Sub(ss.created) >= s.opts.AutoApprove {
			if ans, err := s.okAnswer(tok, ss, Outcome{}); err == nil {
				s.finish(ss, http.StatusOK, ans)
			}
		}
		if ss.final == nil && now.Sub(ss.created) >= s.opts.Timeout {
			s.finish(ss, http.StatusBadRequest, errorBody(40021, messages[40021]))
		}
		if ss.final != nil {
			ss.served = true
			final, status := ss.final, ss.status
			s.mu.Unlock()
			s.write(w, status, final)
			return
		}
		changed := ss.changed
		s.mu.Unlock()
		wait := time.Until(deadline)
		if wait <= 0 {
			s.write(w, http.StatusOK, map[string]string{"status": "waiting"})
			return
		}
		select {
		case <-changed:
		case <-time.After(min(wait, 250*time.Millisecond)):
		case <-r.Context().Done():
			return
		}
	}
}

// remove is docs/providers/marksign_mobileid.md, step M3.
func (s *Server) remove(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.body(w, r); !ok {
		return
	}
	s.mu.Lock()
	ss := s.byTok[r.PathValue("token")]
	if ss != nil {
		ss.removed = true
	}
	s.mu.Unlock()
	if ss == nil {
		s.write(w, http.StatusOK, map[string]string{"status": "error", "message": "Request number is invalid"})
		return
	}
	s.write(w, http.StatusOK, map[string]string{"status": "ok"})
}

// okAnswer builds a successful status answer; s.mu is held.
func (s *Server) okAnswer(tok string, ss *session, o Outcome) (map[string]any, error) {
	holder := ss.acct
	if o.CertificateOf != nil {
		holder = *o.CertificateOf
	}
	cert, err := s.certificate(holder, o)
	if err != nil {
		return nil, err
	}
	code := ss.acct.Code
	if o.Code != "" {
		code = o.Code
	}
	if o.Token != "" {
		tok = o.Token
	}
	return map[string]any{
		"status": "ok", "country": ss.acct.Country, "certificate": cert, "code": code,
		"name": ss.acct.GivenName, "surname": ss.acct.Surname, "token": tok, "control_code": ss.controlCode,
		"sanctions_data": []any{}, "peps_data": []any{},
	}, nil
}

var (
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
)

// certificate issues a Mobile-ID authentication certificate for a and
// returns the gateway's certificate object; s.mu is held.
func (s *Server) certificate(a Account, o Outcome) (map[string]any, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	serial := "PNO" + a.Country + "-" + a.Code
	cn := a.Surname + "," + a.GivenName + "," + a.Code
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte(uuid4()[:8])),
		Subject: pkix.Name{
			Country: []string{a.Country}, CommonName: cn, SerialNumber: serial,
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidSurname, Value: a.Surname}, {Type: oidGivenName, Value: a.GivenName}},
		},
		NotBefore: now.AddDate(-1, 0, 0), NotAfter: now.AddDate(4, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if o.ExpiredCert {
		tmpl.NotAfter = now.AddDate(0, 0, -1)
	}
	ca, caKey := s.ca, s.caKey
	if o.UntrustedCA {
		ca, caKey = s.other, s.oKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("fakemarksign: certificate: %w", err)
	}
	value := base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(der)))
	if o.SingleBase64 {
		value = base64.StdEncoding.EncodeToString(der)
	}
	return map[string]any{
		"name": "/C=" + a.Country + "/CN=" + cn + "/SN=" + a.Surname + "/GN=" + a.GivenName + "/serialNumber=" + serial,
		"subject": map[string]any{
			"country": a.Country, "organisation": nil, "organisation_unit": nil, "common_name": cn,
			"surname": a.Surname, "name": a.GivenName, "serial_number": serial,
		},
		"issuer":     map[string]any{"country": "EE", "organisation": "AS Sertifitseerimiskeskus", "common_name": ca.Subject.CommonName},
		"valid_from": tmpl.NotBefore.Format("2006-01-02"), "valid_to": tmpl.NotAfter.Format("2006-01-02"),
		"value": value,
	}, nil
}

func uuid4() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// page is the local demo's phone: it lists waiting sessions with buttons.
func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	var b strings.Builder
	for tok, ss := range s.byTok {
		if ss.final != nil || ss.removed {
			continue
		}
		fmt.Fprintf(&b, `<li>control code <b>%s</b> <form method="post" action="/fake/%s/approve" style="display:inline"><button>Enter PIN</button></form>
<form method="post" action="/fake/%s/refuse" style="display:inline"><button>Cancel</button></form></li>`,
			html.EscapeString(ss.controlCode), html.EscapeString(tok), html.EscapeString(tok))
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><title>fake Mobile-ID phone</title><h1>fake Mobile-ID phone</h1>
<p>Waiting logins (reload to refresh):</p><ul>%s</ul>`, b.String())
}

func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	tok := r.PathValue("token")
	var err error
	switch r.PathValue("action") {
	case "approve":
		err = s.Approve(tok, Outcome{})
	case "refuse":
		err = s.Refuse(tok)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	http.Redirect(w, r, "/fake/", http.StatusSeeOther)
}
