package onekosmosidv

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
	"github.com/caddy-idv/caddy-idv/store"
)

// DefaultClaims are the claims put into tokens when `claims` is not set.
// Document data and the address are never among them (docs/reference.md,
// "Tokens").
var DefaultClaims = []string{"name", "given_name", "family_name", "birthdate", "gender"}

// OptInClaims are mapped only when the operator lists them in `claims`.
var OptInClaims = []string{"address", "document_type", "document_number", "document_country", "document_expiry", "document_issued"}

// consumedTTL keeps a used result refused well past any PII retention
// window of the service (7 days at most).
const consumedTTL = 8 * 24 * time.Hour

type provider struct {
	env      providers.Env
	name     string
	prefix   string
	logger   *zap.Logger
	client   *onekosmos.Client
	dns      string
	comm     string
	dvcID    string
	docType  string
	lifetime time.Duration
	selfie   bool
	listed   map[string]bool
	subKey   []byte
}

// Info implements providers.Provider.
func (p *provider) Info() providers.Info {
	return providers.Info{Kind: Kind, Label: "ID document (1Kosmos)", Flow: "qr", DefaultClaims: DefaultClaims}
}

type state struct {
	SessionID string `json:"s"`
}

// Start implements providers.Provider (docs/providers/onekosmos_idv.md, step V1).
func (p *provider) Start(ctx context.Context, req providers.StartRequest) (*providers.Challenge, error) {
	base, svc, err := p.service(ctx)
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: start: %w", err)
	}
	inner := map[string]any{
		"dvcID": p.dvcID,
		"sessionRequest": map[string]any{
			"tenantDNS": p.dns, "communityName": p.comm, "documentType": p.docType,
			// uid is echoed in the result; it binds the answer to this
			// login. Sent as a string, as the samples show.
			"user": map[string]any{"uid": req.ID},
		},
	}
	shared := p.client.Key.SharedKey(svc)
	plain, _ := json.Marshal(inner)
	data, err := onekosmos.Encrypt(shared, plain)
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: start: %w", err)
	}
	code, raw, err := p.client.Do(ctx, onekosmos.Call{Op: "create session", Method: http.MethodPost,
		URL: base + "/document_share_session/create", Peer: svc, Body: map[string]string{"data": data}})
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: start: %w", err)
	}
	if code != http.StatusOK && code != http.StatusCreated {
		if code == http.StatusUnauthorized {
			p.client.Forget()
		}
		return nil, fmt.Errorf("onekosmos_idv: start: create session: HTTP %d: %s", code, onekosmos.Message(raw))
	}
	created, err := parseCreated(shared, raw)
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: start: create session: %w", err)
	}
	st, _ := json.Marshal(state{SessionID: created.SessionID})
	return &providers.Challenge{
		QRText:    created.URL,
		DeepLink:  created.URL,
		ExpiresAt: p.env.Now().Add(p.lifetime),
		State:     st,
	}, nil
}

type createdSession struct {
	SessionID string `json:"sessionId"`
	URL       string `json:"url"`
	Data      string `json:"data"`
}

// parseCreated reads the create answer: plain JSON as in the samples, or
// {"data": enc(…)} as one doc page says.
func parseCreated(shared [32]byte, raw []byte) (*createdSession, error) {
	var c createdSession
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("answer is not JSON: %w", err)
	}
	if c.SessionID == "" && c.Data != "" {
		plain, err := onekosmos.Decrypt(shared, c.Data)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(plain, &c); err != nil {
			return nil, fmt.Errorf("answer data is not JSON: %w", err)
		}
	}
	if !onekosmos.ValidSessionID(c.SessionID) {
		return nil, errors.New("answer has no valid sessionId")
	}
	// The URL is shown to the person as a link: only http(s) to a host.
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(c.URL) > 2048 {
		return nil, errors.New("answer has no usable capture url")
	}
	return &c, nil
}

func (p *provider) service(ctx context.Context) (string, onekosmos.PublicKey, error) {
	t, err := p.client.Tenant(ctx)
	if err != nil {
		return "", onekosmos.PublicKey{}, err
	}
	base, err := t.Service("docuverify")
	if err != nil {
		return "", onekosmos.PublicKey{}, err
	}
	svc, err := p.client.ServiceKey(ctx, "docuverify")
	if err != nil {
		return "", onekosmos.PublicKey{}, err
	}
	return base, svc, nil
}

func (p *provider) consumedKey(sid string) string { return p.prefix + "consumed/" + sid }

