package fake1kosmos

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
)

// proofSecret is the fake's HS256 key for document.proof_jwt. The relying
// party cannot verify the real one either.
var proofSecret = []byte("fake1kosmos proof_jwt secret")

// IDV session states of the fake.
const (
	idvPending    = "PENDING"
	idvInProgress = "INPROGRESS"
	idvCompleted  = "COMPLETED"
	idvDeclined   = "DECLINED"
	idvAbandoned  = "ABANDONED"
)

// Document is what the simulated person scans (and the verdict).
type Document struct {
	// DocumentType overrides sessionData.documentType in the answer
	// (default: the type the session was created for).
	DocumentType string
	FirstName    string
	LastName     string
	DocumentID   string
	Country      string
	DOB          string // YYYYMMDD
	DOE          string // YYYYMMDD
	DOI          string
	Gender       string // "1" male, "2" female
	// Street, City, State, ZipCode are driver's licence fields.
	Street, City, State, ZipCode string
	// Selfie adds face_compare and selfie_liveness checks; SelfieFailed
	// marks them not verified.
	Selfie       bool
	SelfieFailed bool
}

// DemoDocument is a synthetic passport.
func DemoDocument() Document {
	return Document{FirstName: "JANE", LastName: "DOE", DocumentID: "X1234567", Country: "EE",
		DOB: "19941129", DOE: "20340604", DOI: "20240605", Gender: "2", Selfie: true}
}

type idvSession struct {
	ID, DvcID, DocType string
	User               map[string]any
	Created, Expires   time.Time
	State              string
	Result             map[string]any // the final answer with PII
	Failed             bool
	CompletedAt        time.Time
	PIIServed          bool
}

func (f *Fake) idvState(s *idvSession, now time.Time) string {
	if (s.State == idvPending || s.State == idvInProgress) && !now.Before(s.Expires) {
		return "EXPIRED"
	}
	return s.State
}

