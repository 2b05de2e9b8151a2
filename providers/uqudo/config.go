// Package uqudo is the `uqudo` provider kind: a QR onboarding session at
// uqudo (the person scans the QR code with uqudo's app, reads a document
// and takes a selfie), completed when uqudo's Info API returns a result JWS
// that passes jwsverify (RS256 only, key from uqudo's JWKS by kid, exp, iat,
// jti equal to the uqudo session id, each jti once).
//
// Wire format: docs/providers/uqudo.md, which defines the steps Q1–Q8 that
// comments cite. The module polls the Info API; it does not follow uqudo's
// web socket (step Q3), which only tells a browser when to look.
package uqudo

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
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
const Kind = "uqudo"

// Default addresses of uqudo's three hosts (docs/providers/uqudo.md, "Hosts").
const (
	DefaultAuthURL = "https://auth.uqudo.io/api/oauth/token"
	DefaultAPIURL  = "https://id.uqudo.io"
	DefaultWSURL   = "wss://idws.uqudo.io/ws/v1/session"
	DefaultJWKSURL = "https://id.uqudo.io/api/.well-known/jwks.json"
	DefaultIssuer  = "https://id.uqudo.io"
)

// DefaultLifetime is how long a login waits for the person. uqudo keeps a
// QR session 30 minutes; a login page should not.
const DefaultLifetime = 3 * time.Minute

// maxLifetime keeps a login within uqudo's own 30-minute QR session, with
// room for the last poll.
const maxLifetime = 25 * time.Minute

// defaultData asks uqudo's QR-reader app for a passport scan with face
// match, the smallest useful identity check. It is sent base64-encoded as
// docs/providers/uqudo.md, step Q2, requires.
const defaultData = `{"documents":[{"documentType":"PASSPORT"}],"facialRecognition":{"enabled":true}}`

