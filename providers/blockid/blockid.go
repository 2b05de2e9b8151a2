package blockid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-idv/caddy-idv/providers"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
	"github.com/caddy-idv/caddy-idv/store"
)

// DefaultClaims are the claims put into tokens when `claims` is not set.
var DefaultClaims = []string{"name", "given_name", "family_name", "preferred_username", "email", "email_verified", "ial"}

// consumedTTL is how long a delivered session id stays refused. The service
// closes a session after one answer; this guards against a replayed answer
// (and our own saved copy) for a day.
const consumedTTL = 24 * time.Hour

type provider struct {
	env      providers.Env
	name     string
	prefix   string // store key prefix "blockid/<name>/"
	logger   *zap.Logger
	client   *onekosmos.Client
	key      *onekosmos.KeyPair
	scopes   string
	authType string
}

// Info implements providers.Provider.
func (p *provider) Info() providers.Info {
	return providers.Info{Kind: Kind, Label: "BlockID app", Flow: "qr", FreeStart: true, DefaultClaims: DefaultClaims}
}

// state is what the pending cookie carries: the provider's session id and
// the server's timestamps (seconds).
type state struct {
	SessionID string `json:"s"`
	Created   int64  `json:"c"`
	Expiry    int64  `json:"e"`
}

// Start implements providers.Provider: it creates a UWL session (step B4
// of docs/providers/blockid.md), reads its document for the server's
// expiryTS (B5), and shows the session URL as the QR code.
func (p *provider) Start(ctx context.Context, req providers.StartRequest) (*providers.Challenge, error) {
	t, err := p.client.Tenant(ctx)
	if err != nil {
		return nil, fmt.Errorf("blockid: start: %w", err)
	}
	svc, err := p.client.ServiceKey(ctx, "sessions")
	if err != nil {
		return nil, fmt.Errorf("blockid: start: %w", err)
	}
	sessions, err := t.Service("sessions")
	if err != nil {
		return nil, fmt.Errorf("blockid: start: %w", err)
	}
	console := t.Services["adminconsole"]
	body := map[string]any{
		"origin": map[string]string{
			"tag": t.TenantTag, "url": console, "communityName": t.CommunityName,
			"communityId": t.CommunityID, "authPage": "blockid://authenticate",
		},
		"scopes":   p.scopes,
		"authtype": p.authType,
		"metadata": map[string]string{"purpose": "authentication"},
	}
	st, raw, err := p.client.Do(ctx, onekosmos.Call{Op: "create session", Method: http.MethodPut,
		URL: sessions + "/session/new", Peer: svc, Body: body})
	if err != nil {
		return nil, fmt.Errorf("blockid: start: %w", err)
	}
	if st != http.StatusCreated {
		if st == http.StatusUnauthorized {
			// A rotated service key makes the licence undecryptable.
			p.client.Forget()
		}
		return nil, fmt.Errorf("blockid: start: create session: HTTP %d: %s", st, onekosmos.Message(raw))
	}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(raw, &created); err != nil {
		return nil, fmt.Errorf("blockid: start: create session: %w", err)
	}
	if !onekosmos.ValidSessionID(created.SessionID) {
		return nil, errors.New("blockid: start: create session: bad sessionId")
	}
	link := sessions + "/session/" + created.SessionID
	cts, ets, err := p.sessionTimes(ctx, link)
	if err != nil {
		return nil, fmt.Errorf("blockid: start: %w", err)
	}
	exp := time.Unix(ets, 0)
	if !exp.After(p.env.Now()) {
		return nil, fmt.Errorf("blockid: start: session expires at %s, already past", exp.UTC().Format(time.RFC3339))
	}
	stRaw, _ := json.Marshal(state{SessionID: created.SessionID, Created: cts, Expiry: ets})
	return &providers.Challenge{QRText: link, DeepLink: link, ExpiresAt: exp, State: stRaw}, nil
}

