// Package marksign is the `marksign_mobileid` provider kind: Mobile-ID
// authentication (Estonia, Lithuania) through the Marksign gateway. The
// person types a phone number and personal code, compares the 4-digit
// control code on the login page with the one on the phone and confirms with
// the Mobile-ID PIN; the module polls the gateway until it answers.
//
// Wire format: docs/providers/marksign_mobileid.md, which defines the steps
// M1–M3 that comments cite. The gateway returns no signature the relying
// party can check, so trust rests on TLS and the access token; the provider
// checks that the returned certificate is valid now, names the person whose
// code was typed, and, with trusted_ca, chains to the operator's CA.
package marksign

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-idv/caddy-idv/providers"
)

func init() {
	caddy.RegisterModule(Config{})
}

// Kind is the provider kind.
const Kind = "marksign_mobileid"

// DefaultBaseURL is the gateway the official PHP client uses
// (docs/providers/marksign_mobileid.md, "Addresses and authentication").
const DefaultBaseURL = "https://api.marksign.eu"

// DefaultLifetime is how long a login waits. Mobile-ID itself gives up
// after about two minutes (docs/providers/marksign_mobileid.md, "Expiry and
// one-time use"), and then answers 40021.
const DefaultLifetime = 3 * time.Minute

// supportedCountries are the Mobile-ID countries whose phone numbers and
// personal codes Start can check.
var supportedCountries = []string{"EE", "LT"}

// Config configures the Marksign Mobile-ID provider:
//
//	provider marksign_mobileid [<name>] {
//		access_token <token>     # accepts {env.NAME} and {file./path}
//		locale       en|lt
//		language     LIT|ENG|RUS|EST
//		message      <text shown on the phone>
//		trusted_ca   <PEM file>
//		countries    EE LT
//		lifetime     <duration>
//		base_url / timeout / claims
//	}
type Config struct {
	providers.Common
	// AccessToken is the gateway's API access token, sent in every request
	// body. Caddy placeholders are resolved when the provider opens. Required.
	AccessToken string `json:"access_token,omitempty"`
	// Locale selects the gateway's path prefix and the language of its
	// messages: "en" (default, /en/...) or "lt" (no prefix).
	Locale string `json:"locale,omitempty"`
	// Language is the phone's UI language: LIT, ENG, RUS or EST.
	// Default: the gateway's (LIT).
	Language string `json:"language,omitempty"`
	// Message is shown on the phone with the PIN request; at most 40
	// GSM-7 characters (20 if it needs UCS-2). Default: none.
	Message string `json:"message,omitempty"`
	// TrustedCA is a PEM file of the CA certificates that must issue the
	// person's certificate. Default: the chain is not checked (the validity
	// dates and the subject still are).
	TrustedCA string `json:"trusted_ca,omitempty"`
	// Countries are the countries whose numbers are accepted.
	// Default: EE LT.
	Countries []string `json:"countries,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Config) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  providers.Namespace + "." + Kind,
		New: func() caddy.Module { return new(Config) },
	}
}

const knownOptions = "access_token, locale, language, message, trusted_ca, countries, lifetime"

// UnmarshalCaddyfile reads the provider block shown on Config.
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	err := c.UnmarshalBlock(d, Kind, knownOptions, func(opt string) (bool, error) {
		switch opt {
		case "message":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return true, d.ArgErr()
			}
			c.Message = strings.Join(args, " ")
			if err := checkMessage(c.Message); err != nil {
				return true, d.Errf("provider marksign_mobileid: %v", err)
			}
		case "countries":
			if c.Countries = d.RemainingArgs(); len(c.Countries) == 0 {
				return true, d.ArgErr()
			}
			if err := checkCountries(c.Countries); err != nil {
				return true, d.Errf("provider marksign_mobileid: %v", err)
			}
		case "lifetime":
			var err error
			c.Lifetime, err = providers.DurationArg(d, Kind, 0)
			return true, err
		case "access_token", "locale", "language", "trusted_ca":
			v, err := providers.Arg(d)
			if err != nil {
				return true, err
			}
			switch opt {
			case "access_token":
				c.AccessToken = v
			case "locale":
				if v != "en" && v != "lt" {
					return true, d.Errf("provider marksign_mobileid: locale %q: want en or lt", v)
				}
				c.Locale = v
			case "language":
				if !slices.Contains([]string{"LIT", "ENG", "RUS", "EST"}, v) {
					return true, d.Errf("provider marksign_mobileid: language %q: want LIT, ENG, RUS or EST", v)
				}
				c.Language = v
			case "trusted_ca":
				c.TrustedCA = v
			}
		default:
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if c.AccessToken == "" {
		return d.Errf("provider marksign_mobileid: missing option access_token")
	}
	return nil
}

// checkMessage enforces the gateway's limit (docs/providers/marksign_mobileid.md,
// step M1): 40 GSM-7
// characters. Anything outside printable ASCII is counted as UCS-2.
func checkMessage(m string) error {
	ascii := true
	for _, r := range m {
		if r < 0x20 || r > 0x7e {
			ascii = false
		}
	}
	n := len([]rune(m))
	if ascii && n > 40 || !ascii && n > 20 {
		return fmt.Errorf("message: at most 40 plain characters (20 with accents or other scripts)")
	}
	return nil
}

func messageFormat(m string) string {
	for _, r := range m {
		if r < 0x20 || r > 0x7e {
			return "UCS-2"
		}
	}
	return "GSM-7"
}

func checkCountries(cs []string) error {
	for _, c := range cs {
		if !slices.Contains(supportedCountries, c) {
			return fmt.Errorf("countries: %q is not supported (supported: %s)", c, strings.Join(supportedCountries, " "))
		}
	}
	return nil
}

// loadCA reads a PEM file of CA certificates into a pool.
func loadCA(file string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("trusted_ca: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, raw = pem.Decode(raw)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trusted_ca %s: %w", file, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("trusted_ca " + file + ": no PEM certificate in it")
	}
	return pool, nil
}
