// Package providers_test logs a person in through a real Caddy with each
// real provider kind, against the provider's fake service: the Caddyfile is
// the one an operator would write, with base_url pointing at the fake.
package providers_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos/fake1kosmos"
	"github.com/caddy-idv/caddy-idv/providers/uqudo/fakeuqudo"
)

const welcome = `respond "welcome {http.auth.user.name} sub={http.auth.user.id} acr={http.auth.user.acr} idv={http.auth.user.idv}"`

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// idvSite is an idv block holding the given provider blocks in front of
// the welcome page.
func idvSite(blocks ...string) string {
	return "\n\tidv {" + strings.Join(blocks, "") + "\n\t}\n\t" + welcome
}

// startCaddy runs Caddy with idvSite(blocks...); env is the environment
// the blocks' placeholders need.
func startCaddy(t *testing.T, env []string, blocks ...string) *e2e.Instance {
	t.Helper()
	return e2e.Start(t, idvSite(blocks...), e2e.Options{Env: env})
}

// marksignBlock serves fake and returns the marksign_mobileid block that
// uses it, with the extra option lines, and the environment holding its
// access token.
func marksignBlock(t *testing.T, fake *fakemarksign.Server, extra string) (string, []string) {
	t.Helper()
	base := serve(t, fake)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, fake.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return `
		provider marksign_mobileid {
			base_url     ` + base + `
			access_token {env.MARKSIGN_TOKEN}
			trusted_ca   ` + ca + `
			` + extra + `
		}`, []string{"MARKSIGN_TOKEN=" + fake.AccessToken()}
}

// uqudoBlock serves fake and returns the uqudo block that uses it, with the
// extra option lines, and the environment holding its client secret.
func uqudoBlock(t *testing.T, fake *fakeuqudo.Server, extra string) (string, []string) {
	t.Helper()
	base := serve(t, fake)
	return `
		provider uqudo {
			base_url      ` + base + `
			client_id     ` + fake.ClientID() + `
			client_secret {env.UQUDO_SECRET}
			` + extra + `
		}`, []string{"UQUDO_SECRET=" + fake.ClientSecret()}
}

// oneKosmosBlocks serves fake and returns the blockid and onekosmos_idv
// blocks that use it, each with its extra option lines, and the environment
// holding the licence key.
func oneKosmosBlocks(t *testing.T, fake *fake1kosmos.Fake, blockidExtra, idvExtra string) (string, []string) {
	t.Helper()
	base := serve(t, fake)
	cfg := fake.Config()
	return `
		provider blockid {
			base_url    ` + base + `
			dns         ` + cfg.DNS + `
			community   ` + cfg.Community + `
			license_key {env.LICENSE}
			scopes      firstname lastname
			` + blockidExtra + `
		}
		provider onekosmos_idv {
			base_url      ` + base + `
			dns           ` + cfg.DNS + `
			community     ` + cfg.Community + `
			license_key   {env.LICENSE}
			dvc_id        ` + cfg.DvcIDs[0] + `
			document_type ppt_object
			` + idvExtra + `
		}`, []string{"LICENSE=" + cfg.LicenseKey}
}

// uwlSession is the UWL session id in the QR text of a blockid login.
func uwlSession(t *testing.T, s e2e.Started) string {
	t.Helper()
	i := strings.LastIndex(s.QRText, "/session/")
	if i < 0 {
		t.Fatalf("QR text is not a UWL session URL: %q", s.QRText)
	}
	return s.QRText[i+len("/session/"):]
}

// captureSession is the IDV session id in the deep link of an
// onekosmos_idv login.
func captureSession(t *testing.T, s e2e.Started) string {
	t.Helper()
	i := strings.LastIndex(s.DeepLink, "/idproofing/session/")
	if i < 0 {
		t.Fatalf("deep link is not a capture URL: %q", s.DeepLink)
	}
	return s.DeepLink[i+len("/idproofing/session/"):]
}

// finish polls until the login is final and, when completed, fetches the
// protected page.
func finish(t *testing.T, inst *e2e.Instance, b *e2e.Browser, s e2e.Started) (e2e.Status, string) {
	t.Helper()
	st := b.Poll(t, inst.URL, s, 15)
	if st.State != "completed" {
		return st, ""
	}
	code, _, body := b.Do(t, http.MethodGet, inst.URL+"/", nil, nil)
	if code != 200 {
		t.Fatalf("protected page after login: %d %s", code, body)
	}
	return st, string(body)
}

