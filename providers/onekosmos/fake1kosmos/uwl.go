package fake1kosmos

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
)

// The UWL error messages (docs/providers/blockid.md, steps B5 and B6).
const (
	msgNotFound = "Not Found"
	msgExpired  = "Session has expired"
	msgNoExist  = "Session with this sessionId doesn't exist"
)

// Wallet is a simulated BlockID app: a device key pair, a DID and a user id.
type Wallet struct {
	DID    string
	UserID string
	Key    *onekosmos.KeyPair
	// Data is added to the user data the wallet sends (scope values such as
	// firstname, lastname).
	Data map[string]any
	// IAL is the identity assurance level the app reports. Default "1".
	IAL string
}

// NewWallet returns a wallet with a fresh key and DID.
func NewWallet(userID string) *Wallet {
	did := strings.ReplaceAll(onekosmos.NewUUID(), "-", "")
	return &Wallet{DID: did, UserID: userID, Key: mustKey(), IAL: "1"}
}

// Account is what the admin console knows of an enrolled wallet
// (docs/providers/blockid.md, step B8).
type Account struct {
	ID         string   `json:"id"`
	PersonID   string   `json:"personId"`
	UserIDList []string `json:"userIdList"`
	PublicKey  string   `json:"publicKey"`
	// DevicePublicKey is the device.publickey of the ?devicelist=true answer.
	DevicePublicKey string `json:"-"`
}

// Enroll registers w in the community with its user id (or userIDs).
func (f *Fake) Enroll(w *Wallet, userIDs ...string) *Account {
	if len(userIDs) == 0 {
		userIDs = []string{w.UserID}
	}
	a := &Account{
		ID: strings.ReplaceAll(onekosmos.NewUUID(), "-", "")[:24], PersonID: w.DID, UserIDList: userIDs,
		PublicKey: w.Key.Public().String(), DevicePublicKey: w.Key.Public().String(),
	}
	f.mu.Lock()
	f.accounts[w.DID] = a
	f.mu.Unlock()
	return a
}

type uwlSession struct {
	ID        string
	Origin    map[string]any
	Scopes    string
	AuthType  string
	Metadata  any
	RPKey     string
	CreatedTS int64
	ExpiryTS  int64
	Answer    map[string]any // the poll body once the phone answered
	Delivered bool
}

func (s *uwlSession) expired(now time.Time) bool { return now.Unix() >= s.ExpiryTS }

// uwlError writes a UWL error: plain text by default, as the SDKs copy the
// raw body into their message.
func (f *Fake) uwlError(w http.ResponseWriter, status int, msg string) {
	if f.cfg.JSONErrors {
		writeJSON(w, status, map[string]any{"status": status, "message": msg})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg))
}

