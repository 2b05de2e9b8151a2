package marksign

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/caddy-idv/caddy-idv/providers"
)

// maxCertificateSize bounds certificate.value before decoding; Mobile-ID
// certificates are about 2 KiB of DER.
const maxCertificateSize = 32 << 10

var (
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
)

// decodeCertificate decodes certificate.value, which the gateway sends as
// base64 of the base64 text of the DER certificate
// (docs/providers/marksign_mobileid.md, "The certificate"). A
// single base64 layer is accepted too, in case the gateway stops doubling.
func decodeCertificate(value string) (*x509.Certificate, error) {
	if len(value) > maxCertificateSize {
		return nil, errors.New("value too large")
	}
	once, err := decodeBase64(value)
	if err != nil {
		return nil, errors.New("value is not base64")
	}
	der := once
	if len(once) == 0 || once[0] != 0x30 { // not yet a DER SEQUENCE
		if der, err = decodeBase64(string(once)); err != nil {
			return nil, errors.New("value is not double base64")
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errors.New("value is not an X.509 certificate")
	}
	return cert, nil
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// verifyCertificate checks cert for the person whose semantics identifier
// (ETSI EN 319 412-1: PNO<country>-<personal code>) is serial, at now, and
// with roots, that it chains to one of them. It returns why not, naming no
// personal data. It does not check revocation: the gateway does not return
// the OCSP answer, and the Mobile-ID service refuses revoked certificates
// before it asks for the PIN.
func verifyCertificate(cert *x509.Certificate, now time.Time, serial, country, given, surname string, roots *x509.CertPool) string {
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "certificate: not valid now"
	}
	if cert.Subject.SerialNumber != serial {
		return "identity: certificate is another person's"
	}
	if len(cert.Subject.Country) > 0 && !slices.Contains(cert.Subject.Country, country) {
		return "identity: certificate country differs"
	}
	for _, n := range cert.Subject.Names {
		v, _ := n.Value.(string)
		switch {
		case n.Type.Equal(oidGivenName) && !sameName(given, v),
			n.Type.Equal(oidSurname) && !sameName(surname, v):
			return "identity: certificate names differ"
		}
	}
	if roots != nil {
		_, err := cert.Verify(x509.VerifyOptions{
			Roots: roots, CurrentTime: now,
			// Authentication certificates carry clientAuth or no EKU at all.
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return "certificate: does not chain to trusted_ca"
		}
	}
	return ""
}

// defaultClaims go into tokens when the operator lists none; the personal
// code and the phone number never do (docs/reference.md, "Tokens").
var defaultClaims = []string{"name", "given_name", "family_name", "birthdate"}

// identity maps a checked answer to OpenID Connect claims
// (docs/providers/marksign_mobileid.md, "Identity claims").
func (p *provider) identity(st *state, a *answer, now time.Time) *providers.Identity {
	all := map[string]any{
		"given_name":  a.Name,
		"family_name": a.Surname,
		"name":        strings.TrimSpace(a.Name + " " + a.Surname),
		"gender":      gender(st.Code),
		"country":     a.Country,
		// A national identifier: only when the operator lists it.
		"personal_code": st.Code,
	}
	if bd, ok := birthdate(st.Code); ok {
		all["birthdate"] = bd.Format("2006-01-02")
	}
	if st.Phone != "" {
		// Confirming with the PIN on that SIM proves control of the number.
		all["phone_number"], all["phone_number_verified"] = st.Phone, true
	}
	claims := map[string]any{}
	for _, k := range p.claims {
		if v, ok := all[k]; ok && v != "" {
			claims[k] = v
		}
		if k == "phone_number" && st.Phone != "" {
			claims["phone_number_verified"] = true
		}
	}
	return &providers.Identity{
		Subject: p.subject(a.Country, st.Code, slices.Contains(p.claims, "personal_code")),
		Claims:  claims,
		// Mobile-ID is a notified eIDAS scheme at level high; the key lives
		// on the SIM and is unlocked with PIN1.
		ACR:      "http://eidas.europa.eu/LoA/high",
		AMR:      []string{"hwk", "pin", "mfa"},
		AuthTime: now,
	}
}

// subject is stable per person and country. It is keyed with the
// deployment's subject secret, so tokens do not carry the national
// identifier (a plain hash would not do: the few codes possible per birth
// date can all be tried), unless the operator lists personal_code in claims
// and so has chosen to see it: then it is the certificate's semantics
// identifier itself.
func (p *provider) subject(country, code string, plain bool) string {
	if plain {
		return "marksign:PNO" + country + "-" + code
	}
	return providers.KeyedSubject(p.subKey, "marksign:", country, code)
}