// Config configures the uqudo provider:
//
//	provider uqudo [<name>] {
//		client_id     <id>
//		client_secret <secret>          # accepts {env.NAME} and {file./path}
//		data          <base64 JSON>     # the session configuration (step Q2)
//		auth_url      <token endpoint>
//		api_url       <Info API base>
//		ws_url        <web socket URL>  # its host also serves the QR session API
//		jwks_url      <JWKS URL>
//		issuer        <iss of results>
//		qr            link|text
//		lifetime      <duration>
//		base_url / timeout / claims
//	}
type Config struct {
	providers.Common
	// ClientID is the OAuth2 client id of the tenant; results must have it
	// as their aud. Required.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the OAuth2 client secret. Caddy placeholders such as
	// {env.UQUDO_SECRET} are resolved when the provider opens. Required.
	ClientSecret string `json:"client_secret,omitempty"`
	// AuthURL is the token endpoint.
	// Default: https://auth.uqudo.io/api/oauth/token.
	AuthURL string `json:"auth_url,omitempty"`
	// APIURL is the base of the Info API (results and images).
	// Default: https://id.uqudo.io.
	APIURL string `json:"api_url,omitempty"`
	// WSURL is uqudo's web socket; its host (with ws→http, wss→https) also
	// serves the QR session API. Default: wss://idws.uqudo.io/ws/v1/session.
	WSURL string `json:"ws_url,omitempty"`
	// JWKSURL is where the result signing keys are published.
	// Default: https://id.uqudo.io/api/.well-known/jwks.json.
	JWKSURL string `json:"jwks_url,omitempty"`
	// Issuer is the iss that results must carry. Default: https://id.uqudo.io.
	Issuer string `json:"issuer,omitempty"`
	// Data is the base64 of the JSON session configuration passed to the
	// phone app (documents, reading, face). Its documentType values are also
	// the document types a result may have. Default: a passport scan with
	// face match.
	Data string `json:"data,omitempty"`
	// QR is what the QR code encodes: "link" (default), uqudo's dynamic
	// link, which opens uqudo's reader app or its store page; or "text",
	// the plain qrCodeText for an app of the operator's own.
	QR string `json:"qr,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (Config) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  providers.Namespace + "." + Kind,
		New: func() caddy.Module { return new(Config) },
	}
}

const knownOptions = "client_id, client_secret, data, auth_url, api_url, ws_url, jwks_url, issuer, qr, lifetime"

// UnmarshalCaddyfile reads the provider block shown on Config.
func (c *Config) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	err := c.UnmarshalBlock(d, Kind, knownOptions, func(opt string) (bool, error) {
		if opt == "lifetime" {
			var err error
			c.Lifetime, err = providers.DurationArg(d, Kind, maxLifetime)
			return true, err
		}
		dst := map[string]*string{
			"client_id": &c.ClientID, "client_secret": &c.ClientSecret, "data": &c.Data,
			"auth_url": &c.AuthURL, "api_url": &c.APIURL, "ws_url": &c.WSURL,
			"jwks_url": &c.JWKSURL, "issuer": &c.Issuer, "qr": &c.QR,
		}[opt]
		if dst == nil {
			return false, nil
		}
		v, err := providers.Arg(d)
		if err != nil {
			return true, err
		}
		*dst = v
		if err := c.checkOption(opt); err != nil {
			return true, d.Errf("provider uqudo: %v", err)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if c.ClientID == "" {
		return d.Errf("provider uqudo: missing option client_id")
	}
	if c.ClientSecret == "" {
		return d.Errf("provider uqudo: missing option client_secret")
	}
	return nil
}

// checkOption validates one option's value at parse time, so that
// `caddy validate` names the line.
func (c *Config) checkOption(opt string) error {
	switch opt {
	case "data":
		_, err := decodeData(c.Data)
		return err
	case "auth_url", "api_url", "jwks_url", "ws_url":
		v := map[string]string{"auth_url": c.AuthURL, "api_url": c.APIURL, "jwks_url": c.JWKSURL, "ws_url": c.WSURL}[opt]
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || !(u.Scheme == "https" || u.Scheme == "http" || opt == "ws_url" && (u.Scheme == "wss" || u.Scheme == "ws")) {
			return fmt.Errorf("%s %q: want an absolute URL", opt, v)
		}
	case "qr":
		if c.QR != "link" && c.QR != "text" {
			return fmt.Errorf("qr %q: want link or text", c.QR)
		}
	}
	return nil
}

// sessionConfig is the part of the data configuration the provider checks
// results against.
type sessionConfig struct {
	Documents         []docConfig `json:"documents"`
	FacialRecognition struct {
		Enabled bool `json:"enabled"`
	} `json:"facialRecognition"`
}

type docConfig struct {
	DocumentType string `json:"documentType"`
}

// decodeData checks that raw is base64 of a JSON object and returns what the
// provider needs from it. Both padded and unpadded, standard and URL-safe
// encodings are accepted because operators paste what their tool made.
func decodeData(raw string) (*sessionConfig, error) {
	raw = strings.TrimSpace(raw)
	var js []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if js, err = enc.DecodeString(raw); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("data: not base64")
	}
	var sc sessionConfig
	if err := json.Unmarshal(js, &sc); err != nil {
		return nil, fmt.Errorf("data: not a JSON session configuration: %v", err)
	}
	for _, d := range sc.Documents {
		if d.DocumentType == "" {
			return nil, errors.New("data: a document has no documentType")
		}
	}
	return &sc, nil
}

// endpoints are the resolved addresses of one provider.
type endpoints struct {
	token, session, info, jwks string
}

// resolve applies defaults and base_url (docs/reference.md, "Caddyfile":
// base_url replaces the
// scheme and host of every address that is not set).
func (c *Config) resolve() (endpoints, error) {
	pick := func(set, def string) (string, error) {
		if set != "" {
			return set, nil
		}
		return providers.RewriteBase(def, c.BaseURL)
	}
	var e endpoints
	var err error
	if e.token, err = pick(c.AuthURL, DefaultAuthURL); err != nil {
		return e, err
	}
	api, err := pick(c.APIURL, DefaultAPIURL)
	if err != nil {
		return e, err
	}
	e.info = strings.TrimSuffix(api, "/") + "/api/v1/info"
	if e.jwks, err = pick(c.JWKSURL, DefaultJWKSURL); err != nil {
		return e, err
	}
	ws, err := pick(c.WSURL, DefaultWSURL)
	if err != nil {
		return e, err
	}
	u, err := url.Parse(ws)
	if err != nil || u.Host == "" {
		return e, fmt.Errorf("ws_url %q: want an absolute URL", ws)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	e.session = u.Scheme + "://" + u.Host + "/api/v1/session"
	return e, nil
}