func (f *Fake) sessionNew(w http.ResponseWriter, r *http.Request) {
	caller, _, err := f.authenticate(r, f.sessionsKey, true)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Invalid or Unauthorized License"})
		return
	}
	var req struct {
		Origin   map[string]any `json:"origin"`
		Scopes   *string        `json:"scopes"`
		AuthType *string        `json:"authtype"`
		Metadata any            `json:"metadata"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Origin == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "message": "origin is required"})
		return
	}
	if tag, _ := req.Origin["tag"].(string); tag != f.tenantTag {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "message": "unknown origin tag"})
		return
	}
	now := f.cfg.Now()
	s := &uwlSession{
		ID: onekosmos.NewUUID(), Origin: req.Origin, Metadata: req.Metadata, RPKey: caller.String(),
		CreatedTS: now.Unix(), ExpiryTS: now.Add(f.cfg.TTL).Unix(), AuthType: "none",
	}
	if req.Scopes != nil {
		s.Scopes = *req.Scopes
	}
	if req.AuthType != nil {
		s.AuthType = *req.AuthType
	}
	f.mu.Lock()
	f.uwl[s.ID] = s
	f.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"sessionId": s.ID})
}

func (s *uwlSession) document() map[string]any {
	return map[string]any{
		"_id": s.ID, "sessionId": s.ID, "origin": s.Origin, "scopes": s.Scopes,
		"authtype": s.AuthType, "authType": s.AuthType, "metadata": s.Metadata,
		"createdTS": s.CreatedTS, "expiryTS": s.ExpiryTS,
		"expiresDate": time.Unix(s.ExpiryTS, 0).UTC().Format(time.RFC3339),
		"publicKey":   s.RPKey, "__v": 0,
	}
}

func (f *Fake) sessionInfo(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	s := f.uwl[id]
	var doc map[string]any
	expired := false
	if s != nil {
		doc = s.document()
		expired = s.expired(f.cfg.Now())
	}
	f.mu.Unlock()
	switch {
	case s == nil:
		f.uwlError(w, http.StatusNotFound, msgNoExist)
	case expired:
		f.uwlError(w, http.StatusBadRequest, msgExpired)
	default:
		writeJSON(w, http.StatusOK, doc)
	}
}

func (f *Fake) sessionResponse(w http.ResponseWriter, r *http.Request) {
	fl := faultOf(r)
	if _, _, err := f.authenticate(r, f.sessionsKey, true); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Invalid or Unauthorized License"})
		return
	}
	id := r.PathValue("id")
	now := f.cfg.Now()
	f.mu.Lock()
	s := f.uwl[id]
	var body map[string]any
	status, msg := 0, ""
	switch {
	case s == nil:
		status, msg = http.StatusNotFound, msgNotFound
	case s.Delivered && !(fl != nil && fl.Replay):
		status, msg = http.StatusNotFound, msgNoExist
	case s.Answer != nil:
		body = map[string]any{}
		for k, v := range s.Answer {
			body[k] = v
		}
		if r.Header.Get("addsessioninfo") == "1" {
			body["sessionInfo"] = s.document()
		}
		s.Delivered = true
	case s.expired(now):
		status, msg = http.StatusBadRequest, msgExpired
	default:
		status, msg = http.StatusNotFound, msgNotFound
	}
	f.mu.Unlock()
	if status != 0 {
		f.uwlError(w, status, msg)
		return
	}
	if fl != nil {
		if fl.SessionID != "" {
			body["sessionId"] = fl.SessionID
		}
		if d, ok := body["data"].(string); ok && fl.Truncate {
			body["data"] = d[:len(d)/2]
		}
	}
	writeJSON(w, http.StatusOK, body)
}

// ApproveOptions bend what the simulated phone sends, for negative tests.
type ApproveOptions struct {
	// UserID replaces the wallet's user id in the user data.
	UserID string
	// OmitUserID leaves userid out (the account's first user id applies).
	OmitUserID bool
	// NoData sends an answer without data.
	NoData bool
	// NoDID leaves did out of the user data.
	NoDID bool
	// WrongRPKey encrypts to a key other than the session's relying party.
	WrongRPKey bool
	// DeviceKey answers with this key instead of the enrolled one (the poll's
	// publicKey then differs from the account's).
	DeviceKey *onekosmos.KeyPair
	// Late stores the answer even though the session has expired, with a
	// createdTS after expiryTS.
	Late bool
}

// ErrSessionClosed is returned by Approve for an unknown, answered or
// expired session.
var ErrSessionClosed = errors.New("fake1kosmos: session is closed")

// Approve makes the simulated phone answer UWL session id, as
// POST {sessions}/session/{id}/authenticate would: the user data
// {did, userid, …wallet.Data} encrypted under ECDH(device key, the
// session's relying-party key).
func (f *Fake) Approve(id string, wl *Wallet, o ApproveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.uwl[id]
	if s == nil || s.Answer != nil || s.Delivered {
		return ErrSessionClosed
	}
	now := f.cfg.Now()
	if s.expired(now) && !o.Late {
		return ErrSessionClosed
	}
	device := wl.Key
	if o.DeviceKey != nil {
		device = o.DeviceKey
	}
	rp, err := onekosmos.ParsePublicKey(s.RPKey)
	if err != nil {
		return err
	}
	if o.WrongRPKey {
		rp = mustKey().Public()
	}
	user := map[string]any{}
	for k, v := range wl.Data {
		user[k] = v
	}
	if !o.NoDID {
		user["did"] = wl.DID
	}
	switch {
	case o.UserID != "":
		user["userid"] = o.UserID
	case !o.OmitUserID:
		user["userid"] = wl.UserID
	}
	plain, _ := json.Marshal(user)
	data, err := onekosmos.Encrypt(device.SharedKey(rp), plain)
	if err != nil {
		return err
	}
	ial := wl.IAL
	if ial == "" {
		ial = "1"
	}
	created := now
	if o.Late && !s.expired(now) {
		created = time.Unix(s.ExpiryTS+1, 0)
	}
	ans := map[string]any{
		"sessionId": id, "appid": "com.onekosmos.kernel.blockid", "ial": ial,
		"publicKey": device.Public().String(), "createdTS": created.Unix(),
		"createdDate": created.UTC().Format("2006-01-02T15:04:05.000Z"), "eventData": "",
	}
	if !o.NoData {
		ans["data"] = data
	}
	s.Answer = ans
	return nil
}

func (f *Fake) sessionAuthenticate(w http.ResponseWriter, r *http.Request) {
	caller, _, err := f.authenticate(r, f.sessionsKey, false)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Unauthorized"})
		return
	}
	var req struct {
		Data      string `json:"data"`
		PublicKey string `json:"publicKey"`
		DID       string `json:"did"`
		AppID     string `json:"appid"`
		IAL       string `json:"ial"`
		EventData any    `json:"eventData"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Data == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "message": "data is required"})
		return
	}
	if req.PublicKey != caller.String() {
		writeJSON(w, http.StatusBadRequest, map[string]any{"status": 400, "message": "publicKey mismatch"})
		return
	}
	id := r.PathValue("id")
	now := f.cfg.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.uwl[id]
	switch {
	case s == nil || s.Answer != nil || s.Delivered:
		f.uwlError(w, http.StatusNotFound, msgNoExist)
		return
	case s.expired(now):
		f.uwlError(w, http.StatusBadRequest, msgExpired)
		return
	}
	s.Answer = map[string]any{
		"sessionId": id, "data": req.Data, "appid": req.AppID, "ial": req.IAL, "publicKey": req.PublicKey,
		"createdTS": now.Unix(), "createdDate": now.UTC().Format("2006-01-02T15:04:05.000Z"), "eventData": req.EventData,
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (f *Fake) userInfo(w http.ResponseWriter, r *http.Request) {
	fl := faultOf(r)
	if r.Header.Get("X-TenantTag") != f.tenantTag {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Unauthorized"})
		return
	}
	_, shared, err := f.authenticate(r, f.communityKey, true)
	if err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Invalid or Unauthorized License"})
		return
	}
	if r.PathValue("community") != f.cfg.Community {
		writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "message": "community not found"})
		return
	}
	f.mu.Lock()
	a := f.accounts[r.PathValue("did")]
	f.mu.Unlock()
	if a == nil {
		if f.cfg.UnknownDIDNotFound {
			writeJSON(w, http.StatusNotFound, map[string]any{"code": 404, "message": "user not found"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{})
		return
	}
	acct := map[string]any{
		"id": a.ID, "personId": a.PersonID, "userIdList": a.UserIDList, "communityId": f.communityID,
		"publicKey": a.PublicKey, "poi_ial": "", "pon_ial": "", "message": nil, "status": false,
	}
	if r.URL.Query().Get("devicelist") == "true" {
		acct["device"] = map[string]any{
			"uid": "c907298d53273143", "did": a.PersonID, "os": "android", "publickey": a.DevicePublicKey,
			"deviceName": "Fake phone", "authenticatorId": "com.onekosmos.kernel.blockid", "authenticatorName": "BlockID",
		}
	}
	plain, _ := json.Marshal(acct)
	key := shared
	if fl != nil && fl.WrongKey {
		key = mustKey().SharedKey(mustKey().Public())
	}
	data, err := onekosmos.Encrypt(key, plain)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func (f *Fake) event(w http.ResponseWriter, r *http.Request) {
	if _, _, err := f.authenticate(r, f.eventsKey, true); err != nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"code": 401, "message": "Unauthorized"})
		return
	}
	var req struct {
		Data string `json:"data"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	f.events = append(f.events, Event{Tenant: r.PathValue("tenant"), Community: r.PathValue("community"), Name: r.PathValue("name"), Data: req.Data})
	f.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// UWLSessions lists the UWL sessions that await an answer, for the demo page.
func (f *Fake) UWLSessions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now()
	var ids []string
	for id, s := range f.uwl {
		if s.Answer == nil && !s.expired(now) {
			ids = append(ids, id)
		}
	}
	return ids
}

// UWLSession returns the session document of id (for tests), or nil.
func (f *Fake) UWLSession(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.uwl[id]; s != nil {
		return s.document()
	}
	return nil
}

func (f *Fake) uwlHook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "approve":
		err = f.Approve(id, f.demoWallet, ApproveOptions{})
	case "decline":
		// UWL has no decline signal: the phone simply never answers.
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("cannot answer: %v", err), http.StatusConflict)
		return
	}
	http.Redirect(w, r, "/sessions/session/"+id, http.StatusSeeOther)
}