// Poll implements providers.Provider (docs/providers/onekosmos_idv.md, step V2).
func (p *provider) Poll(ctx context.Context, login providers.Login) (*providers.Result, error) {
	var st state
	if err := json.Unmarshal(login.State, &st); err != nil || !onekosmos.ValidSessionID(st.SessionID) {
		p.logger.Error("onekosmos_idv: unreadable login state", zap.String("login", login.ID))
		return failed("The login could not be continued. Start again."), nil
	}
	base, svc, err := p.service(ctx)
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: poll session: %w", err)
	}
	plain, _ := json.Marshal(map[string]string{"dvcID": p.dvcID, "sessionId": st.SessionID})
	data, err := onekosmos.Encrypt(p.client.Key.SharedKey(svc), plain)
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: poll session: %w", err)
	}
	code, raw, err := p.client.Do(ctx, onekosmos.Call{Op: "poll session", Method: http.MethodPost,
		URL: base + "/v3/document_share_session/result", Peer: svc, Body: map[string]string{"data": data}})
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: poll session: %w", err)
	}
	log := p.logger.With(zap.String("login", login.ID), zap.String("session", st.SessionID))
	switch {
	case code == http.StatusOK:
	case code >= 500 || code == http.StatusTooManyRequests:
		return nil, fmt.Errorf("onekosmos_idv: poll session: HTTP %d", code)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		p.client.Forget()
		log.Error("onekosmos_idv: the service refused our licence", zap.Int("status", code), zap.String("message", onekosmos.Message(raw)))
		return failed("The identity service refused the request. Try again later."), nil
	case code == http.StatusNotFound:
		log.Warn("onekosmos_idv: session unknown to the service")
		return failed("The verification session is unknown to the identity service. Start again."), nil
	default:
		log.Warn("onekosmos_idv: unexpected poll answer", zap.Int("status", code), zap.String("message", onekosmos.Message(raw)))
		return failed("The identity service answered in a way that is not understood."), nil
	}
	ans, reason := decodeAnswer(p.client.Key, svc, raw)
	if reason != "" {
		if strings.Contains(reason, "key") {
			p.client.Forget()
		}
		return nil, &providers.Reject{State: providers.Failed, Message: notVerified, Reason: reason}
	}
	return p.judge(ctx, login, st, ans, log)
}

const notVerified = "The identity service's answer could not be verified."

func failed(msg string) *providers.Result {
	return &providers.Result{State: providers.Failed, Message: msg}
}

// result is the decrypted v3 answer (docs/providers/onekosmos_idv.md, step V2).
type result struct {
	ResponseStatus string `json:"responseStatus"`
	ID             string `json:"id"`
	SessionResult  string `json:"sessionResult"`
	SessionID      string `json:"sessionId"`
	SessionIDUpper string `json:"sessionID"`
	SessionData    *struct {
		User         map[string]any `json:"user"`
		DocumentType string         `json:"documentType"`
	} `json:"sessionData"`
	ExtractedInfo map[string]any `json:"extractedInfo"`
	Document      *document      `json:"document"`
	ErrorInfo     *struct {
		Message    string `json:"message"`
		Reason     string `json:"reason"`
		ReasonCode string `json:"reason_code"`
		ReasonCaml string `json:"reasonCode"`
	} `json:"errorInfo"`
}

type document struct {
	Type         string `json:"type"`
	DocumentType string `json:"documentType"`
	Country      string `json:"country"`
	DocumentID   string `json:"documentId"`
	ID           string `json:"id"`
	FirstName    string `json:"firstName"`
	LastName     string `json:"lastName"`
	FamilyName   string `json:"familyName"`
	FullName     string `json:"fullName"`
	DOB          string `json:"dob"`
	DOE          string `json:"doe"`
	DOI          string `json:"doi"`
	Gender       string `json:"gender"`
	Street       string `json:"street"`
	City         string `json:"city"`
	State        string `json:"state"`
	ZipCode      string `json:"zipCode"`
	ProofJWT     string `json:"proof_jwt"`
}

