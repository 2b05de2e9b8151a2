package uqudo

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/caddy-idv/caddy-idv/providers"
)

// defaultClaims go into tokens when the operator lists none. Document data
// (number, type, issuer, expiry) and national identifiers are never among
// them (docs/reference.md, "Tokens").
var defaultClaims = []string{"name", "given_name", "family_name", "birthdate"}

// ACR values (docs/providers/uqudo.md, "Identity claims"): a chip read is
// passive authentication of data
// signed by the issuing state; a scan is OCR of the printed page.
const (
	acrChip = "urn:idv:uqudo:chip"
	acrScan = "urn:idv:uqudo:scan"
)

// result is the part of the result payload (docs/providers/uqudo.md, "The
// result payload") the provider reads.
// Unknown fields are ignored: they vary by country and document.
type result struct {
	Documents []document `json:"documents"`
}

type document struct {
	DocumentType string `json:"documentType"`
	Scan         struct {
		Front fields `json:"front"`
		Back  fields `json:"back"`
	} `json:"scan"`
	Reading struct {
		Data struct {
			MRZ struct {
				PrimaryIdentifier   string `json:"primaryIdentifier"`
				SecondaryIdentifier string `json:"secondaryIdentifier"`
				DateOfBirth         string `json:"dateOfBirth"`
				Gender              string `json:"gender"`
				Nationality         string `json:"nationality"`
				DocumentNumber      string `json:"documentNumber"`
				IssuingState        string `json:"issuingState"`
				DateOfExpiry        string `json:"dateOfExpiry"`
			} `json:"mrz"`
		} `json:"data"`
	} `json:"reading"`
	Face *struct {
		Match      bool `json:"match"`
		MatchLevel int  `json:"matchLevel"`
	} `json:"face"`
}

type fields struct {
	PrimaryID            string `json:"primaryId"`
	SecondaryID          string `json:"secondaryId"`
	FullName             string `json:"fullName"`
	DateOfBirth          string `json:"dateOfBirth"`
	DateOfBirthFormatted string `json:"dateOfBirthFormatted"`
	DateOfExpiry         string `json:"dateOfExpiry"`
	Sex                  string `json:"sex"`
	Nationality          string `json:"nationality"`
	Issuer               string `json:"issuer"`
	DocumentNumber       string `json:"documentNumber"`
	IdentityNumber       string `json:"identityNumber"`
}