func TestMarksignMobileID(t *testing.T) {
	fake, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	block, env := marksignBlock(t, fake, `message "Log in to Example"
			claims  name given_name family_name`)
	inst := startCaddy(t, env, block)
	ee := fakemarksign.DefaultAccounts[0]

	t.Run("login", func(t *testing.T) {
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "marksign_mobileid", "phone": ee.Phone, "personal_code": ee.Code})
		if len(s.ControlCode) != 4 || s.QRText != "" {
			t.Fatalf("start: %+v", s)
		}
		if err := fake.Approve(fake.LastToken(), fakemarksign.Outcome{}); err != nil {
			t.Fatal(err)
		}
		st, page := finish(t, inst, b, s)
		if st.State != "completed" || !strings.Contains(page, "welcome TEN TESTNUMBER sub=marksign:") || strings.Contains(page, ee.Code) {
			t.Fatalf("%+v %q", st, page)
		}
	})
	t.Run("bad personal code is a 400 naming the field", func(t *testing.T) {
		b := e2e.NewBrowser()
		code, _, body := b.Do(t, http.MethodPost, inst.URL+"/.idv/sessions",
			strings.NewReader(`{"provider":"marksign_mobileid","phone":"+37269000366","personal_code":"60001017706"}`),
			map[string]string{"Content-Type": "application/json"})
		if code != 400 || !strings.Contains(string(body), `"field":"personal_code"`) {
			t.Fatalf("%d %s", code, body)
		}
	})
	t.Run("refused on the phone", func(t *testing.T) {
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "marksign_mobileid", "phone": ee.Phone, "personal_code": ee.Code})
		if err := fake.Refuse(fake.LastToken()); err != nil {
			t.Fatal(err)
		}
		if st, _ := finish(t, inst, b, s); st.State != "declined" || st.Error == "" {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("certificate of another person", func(t *testing.T) {
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "marksign_mobileid", "phone": ee.Phone, "personal_code": ee.Code})
		other := fakemarksign.DefaultAccounts[1]
		if err := fake.Approve(fake.LastToken(), fakemarksign.Outcome{CertificateOf: &other}); err != nil {
			t.Fatal(err)
		}
		if st, _ := finish(t, inst, b, s); st.State != "failed" {
			t.Fatalf("%+v", st)
		}
	})
	if strings.Contains(inst.Logs(), ee.Code) || strings.Contains(inst.Logs(), ee.Phone) || strings.Contains(inst.Logs(), fake.AccessToken()) {
		t.Fatal("Caddy's log holds a personal code, a phone number or the access token")
	}
}

func TestUqudo(t *testing.T) {
	fake, err := fakeuqudo.New(fakeuqudo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	block, env := uqudoBlock(t, fake, "")
	inst := startCaddy(t, env, block)

	cases := []struct {
		name   string
		result fakeuqudo.Result
		want   string
	}{
		{"chip and face", fakeuqudo.Result{}, "completed"},
		{"jti of another session", fakeuqudo.Result{JTI: "8d1e4c52-7a4e-4a34-9b1a-0e6c1c7f0a11"}, "failed"},
		{"expired result", fakeuqudo.Result{IssuedAt: time.Now().Add(-3 * time.Hour), Lifetime: time.Hour}, "expired"},
		{"alg none", fakeuqudo.Result{Alg: "none"}, "failed"},
		{"tampered", fakeuqudo.Result{Tamper: true}, "failed"},
		{"face mismatch", fakeuqudo.Result{FaceMismatch: true}, "failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := e2e.NewBrowser()
			s := b.StartLogin(t, inst.URL, map[string]string{"provider": "uqudo"})
			if s.QRText == "" || s.QRSVGURL == "" {
				t.Fatalf("start: %+v", s)
			}
			id, _ := fake.LastSession()
			if err := fake.Complete(id, tc.result); err != nil {
				t.Fatal(err)
			}
			st, page := finish(t, inst, b, s)
			if st.State != tc.want {
				t.Fatalf("%+v", st)
			}
			if tc.want == "completed" && (!strings.Contains(page, "welcome MARIO CASOLA sub=uqudo:") || strings.Contains(page, "YA1234567")) {
				t.Fatalf("page %q", page)
			}
			if tc.want != "completed" && st.Error == "" {
				t.Fatalf("failed without a message: %+v", st)
			}
		})
	}
}

func TestOneKosmos(t *testing.T) {
	fake := fake1kosmos.New(fake1kosmos.Config{})
	blocks, env := oneKosmosBlocks(t, fake, "claims name given_name family_name preferred_username", "claims name given_name family_name birthdate")
	cfg := fake.Config()
	inst := startCaddy(t, env, blocks)

	t.Run("blockid", func(t *testing.T) {
		wallet := fake1kosmos.NewWallet("ada@example.com")
		fake.Enroll(wallet)
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "blockid"})
		if err := fake.Approve(uwlSession(t, s), wallet, fake1kosmos.ApproveOptions{}); err != nil {
			t.Fatal(err)
		}
		st, page := finish(t, inst, b, s)
		if st.State != "completed" || !strings.Contains(page, "sub=blockid:") || !strings.Contains(page, "idv=blockid") {
			t.Fatalf("%+v %q", st, page)
		}
	})
	t.Run("blockid answer for another relying party key", func(t *testing.T) {
		wallet := fake1kosmos.NewWallet("eve@example.com")
		fake.Enroll(wallet)
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "blockid"})
		if err := fake.Approve(uwlSession(t, s), wallet, fake1kosmos.ApproveOptions{WrongRPKey: true}); err != nil {
			t.Fatal(err)
		}
		if st, _ := finish(t, inst, b, s); st.State != "failed" {
			t.Fatalf("%+v", st)
		}
	})
	t.Run("onekosmos_idv", func(t *testing.T) {
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "onekosmos_idv"})
		sid := captureSession(t, s)
		if err := fake.Consent(sid); err != nil {
			t.Fatal(err)
		}
		if st := b.Poll(t, inst.URL, s, 0); st.State != "pending" {
			t.Fatalf("in progress: %+v", st)
		}
		if err := fake.Submit(sid, fake1kosmos.DemoDocument()); err != nil {
			t.Fatal(err)
		}
		st, page := finish(t, inst, b, s)
		if st.State != "completed" || !strings.Contains(page, "sub=onekosmos_idv:") {
			t.Fatalf("%+v %q", st, page)
		}
	})
	t.Run("onekosmos_idv declined", func(t *testing.T) {
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "onekosmos_idv"})
		if err := fake.Decline(captureSession(t, s)); err != nil {
			t.Fatal(err)
		}
		if st, _ := finish(t, inst, b, s); st.State != "declined" {
			t.Fatalf("%+v", st)
		}
	})
	if strings.Contains(inst.Logs(), cfg.LicenseKey) {
		t.Fatal("Caddy's log holds the licence key")
	}
}
