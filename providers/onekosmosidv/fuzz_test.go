package onekosmosidv

import (
	"encoding/json"
	"testing"

	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
)

// FuzzDecodeAnswer feeds arbitrary wire bodies and decrypted plaintexts
// through the v3 decoders and the judging of a result: no panic, and no
// state other than the module's.
func FuzzDecodeAnswer(f *testing.F) {
	me, _ := onekosmos.GenerateKey()
	svc, _ := onekosmos.GenerateKey()
	key := me.SharedKey(svc.Public())
	f.Add([]byte(`{"data":"AAAA","publicKey":"x"}`), []byte(`{"responseStatus":"INPROGRESS","id":"s"}`))
	f.Add([]byte(`{}`), []byte(`{"sessionResult":"SUCCESS","sessionId":"s","document":{"documentId":"1","dob":"19990101","proof_jwt":"a.eyJyZXN1bHQiOnt9fQ.c"}}`))
	f.Add([]byte(`[]`), []byte(`{"sessionResult":"FAILED","sessionId":"s","errorInfo":{"reason":"x"}}`))
	f.Fuzz(func(t *testing.T, wire, plain []byte) {
		_, _ = decodeAnswer(me, svc.Public(), wire)
		data, err := onekosmos.Encrypt(key, plain)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"data": data, "publicKey": svc.Public().String()})
		r, reason := decodeAnswer(me, svc.Public(), body)
		if reason != "" {
			return
		}
		p := &provider{env: testEnv(), docType: "ppt_object", listed: map[string]bool{"address": true, "document_number": true}, subKey: make([]byte, 32), prefix: "f/"}
		if r.Document != nil {
			_ = p.identity(r, true, state{SessionID: "s"})
			_ = proofChecks(r.Document.ProofJWT)
		}
		_ = norm(r.SessionResult + r.ResponseStatus)
		_ = printable(string(plain), 50)
		_, _ = parseCreated(key, plain)
	})
}
