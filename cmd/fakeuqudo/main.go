// Command fakeuqudo serves the uqudo fake (providers/uqudo/fakeuqudo) on a
// loopback port for the local demo and prints the Caddyfile lines that point
// the uqudo provider at it. Its dynamic link opens a fake phone page with a
// button that completes the session.
//
// -hostile <route>=<mode> makes a route (token, create, phone,
// delete-session, info, delete-info, image, jwks) answer every request in a
// hostile mode of internal/hostile, to see how the module copes with a
// service gone bad: huge, endless, truncated, not-json, wrong-types, null,
// deep-nesting, wrong-content-type, invalid-utf8, slow or hang. Repeat it
// for several routes, e.g.
//
//	go run ./cmd/fakeuqudo -hostile jwks=endless -hostile token=hang
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/providers/uqudo/fakeuqudo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "loopback address to listen on")
	faults := map[string]fakeuqudo.Fault{}
	flag.Func("hostile", hostile.Usage(fakeuqudo.Routes), func(s string) error {
		route, m, err := hostile.ParseSetting(s, fakeuqudo.Routes)
		if err == nil {
			faults[route] = fakeuqudo.Fault{Hostile: m}
		}
		return err
	})
	flag.Parse()
	fake, err := fakeuqudo.New(fakeuqudo.Options{})
	if err != nil {
		log.Fatal(err)
	}
	for route, f := range faults {
		fake.Fail(route, f)
		fmt.Fprintf(os.Stdout, "route %s answers %s\n", route, f.Hostile)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(os.Stdout, `fake uqudo listening on %s

Caddyfile lines:
	provider uqudo {
		base_url      %s
		client_id     %s
		client_secret %s
	}

Open the QR code's link (%s/fake/phone/...) and press the button to act as the phone.
`, base, base, fake.ClientID(), fake.ClientSecret(), base)
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