// sessionTimes reads createdTS and expiryTS of a session
// (docs/providers/blockid.md, step B5). The two doc
// pages disagree on the lifetime (60 s vs 120 s), so the server's expiryTS
// is the only truth; there is no fallback TTL.
func (p *provider) sessionTimes(ctx context.Context, link string) (created, expiry int64, err error) {
	st, raw, err := p.client.Get(ctx, "session info", link)
	if err != nil {
		return 0, 0, err
	}
	if st != http.StatusOK {
		return 0, 0, fmt.Errorf("session info: HTTP %d: %s", st, onekosmos.Message(raw))
	}
	var doc struct {
		CreatedTS json.Number `json:"createdTS"`
		ExpiryTS  json.Number `json:"expiryTS"`
		PublicKey string      `json:"publicKey"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, 0, fmt.Errorf("session info: %w", err)
	}
	expiry = epochSeconds(doc.ExpiryTS)
	if expiry <= 0 {
		return 0, 0, errors.New("session info: no expiryTS")
	}
	// The phone encrypts to the key in this document; if it is not ours,
	// no answer could ever be read.
	if pk, err := onekosmos.ParsePublicKey(doc.PublicKey); err != nil || !pk.Equal(p.key.Public()) {
		return 0, 0, errors.New("session info: the session does not carry our public key")
	}
	return epochSeconds(doc.CreatedTS), expiry, nil
}

// epochSeconds reads a timestamp that should be in seconds (the sample's
// createdTS is) but accepts milliseconds, which the undocumented expiryTS
// might be.
func epochSeconds(n json.Number) int64 {
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f <= 0 {
		return 0
	}
	if f > 1e12 {
		f /= 1000
	}
	return int64(f)
}

func (p *provider) answerKey(sid string) string   { return p.prefix + "answer/" + sid }
func (p *provider) consumedKey(sid string) string { return p.prefix + "consumed/" + sid }

// Poll implements providers.Provider (docs/providers/blockid.md, step B6).
// A 200 answer is delivered by the
// service only once, so it is saved in the shared store before anything
// that can fail transiently (the account lookup); the next poll, on any
// instance, continues from the saved copy.
func (p *provider) Poll(ctx context.Context, login providers.Login) (*providers.Result, error) {
	var st state
	if err := json.Unmarshal(login.State, &st); err != nil || !onekosmos.ValidSessionID(st.SessionID) {
		p.logger.Error("blockid: unreadable login state", zap.String("login", login.ID))
		return failed("The login could not be continued. Start again."), nil
	}
	saved, err := p.env.Store.Get(ctx, p.answerKey(st.SessionID))
	switch {
	case err == nil:
		return p.finish(ctx, login, st, saved)
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("blockid: poll session: %w", err)
	}
	t, err := p.client.Tenant(ctx)
	if err != nil {
		return nil, fmt.Errorf("blockid: poll session: %w", err)
	}
	svc, err := p.client.ServiceKey(ctx, "sessions")
	if err != nil {
		return nil, fmt.Errorf("blockid: poll session: %w", err)
	}
	sessions, err := t.Service("sessions")
	if err != nil {
		return nil, fmt.Errorf("blockid: poll session: %w", err)
	}
	code, raw, err := p.client.Do(ctx, onekosmos.Call{Op: "poll session", Method: http.MethodGet,
		URL: sessions + "/session/" + st.SessionID + "/response", Peer: svc,
		Header: map[string]string{"addsessioninfo": "1"}})
	if err != nil {
		return nil, fmt.Errorf("blockid: poll session: %w", err)
	}
	msg := onekosmos.Message(raw)
	switch {
	case code == http.StatusOK:
		ttl := time.Unix(st.Expiry, 0).Sub(p.env.Now()) + 10*time.Minute
		if ttl < 10*time.Minute {
			ttl = 10 * time.Minute
		}
		if _, err := p.env.Store.SetIfAbsent(ctx, p.answerKey(st.SessionID), raw, ttl); err != nil {
			// Keep going: this poll can still finish the login.
			p.logger.Warn("blockid: saving the answer", zap.String("session", st.SessionID), zap.Error(err))
		}
		return p.finish(ctx, login, st, raw)
	case code == http.StatusNotFound && strings.Contains(strings.ToLower(msg), "exist"):
		p.logger.Warn("blockid: session does not exist (already answered or unknown)", zap.String("session", st.SessionID))
		return failed("This login was already used. Start again."), nil
	case code == http.StatusNotFound:
		if !p.env.Now().Before(time.Unix(st.Expiry, 0)) {
			return expired(), nil
		}
		return &providers.Result{State: providers.Pending}, nil
	case code == http.StatusBadRequest && strings.Contains(strings.ToLower(msg), "expired"):
		return expired(), nil
	case code >= 500 || code == http.StatusTooManyRequests:
		return nil, fmt.Errorf("blockid: poll session: HTTP %d", code)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		p.client.Forget()
		p.logger.Error("blockid: the sessions service refused our licence", zap.Int("status", code), zap.String("message", msg))
		return failed("The identity service refused the request. Try again later."), nil
	default:
		p.logger.Warn("blockid: unexpected poll answer", zap.Int("status", code), zap.String("message", msg))
		return failed("The identity service answered in a way that is not understood."), nil
	}
}

func failed(msg string) *providers.Result {
	return &providers.Result{State: providers.Failed, Message: msg}
}

func expired() *providers.Result {
	return &providers.Result{State: providers.Expired, Message: "The login expired before the BlockID app answered. Start again."}
}

// answer is the poll body (docs/providers/blockid.md, step B6).
type answer struct {
	SessionID string      `json:"sessionId"`
	Data      string      `json:"data"`
	AppID     string      `json:"appid"`
	IAL       any         `json:"ial"`
	PublicKey string      `json:"publicKey"`
	CreatedTS json.Number `json:"createdTS"`
}

// account is the decrypted account lookup (docs/providers/blockid.md, step B8).
type account struct {
	UserIDList []string `json:"userIdList"`
	PublicKey  string   `json:"publicKey"`
	Device     *struct {
		PublicKey string `json:"publickey"`
	} `json:"device"`
}

// rejected is a check that failed (the module logs its reason).
type rejected = providers.Reject

const notVerified = "The BlockID app's answer could not be verified."

// finish checks a poll answer and turns it into a result: every check of
// docs/providers/blockid.md, "What makes an answer trustworthy", including
// the device-key check that the vendor SDKs omit.
func (p *provider) finish(ctx context.Context, login providers.Login, st state, raw []byte) (*providers.Result, error) {
	id, rej, err := p.check(ctx, st, raw)
	if err != nil {
		return nil, fmt.Errorf("blockid: poll session: %w", err)
	}
	if rej != nil {
		return nil, rej
	}
	// One answer, one login: across instances, only the first poll that
	// gets here may complete.
	first, err := store.Consume(ctx, p.env.Store, p.consumedKey(st.SessionID), consumedTTL)
	if err != nil {
		return nil, fmt.Errorf("blockid: poll session: %w", err)
	}
	if !first {
		p.logger.Warn("blockid: answer already used", zap.String("login", login.ID), zap.String("session", st.SessionID))
		return failed("This login was already used. Start again."), nil
	}
	_ = p.env.Store.Delete(ctx, p.answerKey(st.SessionID))
	return &providers.Result{State: providers.Completed, Identity: id}, nil
}

func (p *provider) check(ctx context.Context, st state, raw []byte) (*providers.Identity, *rejected, error) {
	bad := func(reason string) (*providers.Identity, *rejected, error) {
		return nil, &rejected{State: providers.Failed, Message: notVerified, Reason: reason}, nil
	}
	ans, err := parseAnswer(raw)
	if err != nil {
		return bad(err.Error())
	}
	// Check 1: the answer is for the session we created.
	if ans.SessionID != st.SessionID {
		return bad("answer is for another session")
	}
	// Check 5 (time): an answer made after the session expired is late.
	if cts := epochSeconds(ans.CreatedTS); cts > 0 && cts > st.Expiry {
		return nil, &rejected{State: providers.Expired, Message: "The BlockID app answered after the login expired. Start again.", Reason: "answer created after expiryTS"}, nil
	}
	// Check 2: data decrypts under ECDH(our key, the answering device key).
	device, err := onekosmos.ParsePublicKey(ans.PublicKey)
	if err != nil {
		return bad("answer publicKey: " + err.Error())
	}
	user, err := decryptUser(p.key.SharedKey(device), ans.Data)
	if err != nil {
		return bad(err.Error())
	}
	did, _ := user["did"].(string)
	t, err := p.client.Tenant(ctx)
	if err != nil {
		return nil, nil, err
	}
	// Check 3: the account of that DID lists the user id.
	acct, rej, err := p.lookup(ctx, t, did)
	if err != nil || rej != nil {
		return nil, rej, err
	}
	userID, _ := user["userid"].(string)
	if userID == "" && len(acct.UserIDList) > 0 {
		userID = acct.UserIDList[0]
	}
	listed := false
	for _, u := range acct.UserIDList {
		// Every entry counts, the first included (the Node SDK's
		// indexOf(…) > 0 wrongly rejects the first).
		if userID != "" && strings.EqualFold(u, userID) {
			listed = true
			break
		}
	}
	if !listed {
		return bad("user id not in the account's userIdList")
	}
	// Check 4: the key that answered is the enrolled device's key. Without
	// it, any key pair that knows a DID and user id could answer.
	if !sameKey(device, acct.PublicKey) && (acct.Device == nil || !sameKey(device, acct.Device.PublicKey)) {
		return bad("answer publicKey is not the account's device key")
	}
	return p.identity(did, userID, user, ans), nil, nil
}

func sameKey(k onekosmos.PublicKey, b64 string) bool {
	q, err := onekosmos.ParsePublicKey(b64)
	return err == nil && k.Equal(q)
}

// parseAnswer decodes the poll body.
func parseAnswer(raw []byte) (*answer, error) {
	var ans answer
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&ans); err != nil {
		return nil, fmt.Errorf("answer is not JSON: %v", err)
	}
	if ans.Data == "" {
		return nil, errors.New("answer has no data")
	}
	return &ans, nil
}

// decryptUser opens the user data and requires a DID.
func decryptUser(key [32]byte, data string) (map[string]any, error) {
	plain, err := onekosmos.Decrypt(key, data)
	if err != nil {
		return nil, err
	}
	var user map[string]any
	if err := json.Unmarshal(plain, &user); err != nil || user == nil {
		return nil, errors.New("user data is not a JSON object")
	}
	did, _ := user["did"].(string)
	if did == "" || len(did) > 256 {
		return nil, errors.New("user data has no did")
	}
	return user, nil
}

// lookup fetches the account of did from the admin console
// (docs/providers/blockid.md, step B8), encrypted
// under the community key.
func (p *provider) lookup(ctx context.Context, t *onekosmos.Tenant, did string) (*account, *rejected, error) {
	console, err := t.Service("adminconsole")
	if err != nil {
		return nil, nil, err
	}
	if t.CommunityKey.IsZero() {
		return nil, nil, errors.New("community info has no public key")
	}
	u := console + "/api/r1/community/" + url.PathEscape(t.CommunityName) + "/userdid/" + url.PathEscape(did) + "/userinfo?devicelist=true"
	code, raw, err := p.client.Do(ctx, onekosmos.Call{Op: "account lookup", Method: http.MethodGet, URL: u,
		Peer: t.CommunityKey, Header: map[string]string{"X-TenantTag": t.TenantTag}})
	if err != nil {
		return nil, nil, err
	}
	switch {
	case code >= 500 || code == http.StatusTooManyRequests:
		return nil, nil, fmt.Errorf("account lookup: HTTP %d", code)
	case code == http.StatusNotFound:
		return nil, &rejected{State: providers.Failed, Message: "This BlockID account is not enrolled here.", Reason: "account not found (404)"}, nil
	case code != http.StatusOK:
		return nil, &rejected{State: providers.Failed, Message: notVerified, Reason: fmt.Sprintf("account lookup: HTTP %d", code)}, nil
	}
	var wire struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(raw, &wire); err != nil || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		// An object is the answer; null decodes without error but is not
		// the service's "{}" for an unknown account.
		return nil, &rejected{State: providers.Failed, Message: notVerified, Reason: "account lookup: not a JSON object"}, nil
	}
	if wire.Data == "" {
		return nil, &rejected{State: providers.Failed, Message: "This BlockID account is not enrolled here.", Reason: "account not found (no data)"}, nil
	}
	plain, err := onekosmos.Decrypt(p.key.SharedKey(t.CommunityKey), wire.Data)
	if err != nil {
		return nil, &rejected{State: providers.Failed, Message: notVerified, Reason: "account lookup: " + err.Error()}, nil
	}
	var acct account
	if err := json.Unmarshal(plain, &acct); err != nil {
		return nil, &rejected{State: providers.Failed, Message: notVerified, Reason: "account lookup: data is not JSON"}, nil
	}
	return &acct, nil, nil
}

// identity maps the answer to OIDC claims (docs/providers/blockid.md,
// "Identity claims").
func (p *provider) identity(did, userID string, user map[string]any, ans *answer) *providers.Identity {
	claims := map[string]any{}
	if userID != "" {
		claims["preferred_username"] = userID
		if looksLikeEmail(userID) {
			claims["email"] = userID
			// UWL does not prove control of the mailbox.
			claims["email_verified"] = false
		}
	}
	given, _ := user["firstname"].(string)
	family, _ := user["lastname"].(string)
	if given != "" {
		claims["given_name"] = given
	}
	if family != "" {
		claims["family_name"] = family
	}
	if n := strings.TrimSpace(given + " " + family); n != "" {
		claims["name"] = n
	}
	ial := ialString(ans.IAL)
	if ial != "" {
		claims["ial"] = ial
	}
	acr := "urn:idv:blockid"
	if ial != "" {
		acr = "urn:idv:blockid:ial" + ial
	}
	// RFC 8176: the app holds a hardware-backed device key; the phone talks
	// to 1Kosmos on a channel separate from the browser's.
	amr := []string{"hwk", "mca"}
	switch p.authType {
	case "face":
		amr = append(amr, "face", "mfa")
	case "pin":
		amr = append(amr, "pin", "mfa")
	case "fingerprint":
		amr = append(amr, "fpt", "mfa")
	}
	at := p.env.Now()
	if cts := epochSeconds(ans.CreatedTS); cts > 0 {
		at = time.Unix(cts, 0)
	}
	return &providers.Identity{Subject: Kind + ":" + did, Claims: claims, ACR: acr, AMR: amr, AuthTime: at}
}

func ialString(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '.') || len(s) > 8 {
			return ""
		}
	}
	return s
}

func looksLikeEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " <>\"") && strings.Contains(s[at:], ".")
}

var (
	_ providers.Provider = (*provider)(nil)
)