// decodeAnswer decrypts and parses a 200 answer. reason, when set, says
// (without personal data) why it was refused.
func decodeAnswer(key *onekosmos.KeyPair, svc onekosmos.PublicKey, raw []byte) (*result, string) {
	var wire struct {
		Data      string `json:"data"`
		PublicKey string `json:"publicKey"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil {
		return nil, "answer is not JSON"
	}
	if wire.Data == "" {
		return nil, "answer has no data"
	}
	// The answer names the key it was sealed with. Only the service key we
	// fetched separately is trusted: anyone can seal to our public key
	// under a key pair of their own.
	if wire.PublicKey != "" {
		pk, err := onekosmos.ParsePublicKey(wire.PublicKey)
		if err != nil || !pk.Equal(svc) {
			return nil, "answer sealed under a key that is not the service key"
		}
	}
	plain, err := onekosmos.Decrypt(key.SharedKey(svc), wire.Data)
	if err != nil {
		return nil, err.Error()
	}
	var res result
	dec := json.NewDecoder(bytes.NewReader(plain))
	if err := dec.Decode(&res); err != nil {
		return nil, "answer data is not a JSON object"
	}
	return &res, ""
}

// norm folds the status spellings ("In Progress", "INPROGRESS",
// "in_progress") into one.
func norm(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

// judge maps a decrypted answer to the module's states
// (docs/providers/onekosmos_idv.md, "Result states") and checks a success
// ("Checks on a result").
func (p *provider) judge(ctx context.Context, login providers.Login, st state, r *result, log *zap.Logger) (*providers.Result, error) {
	id := firstOf(r.SessionID, r.SessionIDUpper, r.ID)
	if id != st.SessionID {
		return nil, &providers.Reject{State: providers.Failed, Message: notVerified, Reason: "answer names another session"}
	}
	status := norm(r.SessionResult)
	if status == "" {
		status = norm(r.ResponseStatus)
	}
	switch status {
	case "SUCCESS":
		return p.success(ctx, login, st, r, log)
	case "FAILED", "FAILURE":
		reason, code := "", ""
		if r.ErrorInfo != nil {
			reason, code = firstOf(r.ErrorInfo.Reason, r.ErrorInfo.Message), firstOf(r.ErrorInfo.ReasonCode, r.ErrorInfo.ReasonCaml)
		}
		log.Info("onekosmos_idv: verification failed", zap.String("reason_code", printable(code, 20)))
		msg := "The document could not be verified."
		if reason = printable(reason, 120); reason != "" {
			msg = "The document could not be verified: " + reason + "."
		}
		return failed(msg), nil
	case "EXPIRED", "ABANDONED":
		return &providers.Result{State: providers.Expired, Message: "The verification session expired. Start again."}, nil
	case "DECLINED":
		return &providers.Result{State: providers.Declined, Message: "The verification was declined on the phone."}, nil
	case "PENDING", "INPROGRESS", "CREATED", "STARTED":
	default:
		// Wire strings besides INPROGRESS/SUCCESS/FAILED are inferred; an
		// unknown one keeps the login pending until it expires.
		log.Warn("onekosmos_idv: unknown session status, still waiting", zap.String("status", printable(status, 32)))
	}
	if !p.env.Now().Before(login.ExpiresAt) {
		return &providers.Result{State: providers.Expired, Message: "The verification was not finished in time. Start again."}, nil
	}
	return &providers.Result{State: providers.Pending}, nil
}

func (p *provider) success(ctx context.Context, login providers.Login, st state, r *result, log *zap.Logger) (*providers.Result, error) {
	reject := func(reason, msg string) (*providers.Result, error) {
		return nil, &providers.Reject{State: providers.Failed, Message: msg, Reason: reason}
	}
	if r.ErrorInfo != nil {
		return reject("SUCCESS with errorInfo", notVerified)
	}
	// PII is returned once; an answer without it means the result was
	// already fetched (by us or by anyone holding the licence).
	if r.Document == nil || firstOf(r.Document.DocumentID, r.Document.ID) == "" {
		return reject("result already consumed (no personal data)", "The verification result was already consumed. Start again.")
	}
	if r.SessionData != nil && r.SessionData.DocumentType != "" && r.SessionData.DocumentType != p.docType {
		return reject("document type differs from the one asked for", "The document scanned is not the kind asked for.")
	}
	if r.SessionData != nil && r.SessionData.User != nil {
		if uid, ok := r.SessionData.User["uid"]; ok && fmt.Sprint(uid) != login.ID {
			return reject("result belongs to another login (uid)", notVerified)
		}
	}
	if doe, ok := parseDate(r.Document.DOE); ok && doe.AddDate(0, 0, 1).Before(p.env.Now()) {
		return reject("document expired", "The document has expired.")
	}
	checks := proofChecks(r.Document.ProofJWT)
	for name, ok := range checks {
		if !ok {
			return reject("check not verified: "+printable(name, 40), "A verification check did not pass.")
		}
	}
	selfie := checks["face_compare"] && checks["selfie_liveness"]
	if p.selfie && !selfie {
		return reject("selfie checks missing", "The verification did not include the required selfie.")
	}
	first, err := store.Consume(ctx, p.env.Store, p.consumedKey(st.SessionID), consumedTTL)
	if err != nil {
		return nil, fmt.Errorf("onekosmos_idv: poll session: %w", err)
	}
	if !first {
		return reject("result already used", "The verification result was already consumed. Start again.")
	}
	return &providers.Result{State: providers.Completed, Identity: p.identity(r, selfie, st)}, nil
}

// proofChecks reads the per-check verdicts of document.proof_jwt. The JWT
// is HS256 with a key only 1Kosmos holds, so it is read, not verified: it
// can only make us refuse, never accept.
func proofChecks(jwt string) map[string]bool {
	out := map[string]bool{}
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || len(parts[1]) > 1<<20 {
		return out
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return out
	}
	var payload struct {
		Result map[string]struct {
			Verified *bool `json:"verified"`
		} `json:"result"`
	}
	if json.Unmarshal(raw, &payload) != nil {
		return out
	}
	for name, v := range payload.Result {
		if v.Verified != nil {
			out[name] = *v.Verified
		}
	}
	return out
}

func (p *provider) identity(r *result, selfie bool, st state) *providers.Identity {
	d := r.Document
	ex := func(k string) string { s, _ := r.ExtractedInfo[k].(string); return s }
	claims := map[string]any{}
	set := func(k, v string) {
		if v = strings.TrimSpace(v); v != "" {
			claims[k] = v
		}
	}
	given := firstOf(d.FirstName, ex("firstName"))
	family := firstOf(d.LastName, d.FamilyName, ex("lastName"))
	set("given_name", given)
	set("family_name", family)
	set("name", firstOf(d.FullName, strings.TrimSpace(given+" "+family)))
	if t, ok := parseDate(d.DOB); ok {
		claims["birthdate"] = t.Format("2006-01-02")
	}
	switch d.Gender {
	case "1", "M", "m":
		claims["gender"] = "male"
	case "2", "F", "f":
		claims["gender"] = "female"
	}
	docNumber := firstOf(d.DocumentID, d.ID)
	// Document data and the address only when the operator asked for them.
	if p.listed["address"] && (d.Street != "" || d.City != "" || d.ZipCode != "") {
		addr := map[string]any{}
		for k, v := range map[string]string{"street_address": d.Street, "locality": d.City, "region": d.State, "postal_code": d.ZipCode, "country": d.Country} {
			if v != "" && v != "NONE" {
				addr[k] = v
			}
		}
		parts := []string{}
		for _, v := range []string{d.Street, d.City, d.State, d.ZipCode, d.Country} {
			if v != "" && v != "NONE" {
				parts = append(parts, v)
			}
		}
		addr["formatted"] = strings.Join(parts, ", ")
		claims["address"] = addr
	}
	if p.listed["document_type"] {
		set("document_type", firstOf(d.DocumentType, d.Type))
	}
	if p.listed["document_number"] {
		set("document_number", docNumber)
	}
	if p.listed["document_country"] {
		set("document_country", d.Country)
	}
	if t, ok := parseDate(d.DOE); ok && p.listed["document_expiry"] {
		claims["document_expiry"] = t.Format("2006-01-02")
	}
	if t, ok := parseDate(d.DOI); ok && p.listed["document_issued"] {
		claims["document_issued"] = t.Format("2006-01-02")
	}
	sub := providers.KeyedSubject(p.subKey, Kind+":", strings.ToUpper(d.Country), strings.ToUpper(firstOf(d.Type, d.DocumentType)), strings.ToUpper(docNumber))
	acr, amr := "urn:idv:1kosmos:ial1", []string(nil)
	if selfie {
		acr, amr = "urn:idv:1kosmos:ial2", []string{"face"}
	}
	return &providers.Identity{Subject: sub, Claims: claims, ACR: acr, AMR: amr, AuthTime: p.env.Now()}
}

// parseDate reads the YYYYMMDD dates of the documents.
func parseDate(s string) (time.Time, bool) {
	t, err := time.Parse("20060102", s)
	return t, err == nil
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// printable cuts s to n bytes of printable text, for messages and logs.
func printable(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, s)
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	return strings.TrimSpace(strings.TrimRight(s, "."))
}

var _ providers.Provider = (*provider)(nil)
