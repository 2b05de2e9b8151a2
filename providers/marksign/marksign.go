package marksign

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/jwsverify"
	"github.com/caddy-idv/caddy-idv/store"
)

// maxAnswerSize bounds a gateway answer: a certificate and a few fields,
// plus PEP/sanctions lists when requested.
const maxAnswerSize = 256 << 10

// tokenPattern is what a session token may look like before it goes into a
// URL path (the gateway's are UUIDs).
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`)

// errMalformed marks an answer that is not a gateway answer (not JSON, no
// status) with a non-5xx HTTP status: bad provider input, not a transient
// problem.
var errMalformed = errors.New("malformed answer")

var controlCodePattern = regexp.MustCompile(`^[0-9]{4}$`)

// Open implements providers.Config. It does not contact the gateway.
func (c *Config) Open(env providers.Env) (providers.Provider, error) {
	if err := c.ValidateCommon(); err != nil {
		return nil, fmt.Errorf("marksign: %w", err)
	}
	if env.Store == nil || env.Now == nil {
		return nil, errors.New("marksign: incomplete environment")
	}
	token, err := providers.ResolveSecret("access_token", c.AccessToken)
	if err != nil {
		return nil, err // the module names the provider
	}
	if err := checkMessage(c.Message); err != nil {
		return nil, fmt.Errorf("marksign: %w", err)
	}
	countries := c.Countries
	if len(countries) == 0 {
		countries = supportedCountries
	}
	if err := checkCountries(countries); err != nil {
		return nil, fmt.Errorf("marksign: %w", err)
	}
	base := DefaultBaseURL
	if c.BaseURL != "" {
		var err error
		if base, err = providers.RewriteBase(DefaultBaseURL, c.BaseURL); err != nil {
			return nil, fmt.Errorf("marksign: %w", err)
		}
	}
	if c.Locale != "lt" {
		base += "/en"
	}
	var roots *x509.CertPool
	if c.TrustedCA != "" {
		var err error
		if roots, err = loadCA(c.TrustedCA); err != nil {
			return nil, fmt.Errorf("marksign: %w", err)
		}
	}
	lifetime := c.LifetimeOr(DefaultLifetime)
	env = env.WithDefaults(c.CallTimeout())
	client, logger := env.HTTP, env.Logger
	claims := c.Claims
	if len(claims) == 0 {
		claims = defaultClaims
	}
	if roots == nil {
		logger.Warn("marksign: trusted_ca is not set: the person's certificate is checked for dates and subject only, not for its issuer",
			zap.String("provider", env.Name))
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.CallTimeout())
	defer cancel()
	subKey, err := providers.LoadSecret(ctx, env.Store, providers.SubjectSecretKey)
	if err != nil {
		return nil, fmt.Errorf("marksign: %w", err)
	}
	return &provider{
		env: env, http: client, logger: logger, base: base, token: token,
		language: c.Language, message: c.Message, countries: countries, roots: roots,
		lifetime: lifetime, claims: claims, subKey: subKey,
	}, nil
}

type provider struct {
	env       providers.Env
	http      *http.Client
	logger    *zap.Logger
	base      string // scheme://host[/en]
	token     string
	language  string
	message   string
	countries []string
	roots     *x509.CertPool
	lifetime  time.Duration
	claims    []string
	subKey    []byte
}

// Info implements providers.Provider.
func (p *provider) Info() providers.Info {
	return providers.Info{Kind: Kind, Label: "Mobile-ID", Flow: "form", DefaultClaims: defaultClaims}
}

// Form implements providers.FormProvider.
func (p *provider) Form() []providers.Field {
	return []providers.Field{
		{Name: "phone", Label: "Phone number", Type: "tel", Autocomplete: "tel",
			Pattern: `\+?[0-9 ()\-]{8,20}`, Hint: "With the country code, e.g. +372 5123 4567 or +370 612 34567"},
		{Name: "personal_code", Label: "Personal code", Type: "text", Autocomplete: "off",
			Pattern: `[0-9]{11}`, Hint: "11 digits"},
	}
}

// PollInterval implements providers.Poller: the gateway suggests about 3 s
// between status calls (docs/providers/marksign_mobileid.md, step M2).
func (p *provider) PollInterval() time.Duration { return 3 * time.Second }

// state is what a login keeps in the sealed pending cookie: the session
// token, the personal code the answer must name and, only when the operator
// asked for the phone_number claim, the phone.
type state struct {
	Token string `json:"t"`
	Code  string `json:"c"`
	Phone string `json:"p,omitempty"`
	// Quiet is 1 for a login the gateway refused at the start because it
	// knows no usable Mobile-ID for the phone and personal code: the
	// person's browser was answered as for any other login and the login
	// expires like one nobody confirms. Always present, so that the sealed
	// cookie is the same length either way.
	Quiet int `json:"q"`
}

// Start implements providers.Provider: it checks the input and initialises
// a Mobile-ID authentication (docs/providers/marksign_mobileid.md, step M1).
func (p *provider) Start(ctx context.Context, req providers.StartRequest) (*providers.Challenge, error) {
	phone, country, ok := normalizePhone(req.Input["phone"])
	if !ok {
		return nil, &providers.InputError{Field: "phone", Message: "Enter a mobile number with its country code: +372 and 7 or 8 digits (Estonia) or +370 and 8 digits starting with 6 (Lithuania)."}
	}
	if !slices.Contains(p.countries, country) {
		return nil, &providers.InputError{Field: "phone", Message: "Mobile-ID numbers of this country are not accepted here."}
	}
	code := strings.TrimSpace(req.Input["personal_code"])
	if !validPersonalCode(code) {
		return nil, &providers.InputError{Field: "personal_code", Message: "Enter your 11-digit personal code (isikukood / asmens kodas)."}
	}
	body := map[string]any{"access_token": p.token, "phone": phone, "code": code}
	if p.language != "" {
		body["language"] = p.language
	}
	if p.message != "" {
		body["message"], body["message_format"] = p.message, messageFormat(p.message)
	}
	status, a, err := p.call(ctx, http.MethodPost, "/mobile/login.json", body)
	if err != nil {
		return nil, fmt.Errorf("marksign: initialize: %w", err)
	}
	if a.Status != "ok" {
		if ec := a.ErrorCode.int(); ec == 40401 || ec == 40403 {
			return p.quietStart(phone, code, ec)
		}
		if ie := startInputError(a.ErrorCode.int()); ie != nil {
			return nil, ie
		}
		p.logError("marksign: initialize refused", a, status)
		return nil, fmt.Errorf("marksign: initialize: status %d, error_code %d", status, a.ErrorCode.int())
	}
	if !tokenPattern.MatchString(a.Token) || !controlCodePattern.MatchString(a.ControlCode) {
		return nil, errors.New("marksign: initialize: answer without a usable token or control code")
	}
	st := state{Token: a.Token, Code: code}
	if slices.Contains(p.claims, "phone_number") {
		st.Phone = phone
	}
	raw, _ := json.Marshal(st)
	return &providers.Challenge{ControlCode: a.ControlCode, ExpiresAt: p.env.Now().Add(p.lifetime), State: raw}, nil
}

// startInputError turns the answers a person can fix into form errors. They
// are about the format of what was typed, which the form checks anyway; an
// answer about whether the pair has a Mobile-ID is never one of them (see
// quietStart).
func startInputError(code int) error {
	switch code {
	case 40004:
		return &providers.InputError{Field: "phone", Message: "The Mobile-ID service did not accept this phone number."}
	case 40005:
		return &providers.InputError{Field: "personal_code", Message: "The Mobile-ID service did not accept this personal code."}
	}
	return nil
}

// quietStart answers a start the gateway refused with 40401 (no Mobile-ID
// for this phone and personal code) or 40403 (not qualified) exactly as a
// successful start: a control code, the same lifetime, a pending login that
// ends as expired with the message of a login nobody confirmed, at the same
// time. Otherwise the start answer (or how soon the login ends) would tell
// anyone which phone numbers and personal codes belong together and have
// Mobile-ID. The person who mistyped is told, while waiting and at the end,
// to check both if no request reached the phone.
func (p *provider) quietStart(phone, code string, errorCode int) (*providers.Challenge, error) {
	p.logger.Info("marksign: initialize refused for this phone and personal code; answering as for any login",
		zap.String("provider", p.env.Name), zap.Int("error_code", errorCode))
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("marksign: %w", err)
	}
	h := hex.EncodeToString(b[:16])
	st := state{Token: h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], Code: code, Quiet: 1}
	if slices.Contains(p.claims, "phone_number") {
		st.Phone = phone
	}
	raw, _ := json.Marshal(st)
	control := fmt.Sprintf("%04d", binary.BigEndian.Uint16(b[16:])%10000)
	return &providers.Challenge{ControlCode: control, ExpiresAt: p.env.Now().Add(p.lifetime), State: raw}, nil
}

// quietKey marks a login whose gateway session ended before the login's own
// expiry without the person's doing (40021: nobody confirmed, 40801: the
// phone was not reached). Such a login stays pending until its expiry and
// then ends like a quiet one, so that a login for a pair with Mobile-ID and
// one without end alike.
func quietKey(token string) string { return "marksign/quiet/" + token }

func decodeState(raw []byte) (*state, error) {
	var st state
	if err := json.Unmarshal(raw, &st); err != nil || !tokenPattern.MatchString(st.Token) || !validPersonalCode(st.Code) {
		return nil, errors.New("bad login state")
	}
	return &st, nil
}

// Poll implements providers.Provider: one status call
// (docs/providers/marksign_mobileid.md, step M2),
// which the gateway may hold for a while; env.HTTP's timeout bounds it.
func (p *provider) Poll(ctx context.Context, login providers.Login) (*providers.Result, error) {
	st, err := decodeState(login.State)
	if err != nil {
		p.logger.Error("marksign: poll: login state unreadable", zap.String("login", login.ID))
		return &providers.Result{State: providers.Failed, Message: msgGeneric}, nil
	}
	expired := !p.env.Now().Before(login.ExpiresAt)
	if quiet, err := p.quiet(ctx, st); err != nil {
		return nil, fmt.Errorf("marksign: poll: %w", err)
	} else if quiet {
		if expired {
			return &providers.Result{State: providers.Expired, Message: msgExpired}, nil
		}
		return &providers.Result{State: providers.Pending}, nil
	}
	status, a, err := p.call(ctx, http.MethodPost, "/mobile/status/"+st.Token+".json",
		map[string]any{"access_token": p.token, "token": st.Token})
	if errors.Is(err, errMalformed) {
		p.logger.Error("marksign: poll: unreadable answer", zap.String("login", login.ID), zap.Int("status", status))
		return &providers.Result{State: providers.Failed, Message: msgGeneric}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("marksign: poll: %w", err)
	}
	switch a.Status {
	case "waiting":
		if expired {
			p.remove(ctx, st.Token)
			return &providers.Result{State: providers.Expired, Message: msgExpired}, nil
		}
		return &providers.Result{State: providers.Pending}, nil
	case "canceled", "cancelled":
		return &providers.Result{State: providers.Declined, Message: msgDeclined}, nil
	case "ok":
		return p.complete(ctx, login, st, a)
	}
	code := a.ErrorCode.int()
	if transientCodes[code] {
		return nil, fmt.Errorf("marksign: poll: gateway error %d (status %d)", code, status)
	}
	if (code == 40021 || code == 40801) && !expired {
		// Keep the login pending until its own expiry (see quietKey).
		if err := p.env.Store.Set(ctx, quietKey(st.Token), []byte{1}, login.ExpiresAt.Sub(p.env.Now())+10*time.Minute); err != nil {
			return nil, fmt.Errorf("marksign: poll: %w", err)
		}
		return &providers.Result{State: providers.Pending}, nil
	}
	res := errorResult(code, expired)
	if res.State == providers.Failed {
		p.logError("marksign: login failed at the gateway", a, status)
	}
	return res, nil
}

// quiet reports whether a login only waits for its expiry: started quietly,
// or its gateway session ended early (quietKey).
func (p *provider) quiet(ctx context.Context, st *state) (bool, error) {
	if st.Quiet == 1 {
		return true, nil
	}
	_, err := p.env.Store.Get(ctx, quietKey(st.Token))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Messages shown to the person (docs/reference.md, "Endpoints": no personal
// data).
const (
	msgDeclined    = "You declined the login on your phone."
	msgExpired     = "The login was not confirmed on the phone in time. If no request reached your phone, check that it is on and that the phone number and personal code are right, then start again."
	msgUnavailable = "Mobile-ID login is not available right now. Try again later or use another login method."
	msgNotFound    = "The Mobile-ID session was not found. Start again."
	msgGeneric     = "The Mobile-ID login failed. Start again."
	msgMismatch    = "The Mobile-ID answer did not match the personal code you entered."
	msgCertificate = "The Mobile-ID certificate could not be verified."
)

// transientCodes are gateway-side troubles (docs/providers/marksign_mobileid.md,
// "Error codes", 5000x):
// the login stays pending and the next poll asks again.
var transientCodes = map[int]bool{50000: true, 50001: true, 50002: true}

// errorResult maps every documented error code
// (docs/providers/marksign_mobileid.md, "Error codes") to a state
// and a message a person understands.
func errorResult(code int, expired bool) *providers.Result {
	r := func(s providers.State, m string) *providers.Result { return &providers.Result{State: s, Message: m} }
	switch code {
	case 40020:
		return r(providers.Declined, msgDeclined)
	case 40021:
		return r(providers.Expired, msgExpired)
	case 40801:
		// Before the login's expiry Poll keeps it pending (quietKey).
		return r(providers.Expired, msgExpired)
	case 40402:
		if expired {
			return r(providers.Expired, msgExpired)
		}
		return r(providers.Failed, msgNotFound)
	case 40401, 40403:
		// Answered at the start, never while polling; said as vaguely as
		// there (see quietStart).
		return r(providers.Failed, msgGeneric)
	case 40004:
		return r(providers.Failed, "The Mobile-ID service did not accept this phone number.")
	case 40005:
		return r(providers.Failed, "The Mobile-ID service did not accept this personal code.")
	case 40001, 40003, 50003, 50004:
		// Our request or our account is wrong: the operator must act.
		return r(providers.Failed, msgUnavailable)
	}
	// 40022 (a signing error) and anything undocumented.
	return r(providers.Failed, msgGeneric)
}

// complete checks an "ok" answer (docs/providers/marksign_mobileid.md,
// "Checks on an ok answer") and maps it to an
// identity, or to a failure.
func (p *provider) complete(ctx context.Context, login providers.Login, st *state, a *answer) (*providers.Result, error) {
	now := p.env.Now()
	if why := p.check(st, a, now); why != "" {
		p.remove(ctx, st.Token)
		msg := msgCertificate
		if strings.HasPrefix(why, "identity:") {
			msg = msgMismatch
		}
		return nil, &providers.Reject{State: providers.Failed, Message: msg, Reason: why}
	}
	// The gateway may repeat "ok" for a token; one token logs in once, on
	// every instance sharing the store.
	first, err := store.Consume(ctx, p.env.Store, jwsverify.ConsumedKey(Kind, st.Token), p.lifetime+10*time.Minute)
	if err != nil {
		// The store is down: try again on the next poll, fail closed now.
		return nil, fmt.Errorf("marksign: consume token: %w", err)
	}
	if !first {
		// Another poller of this login (whose lease had lapsed) consumed
		// the answer first: it records the outcome, this one waits for it.
		p.logger.Info("marksign: answer already consumed by another poller", zap.String("login", login.ID))
		return nil, providers.ErrConsumed
	}
	p.remove(ctx, st.Token)
	return &providers.Result{State: providers.Completed, Identity: p.identity(st, a, now)}, nil
}

// check returns why an "ok" answer is not acceptable, naming no personal
// data; "identity:" reasons are about whom the answer names.
func (p *provider) check(st *state, a *answer, now time.Time) string {
	if a.Token != "" && a.Token != st.Token {
		return "identity: answer is for another session token"
	}
	if a.Code != st.Code {
		return "identity: personal code differs from the one entered"
	}
	if !slices.Contains(p.countries, a.Country) {
		return "identity: country not accepted"
	}
	if a.Certificate == nil {
		return "certificate missing"
	}
	want := "PNO" + a.Country + "-" + st.Code
	if a.Certificate.Subject.SerialNumber != want {
		return "identity: certificate subject serial number is another person's"
	}
	if !sameName(a.Name, a.Certificate.Subject.Name) || !sameName(a.Surname, a.Certificate.Subject.Surname) {
		return "identity: names differ from the certificate subject"
	}
	cert, err := decodeCertificate(a.Certificate.Value)
	if err != nil {
		return "certificate: " + err.Error()
	}
	if why := verifyCertificate(cert, now, want, a.Country, a.Name, a.Surname, p.roots); why != "" {
		return why
	}
	return ""
}

func sameName(a, b string) bool {
	return a == "" || b == "" || strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// remove deletes the session at the gateway
// (docs/providers/marksign_mobileid.md, step M3); failures are
// logged only.
func (p *provider) remove(ctx context.Context, token string) {
	status, a, err := p.call(ctx, http.MethodDelete, "/api/mobile/session/"+token, map[string]any{"access_token": p.token})
	if err != nil {
		p.logger.Warn("marksign: remove session", zap.Error(err))
		return
	}
	if a.Status != "ok" && status != http.StatusNotFound {
		p.logger.Warn("marksign: remove session refused", zap.Int("status", status), zap.Int("error_code", a.ErrorCode.int()))
	}
}

// Cancel implements providers.Canceler.
func (p *provider) Cancel(ctx context.Context, login providers.Login) error {
	st, err := decodeState(login.State)
	if err != nil {
		return fmt.Errorf("marksign: cancel: %w", err)
	}
	if st.Quiet == 1 {
		return nil // no session at the gateway
	}
	p.remove(ctx, st.Token)
	return nil
}

// logError writes an operator log line for a gateway error: the code and
// HTTP status only, since the gateway's message may quote the input.
func (p *provider) logError(msg string, a *answer, status int) {
	code := a.ErrorCode.int()
	level := p.logger.Warn
	if code == 40001 || code == 40003 || code == 50003 || code == 50004 {
		level = p.logger.Error
		msg += ": check access_token and the provider options"
	}
	level(msg, zap.Int("error_code", code), zap.Int("status", status))
}

// answer is every gateway answer (docs/providers/marksign_mobileid.md,
// steps M1–M3); fields absent from one
// kind stay empty.
type answer struct {
	Status      string       `json:"status"`
	Message     string       `json:"message"`
	ErrorCode   flexInt      `json:"error_code"`
	Token       string       `json:"token"`
	ControlCode string       `json:"control_code"`
	Code        string       `json:"code"`
	Country     string       `json:"country"`
	Name        string       `json:"name"`
	Surname     string       `json:"surname"`
	Certificate *certificate `json:"certificate"`
}

type certificate struct {
	Name    string `json:"name"`
	Subject struct {
		Country      string `json:"country"`
		CommonName   string `json:"common_name"`
		Surname      string `json:"surname"`
		Name         string `json:"name"`
		SerialNumber string `json:"serial_number"`
	} `json:"subject"`
	ValidFrom string `json:"valid_from"`
	ValidTo   string `json:"valid_to"`
	Value     string `json:"value"`
}

// flexInt accepts an error code as a JSON number or a numeric string,
// because the gateway's siblings send both.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("error_code %q: not a number", s)
	}
	*f = flexInt(n)
	return nil
}

func (f flexInt) int() int { return int(f) }

// parseAnswer decodes a gateway answer. An answer without a status is
// refused: every documented answer has one.
func parseAnswer(raw []byte) (*answer, error) {
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	if a.Status == "" {
		return nil, errors.New("answer without status")
	}
	return &a, nil
}

// call sends one JSON request to path under the gateway base. It returns a
// non-nil error only for transport trouble, 5xx without a readable answer
// and unreadable answers: those are transient for Poll.
func (p *provider) call(ctx context.Context, method, path string, body map[string]any) (int, *answer, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, p.base+path, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, errors.New("bad request address")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		// The URL holds the session token; report the cause only.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("%s: %w", method, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
	}()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	if len(data) > maxAnswerSize {
		return resp.StatusCode, nil, fmt.Errorf("answer larger than %d bytes", maxAnswerSize)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	a, perr := parseAnswer(data)
	if perr == nil && mt != "application/json" && mt != "" {
		perr = fmt.Errorf("content type %q", mt)
	}
	if perr != nil {
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return resp.StatusCode, nil, fmt.Errorf("status %d: %w", resp.StatusCode, perr)
		}
		return resp.StatusCode, nil, fmt.Errorf("status %d: %w: %w", resp.StatusCode, errMalformed, perr)
	}
	if resp.StatusCode >= 500 && !transientCodes[a.ErrorCode.int()] && a.Status != "error" {
		return resp.StatusCode, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.StatusCode, a, nil
}

var (
	_ providers.Config       = (*Config)(nil)
	_ caddyfile.Unmarshaler  = (*Config)(nil)
	_ providers.Provider     = (*provider)(nil)
	_ providers.FormProvider = (*provider)(nil)
	_ providers.Poller       = (*provider)(nil)
	_ providers.Canceler     = (*provider)(nil)
)
