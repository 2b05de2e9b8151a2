// Command fakemarksign serves the Marksign Mobile-ID fake
// (providers/marksign/fakemarksign) on a loopback port for the local demo,
// writes its test CA to a file and prints the Caddyfile lines that point the
// marksign_mobileid provider at it. Confirm logins at /fake/ (the "phone"),
// or start it with -auto 5s to approve every login after five seconds.
//
// -hostile <route>=<mode> makes a route (login, status, remove) answer
// every request in a hostile mode of internal/hostile, to see how the
// module copes with a gateway gone bad: huge, endless, truncated, not-json,
// wrong-types, null, deep-nesting, wrong-content-type, invalid-utf8, slow or
// hang. Repeat it for several routes, e.g.
//
//	go run ./cmd/fakemarksign -hostile status=slow -hostile remove=hang
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/caddy-idv/caddy-idv/internal/hostile"
	"github.com/caddy-idv/caddy-idv/providers/marksign/fakemarksign"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8093", "loopback address to listen on")
	auto := flag.Duration("auto", 0, "approve every login this long after it starts (0: use the /fake/ page)")
	caFile := flag.String("ca", filepath.Join(os.TempDir(), "fakemarksign-ca.pem"), "where to write the test CA certificate")
	faults := map[string]fakemarksign.Fault{}
	flag.Func("hostile", hostile.Usage(fakemarksign.Routes), func(s string) error {
		route, m, err := hostile.ParseSetting(s, fakemarksign.Routes)
		if err == nil {
			faults[route] = fakemarksign.Fault{Hostile: m}
		}
		return err
	})
	flag.Parse()
	fake, err := fakemarksign.New(fakemarksign.Options{AutoApprove: *auto})
	if err != nil {
		log.Fatal(err)
	}
	for route, f := range faults {
		fake.Inject(route, f)
		fmt.Fprintf(os.Stdout, "route %s answers %s\n", route, f.Hostile)
	}
	if err := os.WriteFile(*caFile, fake.CAPEM(), 0o644); err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(os.Stdout, `fake Marksign gateway listening on %s

Caddyfile lines:
	provider marksign_mobileid {
		base_url     %s
		access_token %s
		trusted_ca   %s
	}

Test persons (phone, personal code):
`, base, base, fake.AccessToken(), *caFile)
	for _, a := range fakemarksign.DefaultAccounts {
		fmt.Fprintf(os.Stdout, "\t%s  %s  (%s)\n", a.Phone, a.Code, a.Country)
	}
	fmt.Fprintf(os.Stdout, "\nThe phone: %s/fake/ (Enter PIN or Cancel).\n", base)
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
