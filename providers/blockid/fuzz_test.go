package blockid

import (
	"encoding/json"
	"testing"

	"github.com/caddy-idv/caddy-idv/providers/onekosmos"
)

// FuzzAnswer feeds arbitrary poll bodies and user-data plaintexts through
// the answer decoders: they must never panic, and whatever they accept has
// a non-empty DID.
func FuzzAnswer(f *testing.F) {
	rp, _ := onekosmos.GenerateKey()
	dev, _ := onekosmos.GenerateKey()
	key := rp.SharedKey(dev.Public())
	f.Add([]byte(`{"sessionId":"s","data":"AAAA","publicKey":"x","createdTS":1667808572,"ial":"1"}`), []byte(`{"did":"d","userid":"u"}`))
	f.Add([]byte(`{"data":1}`), []byte(`{"did":5}`))
	f.Add([]byte(`null`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, body, user []byte) {
		if ans, err := parseAnswer(body); err == nil {
			_ = epochSeconds(ans.CreatedTS)
			_ = ialString(ans.IAL)
			_, _ = onekosmos.ParsePublicKey(ans.PublicKey)
			_, _ = decryptUser(key, ans.Data)
		}
		data, err := onekosmos.Encrypt(key, user)
		if err != nil {
			t.Fatal(err)
		}
		if u, err := decryptUser(key, data); err == nil {
			if did, _ := u["did"].(string); did == "" {
				t.Fatal("accepted user data without did")
			}
		}
		var acct account
		_ = json.Unmarshal(user, &acct)
	})
}
