package providers_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-idv/caddy-idv/internal/e2e"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
	"github.com/caddy-idv/caddy-idv/providers/onekosmos/fake1kosmos"
	"github.com/caddy-idv/caddy-idv/providers/uqudo/fakeuqudo"
)

// personalClaims are the claims that carry personal data; their values in
// the sessions of the completed logins must not be in the log either.
var personalClaims = []string{"name", "given_name", "family_name", "birthdate", "personal_code",
	"phone_number", "document_number", "national_id", "preferred_username", "email"}

// TestNoPersonalDataInLogs logs people in and out, and fails logins, with
// every provider kind against its fake, each configured with `claims` that
// put the personal claims in the tokens, at Caddy's debug level; then it
// scans everything Caddy logged (audit log, errors, debug lines) for the
// personal data the fakes used: names, personal codes, phone numbers,
// document numbers and birth dates.
func TestNoPersonalDataInLogs(t *testing.T) {
	marksign, err := fakemarksign.New(fakemarksign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	uqudo, err := fakeuqudo.New(fakeuqudo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	kosmos := fake1kosmos.New(fake1kosmos.Config{})
	mBlock, mEnv := marksignBlock(t, marksign, "claims name given_name family_name birthdate personal_code phone_number")
	uBlock, uEnv := uqudoBlock(t, uqudo, "claims name given_name family_name birthdate document_number national_id")
	kBlocks, kEnv := oneKosmosBlocks(t, kosmos,
		"claims name given_name family_name preferred_username email",
		"claims name given_name family_name birthdate document_number document_expiry document_issued")
	demo := `
		provider demo {
			user   "Ada Lovelace"
			claims name
		}`
	limit := `
		limit {
			per_address 100 1m
		}`
	inst := e2e.Start(t, idvSite(limit, demo, mBlock, uBlock, kBlocks), e2e.Options{
		Global: "debug",
		Env:    slices.Concat(mEnv, uEnv, kEnv),
	})

	// What the fakes know of the people below (the birth dates as the
	// tokens write them; the raw forms too where they are long enough not
	// to turn up by chance in a timestamp).
	personal := []string{"Ada Lovelace", "Lovelace"}
	for _, a := range fakemarksign.DefaultAccounts {
		personal = append(personal, a.Phone, strings.TrimPrefix(a.Phone, "+"), a.Code, a.Surname, a.GivenName+" "+a.Surname)
	}
	personal = append(personal, "60001017706", "2000-01-01") // a mistyped code; the accounts' birth date
	uqudoPerson := fakeuqudo.DefaultPerson
	uqudoPerson.IdentityNumber = "CSLMRA80M25H501X"
	personal = append(personal, uqudoPerson.GivenName, uqudoPerson.FamilyName, uqudoPerson.DocumentNumber,
		uqudoPerson.IdentityNumber, "1980-08-25")
	ada := fake1kosmos.NewWallet("ada.byron@example.com")
	ada.Data = map[string]any{"firstname": "Augusta", "lastname": "Byron"}
	mallory := fake1kosmos.NewWallet("mallory@example.com")
	mallory.Data = map[string]any{"firstname": "Mallory", "lastname": "Sorensen"}
	kosmos.Enroll(ada)
	kosmos.Enroll(mallory)
	personal = append(personal, ada.UserID, "Augusta", "Byron", mallory.UserID, "Sorensen")
	jane := fake1kosmos.DemoDocument()
	petra := fake1kosmos.Document{DocumentType: "dl_object", FirstName: "PETRA", LastName: "KOVALENKO",
		DocumentID: "DL7654321", Country: "EE", DOB: "19880314", DOE: "20310101", DOI: "20210101"}
	for _, d := range []fake1kosmos.Document{jane, petra} {
		personal = append(personal, d.FirstName+" "+d.LastName, d.DocumentID, d.DOB, d.DOB[:4]+"-"+d.DOB[4:6]+"-"+d.DOB[6:])
	}
	personal = append(personal, "KOVALENKO")

	// completed checks the session of a completed login: it holds the
	// personal claims (inToken among them), whose values join the list;
	// then it logs out.
	completed := func(t *testing.T, b *e2e.Browser, st e2e.Status, inToken ...string) {
		t.Helper()
		if st.State != "completed" {
			t.Fatalf("login: %+v", st)
		}
		code, _, body := b.Do(t, http.MethodGet, inst.URL+"/.idv/me", nil, nil)
		var claims map[string]any
		if code != http.StatusOK || json.Unmarshal(body, &claims) != nil {
			t.Fatalf("/me: %d %s", code, body)
		}
		for _, v := range inToken {
			if !strings.Contains(string(body), v) {
				t.Errorf("the session has no %q: %s", v, body)
			}
		}
		for _, c := range personalClaims {
			if v, ok := claims[c].(string); ok && len(v) >= 5 { // shorter ones could turn up by chance
				personal = append(personal, v)
			}
		}
		if code, _, body := b.Do(t, http.MethodPost, inst.URL+"/.idv/logout", nil, nil); code != http.StatusSeeOther {
			t.Fatalf("logout: %d %s", code, body)
		}
	}
	final := func(t *testing.T, b *e2e.Browser, s e2e.Started, want string) {
		t.Helper()
		if st := b.Poll(t, inst.URL, s, 15); st.State != want {
			t.Fatalf("got %+v, want %s", st, want)
		}
	}

	t.Run("demo", func(t *testing.T) {
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
		if code, _, body := e2e.NewBrowser().Do(t, http.MethodPost, s.QRText+"/approve", nil, nil); code != http.StatusSeeOther {
			t.Fatalf("approve: %d %s", code, body)
		}
		completed(t, b, b.Poll(t, inst.URL, s, 15), "Ada Lovelace")

		s = b.StartLogin(t, inst.URL, map[string]string{"provider": "demo"})
		if code, _, body := e2e.NewBrowser().Do(t, http.MethodPost, s.QRText+"/decline", nil, nil); code != http.StatusSeeOther {
			t.Fatalf("decline: %d %s", code, body)
		}
		final(t, b, s, "declined")
	})
	t.Run("marksign_mobileid", func(t *testing.T) {
		ee, lt := fakemarksign.DefaultAccounts[0], fakemarksign.DefaultAccounts[1]
		start := func(b *e2e.Browser) e2e.Started {
			return b.StartLogin(t, inst.URL, map[string]string{"provider": "marksign_mobileid", "phone": ee.Phone, "personal_code": ee.Code})
		}
		b := e2e.NewBrowser()
		s := start(b)
		if err := marksign.Approve(marksign.LastToken(), fakemarksign.Outcome{}); err != nil {
			t.Fatal(err)
		}
		completed(t, b, b.Poll(t, inst.URL, s, 15), ee.Code, ee.Phone, ee.Surname, "2000-01-01")

		s = start(b)
		if err := marksign.Refuse(marksign.LastToken()); err != nil {
			t.Fatal(err)
		}
		final(t, b, s, "declined")

		s = start(b)
		if err := marksign.Approve(marksign.LastToken(), fakemarksign.Outcome{CertificateOf: &lt}); err != nil {
			t.Fatal(err)
		}
		final(t, b, s, "failed")

		code, _, body := b.Do(t, http.MethodPost, inst.URL+"/.idv/sessions",
			strings.NewReader(`{"provider":"marksign_mobileid","phone":"`+ee.Phone+`","personal_code":"60001017706"}`),
			map[string]string{"Content-Type": "application/json"})
		if code != http.StatusBadRequest {
			t.Fatalf("mistyped personal code: %d %s", code, body)
		}
	})
	t.Run("uqudo", func(t *testing.T) {
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "uqudo"})
		id, _ := uqudo.LastSession()
		if err := uqudo.Complete(id, fakeuqudo.Result{Person: &uqudoPerson}); err != nil {
			t.Fatal(err)
		}
		completed(t, b, b.Poll(t, inst.URL, s, 15), uqudoPerson.FamilyName, uqudoPerson.DocumentNumber, uqudoPerson.IdentityNumber, "1980-08-25")

		s = b.StartLogin(t, inst.URL, map[string]string{"provider": "uqudo"})
		id, _ = uqudo.LastSession()
		if err := uqudo.Complete(id, fakeuqudo.Result{Person: &uqudoPerson, FaceMismatch: true}); err != nil {
			t.Fatal(err)
		}
		final(t, b, s, "failed")
	})
	t.Run("blockid", func(t *testing.T) {
		b := e2e.NewBrowser()
		s := b.StartLogin(t, inst.URL, map[string]string{"provider": "blockid"})
		if err := kosmos.Approve(uwlSession(t, s), ada, fake1kosmos.ApproveOptions{}); err != nil {
			t.Fatal(err)
		}
		completed(t, b, b.Poll(t, inst.URL, s, 15), ada.UserID, "Augusta", "Byron")

		s = b.StartLogin(t, inst.URL, map[string]string{"provider": "blockid"})
		if err := kosmos.Approve(uwlSession(t, s), mallory, fake1kosmos.ApproveOptions{WrongRPKey: true}); err != nil {
			t.Fatal(err)
		}
		final(t, b, s, "failed")
	})
	t.Run("onekosmos_idv", func(t *testing.T) {
		submit := func(b *e2e.Browser, doc fake1kosmos.Document) e2e.Started {
			s := b.StartLogin(t, inst.URL, map[string]string{"provider": "onekosmos_idv"})
			sid := captureSession(t, s)
			if err := kosmos.Consent(sid); err != nil {
				t.Fatal(err)
			}
			if err := kosmos.Submit(sid, doc); err != nil {
				t.Fatal(err)
			}
			return s
		}
		b := e2e.NewBrowser()
		s := submit(b, jane)
		completed(t, b, b.Poll(t, inst.URL, s, 15), jane.DocumentID, "1994-11-29", jane.LastName)

		s = submit(b, petra) // a driving licence where a passport was asked for
		final(t, b, s, "failed")

		s = b.StartLogin(t, inst.URL, map[string]string{"provider": "onekosmos_idv"})
		if err := kosmos.Decline(captureSession(t, s)); err != nil {
			t.Fatal(err)
		}
		final(t, b, s, "declined")
	})

	logs := inst.Logs()
	events := inst.AuditEvents()
	for _, ev := range []string{"login_started", "login_completed", "login_declined", "login_failed", "logout"} {
		if !slices.ContainsFunc(events, func(e map[string]any) bool { return e["msg"] == ev }) {
			t.Errorf("no %s event in the audit log: the scan would prove little", ev)
		}
	}
	if !strings.Contains(logs, `"level":"debug"`) {
		t.Error("no debug line in the log: the scan would miss what debug logs")
	}
	slices.Sort(personal)
	for _, p := range slices.Compact(personal) {
		if len(p) < 5 {
			t.Fatalf("%q is too short to search for", p)
		}
		if strings.Contains(logs, p) {
			t.Errorf("the log holds %q", p)
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, p) {
					t.Logf("  %s", line)
				}
			}
		}
	}
}