func (f *Fake) idvCreate(w http.ResponseWriter, r *http.Request) {
	_, shared, plain, ok := f.openBody(w, r)
	if !ok {
		return
	}
	var req struct {
		DvcID          string `json:"dvcID"`
		SessionRequest struct {
			TenantDNS     string         `json:"tenantDNS"`
			CommunityName string         `json:"communityName"`
			DocumentType  string         `json:"documentType"`
			User          map[string]any `json:"user"`
			UserUID       string         `json:"userUID"`
			DID           string         `json:"did"`
		} `json:"sessionRequest"`
	}
	if err := json.Unmarshal(plain, &req); err != nil {
		codeError(w, http.StatusBadRequest, "data is not JSON")
		return
	}
	sr := req.SessionRequest
	switch {
	case req.DvcID == "":
		codeError(w, http.StatusBadRequest, "dvcID is required")
		return
	case !slices.Contains(f.cfg.DvcIDs, req.DvcID):
		codeError(w, http.StatusNotFound, "Not Found")
		return
	case sr.TenantDNS != f.cfg.DNS || sr.CommunityName != f.cfg.Community:
		codeError(w, http.StatusBadRequest, "Unable to load tenant/community")
		return
	case !slices.Contains([]string{"dl_object", "ppt_object", "idcard_object"}, sr.DocumentType):
		codeError(w, http.StatusBadRequest, "documentType is invalid")
		return
	}
	user := sr.User
	if user == nil && sr.UserUID != "" {
		user = map[string]any{"uid": sr.UserUID}
	}
	now := f.cfg.Now()
	s := &idvSession{ID: onekosmos.NewUUID(), DvcID: req.DvcID, DocType: sr.DocumentType, User: user,
		Created: now, Expires: now.Add(f.cfg.IDVTTL), State: idvPending}
	f.mu.Lock()
	f.idv[s.ID] = s
	f.mu.Unlock()
	ans := map[string]string{"sessionId": s.ID, "url": origin(r) + "/idproofing/session/" + s.ID}
	if f.cfg.EncryptCreate {
		raw, _ := json.Marshal(ans)
		data, err := onekosmos.Encrypt(shared, raw)
		if err != nil {
			codeError(w, http.StatusInternalServerError, "encrypt")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"data": data})
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

func (f *Fake) idvResult(w http.ResponseWriter, r *http.Request) {
	fl := faultOf(r)
	caller, shared, plain, ok := f.openBody(w, r)
	if !ok {
		return
	}
	var req struct {
		DvcID     string `json:"dvcID"`
		SessionID string `json:"sessionId"`
		SessionId string `json:"sessionID"` //nolint:revive // the Responses page's spelling (docs/providers/onekosmos_idv.md, step V2)
	}
	if err := json.Unmarshal(plain, &req); err != nil {
		codeError(w, http.StatusBadRequest, "data is not JSON")
		return
	}
	if req.DvcID == "" {
		codeError(w, http.StatusBadRequest, "dvcID is not allowed to be empty")
		return
	}
	if req.SessionID == "" {
		req.SessionID = req.SessionId
	}
	now := f.cfg.Now()
	f.mu.Lock()
	s := f.idv[req.SessionID]
	if s == nil || s.DvcID != req.DvcID {
		f.mu.Unlock()
		codeError(w, http.StatusNotFound, "session not found")
		return
	}
	ans := f.idvAnswer(s, now)
	f.mu.Unlock()
	if fl != nil && fl.SessionID != "" {
		for _, k := range []string{"sessionId", "id", "sessionID"} {
			if _, ok := ans[k]; ok {
				ans[k] = fl.SessionID
			}
		}
	}
	raw, _ := json.Marshal(ans)
	// The v3 answer is encrypted to the caller's key under the service key
	// it names in publicKey.
	key, pub := shared, f.docuverifyKey.Public()
	if fl != nil && fl.WrongKey {
		other := mustKey()
		key, pub = other.SharedKey(caller), other.Public()
	}
	data, err := onekosmos.Encrypt(key, raw)
	if err != nil {
		codeError(w, http.StatusInternalServerError, "encrypt")
		return
	}
	if fl != nil && fl.Truncate {
		data = data[:len(data)/2]
	}
	writeJSON(w, http.StatusOK, map[string]string{"data": data, "publicKey": pub.String()})
}

// idvAnswer builds the decrypted poll answer; f.mu is held.
func (f *Fake) idvAnswer(s *idvSession, now time.Time) map[string]any {
	st := f.idvState(s, now)
	switch st {
	case idvPending, idvInProgress:
		if f.cfg.InProgressSessionResult {
			label := "In Progress"
			if st == idvPending {
				label = "Pending"
			}
			return map[string]any{"sessionResult": label, "sessionID": s.ID}
		}
		return map[string]any{"responseStatus": st, "id": s.ID}
	case idvCompleted:
	default:
		return map[string]any{"responseStatus": st, "id": s.ID}
	}
	ans := map[string]any{}
	for k, v := range s.Result {
		ans[k] = v
	}
	pii := false
	switch f.cfg.PII {
	case PIIOnce:
		pii = !s.PIIServed
	case PIIKeep:
		pii = now.Before(s.CompletedAt.Add(7 * 24 * time.Hour))
	case PIIFor:
		pii = now.Before(s.CompletedAt.Add(f.cfg.PIIRetention))
	}
	s.PIIServed = true
	if !pii {
		delete(ans, "document")
		delete(ans, "extractedInfo")
		if sd, ok := ans["sessionData"].(map[string]any); ok {
			ans["sessionData"] = map[string]any{"documentType": sd["documentType"]}
		}
	}
	return ans
}

func (f *Fake) withIDV(id string, fn func(s *idvSession, now time.Time) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.idv[id]
	now := f.cfg.Now()
	if s == nil || !fn(s, now) {
		return ErrSessionClosed
	}
	return nil
}

func open(s *idvSession, now time.Time) bool {
	return (s.State == idvPending || s.State == idvInProgress) && now.Before(s.Expires)
}

// Consent is the person ticking the consent box ("Let's get started").
func (f *Fake) Consent(id string) error {
	return f.withIDV(id, func(s *idvSession, now time.Time) bool {
		if !open(s, now) {
			return false
		}
		s.State = idvInProgress
		return true
	})
}

// Decline is the person pressing Decline on the welcome screen.
func (f *Fake) Decline(id string) error {
	return f.withIDV(id, func(s *idvSession, now time.Time) bool {
		if !open(s, now) {
			return false
		}
		s.State = idvDeclined
		return true
	})
}

// Abandon marks the session abandoned (a server-side state).
func (f *Fake) Abandon(id string) error {
	return f.withIDV(id, func(s *idvSession, now time.Time) bool {
		if !open(s, now) {
			return false
		}
		s.State = idvAbandoned
		return true
	})
}

// Submit is the person submitting doc; the verification succeeds.
func (f *Fake) Submit(id string, doc Document) error {
	return f.withIDV(id, func(s *idvSession, now time.Time) bool {
		if s.State != idvInProgress || !now.Before(s.Expires) {
			return false
		}
		s.State, s.CompletedAt = idvCompleted, now
		s.Result = successAnswer(s, doc, now)
		return true
	})
}

// Fail is the person submitting a document that fails verification with
// reason and code (e.g. "IDV0006"); camel selects the reasonCode spelling
// over reason_code.
func (f *Fake) Fail(id, reason, code string, camel bool) error {
	return f.withIDV(id, func(s *idvSession, now time.Time) bool {
		if s.State != idvInProgress || !now.Before(s.Expires) {
			return false
		}
		s.State, s.CompletedAt, s.Failed = idvCompleted, now, true
		ei := map[string]any{"status": 400, "message": reason, "reason": reason}
		if camel {
			ei["reasonCode"] = code
			ei["ts"] = now.UnixMilli()
		} else {
			ei["reason_code"] = code
		}
		s.Result = map[string]any{"sessionResult": "FAILED", "sessionId": s.ID,
			"sessionData":   map[string]any{"user": s.User, "documentType": s.DocType},
			"extractedInfo": map[string]any{}, "errorInfo": ei}
		return true
	})
}

func hash512(s string) any {
	if s == "" {
		return nil
	}
	h := sha512.Sum512([]byte(s))
	return hex.EncodeToString(h[:])
}

func successAnswer(s *idvSession, doc Document, now time.Time) map[string]any {
	docType := doc.DocumentType
	if docType == "" {
		docType = s.DocType
	}
	kind := map[string]string{"ppt_object": "PASSPORT", "dl_object": "DRIVERS_LICENSE", "idcard_object": "ID_CARD"}[s.DocType]
	short := map[string]string{"ppt_object": "ppt", "dl_object": "dl", "idcard_object": "idcard"}[s.DocType]
	checks := []string{"fraud_detection", "session_decision", "session_summary", "document_liveness_front"}
	if doc.Selfie {
		checks = append(checks, "face_compare", "selfie_liveness")
	}
	result := map[string]any{}
	for _, c := range checks {
		ok := true
		if doc.SelfieFailed && (c == "face_compare" || c == "selfie_liveness") {
			ok = false
		}
		result[c] = map[string]bool{"verified": ok}
	}
	proof := map[string]any{
		"version": "1.0",
		"document": map[string]any{"type": short, "documentId": doc.DocumentID, "doe": doc.DOE,
			"hashes": map[string]any{"id": hash512(doc.DocumentID), "firstName": hash512(doc.FirstName),
				"lastName": hash512(doc.LastName), "country": hash512(doc.Country), "dob": hash512(doc.DOB),
				"doi": hash512(doc.DOI), "zipCode": hash512(doc.ZipCode), "state": hash512(doc.State)}},
		"checks": checks, "result": result, "connector": map[string]string{"id": "fake"},
		"aud": "https://fake.1kosmos.net", "iss": "https://fake.1kosmos.net/idproofing",
		"jit": onekosmos.NewUUID(), "ts": now.Unix(), "iat": now.Unix(),
	}
	d := map[string]any{
		"category": "identity_document", "proofedBy": hash512("fake"), "documentType": kind, "type": short,
		"country": doc.Country, "image": "ZmFrZQ==", "face": "ZmFrZQ==",
		"documentId": doc.DocumentID, "id": doc.DocumentID, "firstName": doc.FirstName,
		"familyName": doc.LastName, "lastName": doc.LastName, "fullName": doc.FirstName + " " + doc.LastName,
		"dob": doc.DOB, "doe": doc.DOE, "doi": doc.DOI, "gender": doc.Gender, "state": "NONE",
		"proof_jwt": hs256(proof),
	}
	if s.DocType != "ppt_object" {
		d["imageBack"] = "ZmFrZQ=="
	}
	if doc.Street != "" {
		d["street"], d["city"], d["state"], d["zipCode"] = doc.Street, doc.City, doc.State, doc.ZipCode
	}
	return map[string]any{
		"sessionResult": "SUCCESS", "sessionId": s.ID,
		"sessionData": map[string]any{"user": s.User, "documentType": docType},
		"extractedInfo": map[string]any{"documentType": kind, "documentId": doc.DocumentID,
			"firstName": doc.FirstName, "lastName": doc.LastName, "doe": doc.DOE},
		"document": d,
	}
}

func hs256(payload any) string {
	enc := base64.RawURLEncoding
	p, _ := json.Marshal(payload)
	in := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(p)
	m := hmac.New(sha256.New, proofSecret)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

// IDVSessionURL returns the capture URL path of an ID-verification session.
func IDVSessionURL(id string) string { return "/idproofing/session/" + id }

// IDVSessions lists ID-verification session ids, for tests.
func (f *Fake) IDVSessions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.idv {
		ids = append(ids, id)
	}
	return ids
}

// IDVUser returns the user object the session was created with.
func (f *Fake) IDVUser(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.idv[id]; s != nil {
		return s.User
	}
	return nil
}

func (f *Fake) idvHook(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "consent":
		err = f.Consent(id)
	case "submit":
		err = f.Submit(id, DemoDocument())
	case "fail":
		err = f.Fail(id, "Unsupported document was presented", "IDV0006", true)
	case "decline":
		err = f.Decline(id)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, "cannot do that now: "+err.Error(), http.StatusConflict)
		return
	}
	http.Redirect(w, r, IDVSessionURL(id), http.StatusSeeOther)
}

// openBody authenticates a docuverify call (licence and request id headers)
// and decrypts its {"data": ...} body, answering the service's errors
// itself when it cannot.
func (f *Fake) openBody(w http.ResponseWriter, r *http.Request) (caller onekosmos.PublicKey, shared [32]byte, plain []byte, ok bool) {
	caller, shared, err := f.authenticate(r, f.docuverifyKey, true)
	if err != nil {
		codeError(w, http.StatusUnauthorized, "Unauthorized")
		return caller, shared, nil, false
	}
	var wire struct {
		Data string `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&wire); err != nil {
		codeError(w, http.StatusBadRequest, "data is required")
		return caller, shared, nil, false
	}
	plain, err = onekosmos.Decrypt(shared, wire.Data)
	if err != nil {
		codeError(w, http.StatusBadRequest, "data can't be decrypted")
		return caller, shared, nil, false
	}
	return caller, shared, plain, true
}