// parseResult decodes the data claim of a verified result.
func parseResult(data any) (*result, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	var r result
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// identity maps verified claims to an Identity (docs/providers/uqudo.md,
// "Identity claims"), or says why
// the result does not meet the configuration. The reason names no personal
// data: it goes to the operator log.
func (p *provider) identity(c jwt.MapClaims) (*providers.Result, string) {
	r, err := parseResult(c["data"])
	if err != nil || len(r.Documents) == 0 {
		return nil, "result has no document"
	}
	d := r.Documents[0]
	if len(p.cfg.Documents) > 0 && !slices.Contains(p.cfg.Documents, docConfig{d.DocumentType}) {
		return nil, "document type was not requested"
	}
	faceOK := d.Face != nil && d.Face.Match
	if p.cfg.FacialRecognition.Enabled && !faceOK {
		return nil, "face did not match"
	}

	f := d.Scan.Front
	mrz := d.Reading.Data.MRZ
	chip := mrz.DocumentNumber != ""
	// The chip's data is signed by the issuing state; prefer it to OCR.
	family := first(mrz.PrimaryIdentifier, f.PrimaryID, d.Scan.Back.PrimaryID)
	given := first(mrz.SecondaryIdentifier, f.SecondaryID, d.Scan.Back.SecondaryID)
	docNumber := first(mrz.DocumentNumber, f.DocumentNumber, d.Scan.Back.DocumentNumber)
	issuer := first(mrz.IssuingState, f.Issuer, d.Scan.Back.Issuer)
	nationality := first(mrz.Nationality, f.Nationality, d.Scan.Back.Nationality)
	identityNumber := first(f.IdentityNumber, d.Scan.Back.IdentityNumber)
	now := p.env.Now()

	all := map[string]any{}
	put := func(k string, v string) {
		if v != "" {
			all[k] = v
		}
	}
	put("family_name", cleanName(family))
	put("given_name", cleanName(given))
	name := cleanName(first(f.FullName, d.Scan.Back.FullName))
	if name == "" {
		name = strings.TrimSpace(cleanName(given) + " " + cleanName(family))
	}
	put("name", name)
	put("birthdate", birthdate(first(f.DateOfBirthFormatted, d.Scan.Back.DateOfBirthFormatted), first(mrz.DateOfBirth, f.DateOfBirth, d.Scan.Back.DateOfBirth), now))
	put("gender", gender(first(f.Sex, d.Scan.Back.Sex, mrz.Gender)))
	if nationality != "" {
		all["nationalities"] = []string{strings.Trim(nationality, "<")}
	}
	put("document_type", d.DocumentType)
	put("document_number", docNumber)
	put("document_issuer", strings.Trim(issuer, "<"))
	put("document_expiry", expiry(first(mrz.DateOfExpiry, f.DateOfExpiry, d.Scan.Back.DateOfExpiry)))
	put("national_id", identityNumber)

	if docNumber == "" && identityNumber == "" {
		return nil, "result has no document number"
	}
	claims := map[string]any{}
	for _, k := range p.claims {
		if v, ok := all[k]; ok {
			claims[k] = v
		}
	}
	id := &providers.Identity{
		Subject: p.subject(issuer, d.DocumentType, docNumber, identityNumber),
		Claims:  claims,
		ACR:     acrScan,
	}
	if chip {
		id.ACR = acrChip
	}
	if faceOK {
		id.ACR += "+face"
		id.AMR = []string{"face"}
	}
	if iat, _ := c.GetIssuedAt(); iat != nil {
		id.AuthTime = iat.Time
	}
	return &providers.Result{State: providers.Completed, Identity: id}, ""
}

// subject is stable across logins with the same document
// (docs/providers/uqudo.md, "Identity claims") and
// across document renewals when the document carries a national identity
// number. It is keyed with the deployment's subject secret, so the token's
// sub never reveals the number, not even to someone who tries every one.
func (p *provider) subject(issuer, docType, docNumber, identityNumber string) string {
	if identityNumber != "" {
		return providers.KeyedSubject(p.subKey, "uqudo:", "nid", issuer, identityNumber)
	}
	return providers.KeyedSubject(p.subKey, "uqudo:", "doc", issuer, docType, docNumber)
}

func first(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// cleanName turns MRZ filler into spaces: "DE<LA<CRUZ" → "DE LA CRUZ".
func cleanName(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "<", " ")), " ")
}

func gender(s string) string {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "M", "MALE":
		return "male"
	case "F", "FEMALE":
		return "female"
	}
	return ""
}

// birthdate prefers a formatted date, else reads an MRZ YYMMDD with the
// century chosen so that the date is not in the future.
func birthdate(formatted, mrz string, now time.Time) string {
	for _, layout := range []string{"2006-01-02", "02/01/2006", "02-01-2006", "02.01.2006"} {
		if t, err := time.Parse(layout, strings.TrimSpace(formatted)); err == nil {
			return t.Format("2006-01-02")
		}
	}
	t, ok := mrzDate(mrz)
	if !ok {
		return ""
	}
	if t.After(now) {
		t = t.AddDate(-100, 0, 0)
	}
	return t.Format("2006-01-02")
}

// expiry reads an MRZ YYMMDD expiry date, which is always in this century.
func expiry(mrz string) string {
	t, ok := mrzDate(mrz)
	if !ok {
		return ""
	}
	return t.Format("2006-01-02")
}

func mrzDate(s string) (time.Time, bool) {
	if len(s) != 6 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102", "20"+s)
	return t, err == nil
}
